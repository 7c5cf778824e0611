r"""Renders the reproduction report of a tfcdi-reproduce workdir, without running any step.

  python -m tools.make_report --workdir=runs/repro_cpu --preset=cpu --output_dir=reports/cpu

tfcdi-reproduce renders the same report after every run (into <workdir>/report); this re-renders
it on its own, e.g. into the committed reports/cpu/ after collecting results, or after the
report's code changed. Markdown, one JSON of everything and the figures; every number is read
from the workdir's results files. The logic lives in tfcdi/reporting/.
"""

import os

from absl import app
from absl import flags

from tfcdi import reproduce

_WORKDIR = flags.DEFINE_string("workdir", None, "The tfcdi-reproduce workdir.")
_PRESET = flags.DEFINE_enum("preset", None, sorted(reproduce.PRESETS),
                            "The preset the workdir was run at.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where to write (default: WORKDIR/report).")
_PAPER_NUMBERS = flags.DEFINE_string("paper_numbers", None,
                                     "The reference numbers (default: ../shared/reference).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if _PRESET.value is None:
    raise app.UsageError("--preset is required")
  if not _WORKDIR.value or not os.path.isdir(_WORKDIR.value):
    raise app.UsageError(f"--workdir must be a tfcdi-reproduce workdir, got {_WORKDIR.value!r}")
  out_dir = _OUTPUT_DIR.value or os.path.join(_WORKDIR.value, "report")
  path = reproduce.render_report(_WORKDIR.value, reproduce.get_preset(_PRESET.value), out_dir,
                                 paper_numbers=_PAPER_NUMBERS.value)
  print(f"report: {path}")


if __name__ == "__main__":
  app.run(main)
