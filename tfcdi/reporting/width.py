"""The width study: is the representation's lead over decoded RGB an artefact of thin nets?

At the cpu preset (1/8 width) cResNet-51 on the representation leads ResNet-50 on decoded RGB
at 0.0983 bpp, where the paper (full width, ImageNet) has it slightly behind. The study trains
both arms, and ResNet-50 on the original images as the reference, at several backbone widths
(the classifier's `width_multiplier`) and sets the gap between the two beside the published one.
The gap's spread follows the report's rule (seeds.py): the larger of the two arms' seed ranges.
"""

from __future__ import annotations

import fractions
import math
import os

from tfcdi.reporting import published as published_lib
from tfcdi.reporting import results as results_lib
from tfcdi.reporting import seeds as seeds_lib

STUDY_POINT = "0.0983"  # the paper's Figs. 6, 7 and 12 point, where the seeds were measured
# (net, input, label); the gap is the first arm minus the second.
REPRESENTATION = ("cresnet51", "latent", "cResNet-51 on the representation")
DECODED = ("resnet50", "decoded", "ResNet-50 on decoded RGB")
ORIGINAL = ("resnet50", "original", "ResNet-50 on original RGB")
STUDY_ARMS = (REPRESENTATION, DECODED, ORIGINAL)
METRICS = ("top1", "top5")


def width_name(width: float) -> str:
  """0.125 -> "1/8", 1.0 -> "1"."""
  return str(fractions.Fraction(width).limit_denominator(64))


def study_arm(result: dict) -> tuple | None:
  """(width, net, input) of a classifier result that belongs to the study, else None."""
  arm = (result.get("net"), result.get("input"))
  point = result.get("operating_point")
  if arm not in {(net, kind) for net, kind, _ in STUDY_ARMS}:
    return None
  if point != ("original" if arm[1] == "original" else STUDY_POINT):
    return None
  return float(result["config"]["width_multiplier"]), *arm


def run_name(result: dict) -> str:
  """The committed copy's name: <bpp>_<net>_<input>_w<width>[_seed<N>] (width 1/8 -> w8)."""
  arm = study_arm(result)
  if arm is None:
    raise ValueError(f"{result.get('net')} on {result.get('input')} at "
                     f"{result.get('operating_point')} is not an arm of the width study")
  width, net, kind = arm
  return arm_run_name(net, kind, width, results_lib.seed_of(result))


def arm_run_name(net: str, kind: str, width: float, seed: int) -> str:
  """run_name of a study arm's run (the pipeline's width-study folders are named with it)."""
  point = "original" if kind == "original" else STUDY_POINT
  denominator = fractions.Fraction(width).limit_denominator(64)
  tag = f"w{denominator.denominator}" if denominator.numerator == 1 else f"w{width:g}"
  return f"{point}_{net}_{kind}_{tag}{results_lib.suffix_of_seed(seed)}"


def _final(result: dict) -> dict:
  final = result.get("final") or {}
  return {"seed": results_lib.seed_of(result), "complete": bool(result.get("complete")),
          **{m: None if not final else 100.0 * final[m] for m in METRICS}}


def _published_gap(paper: dict) -> dict:
  table = published_lib.published_table2(paper)
  rep, dec = table[(STUDY_POINT, REPRESENTATION[0])], table[(STUDY_POINT, DECODED[0])]
  return {m: rep[m] - dec[m] for m in METRICS}


def _slope_per_doubling(points) -> float | None:
  """Least-squares slope of the gap against log2(width), over two or more widths."""
  if len(points) < 2:
    return None
  xs = [math.log2(w) for w, _ in points]
  ys = [g for _, g in points]
  mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
  return (sum((x - mx) * (y - my) for x, y in zip(xs, ys))
          / sum((x - mx) ** 2 for x in xs))


def width_summary(results_files: list[str], paper: dict) -> dict:
  """Each arm's accuracy per width (mean, range and number of seeds), the gap per width with
  its spread and verdict-free trend, and the published gap.

  Files that are not part of the study (other operating points, nets or inputs) are skipped,
  so the committed classification runs can be passed as they are.
  """
  runs = {}
  for path in results_files:
    result = results_lib.read_json(path)
    key = None if result is None else study_arm(result)
    if key is None:
      continue
    seed = results_lib.seed_of(result)
    if (*key, seed) in runs:
      raise ValueError(f"two runs of {key} with seed {seed}: {runs[(*key, seed)][1]} and {path}")
    runs[(*key, seed)] = (_final(result), path)
  widths = sorted({key[0] for key in runs})
  arms, gaps = [], []
  for width in widths:
    measured = {}
    for net, kind, label in STUDY_ARMS:
      seeds = sorted((k[3], v) for k, v in runs.items() if k[:3] == (width, net, kind))
      if not seeds:
        continue
      measured[(net, kind)] = seeds_lib.aggregate([v[0] for _, v in seeds], METRICS)
      arms.append({"width": width, "net": net, "input": kind, "label": label,
                   "measured": measured[(net, kind)],
                   "sources": [v[1] for _, v in seeds]})
    rep, dec = measured.get(REPRESENTATION[:2]), measured.get(DECODED[:2])
    if rep and dec:
      gaps.append({"width": width, "seeds": [seeds_lib.num_seeds(rep), seeds_lib.num_seeds(dec)],
                   **{m: rep[m] - dec[m] for m in METRICS if None not in (rep[m], dec[m])},
                   **{f"{m}_spread": seeds_lib.gap_spread(rep, dec, metric=m) for m in METRICS}})
  trend = {m: _slope_per_doubling([(g["width"], g[m]) for g in gaps if m in g]) for m in METRICS}
  return {"operating_point": STUDY_POINT, "widths": widths, "arms": arms, "gaps": gaps,
          "gap_per_doubling": trend, "published_gap": _published_gap(paper)}


