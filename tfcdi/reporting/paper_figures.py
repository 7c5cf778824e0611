"""Analogs of the paper's Figs. 3, 4, 6 and 12, drawn from result data into PNGs.

- Fig. 3 / Fig. 4: top-5 accuracy / mIoU at each operating point for the RGB net on decoded
  images and the two cResNets on the representation, the original-RGB net as a reference line;
  measured values in one panel, the published ones (paper_numbers.json) in another.
- Fig. 3's validation curves: the same arms' validation accuracy after each epoch, one panel per
  operating point, as the paper's Fig. 3 draws them.
- Fig. 6: accuracy against multiply-adds, with and without the decoder's cost, from the counts
  the pipeline wrote (flops/arms.json; tfcdi.nets.arm_costs) and Table 1 / Table 2 (published).
- Fig. 12: accuracy at 0.0983 bpp against the measured per-image runtime of the net alone and,
  for the RGB nets, of the decoder and the net together.

The plots read summaries (tfcdi.reporting), the benchmark's JSON and the counts' JSON, never a
model. An arm without a measurement is left out of a plot, never drawn at a made-up value. Each
plot has a pure helper that returns the data it draws, so tests can check what was kept and what
was left out. Uses matplotlib's Agg canvas directly (headless, leaves the global backend alone).
Figs. 9 and 10 run the codecs and live in tfcdi/coded_images.py.
"""

from __future__ import annotations

import json
import os
import textwrap
from typing import Callable, Sequence

from tfcdi.codec import operating_points

# The arms of Figs. 3 and 4, in the paper's order: (net, input, legend label). The segmentation
# summary names the dilated DeepLab variants with a "-d" suffix.
FIG3_ARMS = (("resnet50", "decoded", "ResNet-50 on decoded RGB"),
             ("cresnet51", "latent", "cResNet-51 on the representation"),
             ("cresnet39", "latent", "cResNet-39 on the representation"))
FIG4_ARMS = (("resnet50-d", "decoded", "ResNet-50-d on decoded RGB"),
             ("cresnet51-d", "latent", "cResNet-51-d on the representation"),
             ("cresnet39-d", "latent", "cResNet-39-d on the representation"))
# One style per arm (by position), the same in the measured and the published panel: colour,
# marker, marker size, line, filled marker, z-order. The two cResNets often land on the same
# values: cResNet-39 is drawn over cResNet-51 with larger hollow markers and a dash-dot line, so
# that cResNet-51's solid line and filled markers show through it. Five, so that comparisons of
# more runs (a recipe's seeds, tfcdi/codec_history.py) do not repeat a style.
_ARM_STYLES = (("tab:blue", "s", 4, "--", True, 2.0), ("tab:red", "o", 4, "-", True, 2.1),
               ("tab:orange", "^", 8, "-.", False, 2.2), ("tab:green", "D", 5, ":", False, 2.3),
               ("tab:purple", "v", 6, "-", True, 2.4))


def arm_style(index: int) -> dict:
  color, marker, size, line, filled, zorder = _ARM_STYLES[index % len(_ARM_STYLES)]
  return {"color": color, "marker": marker, "markersize": size, "linestyle": line,
          "zorder": zorder, "markerfacecolor": color if filled else "none",
          "markeredgewidth": 1.0 if filled else 1.4}


def integer_ticks(axis) -> None:
  """Ticks at whole numbers only (epochs: 'epoch 1.5' is not a thing a run has)."""
  from matplotlib.ticker import MaxNLocator  # pylint: disable=g-import-not-at-top
  axis.set_major_locator(MaxNLocator(integer=True))


def new_figure(width: float, height: float):
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  figure = Figure(figsize=(width, height))
  FigureCanvasAgg(figure)
  return figure


def save_figure(figure, path: str, dpi: int = 110) -> str:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  figure.savefig(path, dpi=dpi)
  return path


# --- Figs. 3 and 4: one value per arm and operating point ------------------------------------


