"""Analogs of the paper's Figs. 3, 4, 9, 10 and 12, drawn from result data into PNGs.

- Fig. 3 / Fig. 4: top-5 accuracy / mIoU at each operating point for the RGB net on decoded
  images and the two cResNets on the representation, the original-RGB net as a reference line;
  measured values in one panel, the published ones (paper_numbers.json) in another.
- Fig. 3's validation curves: the same arms' validation accuracy after each epoch, one panel per
  operating point, as the paper's Fig. 3 draws them.
- Fig. 9: for one image and each operating point, the decoded image and the four channels of the
  compressed representation z_hat with the highest entropy.
- Fig. 10: the original beside its decoded image at each operating point, with the rate of the
  real .tfci file and the PSNR.
- Fig. 12: accuracy at 0.0983 bpp against the measured per-image runtime of the net alone and,
  for the RGB nets, of the decoder and the net together.

The plots read summaries (tfcdi.report), the benchmark's JSON and codecs; Figs. 9 and 10 code
the image into real .tfci bytes and decode them back, the way a user's file would go. An arm
without a measurement is left out of a plot, never drawn at a made-up value. Each plot has a
pure helper that returns the data it draws, so tests can check what was kept and what was left
out. Uses matplotlib's Agg canvas directly (headless, leaves the global backend alone).
"""

from __future__ import annotations

import dataclasses
import json
import os
import textwrap
from typing import Callable, Sequence

import numpy as np

from tfcdi.codec import operating_points

# The arms of Figs. 3 and 4, in the paper's order: (net, input, legend label). The segmentation
# summary names the dilated DeepLab variants with a "-d" suffix.
FIG3_ARMS = (("resnet50", "decoded", "ResNet-50 on decoded RGB"),
             ("cresnet51", "latent", "cResNet-51 on the representation"),
             ("cresnet39", "latent", "cResNet-39 on the representation"))
FIG4_ARMS = (("resnet50-d", "decoded", "ResNet-50-d on decoded RGB"),
             ("cresnet51-d", "latent", "cResNet-51-d on the representation"),
             ("cresnet39-d", "latent", "cResNet-39-d on the representation"))
# One style per arm (by position), the same in the measured and the published panel.
_ARM_STYLES = (("tab:blue", "s", "--"), ("tab:red", "o", "-"), ("tab:orange", "^", "-"))


def _new_figure(width: float, height: float):
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  figure = Figure(figsize=(width, height))
  FigureCanvasAgg(figure)
  return figure


def _save(figure, path: str, dpi: int = 110) -> str:
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
  """Fig. 3's data from tfcdi.report.classification_summary(); only complete runs count."""
  if metric not in ("top1", "top5"):
    raise ValueError(f"metric must be top1 or top5, got {metric!r}")

  def measured(row):
    m = row.get("measured") or {}
    return m.get(metric) if m.get("complete") else None

  return operating_point_series(summary, FIG3_ARMS, "resnet50", measured,
                                lambda row: (row.get("published_imagenet") or {}).get(metric))


def segmentation_series(summary: dict) -> dict:
  """Fig. 4's data from tfcdi.report.segmentation_summary(); only complete runs count."""

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
    color, marker, line = _ARM_STYLES[index % len(_ARM_STYLES)]
    xs, ys = zip(*panel["arms"][label])
    ax.plot(xs, ys, color=color, marker=marker, linestyle=line, label=label)
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
  figure = _new_figure(width, 4.4 + footnote_height)
  axes = figure.subplots(1, len(panels), squeeze=False)[0]
  for ax, (title, panel) in zip(axes, panels):
    _draw_operating_points(ax, panel, labels, title, ylabel, reference_label)
  figure.suptitle(suptitle, fontsize=11)
  if footnote:
    figure.text(0.01, 0.01, footnote, fontsize=7, ha="left", va="bottom")
  figure.tight_layout(rect=(0, footnote_height / figure.get_figheight(), 1, 1))
  return _save(figure, path)


