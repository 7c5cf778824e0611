r"""Collects segmenter runs into the committed segmentation results and the Fig. 5 analog.

  python -m tools.segmentation_table --runs=/work/runs/seg_init --output_dir=reports/segmentation

Every `<runs>/*/results.json` (written by tfcdi-train-segmenter, with its exact command) is
copied to `<output_dir>/runs/<bpp>_<net>_<input>[_seed<N>].json` (every run in that folder
makes the table, an arm's seeds as their mean, range and count); `segmentation.json` and
`segmentation.md` put the mIoU of each arm beside Table 2 (published, PASCAL VOC), with the
latent-vs-decoded gap per operating point; `fig4_miou.png` plots them; `fig5_masks.png` is
drawn from the runs' predictions.npz (not copied: they hold full-size images). The logic lives
in tfcdi/reporting/.
"""

import glob
import json
import os

from absl import app
from absl import flags

from tfcdi.reporting import classification
from tfcdi.reporting import published
from tfcdi.reporting import results
from tfcdi.reporting import segmentation
from tools import _tables

_RUNS = flags.DEFINE_string("runs", None, "Folder whose subfolders are segmenter workdirs.")
_OUTPUT_DIR, _TITLE, _PAPER_NUMBERS = _tables.define_output_flags(
    "reports/segmentation", "Segmentation on CamVid, cpu preset")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  def name_of(result):
    return (f"{result.get('operating_point') or 'original'}_{result['net']}_{result['input']}"
            f"{results.seed_suffix(result)}")

  copies = _tables.collect_runs(_RUNS.value, "segmenter", _OUTPUT_DIR.value, name_of)
  summary = segmentation.segmentation_summary(
      copies, published.load_paper_numbers(_PAPER_NUMBERS.value))
  # The figure reads the predictions from the run folders; the copies leave them out.
  predictions = {}
  for path in glob.glob(os.path.join(_RUNS.value, "*", "results.json")):
    with open(path) as f:
      predictions[name_of(json.load(f))] = os.path.join(os.path.dirname(path), "predictions.npz")
  figure_runs = segmentation.segmentation_figure_runs(
      summary, lambda row: predictions.get(os.path.splitext(os.path.basename(row["source"]))[0]))
  if figure_runs:
    from tfcdi.reporting import figures  # pylint: disable=g-import-not-at-top  (matplotlib)
    figures.segmentation_comparison(figure_runs,
                                    os.path.join(_OUTPUT_DIR.value, segmentation.FIG5_FILE))
  from tfcdi.reporting import paper_figures  # pylint: disable=g-import-not-at-top  (matplotlib)
  fig4 = paper_figures.fig4_miou_per_operating_point(
      summary, os.path.join(_OUTPUT_DIR.value, "fig4_miou.png"))
  classification.relative_sources(summary, _OUTPUT_DIR.value)
  markdown = segmentation.segmentation_markdown(summary, _TITLE.value)
  if fig4:
    markdown += "\n![Fig. 4 analog](fig4_miou.png)\n"
  # Collecting seeds alone (no predictions in --runs) keeps the figure drawn before.
  if figure_runs or os.path.exists(os.path.join(_OUTPUT_DIR.value, segmentation.FIG5_FILE)):
    markdown += f"\n![Fig. 5 analog]({segmentation.FIG5_FILE})\n"
  _tables.write_summary(_OUTPUT_DIR.value, "segmentation", summary, markdown)


if __name__ == "__main__":
  app.run(main)