def operating_point_series(summary: dict, arms: Sequence[tuple[str, str, str]],
                           reference_net: str, measured_value: Callable[[dict], float | None],
                           published_value: Callable[[dict], float | None]) -> dict:
  """What Figs. 3 and 4 plot, from a summary's rows.

  Args:
    summary: a report summary whose "rows" have operating_point, net and input.
    arms: (net, input, label) of the arms to plot, in legend order.
    reference_net: the net of the row on the original images (input "original").
    measured_value, published_value: a row -> its value, or None where it has none (a run that
      is missing or unfinished, a number the paper does not give).

  Returns:
    {"measured": panel, "published": panel, "missing": ["<label> at <op> bpp", ...]} where a
    panel is {"arms": {label: [(bpp, value), ...]}, "reference": value or None}. Points are in
    rate order; an arm without any value is absent, and `missing` names the measured points
    left out.
  """
  rows = {(r["operating_point"], r["net"], r["input"]): r for r in summary["rows"]}
  panels = {"measured": {"arms": {}, "reference": None},
            "published": {"arms": {}, "reference": None}}
  missing = []
  for name, value_of in (("measured", measured_value), ("published", published_value)):
    for net, input_kind, label in arms:
      points = []
      for op in operating_points.OPERATING_POINTS.values():
        row = rows.get((op.name, net, input_kind))
        value = None if row is None else value_of(row)
        if value is not None:
          points.append((op.bpp, float(value)))
        elif name == "measured":
          missing.append(f"{label} at {op.name} bpp")
      if points:
        panels[name]["arms"][label] = points
    reference = rows.get(("original", reference_net, "original"))
    value = None if reference is None else value_of(reference)
    panels[name]["reference"] = None if value is None else float(value)
  return {**panels, "missing": missing}


def classification_series(summary: dict, metric: str = "top5") -> dict:
  """Fig. 3's data from classification.classification_summary(); only complete runs count."""
  if metric not in ("top1", "top5"):
    raise ValueError(f"metric must be top1 or top5, got {metric!r}")

  def measured(row):
    m = row.get("measured") or {}
    return m.get(metric) if m.get("complete") else None

  return operating_point_series(summary, FIG3_ARMS, "resnet50", measured,
                                lambda row: (row.get("published_imagenet") or {}).get(metric))


def segmentation_series(summary: dict) -> dict:
  """Fig. 4's data from segmentation.segmentation_summary(); only complete runs count."""

  def measured(row):
    m = row.get("measured") or {}
    return m.get("miou") if m.get("complete") else None

  return operating_point_series(summary, FIG4_ARMS, "resnet50-d", measured,
                                lambda row: row.get("published_voc_miou"))


def _draw_operating_points(ax, panel: dict, labels: Sequence[str], title: str, ylabel: str,
                           reference_label: str):
  for index, label in enumerate(labels):
    if label not in panel["arms"]:
      continue
    xs, ys = zip(*panel["arms"][label])
    ax.plot(xs, ys, label=label, **arm_style(index))
  if panel["reference"] is not None:
    ax.axhline(panel["reference"], color="k", linestyle=":", label=reference_label)
  rates = [op.bpp for op in operating_points.OPERATING_POINTS.values()]
  # Every operating point keeps its tick, so a point without a value shows as a gap.
  ax.set_xticks(rates)
  ax.set_xticklabels(list(operating_points.OPERATING_POINTS))
  ax.set_xlim(0.0, rates[-1] + 0.08)
  ax.set_xlabel("operating point [bpp]")
  ax.set_ylabel(ylabel)
  ax.set_title(title, fontsize=10)
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=7, loc="best")


