"""A codec recipe's history against a baseline's curve: how far from the claim each milestone is.

A recipe's run measures itself on Kodak from real files at its milestones (history.json,
tfcdi/train/codec.py). The paper's Section 3.1 claim is about MS-SSIM above JPEG's at the same
rate, so each milestone is set beside JPEG's curve (rd_curve.json, the same Kodak images)
interpolated at the milestone's own measured rate: the margin per step is the curve that says
whether more steps of this recipe can reach the claim. It sits beside baselines.py, whose
interpolation it uses, not in tfcdi.reporting, which imports nothing that loads TensorFlow.
"""

from __future__ import annotations

from tfcdi import baselines
from tfcdi.reporting import results as results_lib

METRICS = ("ms_ssim", "psnr")
LABELS = baselines.LABELS


def history_against(history: dict, curves: dict, baseline: str = "jpeg") -> dict:
  """Per milestone: the codec's bpp and metrics, the baseline's at that bpp, and the margins.

  A milestone whose rate lies outside the baseline's curve has no baseline value (None): the
  curve is never extrapolated.
  """
  if baseline not in curves:
    raise ValueError(f"no {baseline!r} curve; the curves hold {', '.join(sorted(curves))}")
  points = curves[baseline]["points"]
  rows = []
  for milestone in history["milestones"]:
    row = {"step": milestone["step"], "bpp": milestone["bpp"]}
    for metric in METRICS:
      at = baselines.interpolate_at_bpp([p["bpp"] for p in points],
                                        [p[metric] for p in points], milestone["bpp"])
      row[metric] = milestone[metric]
      row[f"{baseline}_{metric}"] = at.value if at.in_range else None
      row[f"{metric}_margin"] = milestone[metric] - at.value if at.in_range else None
    rows.append(row)
  return {"recipe": history.get("recipe"), "seed": (history.get("config") or {}).get("seed", 0),
          "operating_point": history.get("operating_point"), "baseline": baseline,
          "milestones": rows}


def run_label(summary: dict) -> str:
  """The recipe's name, with the seed of a replicate (a run with a seed other than 0)."""
  seed = summary.get("seed", 0)
  return f"{summary['recipe']} seed {seed}" if seed else summary["recipe"]


def _cell(value, digits):
  return "" if value is None else f"{value:.{digits}f}"


def history_markdown(summary: dict, title: str) -> str:
  base = summary["baseline"]
  label = LABELS.get(base, base)
  rows = [[str(r["step"]), f"{r['bpp']:.4f}", _cell(r["ms_ssim"], 4),
           _cell(r[f"{base}_ms_ssim"], 4),
           "" if r["ms_ssim_margin"] is None else f"{r['ms_ssim_margin']:+.4f}",
           _cell(r["psnr"], 2), _cell(r[f"{base}_psnr"], 2)]
          for r in summary["milestones"]]
  header = ["step", "bpp", "MS-SSIM", f"{label} MS-SSIM", "margin", "PSNR [dB]",
            f"{label} PSNR [dB]"]
  lines = [f"# {title}", "",
           f"Recipe `{run_label(summary)}`: Kodak from real files at each milestone of its run, "
           f"beside {label} on the same images, interpolated at the milestone's own rate "
           "(margin = the codec's MS-SSIM minus the baseline's).", "",
           results_lib.table(header, rows)]
  return "\n".join(lines) + "\n"


def history_figure(summary: dict, path: str) -> str:
  """MS-SSIM of the codec and of the baseline at its rate against the step (left) and the
  margin against the step (right), with zero marked."""
  from tfcdi.reporting import paper_figures  # pylint: disable=g-import-not-at-top  (matplotlib)
  base = summary["baseline"]
  label = LABELS.get(base, base)
  rows = [r for r in summary["milestones"] if r["ms_ssim_margin"] is not None]
  steps = [r["step"] for r in rows]
  figure = paper_figures.new_figure(10, 4)
  left, right = figure.subplots(1, 2)
  left.plot(steps, [r["ms_ssim"] for r in rows], label=f"recipe {run_label(summary)}",
            **paper_figures.arm_style(0))
  left.plot(steps, [r[f"{base}_ms_ssim"] for r in rows], label=f"{label} at the same bpp",
            **paper_figures.arm_style(1))
  left.set(xlabel="training step", ylabel="MS-SSIM (Kodak, real files)",
           title="the codec and the baseline at its rate")
  left.legend(fontsize=7)
  _plot_margins(right, [summary])
  right.set(title="margin (above zero: the claim holds)")
  figure.tight_layout()
  return paper_figures.save_figure(figure, path)


def _plot_margins(axis, summaries: list) -> None:
  """Each summary's MS-SSIM margin against the step (the milestones the baseline reaches),
  labelled by run (run_label), with zero marked."""
  from tfcdi.reporting import paper_figures  # pylint: disable=g-import-not-at-top  (matplotlib)
  base = summaries[0]["baseline"]
  for index, summary in enumerate(summaries):
    rows = [r for r in summary["milestones"] if r["ms_ssim_margin"] is not None]
    axis.plot([r["step"] for r in rows], [r["ms_ssim_margin"] for r in rows],
              label=run_label(summary), **paper_figures.arm_style(index))
  axis.axhline(0.0, color="0.6", linewidth=0.8)
  axis.set(xlabel="training step", ylabel=f"MS-SSIM minus {LABELS.get(base, base)}'s")


def comparison_markdown(summaries: list, title: str) -> str:
  """One row per run (a recipe, or a seed of one) of an operating point: how many steps it ran,
  where its last milestone stands against the baseline and its best margin on the way, so that
  recipes of different widths and schedules, and one recipe's seeds, can be weighed against
  each other (and the claim) in one table."""
  base = summaries[0]["baseline"]
  label = LABELS.get(base, base)
  rows = []
  for summary in summaries:
    measured = [r for r in summary["milestones"] if r["ms_ssim_margin"] is not None]
    name = f"`{run_label(summary)}`"
    if not measured:
      rows.append([name, "", "", "", "", "", ""])
      continue
    last, best = measured[-1], max(measured, key=lambda r: r["ms_ssim_margin"])
    rows.append([name, str(last["step"]), f"{last['bpp']:.4f}",
                 f"{last['ms_ssim_margin']:+.4f}", f"{last['psnr_margin']:+.2f}",
                 f"{best['ms_ssim_margin']:+.4f}", str(best["step"])])
  header = ["run", "last step", "bpp", "MS-SSIM margin", "PSNR margin [dB]",
            "best MS-SSIM margin", "at step"]
  lines = [f"# {title}", "",
           f"Each run's last milestone on Kodak from real files, beside {label} on the same "
           "images at the milestone's own rate, and its best margin on the way (each run's "
           "own table: reports/codec/recipe_<...>/against_jpeg.md).", "",
           results_lib.table(header, rows)]
  return "\n".join(lines) + "\n"


def comparison_figure(summaries: list, path: str) -> str:
  """The MS-SSIM margin against the step of each recipe on one plot, zero marked. A recipe that
  goes on from another's codec counts its steps on from the start's, so it continues that
  curve."""
  from tfcdi.reporting import paper_figures  # pylint: disable=g-import-not-at-top  (matplotlib)
  figure = paper_figures.new_figure(7, 4)
  axis = figure.subplots()
  _plot_margins(axis, summaries)
  axis.set(title="Kodak, real files, at each milestone's own bpp (above zero: the claim holds)")
  axis.legend(fontsize=7)
  figure.tight_layout()
  return paper_figures.save_figure(figure, path)
