r"""The main job: runs the reproduction at a preset and writes the report.

  tfcdi-reproduce --preset=smoke --data_root=../shared/data --workdir=runs/smoke

Interrupted, the same command resumes: every finished step is skipped. `--plan` lists the
steps, done or still to run, and runs nothing. `--set=FIELD=VALUE` (repeated) overrides a field
of the pipeline's preset (tfcdi/configs.py, Preset: e.g. --set=kodak_images=4). `--max_steps=N`
is a dry run of a preset: every training run stops after N steps, nothing else changes (the paper
preset's full-size nets on tools/synthetic_paper_data.py's data, in a slow test).
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging

from experiments import _cli

# TensorFlow's modules, imported at first use (in main): --help and flag errors need none.
reproduce = _cli.lazy_import("tfcdi.reproduce")

FLAGS = flags.FLAGS
_PRESET = _cli.define_preset_flag(_cli.REPRODUCE_PRESETS, default="smoke")
_DATA_ROOT = flags.DEFINE_string(
    "data_root", None, "Folder holding imagenette2_224/, kodak/ and camvid/ (the paper preset: "
    "imagenet/, kodak/ and VOCdevkit/VOC2012/).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where every step's results, and the report, go.",
                               allow_override=True)
_STRATEGY = _cli.define_strategy_flag()
_SET = _cli.define_set_flag()
_ONLY = flags.DEFINE_list(
    "only", [], "Run only the steps whose names start with one of these (e.g. 'kodak,runtime "
    "benchmark'); the others are left as they are. The report is rendered as always. `--plan` "
    "lists the step names.")
_RESTORE_FROM = flags.DEFINE_string(
    "restore_from", None, "A folder of committed results (the repository's reports/): before "
    "anything runs, the results measured there for this preset, with the codecs this workdir "
    "uses, are copied in and their steps count as done. The workdir's own files are never "
    "replaced.")
_MAX_STEPS = flags.DEFINE_integer(
    "max_steps", 0, "A dry run: every training run stops after this many optimizer steps (one "
    "epoch of them where a run counts epochs), the benchmark times this many rounds, and "
    "nothing else of the preset changes (0: the preset as it is).", lower_bound=0)
_PLAN = flags.DEFINE_bool(
    "plan", False, "List the preset's steps, each done or still to run, and run nothing (a long "
    "run's progress, or what a workdir of linked runs still lacks).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if missing := _cli.missing_flags(FLAGS["data_root"], FLAGS["workdir"]):
    raise app.UsageError(missing)
  logging.set_verbosity(logging.WARNING)
  try:
    preset = _cli.config_from_flags("reproduce", _PRESET.value, _SET.value)
    pipeline = reproduce.Pipeline(preset, FLAGS.data_root,
                                  FLAGS.workdir, log=lambda m: print(m, flush=True),
                                  strategy=_STRATEGY.value, max_steps=_MAX_STEPS.value)
    pipeline.selected_steps(FLAGS.only)  # a prefix no step has is a usage error, before any run
  except ValueError as e:
    raise app.UsageError(str(e))
  try:
    if FLAGS.restore_from:
      restored = pipeline.restore(FLAGS.restore_from)
      print(f"restored {len(restored)} committed results from {FLAGS.restore_from}", flush=True)
      for source, target in restored:
        print(f"  {os.path.relpath(target, pipeline.workdir)}  <-  {source}", flush=True)
    if FLAGS.plan:
      print(reproduce.format_plan(pipeline))
      return
    pipeline.run(only=FLAGS.only)
  except reproduce.PipelineError as e:
    _cli.error(e)
    return 1


def run():
  _cli.run(main)


if __name__ == "__main__":
  run()