def _plot_per_operating_point(series: dict, arms, path: str, *, ylabel: str, suptitle: str,
                              published_title: str, reference_label: str) -> str | None:
  """The one drawing routine of Figs. 3 and 4: measured panel, then the published one."""
  if not series["measured"]["arms"]:
    return None
  labels = [label for _, _, label in arms]
  panels = [("measured (finished runs)", series["measured"])]
  if series["published"]["arms"] or series["published"]["reference"] is not None:
    panels.append((published_title, series["published"]))
  width = 5.2 * len(panels)
  footnote = ""
  if series["missing"]:
    # About 16 characters of 7-point text per inch of figure.
    footnote = textwrap.fill("Not measured (or not finished), so not drawn: "
                             + "; ".join(series["missing"]) + ".", width=int(16 * width))
  footnote_height = 0.15 * (footnote.count("\n") + 1) + 0.1 if footnote else 0.0
  figure = new_figure(width, 4.4 + footnote_height)
  axes = figure.subplots(1, len(panels), squeeze=False)[0]
  for ax, (title, panel) in zip(axes, panels):
    _draw_operating_points(ax, panel, labels, title, ylabel, reference_label)
  figure.suptitle(suptitle, fontsize=11)
  if footnote:
    figure.text(0.01, 0.01, footnote, fontsize=7, ha="left", va="bottom")
  figure.tight_layout(rect=(0, footnote_height / figure.get_figheight(), 1, 1))
  return save_figure(figure, path)


def fig3_top5_per_operating_point(summary: dict, path: str, metric: str = "top5") -> str | None:
  """The Fig. 3 analog: accuracy at each operating point, measured beside published.

  ResNet-50 on decoded RGB and cResNet-51 / cResNet-39 on the representation, one line each
  over the three operating points; ResNet-50 on the original images is a horizontal reference
  line. The left panel has the measured values of finished runs, the right one Table 2's
  ImageNet values, titled as published.

  Args:
    summary: classification.classification_summary(...).
    path: the PNG to write.
    metric: "top5" (the paper's Fig. 3) or "top1".

  Returns:
    `path`, or None (nothing written) when no arm has a finished run at any operating point.
  """
  series = classification_series(summary, metric)
  name = {"top1": "top-1", "top5": "top-5"}[metric]
  return _plot_per_operating_point(
      series, FIG3_ARMS, path, ylabel=f"{name} accuracy [%]",
      suptitle=f"{name} accuracy at each operating point (Fig. 3 analog)",
      published_title="published (paper, ImageNet)",
      reference_label="ResNet-50 on original RGB")


def validation_curves(summary: dict, metric: str = "top5") -> dict:
  """Fig. 3's curves from classification.classification_summary() (its rows' "curve" entries).

  Returns:
    {"panels": {operating point: {label: [(epoch, value), ...]}}, "reference": [(epoch, value)]
    of ResNet-50 on the original images (or []), "unfinished": [label at op, ...]}. Runs still
    training are drawn as far as they got, and named in "unfinished"; arms without a run are
    absent.
  """
  index = {"top1": 1, "top5": 2}.get(metric)
  if index is None:
    raise ValueError(f"metric must be top1 or top5, got {metric!r}")
  rows = {(r["operating_point"], r["net"], r["input"]): r for r in summary["rows"]}

  def curve(row):
    points = ((row or {}).get("measured") or {}).get("curve") or []
    return [(point[0], point[index]) for point in points if point[index] is not None]

  panels, unfinished = {}, []
  for op in operating_points.OPERATING_POINTS:
    for net, input_kind, label in FIG3_ARMS:
      row = rows.get((op, net, input_kind))
      points = curve(row)
      if points:
        panels.setdefault(op, {})[label] = points
        if not row["measured"].get("complete"):
          unfinished.append(f"{label} at {op} bpp")
  return {"panels": panels, "reference": curve(rows.get(("original", "resnet50", "original"))),
          "unfinished": unfinished}


