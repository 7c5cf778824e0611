"""Figures drawn from result files: grids of images and colour-coded segmentation masks.

`mask_grid` is the generic part: rows x columns of cells, each an RGB image or a mask of class
indices drawn with a fixed palette, with a legend of the classes. `segmentation_comparison`
builds the paper's Fig. 5 analog from the predictions.npz files the segmenter writes: per
validation image and operating point, the original, the decoded image, the mask predicted from
the decoded RGB, the mask predicted from the compressed representation, and the ground truth.
Nothing here runs a network.
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np


def colorize(mask, palette, ignore_label: int | None = None) -> np.ndarray:
  """Class indices [H, W] -> uint8 RGB [H, W, 3].

  Args:
    mask: integer array of class indices.
    palette: RGB triples, one per class index; a mask value without one (e.g. the ignore
      label) takes the last entry if `ignore_label` is None, else palette[ignore_label] when it
      exists. Values beyond the palette are drawn in the last entry's colour.
  """
  palette = np.asarray(palette, np.uint8)
  if palette.ndim != 2 or palette.shape[1] != 3:
    raise ValueError(f"palette must be a list of RGB triples, got shape {palette.shape}.")
  mask = np.asarray(mask)
  if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.integer):
    raise ValueError(f"A mask must be a 2-D integer array, got {mask.dtype} {mask.shape}.")
  fallback = palette[-1]
  if ignore_label is not None and 0 <= ignore_label < len(palette):
    fallback = palette[ignore_label]
  index = mask.astype(np.int64)
  inside = (index >= 0) & (index < len(palette))
  out = np.empty(mask.shape + (3,), np.uint8)
  out[inside] = palette[index[inside]]
  out[~inside] = fallback
  return out


def _as_rgb(cell, palette, ignore_label):
  array = np.asarray(cell)
  if array.ndim == 2:
    return colorize(array, palette, ignore_label)
  if array.ndim == 3 and array.shape[-1] == 3:
    if array.dtype != np.uint8:
      array = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    return array
  raise ValueError(f"A cell must be an RGB image [H, W, 3] or a mask [H, W], got {array.shape}.")


def mask_grid(rows: Sequence[Sequence], path: str, palette, *, column_titles=None,
              row_titles=None, class_names=None, ignore_label: int | None = None,
              cell_width: float = 2.4, dpi: int = 120) -> str:
  """Draws a grid of images and masks into a PNG.

  Args:
    rows: a list of rows, each a list of cells: an RGB image (uint8, or float on the 0..255
      scale) [H, W, 3], a mask of class indices [H, W] (drawn with `palette`), or None (blank).
    path: the PNG to write.
    palette: RGB triples per class index (and one for the ignore label).
    column_titles, row_titles: optional labels.
    class_names: if given, a legend maps the first len(class_names) palette colours to them.
    ignore_label: the mask value drawn as "ignored" (see `colorize`).
    cell_width: inches per column; heights follow the first cell's aspect ratio.

  Returns:
    `path`.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import patches  # pylint: disable=g-import-not-at-top
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

  if not rows or not any(len(r) for r in rows):
    raise ValueError("mask_grid needs at least one cell.")
  num_cols = max(len(r) for r in rows)
  first = next(np.asarray(c) for r in rows for c in r if c is not None)
  aspect = first.shape[0] / first.shape[1]
  legend_height = 0.5 if class_names else 0.0
  fig, axes = plt.subplots(
      len(rows), num_cols, squeeze=False,
      figsize=(cell_width * num_cols, cell_width * aspect * len(rows) + legend_height + 0.3))
  for r, row in enumerate(rows):
    for c in range(num_cols):
      ax = axes[r][c]
      ax.set_xticks([])
      ax.set_yticks([])
      cell = row[c] if c < len(row) else None
      if cell is None:
        ax.axis("off")
      else:
        ax.imshow(_as_rgb(cell, palette, ignore_label), interpolation="nearest")
      if r == 0 and column_titles and c < len(column_titles):
        ax.set_title(column_titles[c], fontsize=8)
      if c == 0 and row_titles and r < len(row_titles):
        ax.set_ylabel(row_titles[r], fontsize=7)
  if class_names:
    handles = [patches.Patch(color=np.asarray(palette[i]) / 255.0, label=name)
               for i, name in enumerate(class_names)]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=7,
               frameon=False)
  fig.tight_layout(rect=(0, legend_height / fig.get_figheight(), 1, 1))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=dpi)
  plt.close(fig)
  return path


def read_predictions(path: str) -> dict:
  """A segmenter's predictions.npz -> {"meta": dict, "items": [{"name", "image", "decoded",
  "label", "prediction"}]} (missing arrays are None). The layout is tfcdi-train-segmenter's
  (tfcdi/train/segmenter.py writes it); read here with NumPy alone."""
  with np.load(path, allow_pickle=False) as data:
    meta = json.loads(bytes(data["meta"]).decode())
    items = []
    for i, name in enumerate(data["names"]):
      items.append({"name": str(name), **{
          key: (data[f"{key}_{i}"] if f"{key}_{i}" in data else None)
          for key in ("image", "decoded", "label", "prediction")}})
  return {"meta": meta, "items": items}


COMPARISON_COLUMNS = ("original", "decoded", "mask from decoded RGB",
                      "mask from representation", "ground truth")