def fig3_top5_per_operating_point(summary: dict, path: str, metric: str = "top5") -> str | None:
  """The Fig. 3 analog: accuracy at each operating point, measured beside published.

  ResNet-50 on decoded RGB and cResNet-51 / cResNet-39 on the representation, one line each
  over the three operating points; ResNet-50 on the original images is a horizontal reference
  line. The left panel has the measured values of finished runs, the right one Table 2's
  ImageNet values, titled as published.

  Args:
    summary: tfcdi.report.classification_summary(...).
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
  """Fig. 3's curves from tfcdi.report.classification_summary() (its rows' "curve" entries).

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


def fig3_validation_curves(summary: dict, path: str, metric: str = "top5") -> str | None:
  """The paper's Fig. 3 as it draws it: validation accuracy per epoch, a panel per point.

  Per-epoch values are each run's evaluation during training (a fixed subset of the validation
  split when its preset says so); the table's numbers are the final evaluation on all of it.
  Returns `path`, or None (nothing written) when no run has a validation curve.
  """
  data = validation_curves(summary, metric)
  if not data["panels"]:
    return None
  name = {"top1": "top-1", "top5": "top-5"}[metric]
  ops = list(operating_points.OPERATING_POINTS)
  figure = _new_figure(4.6 * len(ops), 4.2)
  axes = figure.subplots(1, len(ops), squeeze=False)[0]
  for ax, op in zip(axes, ops):
    for index, (_, _, label) in enumerate(FIG3_ARMS):
      points = data["panels"].get(op, {}).get(label)
      if points:
        color, marker, line = _ARM_STYLES[index % len(_ARM_STYLES)]
        xs, ys = zip(*points)
        suffix = " (still training)" if f"{label} at {op} bpp" in data["unfinished"] else ""
        ax.plot(xs, ys, color=color, marker=marker, linestyle=line, markersize=3,
                label=label + suffix)
    if data["reference"]:
      xs, ys = zip(*data["reference"])
      ax.plot(xs, ys, color="k", linestyle=":", label="ResNet-50 on original RGB")
    ax.set_title(f"{op} bpp" + ("" if op in data["panels"] else " (no run yet)"), fontsize=10)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {name} accuracy [%]")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=7, loc="lower right")
  figure.suptitle(f"Validation {name} accuracy during training (Fig. 3 analog, measured)",
                  fontsize=11)
  figure.tight_layout()
  return _save(figure, path)


def fig4_miou_per_operating_point(summary: dict, path: str) -> str | None:
  """The Fig. 4 analog: segmentation mIoU at each operating point, measured beside published.

  ResNet-50-d on decoded RGB and cResNet-51-d / cResNet-39-d on the representation; ResNet-50-d
  on the original images is the reference line. Left: finished runs; right: Table 2's PASCAL
  VOC 2012 val values, titled as published.

  Args:
    summary: tfcdi.report.segmentation_summary(...).
    path: the PNG to write.

  Returns:
    `path`, or None (nothing written) when no arm has a finished run at any operating point.
  """
  return _plot_per_operating_point(
      segmentation_series(summary), FIG4_ARMS, path, ylabel="mIoU [%]",
      suptitle="Segmentation mIoU at each operating point (Fig. 4 analog)",
      published_title="published (paper, PASCAL VOC 2012 val)",
      reference_label="ResNet-50-d on original RGB")


# --- Figs. 9 and 10: one image through each codec -----------------------------------------------


