r"""A codec recipe's recorded history beside JPEG at each milestone's own rate.

  python -m tools.codec_history --history=reports/codec/recipe_0.635/history.json \
      --curves=reports/codec/rd_curve.json --output=reports/codec/recipe_0.635/against_jpeg.json

Writes the JSON, a Markdown table beside it (.md) and the figure (.png): per milestone the
codec's Kodak rate, MS-SSIM and PSNR (from real files, as the run measured them), JPEG's at the
same rate and the margin. Several histories of one operating point (comma-separated) give one
comparison instead: a row per run (its last milestone and its best margin; a run of a recipe
with --seed is labelled by it) and their margin curves on one figure,

  python -m tools.codec_history --history=reports/codec/recipe_0.635/history.json,\
reports/codec/recipe_0.635_wide/history.json,reports/codec/recipe_0.635_full/history.json \
      --output=reports/codec/recipes_0.635.json

The logic lives in tfcdi/codec_history.py.
"""

import os

from absl import app
from absl import flags

from tfcdi import codec_history
from tfcdi.reporting import results
from tools import _tables

_HISTORY = flags.DEFINE_list("history", None,
                             "A recipe run's history.json, or several of one operating point.")
_CURVES = flags.DEFINE_string("curves", "reports/codec/rd_curve.json",
                              "rd_curve.json with the baselines' curves on the same images.")
_BASELINE = flags.DEFINE_enum("baseline", "jpeg", sorted(codec_history.LABELS),
                              "The curve to compare with.")
_OUTPUT = flags.DEFINE_string("output", None, "Where the JSON goes (.md and .png beside it).")


def _load(flag: str, path: str):
  try:
    return results.read_json(path)
  except ValueError as e:  # json.JSONDecodeError: a truncated or foreign file
    raise app.UsageError(f"--{flag}: {path!r} is not JSON ({e})") from None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  histories = [_load("history", path) for path in _HISTORY.value]
  rd = _load("curves", _CURVES.value)
  for path, history in zip(_HISTORY.value, histories):
    if not history or "milestones" not in history:
      raise app.UsageError(f"--history: no recipe history at {path!r}")
  points = sorted({str(history.get("operating_point")) for history in histories})
  if len(points) > 1:
    raise app.UsageError(f"--history: the histories are of different operating points "
                         f"({', '.join(points)}); compare recipes of one point")
  if not rd or "curves" not in rd:
    raise app.UsageError(f"--curves: no rd_curve.json at {_CURVES.value!r}")
  summaries = [codec_history.history_against(history, rd["curves"], _BASELINE.value)
               for history in histories]
  base, label = os.path.splitext(_OUTPUT.value)[0], codec_history.LABELS[_BASELINE.value]
  if len(summaries) == 1:
    summary = summaries[0]
    codec_history.history_figure(summary, base + ".png")
    _tables.write_beside(_OUTPUT.value, summary, codec_history.history_markdown(
        summary, f"Recipe {codec_history.run_label(summary)} against {label}"))
    return
  codec_history.comparison_figure(summaries, base + ".png")
  _tables.write_beside(
      _OUTPUT.value, {"baseline": _BASELINE.value, "recipes": summaries},
      codec_history.comparison_markdown(summaries, f"The {points[0]} runs against {label}"))


if __name__ == "__main__":
  flags.mark_flags_as_required(["history", "output"])
  app.run(main)
