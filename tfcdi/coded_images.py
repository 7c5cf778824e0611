"""Figs. 9 and 10: one image coded into real .tfci files by each codec, and read back.

- Fig. 9: for one image and each operating point, the decoded image and the four channels of the
  compressed representation z_hat with the highest entropy.
- Fig. 10: the original beside its decoded image at each operating point, with the rate of the
  real .tfci file and the PSNR.

These run the codecs (and so TensorFlow): they are a pipeline step (tfcdi/reproduce.py's
figures step, tools/codec_figures.py), not part of the reporting layer, which only copies the
PNGs they write beside the report. The drawing helpers are the reporting layer's.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import numpy as np

from tfcdi.reporting.paper_figures import new_figure, save_figure


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
  figure = new_figure(cell_width * columns, (cell_width * aspect + 0.55) * len(coded) + 0.5)
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
  return save_figure(figure, path)


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
  figure = new_figure(cell_width * (1 + len(coded)), cell_width * aspect + 0.9)
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
  return save_figure(figure, path)