def validation_curves_figure(summary: dict, metric: str = "top5"):
  """The figure fig3_validation_curves saves (None without any curve), for tests to inspect."""
  data = validation_curves(summary, metric)
  if not data["panels"]:
    return None
  name = {"top1": "top-1", "top5": "top-5"}[metric]
  ops = list(operating_points.OPERATING_POINTS)
  figure = new_figure(4.6 * len(ops), 4.2)
  axes = figure.subplots(1, len(ops), squeeze=False)[0]
  for ax, op in zip(axes, ops):
    for index, (_, _, label) in enumerate(FIG3_ARMS):
      points = data["panels"].get(op, {}).get(label)
      if points:
        xs, ys = zip(*points)
        suffix = " (still training)" if f"{label} at {op} bpp" in data["unfinished"] else ""
        ax.plot(xs, ys, label=label + suffix, **arm_style(index))
    if data["reference"]:
      xs, ys = zip(*data["reference"])
      ax.plot(xs, ys, color="k", linestyle=":", label="ResNet-50 on original RGB")
    ax.set_title(f"{op} bpp" + ("" if op in data["panels"] else " (no run yet)"), fontsize=10)
    ax.set_xlabel("epoch")
    integer_ticks(ax.xaxis)
    ax.set_ylabel(f"validation {name} accuracy [%]")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=7, loc="lower right")
  figure.suptitle(f"Validation {name} accuracy during training (Fig. 3 analog, measured)",
                  fontsize=11)
  figure.tight_layout()
  return figure


def fig3_validation_curves(summary: dict, path: str, metric: str = "top5") -> str | None:
  """The paper's Fig. 3 as it draws it: validation accuracy per epoch, a panel per point.

  Per-epoch values are each run's evaluation during training (a fixed subset of the validation
  split when its preset says so); the table's numbers are the final evaluation on all of it.
  Returns `path`, or None (nothing written) when no run has a validation curve.
  """
  figure = validation_curves_figure(summary, metric)
  return None if figure is None else save_figure(figure, path)


def fig4_miou_per_operating_point(summary: dict, path: str) -> str | None:
  """The Fig. 4 analog: segmentation mIoU at each operating point, measured beside published.

  ResNet-50-d on decoded RGB and cResNet-51-d / cResNet-39-d on the representation; ResNet-50-d
  on the original images is the reference line. Left: finished runs; right: Table 2's PASCAL
  VOC 2012 val values, titled as published.

  Args:
    summary: segmentation.segmentation_summary(...).
    path: the PNG to write.

  Returns:
    `path`, or None (nothing written) when no arm has a finished run at any operating point.
  """
  return _plot_per_operating_point(
      segmentation_series(summary), FIG4_ARMS, path, ylabel="mIoU [%]",
      suptitle="Segmentation mIoU at each operating point (Fig. 4 analog)",
      published_title="published (paper, PASCAL VOC 2012 val)",
      reference_label="ResNet-50-d on original RGB")


# --- Fig. 12: accuracy against measured runtime -------------------------------------------------


def _read_json(source) -> dict:
  if isinstance(source, dict):
    return source
  with open(source) as f:
    return json.load(f)


def _run_file(row: dict, summary_dir: str | None) -> dict | None:
  """The results file a summary row cites (relative to summary_dir), or None if unreadable."""
  source = row.get("source")
  if not source:
    return None
  path = source if os.path.isabs(source) or summary_dir is None else os.path.join(summary_dir,
                                                                                  source)
  try:
    return _read_json(path)
  except (OSError, ValueError):
    return None


# Where a label may sit beside its marker, in points, tried in turn: right and above first.
_LABEL_OFFSETS = ((4, 4), (4, -4), (-4, 4), (-4, -4), (4, 13), (4, -13), (-4, 13), (-4, -13),
                  (4, 22), (4, -22))


def _overlap(a, b) -> float:
  width = min(a.x1, b.x1) - max(a.x0, b.x0)
  height = min(a.y1, b.y1) - max(a.y0, b.y0)
  return width * height if width > 0 and height > 0 else 0.0


