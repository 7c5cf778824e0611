r"""Collects tfcdi-train-joint runs into the committed joint-training results (Figs. 7 and 11).

  python -m tools.joint_table --runs=/work/runs/joint --seg_runs=/work/runs/joint_seg \
      --output_dir=reports/joint

Every `<runs>/*/results.json` (written by tfcdi-train-joint, with its exact command) is copied to
`<output_dir>/runs/<bpp>_<arm>.json`; `joint.json` and `joint.md` put baseline, compression ft.
(the control) and joint ft. side by side with the direction of every change, beside the published
gain; the Fig. 7 and Fig. 11 analogs are drawn from the same summary. The logic lives in
tfcdi/report.py and tfcdi/figures.py.
"""

import os
import shutil

from absl import app
from absl import flags

from tfcdi import figures
from tfcdi import report
from tools import _tables

_RUNS = flags.DEFINE_string("runs", None, "Folder whose subfolders are train_joint workdirs.")
_SEG_RUNS = flags.DEFINE_string(
    "seg_runs", None, "Folder of the segmentation step's tfcdi-train-segmenter workdirs, named "
    "<arm>_<bpp> with arm baseline, compression_ft or joint_ft (optional).")
_OUTPUT_DIR, _TITLE, _PAPER_NUMBERS = _tables.define_output_flags(
    "reports/joint", "Joint training on Imagenette, cpu preset")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not _RUNS.value or not os.path.isdir(_RUNS.value):
    raise app.UsageError(f"--runs must be a folder of train_joint workdirs, got {_RUNS.value!r}")
  copies = report.collect_results(_RUNS.value, os.path.join(_OUTPUT_DIR.value, "runs"),
                                  lambda r: f"{r['operating_point']}_{r['arm']}")
  segmentation = {}
  if _SEG_RUNS.value:
    if not os.path.isdir(_SEG_RUNS.value):
      raise app.UsageError(f"--seg_runs must be a folder, got {_SEG_RUNS.value!r}")
    # Copied beside the joint runs, so that the committed summary cites committed files.
    for (op_name, arm), path in report.joint_segmentation_files(_SEG_RUNS.value).items():
      copy = os.path.join(_OUTPUT_DIR.value, "runs", f"{op_name}_segmentation_{arm}.json")
      shutil.copyfile(path, copy)
      segmentation[(op_name, arm)] = copy
  summary = report.joint_summary(copies, report.load_paper_numbers(_PAPER_NUMBERS.value),
                                 segmentation)
  for point in summary["points"]:
    point["sources"] = {k: os.path.relpath(v, _OUTPUT_DIR.value)
                        for k, v in point["sources"].items()}
    report.relative_miou_sources(point, _OUTPUT_DIR.value)
  figures.joint_figures(summary, _OUTPUT_DIR.value)
  _tables.write_summary(_OUTPUT_DIR.value, "joint", summary,
                        report.joint_markdown(summary, _TITLE.value))


if __name__ == "__main__":
  app.run(main)
