r"""Collects tfcdi-train-joint runs into the committed joint-training results (Figs. 7 and 11).

  python -m tools.joint_table --runs=/work/runs/joint --seg_runs=/work/runs/joint_seg \
      --output_dir=reports/joint

Every `<runs>/*/results.json` (written by tfcdi-train-joint, with its exact command) is copied to
`<output_dir>/runs/<bpp>_<arm>[_seed<N>].json` (every run in that folder makes the table, an
arm's seeds as their mean and range); `joint.json` and `joint.md` put baseline, compression ft.
(the control) and joint ft. side by side with the direction of every change, beside the published
gain; the Fig. 7 and Fig. 11 analogs are drawn from the same summary. The logic lives in
tfcdi/reporting/joint.py and tfcdi/reporting/figures.py.
"""

import glob
import os
import shutil

from absl import app
from absl import flags

from tfcdi.reporting import figures
from tfcdi.reporting import joint
from tfcdi.reporting import published
from tfcdi.reporting import results
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
  copies = _tables.collect_runs(
      _RUNS.value, "train_joint", _OUTPUT_DIR.value,
      lambda r: f"{r['operating_point']}_{r['arm']}{results.seed_suffix(r)}",
      keep=lambda path: "_segmentation_" not in os.path.basename(path))
  runs_out = os.path.join(_OUTPUT_DIR.value, "runs")
  segmentation = {}
  if _SEG_RUNS.value:
    if not os.path.isdir(_SEG_RUNS.value):
      raise app.UsageError(f"--seg_runs must be a folder, got {_SEG_RUNS.value!r}")
    # Copied beside the joint runs, so that the committed summary cites committed files.
    for (op_name, arm), paths in joint.joint_segmentation_files(_SEG_RUNS.value).items():
      for path in paths:
        copy = os.path.join(runs_out, f"{op_name}_segmentation_{arm}"
                            f"{results.seed_suffix(results.read_json(path))}.json")
        shutil.copyfile(path, copy)
  # The segmentation step's copies in the output folder, collected now or before.
  for copy in sorted(glob.glob(os.path.join(runs_out, "*_segmentation_*.json"))):
    op_name, _, rest = os.path.basename(copy)[:-len(".json")].partition("_segmentation_")
    arm = rest.split("_seed")[0]
    if arm in joint.JOINT_SEGMENTATION_ARMS:
      segmentation.setdefault((op_name, arm), []).append(copy)
  summary = joint.joint_summary(copies, published.load_paper_numbers(_PAPER_NUMBERS.value),
                                segmentation)
  for point in summary["points"]:
    joint.relative_sources(point, _OUTPUT_DIR.value)
  figures.joint_figures(summary, _OUTPUT_DIR.value)
  _tables.write_summary(_OUTPUT_DIR.value, "joint", summary,
                        joint.joint_markdown(summary, _TITLE.value))


if __name__ == "__main__":
  app.run(main)