def place_labels(ax, items, fontsize: int = 7) -> list:
  """Labels (x, y, text) items beside their points so that labels overlap neither each other nor
  a labelled marker, and stay inside the axes; returns the annotations.

  Greedy: each label takes the first offset in _LABEL_OFFSETS whose box is clear of the labels
  placed before it, of the markers and of the axes' edges, else the offset with the least
  overlap. Call it once the axes' limits and the figure's layout are final: the boxes are
  measured in display space.
  """
  from matplotlib.transforms import Bbox  # pylint: disable=g-import-not-at-top
  renderer = ax.figure.canvas.get_renderer()
  ax.set_xlim(ax.get_xlim())  # freeze autoscaling: the boxes below assume these limits
  ax.set_ylim(ax.get_ylim())
  frame = ax.get_window_extent(renderer)
  radius = 3.5 * ax.figure.dpi / 72.0
  markers = []
  for x, y, _ in items:
    px, py = ax.transData.transform((x, y))
    markers.append(Bbox.from_extents(px - radius, py - radius, px + radius, py + radius))
  labels, annotations = [], []
  for x, y, text in items:
    best = None
    for dx, dy in _LABEL_OFFSETS:
      annotation = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy),
                               fontsize=fontsize, ha="left" if dx >= 0 else "right",
                               va="bottom" if dy >= 0 else "top")
      box = annotation.get_window_extent(renderer)
      outside = box.width * box.height - _overlap(box, frame)
      # Two pixels of air between labels: touching labels read as one.
      cost = (sum(_overlap(box.padded(2.0), other) for other in labels)
              + sum(_overlap(box, marker) for marker in markers) + outside)
      if best is None or cost < best[0]:
        if best is not None:
          best[1].remove()
        best = (cost, annotation, box)
      else:
        annotation.remove()
      if cost == 0:
        break
    labels.append(best[2])
    annotations.append(best[1])
  return annotations


def runtime_points(benchmark_result, summary: dict, operating_point: str = "0.0983",
                   metric: str = "top5",
                   summary_dir: str | None = None) -> tuple[list[dict], dict | None, list[str]]:
  """Fig. 12's data: each arm's accuracy beside the benchmark's per-image runtime.

  Rows are matched to the benchmark's paths by net name, as the Fig. 6 analog matches them to
  multiply-adds (tfcdi.benchmark.accuracy_points): an arm on the representation to the path of
  its cResNet alone ("cresnet51"), an arm on decoded RGB to its ResNet alone ("resnet50") and to
  decoder and ResNet ("decoder+resnet50"). Only finished runs count, as in Figs. 3 and 4; an arm
  without a finished run or without a timed path is left out, and a note says so.

  Args:
    benchmark_result: the benchmark's JSON (reports/benchmarks/benchmark.json), or its path.
    summary: classification.classification_summary(...).
    operating_point: of the accuracy rows (the paper's Fig. 12: 0.0983).
    metric: "top1" or "top5".
    summary_dir: the folder the rows' "source" paths are relative to (to read the runs' widths).

  Returns:
    (points, reference, notes). A point: net, input, accuracy, seconds (median per image of the
    net alone), seconds_q1 / seconds_q3, and for decoded arms seconds_with_decoder (+ _q1 /
    _q3), else None; width_multiplier of the run that reached the accuracy (None if its file is
    not found). reference: net, accuracy, seconds (+ _q1 / _q3; None if not timed) of the net
    on original RGB, or None. notes: the arms left out, and where the timed models differ from
    those that reached the accuracy.
  """
  if metric not in ("top1", "top5"):
    raise ValueError(f"metric must be top1 or top5, got {metric!r}")
  result = _read_json(benchmark_result)
  timed = {row["name"]: row["per_image_seconds"] for row in result["paths"]}

  def seconds(name, prefix):
    stats = timed.get(name)
    if stats is None:
      return {prefix: None, f"{prefix}_q1": None, f"{prefix}_q3": None}
    return {prefix: stats["median"], f"{prefix}_q1": stats.get("q1", stats["median"]),
            f"{prefix}_q3": stats.get("q3", stats["median"])}

  points, reference, notes, widths, unfinished = [], None, [], set(), []
  for row in summary["rows"]:
    measured = row.get("measured") or {}
    net, input_kind = row["net"], row["input"]
    if not measured.get("complete") or measured.get(metric) is None:
      if row["operating_point"] == operating_point:
        unfinished.append(f"{net} on {input_kind}")
      continue
    if input_kind == "original":
      if row["operating_point"] == "original":
        reference = {"net": net, "accuracy": float(measured[metric]),
                     **seconds(net, "seconds")}
      continue
    if row["operating_point"] != operating_point:
      continue
    point = {"net": net, "input": input_kind, "accuracy": float(measured[metric]),
             **seconds(net, "seconds"), "seconds_with_decoder": None,
             "seconds_with_decoder_q1": None, "seconds_with_decoder_q3": None}
    if input_kind == "decoded":
      point.update(seconds(f"decoder+{net}", "seconds_with_decoder"))
    if point["seconds"] is None and point["seconds_with_decoder"] is None:
      notes.append(f"{net} on {input_kind}: no timed path in the benchmark; left out")
      continue
    run = _run_file(row, summary_dir)
    point["width_multiplier"] = (float(run["config"]["width_multiplier"]) if run else None)
    widths.add(point["width_multiplier"])
    points.append(point)
  if unfinished:
    notes.append(f"no finished run, left out: {', '.join(unfinished)}")
  config = result.get("config", {})
  timed_op = (result.get("inputs") or {}).get("operating_point", config.get("operating_point"))
  if points and timed_op is not None and timed_op != operating_point:
    notes.append(f"runtimes were timed on the {timed_op} bpp latent, accuracies are at "
                 f"{operating_point} bpp (the nets' input channels differ)")
  timed_width = config.get("width_multiplier")
  run_widths = sorted(w for w in widths if w is not None)
  if timed_width is not None and any(w != timed_width for w in run_widths):
    notes.append(f"runtimes are of width-{timed_width:g} nets, accuracies of width-"
                 f"{'/'.join(f'{w:g}' for w in run_widths)} nets")
  return points, reference, notes