def segmentation_comparison(runs: Sequence[tuple[str, str, str]], path: str,
                            max_images: int = 3) -> str:
  """The Fig. 5 analog from the segmenter's predictions.npz files.

  Args:
    runs: (operating point label, predictions.npz of the decoded arm, predictions.npz of the
      latent arm) per operating point, e.g. [("0.0983 bpp", "runs/seg_r50_dec/predictions.npz",
      "runs/seg_c51_lat/predictions.npz"), ...]. Both arms must have dumped the same validation
      images (they do: the first N of the split).
    path: the PNG to write.
    max_images: validation images to show.

  Returns:
    `path`. One row per (image, operating point): original | decoded | mask from the decoded
    RGB | mask from the representation | ground truth.
  """
  rows, titles, meta = [], [], None
  loaded = [(label, read_predictions(d), read_predictions(l)) for label, d, l in runs]
  if not loaded:
    raise ValueError("segmentation_comparison needs at least one operating point.")
  names = [item["name"] for item in loaded[0][1]["items"]][:max_images]
  for name in names:
    for label, decoded_run, latent_run in loaded:
      meta = meta or decoded_run["meta"]
      by_name_d = {i["name"]: i for i in decoded_run["items"]}
      by_name_l = {i["name"]: i for i in latent_run["items"]}
      if name not in by_name_d or name not in by_name_l:
        raise ValueError(f"Image {name!r} is missing from the predictions of {label}.")
      d, l = by_name_d[name], by_name_l[name]
      original = d["image"] if d["image"] is not None else l["image"]
      rows.append([original, d["decoded"], d["prediction"], l["prediction"], d["label"]])
      titles.append(f"{name}\n{label}")
  return mask_grid(rows, path, meta["palette"], column_titles=COMPARISON_COLUMNS,
                   row_titles=titles, class_names=meta["class_names"],
                   ignore_label=meta["ignore_label"])


def joint_figures(summary: dict, out_dir: str) -> list[str]:
  """The Fig. 7 and Fig. 11 analogs from joint.joint_summary(); returns the PNGs written.

  Fig. 7: top-5 (and mIoU, where the segmentation step ran) against Kodak bpp for baseline,
  compression ft. and joint ft., an arrow from the baseline to each fine-tuned point. Fig. 11: the codec's move in the rate-MS-SSIM, rate-SSIM
  and rate-PSNR planes, start to end of each fine-tuning. Points without their numbers yet are
  left out, never drawn at a made-up place.
  """
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  os.makedirs(out_dir, exist_ok=True)
  styles = {"baseline": ("k", "o", "cResNet-51 baseline"),
            "compression_ft": ("tab:blue", "s", "compression ft."),
            "joint_ft": ("tab:red", "^", "joint ft.")}
  written = []

  # Fig. 7: classification, and segmentation where the segmentation step has run.
  metrics = [("top5", "top-5 accuracy [%]")]
  if any(point[key].get("miou") is not None for point in summary["points"] for key in styles):
    metrics.append(("miou", "mIoU [%] (CamVid)"))
  figure = Figure(figsize=(5 * len(metrics), 4))
  for index, (metric, name) in enumerate(metrics):
    axes = figure.add_subplot(1, len(metrics), index + 1)
    drawn = set()
    for point in summary["points"]:
      base = point["baseline"]
      base_bpp = (base.get("kodak") or {}).get("bpp")
      for key, (color, marker, label) in styles.items():
        entry = point[key]
        bpp = (entry.get("kodak") or {}).get("bpp")
        if entry.get(metric) is None or bpp is None:
          continue
        axes.plot([bpp], [entry[metric]], marker=marker, color=color, linestyle="none",
                  label=None if key in drawn else label)
        drawn.add(key)
        if key != "baseline" and base.get(metric) is not None and base_bpp is not None:
          axes.annotate("", xy=(bpp, entry[metric]), xytext=(base_bpp, base[metric]),
                        arrowprops={"arrowstyle": "->", "color": color, "lw": 1})
    axes.set_xlabel("rate on Kodak [bpp, real files]")
    axes.set_ylabel(name)
    if drawn:
      axes.legend(fontsize=8)
  figure.suptitle("Fig. 7 analog: fine-tuning moves the accuracy", fontsize=10)
  figure.tight_layout()
  path = os.path.join(out_dir, "fig7_joint_accuracy.png")
  FigureCanvasAgg(figure)  # the Agg canvas, without pyplot; savefig (as every figure) writes it
  figure.savefig(path)
  written.append(path)

  figure = Figure(figsize=(12, 3.6))
  for index, (metric, name) in enumerate((("ms_ssim", "MS-SSIM"), ("ssim", "SSIM"),
                                          ("psnr", "PSNR [dB]"))):
    axes = figure.add_subplot(1, 3, index + 1)
    for point in summary["points"]:
      start = point["baseline"].get("kodak")
      if not start:
        continue
      axes.plot([start["bpp"]], [start[metric]], "ko", label="start" if index == 0 else None)
      for key in ("compression_ft", "joint_ft"):
        end = point[key].get("kodak")
        if not end:
          continue
        color, marker, label = styles[key]
        axes.plot([end["bpp"]], [end[metric]], marker=marker, color=color, linestyle="none")
        axes.annotate("", xy=(end["bpp"], end[metric]), xytext=(start["bpp"], start[metric]),
                      arrowprops={"arrowstyle": "->", "color": color, "lw": 1})
        axes.plot([], [], marker=marker, color=color, linestyle="none", label=label)
      axes.annotate(f"{point['operating_point']}", (start["bpp"], start[metric]), fontsize=7,
                    textcoords="offset points", xytext=(4, -10))
    axes.set_xlabel("rate [bpp]")
    axes.set_ylabel(name)
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if unique:
      axes.legend(unique.values(), unique.keys(), fontsize=7)
  figure.suptitle("Fig. 11 analog: the codec before and after fine-tuning (Kodak, real files)",
                  fontsize=10)
  figure.tight_layout()
  path = os.path.join(out_dir, "fig11_joint_codec.png")
  FigureCanvasAgg(figure)
  figure.savefig(path)
  written.append(path)
  return written