@dataclasses.dataclass(frozen=True)
class CodedImage:
  """One image coded into a .tfci file and read back.

  Attributes:
    codec_name, operating_point: the codec's identity.
    num_bytes: the file's length; bpp is computed from it, never from an entropy estimate.
    bpp: bits per pixel of the original image size.
    psnr: of the decoded image against the original, dB.
    symbols: int32 [h, w, C], as read back from the file.
    z_hat: float32 [h, w, C], centers[symbols], what the cResNets read.
    centers: the quantizer's L centers (the range of z_hat).
    decoded: uint8 [H, W, 3], as decompress_bytes returns it.
  """

  codec_name: str
  operating_point: str
  num_bytes: int
  bpp: float
  psnr: float
  symbols: np.ndarray
  z_hat: np.ndarray
  centers: np.ndarray
  decoded: np.ndarray


def _as_image(image) -> np.ndarray:
  """An image path or array -> uint8 [H, W, 3]."""
  if isinstance(image, (str, os.PathLike)):
    from tfcdi import imageio  # pylint: disable=g-import-not-at-top
    image, _ = imageio.load_rgb(os.fspath(image))
  return np.asarray(image)


def code_image(codec, image) -> CodedImage:
  """Codes `image` into the bytes of a .tfci file with `codec` and reads them back.

  Any size is fine: like every file, the image is padded to a multiple of 8 by edge
  replication before encoding and the decoded image is cropped back, so the representation is
  ceil(H/8) x ceil(W/8) and its last row / column also cover the padding.

  Args:
    codec: an autoencoder codec (tfcdi.codec.pretrained.load_codec). Hyperprior codecs are
      refused: their representation is not centers[symbols].
    image: uint8 [H, W, 3].

  Raises:
    ValueError: a hyperprior codec, or not a uint8 RGB image.
  """
  from tfcdi import metrics  # pylint: disable=g-import-not-at-top
  from tfcdi.codec import coding  # pylint: disable=g-import-not-at-top
  if "z_hat" not in codec.latent_names:
    raise ValueError(f"codec {codec.name!r} is a {codec.family} codec; Figs. 9 and 10 show the "
                     "autoencoder's representation")
  image = _as_image(image)
  data = coding.compress_image(codec, image)
  # The symbols come back out of the file, so the figure shows what a reader of it gets.
  _, symbols = coding.read_symbols(data, codec)
  decoded = coding.decompress_bytes(data, codec)
  height, width = image.shape[:2]
  return CodedImage(
      codec_name=codec.name, operating_point=codec.operating_point.name, num_bytes=len(data),
      bpp=metrics.bpp_from_bytes(len(data), height, width),
      psnr=float(metrics.psnr(image, decoded)), symbols=symbols,
      z_hat=np.asarray(codec.model.latent(symbols), np.float32),
      centers=np.asarray(codec.model.quantizer.centers, np.float32), decoded=decoded)


def channel_entropies(symbols, num_centers: int) -> np.ndarray:
  """Empirical entropy in bits of each channel's symbol histogram over one image.

  Args:
    symbols: integer [h, w, C] in [0, num_centers).
    num_centers: L.

  Returns:
    float64 [C].
  """
  symbols = np.asarray(symbols)
  if symbols.ndim != 3 or not np.issubdtype(symbols.dtype, np.integer):
    raise ValueError(f"symbols must be an integer [h, w, C] array, got {symbols.dtype} "
                     f"{symbols.shape}")
  if symbols.size and (symbols.min() < 0 or symbols.max() >= num_centers):
    raise ValueError(f"symbols must lie in [0, {num_centers})")
  flat = symbols.reshape(-1, symbols.shape[-1])
  counts = np.stack([np.bincount(flat[:, c], minlength=num_centers)
                     for c in range(flat.shape[1])]).astype(np.float64)
  probs = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
  logs = np.log2(probs, where=probs > 0, out=np.zeros_like(probs))
  return -(probs * logs).sum(axis=1) + 0.0  # + 0.0 turns -0.0 of constant channels into 0.0