def fig12_accuracy_vs_runtime(benchmark_json, classification_summary: dict, path: str,
                              metric: str = "top5", operating_point: str = "0.0983",
                              summary_dir: str | None = None) -> str | None:
  """The Fig. 12 analog: accuracy at 0.0983 bpp against measured per-image runtime.

  cResNets on the representation: one marker each at the runtime of the net alone, joined in
  runtime order. ResNets on decoded RGB: an open marker at the runtime of the net alone and a
  filled one at decoder + net, joined by a line. Horizontal bars: the interquartile range over
  the benchmark's rounds. ResNet-50 on original RGB, where measured, is a dotted reference
  line with a marker at its runtime. The paper's runtimes are not in paper_numbers.json, so
  there is no published panel. Under the plot, notes name the arms left out and where the timed
  models differ from those that reached the accuracy (width, operating point).

  Args:
    benchmark_json: the benchmark's JSON (reports/benchmarks/benchmark.json), or its path.
    classification_summary: classification.classification_summary(...).
    path: the PNG to write.
    metric: "top5" (the paper's) or "top1".
    operating_point: of the accuracies.
    summary_dir: see runtime_points.

  Returns:
    `path`, or None (nothing written) when no arm has both a finished run and a timed path.
  """
  figure = runtime_figure(benchmark_json, classification_summary, metric, operating_point,
                          summary_dir)
  return None if figure is None else save_figure(figure, path)