def relative_sources(summary: dict, start: str) -> None:
  for arm in summary["arms"]:
    arm["sources"] = [os.path.relpath(p, start) for p in arm["sources"]]


def _signed(value) -> str:
  return "" if value is None else f"{value:+.2f}"


def width_markdown(summary: dict, title: str) -> str:
  rows = [[width_name(a["width"]), a["label"], seeds_lib.cell(a["measured"], "top1"),
           seeds_lib.cell(a["measured"], "top5"), seeds_lib.num_seeds(a["measured"])]
          for a in summary["arms"]]
  gap_rows = [[width_name(g["width"]), _signed(g.get("top1")),
               "" if g["top1_spread"] is None else f"{g['top1_spread']:.2f}",
               _signed(g.get("top5")),
               "" if g["top5_spread"] is None else f"{g['top5_spread']:.2f}",
               " / ".join(map(str, g["seeds"]))] for g in summary["gaps"]]
  pub = summary["published_gap"]
  trend = summary["gap_per_doubling"]
  lines = [f"# {title}", "",
           f"Imagenette at {summary['operating_point']} bpp, cpu preset apart from the backbone "
           "width (`--set=width_multiplier=W`; the cpu preset is 1/8). Measured: the validation "
           "split, central crops, after the last epoch (percent), mean of the finished seeds "
           "with their range. The gap is cResNet-51 on the representation minus ResNet-50 on "
           "decoded RGB; its spread is the larger of the two arms' seed ranges (the report's "
           "rule), empty with one seed.", "",
           results_lib.table(["width", "arm", "top-1", "top-5", "seeds"], rows), "",
           results_lib.table(["width", "gap top-1", "spread", "gap top-5", "spread",
                              "seeds (representation / decoded)"], gap_rows), "",
           f"Published gap (paper, Table 2 at {summary['operating_point']} bpp, ImageNet, full "
           f"width): {_signed(pub['top1'])} top-1, {_signed(pub['top5'])} top-5 (published)."]
  if trend["top1"] is not None:
    lines += ["", f"Least-squares change of the measured gap per doubling of the width: "
              f"{_signed(trend['top1'])} top-1, {_signed(trend['top5'])} top-5 points, over "
              f"{len(summary['gaps'])} widths."]
  return "\n".join(lines) + "\n"


def width_figure(summary: dict, path: str) -> str | None:
  """Accuracy per arm (left, bars: the seeds' range) and the gap (right, bars: ± its spread,
  the band inside which the report's rule calls a difference inconclusive) against the width,
  with the published gap as a dashed line; None when no width has both gap arms."""
  if not summary["gaps"]:
    return None
  from tfcdi.reporting import paper_figures  # pylint: disable=g-import-not-at-top  (matplotlib)
  figure = paper_figures.new_figure(10, 4)
  left, right = figure.subplots(1, 2)
  ticks = summary["widths"]

  def bars(measured, metric):
    span = measured.get(f"{metric}_range")
    return (0.0, 0.0) if span is None else (measured[metric] - span[0], span[1] - measured[metric])

  for index, (net, kind, label) in enumerate(STUDY_ARMS):
    arms = [a for a in summary["arms"] if (a["net"], a["input"]) == (net, kind)
            and a["measured"]["top1"] is not None]
    if arms:
      errors = list(zip(*(bars(a["measured"], "top1") for a in arms)))
      left.errorbar([a["width"] for a in arms], [a["measured"]["top1"] for a in arms],
                    yerr=errors, capsize=3, label=label, **paper_figures.arm_style(index))
  left.set(xscale="log", xlabel="backbone width (fraction of the paper's)",
           ylabel="top-1 accuracy [%]", title="measured, Imagenette")
  left.legend(fontsize=7)
  for index, metric in enumerate(METRICS):
    gaps = [g for g in summary["gaps"] if metric in g]
    spreads = [g[f"{metric}_spread"] or 0.0 for g in gaps]
    name = {"top1": "top-1", "top5": "top-5"}[metric]
    line = right.errorbar([g["width"] for g in gaps], [g[metric] for g in gaps], yerr=spreads,
                          capsize=3, label=f"measured gap, {name}",
                          **paper_figures.arm_style(index))
    right.axhline(summary["published_gap"][metric], linestyle="--", linewidth=1,
                  color=line[0].get_color(), label=f"published gap, {name} (ImageNet, full width)")
  right.axhline(0.0, color="0.6", linewidth=0.8)
  right.set(xscale="log", xlabel="backbone width (fraction of the paper's)",
            ylabel="cResNet-51 minus ResNet-50 decoded [points]",
            title="the gap against the width (bars: ± its seed spread)")
  right.legend(fontsize=7)
  for ax in (left, right):
    ax.set_xticks(ticks, [width_name(w) for w in ticks])
    ax.minorticks_off()
  figure.tight_layout()
  return paper_figures.save_figure(figure, path)