def highest_entropy_channels(symbols, num_centers: int, k: int = 4) -> tuple[np.ndarray,
                                                                               np.ndarray]:
  """The k channels whose symbol histogram over this image has the largest entropy.

  Returns:
    (channel indices, their entropies in bits), highest first; ties go to the lower index.
  """
  entropies = channel_entropies(symbols, num_centers)
  order = np.argsort(-entropies, kind="stable")[:k]
  return order, entropies[order]


def _hide_ticks(ax):
  ax.set_xticks([])
  ax.set_yticks([])


def fig9_latent_channels(image, codecs: Sequence, path: str, num_channels: int = 4,
                         cell_width: float = 2.3) -> str:
  """The Fig. 9 analog: decoded images and the highest-entropy channels of the representation.

  One row per codec (operating point): its decoded image, then the `num_channels` channels of
  z_hat whose symbol histogram over this image has the largest empirical entropy (highest
  first; "H" in each title, in bits per symbol), drawn in grey over the range of the codec's
  centers. The original image is on the left, spanning the rows. The representation covers
  the image padded to a multiple of 8 (see code_image), as the file does.

  Args:
    image: uint8 [H, W, 3], or the path of an image file.
    codecs: loaded autoencoder codecs, e.g. [load_codec(op) for op in ("0.0983", "0.330",
      "0.635")].
    path: the PNG to write.
    num_channels: channels per operating point (the paper shows 4).
    cell_width: inches per column.

  Returns:
    `path`.
  """
  from matplotlib import gridspec  # pylint: disable=g-import-not-at-top
  if not codecs:
    raise ValueError("fig9_latent_channels needs at least one codec")
  image = _as_image(image)
  coded = [code_image(codec, image) for codec in codecs]
  columns = 2 + num_channels
  aspect = image.shape[0] / image.shape[1]
  figure = _new_figure(cell_width * columns, (cell_width * aspect + 0.55) * len(coded) + 0.5)
  grid = gridspec.GridSpec(len(coded), columns, figure=figure)
  ax = figure.add_subplot(grid[:, 0])
  ax.imshow(image)
  ax.set_title(f"original\n{image.shape[1]}x{image.shape[0]}", fontsize=8)
  _hide_ticks(ax)
  for row, item in enumerate(coded):
    ax = figure.add_subplot(grid[row, 1])
    ax.imshow(item.decoded)
    ax.set_title(f"decoded\n{item.bpp:.4f} bpp, {item.psnr:.2f} dB", fontsize=8)
    ax.set_ylabel(f"{item.operating_point} bpp point\n{item.codec_name}", fontsize=8)
    _hide_ticks(ax)
    channels, entropies = highest_entropy_channels(item.symbols, len(item.centers),
                                                   num_channels)
    for col, (channel, entropy) in enumerate(zip(channels, entropies)):
      ax = figure.add_subplot(grid[row, 2 + col])
      ax.imshow(item.z_hat[..., channel], cmap="gray", interpolation="nearest",
                vmin=float(item.centers.min()), vmax=float(item.centers.max()))
      ax.set_title(f"z_hat channel {channel}\nH = {entropy:.2f} bit", fontsize=8)
      _hide_ticks(ax)
  figure.suptitle("Decoded images and the highest-entropy channels of the representation "
                  "(Fig. 9 analog)", fontsize=10)
  figure.tight_layout()
  return _save(figure, path)


def _crop(image: np.ndarray, crop) -> np.ndarray:
  if crop is None:
    return image
  top, left, height, width = (int(v) for v in crop)
  if (top < 0 or left < 0 or height <= 0 or width <= 0 or top + height > image.shape[0]
      or left + width > image.shape[1]):
    raise ValueError(f"crop {crop} (top, left, height, width) is outside the "
                     f"{image.shape[0]}x{image.shape[1]} image")
  return image[top:top + height, left:left + width]