def runtime_figure(benchmark_json, classification_summary: dict, metric: str = "top5",
                   operating_point: str = "0.0983", summary_dir: str | None = None):
  """The figure fig12_accuracy_vs_runtime saves (None when it has no point), for tests."""
  result = _read_json(benchmark_json)
  points, reference, notes = runtime_points(result, classification_summary, operating_point,
                                            metric, summary_dir)
  if not points:
    return None
  name = {"top1": "top-1", "top5": "top-5"}[metric]
  figure = new_figure(6.4, 5.0 + 0.2 * len(notes))
  ax = figure.add_subplot(1, 1, 1)

  def xerr(point, key):
    return [[1e3 * (point[key] - point[f"{key}_q1"])], [1e3 * (point[f"{key}_q3"] - point[key])]]

  labels = []  # (x, y, text), placed once the layout is final
  latent = sorted((p for p in points if p["input"] == "latent" and p["seconds"] is not None),
                  key=lambda p: p["seconds"])
  if latent:
    ax.plot([1e3 * p["seconds"] for p in latent], [p["accuracy"] for p in latent], "o-",
            color="tab:red", label="cResNet on the representation")
    for p in latent:
      ax.errorbar(1e3 * p["seconds"], p["accuracy"], xerr=xerr(p, "seconds"), color="tab:red",
                  capsize=2, linewidth=0.8)
      labels.append((1e3 * p["seconds"], p["accuracy"], p["net"]))
  drawn = set()
  for p in (p for p in points if p["input"] == "decoded"):
    ends = [(key, fill) for key, fill in (("seconds", "none"), ("seconds_with_decoder",
                                                                  "tab:blue"))
            if p[key] is not None]
    ax.plot([1e3 * p[key] for key, _ in ends], [p["accuracy"]] * len(ends), "-",
            color="tab:blue", linewidth=1)
    for key, fill in ends:
      label = ("ResNet on decoded RGB, net only" if key == "seconds" else
               "ResNet on decoded RGB, decoder + net")
      ax.errorbar(1e3 * p[key], p["accuracy"], xerr=xerr(p, key), fmt="s", color="tab:blue",
                  markerfacecolor=fill, capsize=2, linewidth=0.8,
                  label=None if label in drawn else label)
      drawn.add(label)
      labels.append((1e3 * p[key], p["accuracy"],
                     p["net"] if key == "seconds" else f"decoder+{p['net']}"))
  if reference is not None:
    # The net on the original images needs no decoder: it sits at its own runtime, and its
    # accuracy is the ceiling the others are read against.
    ax.axhline(reference["accuracy"], color="k", linestyle=":", linewidth=1)
    if reference["seconds"] is not None:
      ax.errorbar(1e3 * reference["seconds"], reference["accuracy"],
                  xerr=xerr(reference, "seconds"), fmt="^", color="k", capsize=2,
                  linewidth=0.8, label=f"{reference['net']} on original RGB")
    else:
      ax.plot([], [], "k:", label=f"{reference['net']} on original RGB (not timed)")
  config = result.get("config", {})
  device = result.get("device", {})
  timing = (f"{device.get('requested', config.get('device', '?'))}"
            + (f", {device['cpu_count']} cores" if device.get("cpu_count") else "")
            + f", batch {config.get('batch_size', '?')}, median of "
              f"{config.get('repeats', '?')} rounds")
  ax.set_xlabel(f"runtime per image [ms] ({timing})")
  ax.set_ylabel(f"{name} accuracy [%], measured at {operating_point} bpp")
  ax.set_title(f"{name} accuracy against runtime, {operating_point} bpp (Fig. 12 analog)",
               fontsize=10)
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=7, loc="best")
  bottom = 0.0
  if notes:
    figure.text(0.01, 0.01, "\n".join(f"Note: {n}." for n in notes), fontsize=7, ha="left",
                va="bottom")
    bottom = (0.2 * len(notes) + 0.1) / figure.get_figheight()
  figure.tight_layout(rect=(0, bottom, 1, 1))
  place_labels(ax, labels)
  return figure


# --- Fig. 6: accuracy against multiply-adds -----------------------------------------------------

_INPUT_LABELS = {"latent": "compressed representation (cResNet)",
                 "decoded": "decoded RGB (ResNet), inference only",
                 "decoded+decoder": "decoded RGB (ResNet), with decoding",
                 "original": "original RGB (ResNet)"}


