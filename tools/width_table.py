r"""Collects the width study's classifier runs into its table and figure.

  python -m tools.width_table --runs=/work/runs/width \
      --include=reports/classification/runs --output_dir=reports/classification/width

Every `<runs>/*/results.json` that belongs to the study (ResNet-50 on decoded RGB and cResNet-51
on the representation at 0.0983 bpp, ResNet-50 on the original images; any --seed and
`--set=width_multiplier=W`) is copied to `<output_dir>/runs/<bpp>_<net>_<input>_w<1/W>
[_seed<N>].json`; --include adds committed results of other tables (the cpu preset's 1/8-width
runs in reports/classification/runs) without copying them. `width.json` and `width.md` give
each arm per width and the gap between the two against the published one, `width_gap.png`
draws it. The logic lives in tfcdi/reporting/width.py.
"""

import glob
import os

from absl import app
from absl import flags

from tfcdi.reporting import published
from tfcdi.reporting import width
from tools import _tables

_RUNS = flags.DEFINE_string("runs", None, "Folder whose subfolders are classifier workdirs.")
_INCLUDE = flags.DEFINE_list("include", [], "Folders of committed results.json copies to read "
                             "as well (files outside the study are skipped).")
_OUTPUT_DIR, _TITLE, _PAPER_NUMBERS = _tables.define_output_flags(
    "reports/classification/width", "The width study: decoded RGB against the representation")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  for folder in _INCLUDE.value:
    if not os.path.isdir(folder):
      raise app.UsageError(f"--include must name folders of results, got {folder!r}")
  included = [path for folder in _INCLUDE.value
              for path in sorted(glob.glob(os.path.join(folder, "*.json")))]
  try:
    copies = _tables.collect_runs(_RUNS.value, "classifier", _OUTPUT_DIR.value, width.run_name)
    summary = width.width_summary(copies + included,
                                  published.load_paper_numbers(_PAPER_NUMBERS.value))
  except ValueError as e:  # a run outside the study, or one seed of an arm given twice
    raise app.UsageError(str(e)) from None
  if not summary["arms"]:
    raise app.UsageError("no run of the study's arms in --runs or --include")
  width.relative_sources(summary, _OUTPUT_DIR.value)
  figure = width.width_figure(summary, os.path.join(_OUTPUT_DIR.value, "width_gap.png"))
  markdown = width.width_markdown(summary, _TITLE.value)
  if figure:
    markdown += f"\n![the gap against the width]({os.path.basename(figure)})\n"
  _tables.write_summary(_OUTPUT_DIR.value, "width", summary, markdown)


if __name__ == "__main__":
  app.run(main)