def fig10_decoded_images(image, codecs: Sequence, path: str, crop=None,
                         cell_width: float = 3.2) -> str:
  """The Fig. 10 analog: the original and its decoded image at each operating point.

  Each decoded image is titled with the rate of its real .tfci file and its PSNR, both of the
  whole image.

  Args:
    image: uint8 [H, W, 3], or the path of an image file.
    codecs: loaded autoencoder codecs, one per operating point.
    path: the PNG to write.
    crop: (top, left, height, width) in pixels to show, to make the artifacts visible; the
      whole image is coded and measured either way.
    cell_width: inches per image.

  Returns:
    `path`.
  """
  if not codecs:
    raise ValueError("fig10_decoded_images needs at least one codec")
  image = _as_image(image)
  shown = _crop(image, crop)
  coded = [code_image(codec, image) for codec in codecs]
  aspect = shown.shape[0] / shown.shape[1]
  figure = _new_figure(cell_width * (1 + len(coded)), cell_width * aspect + 0.9)
  axes = figure.subplots(1, 1 + len(coded), squeeze=False)[0]
  axes[0].imshow(shown)
  axes[0].set_title(f"original\n{image.shape[1]}x{image.shape[0]}", fontsize=9)
  for ax, item in zip(axes[1:], coded):
    ax.imshow(_crop(item.decoded, crop))
    ax.set_title(f"{item.operating_point} bpp point ({item.codec_name})\n"
                 f"{item.bpp:.4f} bpp (file), PSNR {item.psnr:.2f} dB", fontsize=9)
  for ax in axes:
    _hide_ticks(ax)
  where = "" if crop is None else f", crop {tuple(int(v) for v in crop)} (top, left, h, w)"
  figure.suptitle(f"Decoded images at each operating point (Fig. 10 analog{where})",
                  fontsize=10)
  figure.tight_layout()
  return _save(figure, path)


# --- Fig. 12: accuracy against measured runtime -------------------------------------------------


def _read_json(source) -> dict:
  if isinstance(source, dict):
    return source
  with open(source) as f:
    return json.load(f)


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
    summary: tfcdi.report.classification_summary(...).
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
  from tfcdi import benchmark  # pylint: disable=g-import-not-at-top
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
    run = benchmark._run_file(row, summary_dir)  # pylint: disable=protected-access
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
    classification_summary: tfcdi.report.classification_summary(...).
    path: the PNG to write.
    metric: "top5" (the paper's) or "top1".
    operating_point: of the accuracies.
    summary_dir: see runtime_points.

  Returns:
    `path`, or None (nothing written) when no arm has both a finished run and a timed path.
  """
  result = _read_json(benchmark_json)
  points, reference, notes = runtime_points(result, classification_summary, operating_point,
                                            metric, summary_dir)
  if not points:
    return None
  name = {"top1": "top-1", "top5": "top-5"}[metric]
  figure = _new_figure(6.4, 5.0 + 0.2 * len(notes))
  ax = figure.add_subplot(1, 1, 1)

  def xerr(point, key):
    return [[1e3 * (point[key] - point[f"{key}_q1"])], [1e3 * (point[f"{key}_q3"] - point[key])]]

  latent = sorted((p for p in points if p["input"] == "latent" and p["seconds"] is not None),
                  key=lambda p: p["seconds"])
  if latent:
    ax.plot([1e3 * p["seconds"] for p in latent], [p["accuracy"] for p in latent], "o-",
            color="tab:red", label="cResNet on the representation")
    for p in latent:
      ax.errorbar(1e3 * p["seconds"], p["accuracy"], xerr=xerr(p, "seconds"), color="tab:red",
                  capsize=2, linewidth=0.8)
      ax.annotate(p["net"], (1e3 * p["seconds"], p["accuracy"]), textcoords="offset points",
                  xytext=(4, 4), fontsize=7)
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
      ax.annotate(p["net"] if key == "seconds" else f"decoder+{p['net']}",
                  (1e3 * p[key], p["accuracy"]), textcoords="offset points", xytext=(4, 4),
                  fontsize=7)
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
  return _save(figure, path)