def fig6_points(summary: dict, arm_costs: dict, metric: str = "top5") -> tuple[list[dict],
                                                                              list[str]]:
  """Each measured arm's accuracy beside the multiply-adds of the nets that reached it.

  Args:
    summary: a classification summary (tfcdi.reporting.classification).
    arm_costs: the counts the pipeline wrote (flops/arms.json, tfcdi.nets.arm_costs): per arm
      the net at its run's width and, for decoded arms, the decoder of the codec that made its
      data; with notes where a count had to assume something.
    metric: "top1" or "top5".

  Returns:
    (points, notes). A point: operating_point, net, input, accuracy, net_multiply_adds,
    decoder_multiply_adds (0 unless decoded), width_multiplier, decoder_filters. An arm with an
    accuracy but no count is left out, and a note says so.
  """
  if metric not in ("top1", "top5"):
    raise ValueError(f"metric must be top1 or top5, got {metric!r}")
  costs = {(a["operating_point"], a["net"], a["input"]): a for a in arm_costs.get("arms", [])}
  points, notes = [], list(arm_costs.get("notes", []))
  for row in summary.get("rows", []):
    measured = row.get("measured") or {}
    if measured.get(metric) is None:
      continue
    key = (row["operating_point"], row["net"], row["input"])
    cost = costs.get(key)
    if cost is None:
      notes.append(f"{' '.join(key)}: no multiply-add count; left out")
      continue
    points.append({"operating_point": key[0], "net": key[1], "input": key[2],
                   "accuracy": float(measured[metric]),
                   **{k: cost.get(k) for k in ("net_multiply_adds", "decoder_multiply_adds",
                                               "width_multiplier", "decoder_filters")}})
  return points, notes


def _draw_fig6_panel(ax, points, title, metric, log_x=False):
  series = {"latent": [], "decoded": [], "decoded+decoder": [], "original": []}
  for p in points:
    series[p["input"]].append((p["net_multiply_adds"], p["accuracy"], p["net"]))
    if p["input"] == "decoded":
      series["decoded+decoder"].append(
          (p["net_multiply_adds"] + p["decoder_multiply_adds"], p["accuracy"], p["net"]))
  styles = {"latent": "o-", "decoded": "s--", "decoded+decoder": "s-", "original": "^"}
  labels = []
  for kind, values in series.items():
    if not values:
      continue
    values.sort()
    ax.plot([v[0] / 1e9 for v in values], [v[1] for v in values], styles[kind],
            label=_INPUT_LABELS[kind])
    labels += [(x / 1e9, y, net) for x, y, net in values]
  if log_x:
    from matplotlib.ticker import NullFormatter  # pylint: disable=g-import-not-at-top
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a short decade collide
  ax.set_xlabel("multiply-adds per image [1e9]" + (", log scale" if log_x else ""))
  ax.set_ylabel(f"{metric} accuracy [%]")
  ax.set_title(title, fontsize=10)
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=7, loc="lower right")
  return labels


def plot_accuracy_vs_multiply_adds(points: Sequence[dict], path: str, metric: str = "top5",
                                   published: Sequence[dict] = ()) -> str:
  """The Fig. 6 analog: one panel per operating point with measured arms, plus the paper's.

  Decoded arms appear twice: at the net's cost (inference only) and with the decoder's cost
  added. Original-RGB arms, which have no decoder, are drawn in every measured panel. Measured
  panels have a log x axis: the CPU presets' nets are narrow, and a decoder of the codec's own
  width costs many times what they do, which would squeeze the nets against the y axis.
  """
  originals = [p for p in points if p["input"] == "original"]
  operating = sorted({p["operating_point"] for p in points if p["input"] != "original"},
                     key=float)
  panels = [(f"measured, {op} bpp", [p for p in points if p["operating_point"] == op] +
             originals, True) for op in operating]
  if not panels and originals:
    panels = [("measured, original RGB", originals, True)]
  if published:
    panels.append((f"published (paper, ImageNet), {published[0]['operating_point']} bpp",
                   list(published), False))
  if not panels:
    raise ValueError("nothing to plot")
  figure = new_figure(5.2 * len(panels), 4.4)
  axes = figure.subplots(1, len(panels), squeeze=False)[0]
  labels = [_draw_fig6_panel(ax, panel_points, title, metric, log_x)
            for ax, (title, panel_points, log_x) in zip(axes, panels)]
  figure.suptitle("Accuracy against multiply-adds, with and without the decoder's cost "
                  "(Fig. 6 analog)")
  figure.tight_layout()
  for ax, items in zip(axes, labels):
    place_labels(ax, items)
  return save_figure(figure, path)
