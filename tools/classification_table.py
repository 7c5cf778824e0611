r"""Collects classifier runs and latent stores into the committed classification results.

  python -m tools.classification_table --runs=/work/runs/cls \
      --stores=/work/runs/stores/store_0.0983,/work/runs/stores/store_0.330 \
      --output_dir=reports/classification

Every `<runs>/*/results.json` (written by tfcdi-train-classifier, with its exact command) is
copied to `<output_dir>/runs/<bpp>_<net>_<input>[_seed<N>].json` (a run with --seed=N gets
its own copy), and the table is made of every run in that folder, so that seeds collected from
another --runs folder join their arms. `classification.json` and `classification.md` put the
final top-1 / top-5 of each arm (the mean, range and number of its seeds) beside Table 2
(published, ImageNet)
and the stores' sizes beside the source JPEGs', with the Fig. 3 analogs (accuracy per operating
point, and the validation curves). The logic lives in tfcdi/reporting/.
"""

import os

from absl import app
from absl import flags

from tfcdi.reporting import classification
from tfcdi.reporting import published
from tfcdi.reporting import report
from tfcdi.reporting import results
from tools import _tables

_RUNS = flags.DEFINE_string("runs", None, "Folder whose subfolders are classifier workdirs.")
_STORES = flags.DEFINE_list("stores", [], "Latent store folders to report the size of (none: "
                            "the sizes the output folder's classification.json already has, so "
                            "that collecting seeds later keeps them).")
_OUTPUT_DIR, _TITLE, _PAPER_NUMBERS = _tables.define_output_flags(
    "reports/classification", "Classification on Imagenette, cpu preset")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  copies = _tables.collect_runs(
      _RUNS.value, "classifier", _OUTPUT_DIR.value,
      lambda r: f"{r['operating_point']}_{r['net']}_{r['input']}{results.seed_suffix(r)}")
  kept = []
  if not _STORES.value:
    kept = (results.read_json(os.path.join(_OUTPUT_DIR.value, "classification.json"))
            or {}).get("stores", [])
  summary = classification.classification_summary(
      copies, _STORES.value, published.load_paper_numbers(_PAPER_NUMBERS.value), kept)
  # Sources relative to the output folder, so the committed files point at each other.
  classification.relative_sources(summary, _OUTPUT_DIR.value)
  os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
  figures = report.classification_figures(summary, _OUTPUT_DIR.value)
  markdown = (classification.classification_markdown(summary, _TITLE.value) + "\n\n"
              + "\n".join(figures))
  _tables.write_summary(_OUTPUT_DIR.value, "classification", summary, markdown)


if __name__ == "__main__":
  app.run(main)
