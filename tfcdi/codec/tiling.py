"""Coding an image of any size in bounded memory: the transforms run tile by tile.

A whole-image transform keeps every activation of the image in memory at once: a 4000 x 4000
photo took 4-7 GB. Here the analysis (image -> latent) and the synthesis (latent -> image) run
on one tile at a time, and the tiles' cores are stitched into the same array the whole-image
transform gives.

Why the stitched result is the untiled one. A tile is computed on a crop that extends its core
by a margin on every side (clipped at the image's border), and only the core is kept. An output
of a stack of convolutions depends on the inputs within its receptive field only; `reach`
computes, from the model's layers, a bound R (in pixels) on how far that is. A core output
whose field lies inside the crop sees exactly the inputs the whole-image transform sees, so a
margin of more than R pixels makes every core output the same computation as untiled. Two
details keep it so:
  - crops start and end on multiples of the downsampling D (in pixels), so every strided layer
    of the crop samples the same grid as the whole image's, and "same" padding pads a crop
    exactly as it pads the image wherever the crop ends at the image's border (all sizes are
    multiples of every stride, so TensorFlow splits a layer's zeros between before and after
    alike for the crop and for the image);
  - the image is edge-padded to a multiple of D as a whole (crops read clamped indices), as the
    whole-image path pads it.
Each core output is then the same arithmetic on the same numbers. Whether a convolution kernel
sums them in the same order for a crop as for the whole image is the kernel's business; the
tests measure it (identical symbols, pixels within float tolerance).

What is not tiled. The hyperprior's hyper-analysis reads the stitched y as a whole: its second
and third convolutions are strided over a y whose size need not be a multiple of 4, where "same"
padding depends on the size's parity, so a crop would not pad as the whole does. It runs at
1/16 of the image's resolution (a few tens of MB for 16 megapixels). The integer
hyper-synthesis (hyperprior.IntegerHyperSynthesis) runs tile by tile too, through `upsample`:
integer arithmetic, so its tiles are exact whatever the kernels do.
"""

from __future__ import annotations

import math

import numpy as np


class NonFiniteError(ValueError):
  """The synthesis gave a non-finite pixel (a forged latent; the caller words it for its file)."""


# Layers that mix nothing across positions: no reach of their own.
_POINTWISE = ("InputLayer", "Rescaling", "Activation", "Add", "GDN", "ReLU")


def reach(model) -> int:
  """A bound, in pixels, on how far an output of `model` depends on its inputs (and the reverse).

  `model` is a Keras model whose only spatial layers are Conv2D (downsampling by their strides)
  or Conv2DTranspose (upsampling); see `reach_of_layers`. Raises ValueError for a layer whose
  reach it does not know.
  """
  spatial = []
  for layer in model.layers:
    kind = type(layer).__name__
    if kind in ("Conv2D", "Conv2DTranspose"):
      spatial.append((kind == "Conv2DTranspose", max(layer.kernel_size), max(layer.strides),
                      max(layer.dilation_rate)))
    elif kind not in _POINTWISE:
      raise ValueError(f"cannot bound the receptive field of layer {layer.name!r} ({kind})")
  return reach_of_layers(spatial)


def reach_of_layers(layers) -> int:
  """The reach (see `reach`) of a stack of convolutions, [(transposed, kernel, stride,
  dilation)] in order, in positions of its full-resolution side (the input of an analysis, the
  output of a synthesis).

  Positions are measured at each layer's resolution in units of the full-resolution side: a
  layer of kernel k (dilation d) whose finer side has one position every J units moves a
  dependence by at most (k - 1) d J units, so the reach is the sum of that over the layers (an
  upper bound for any path through a graph of them, residual branches included).
  """
  upsampling = any(transposed for transposed, *_ in layers)
  scale = math.prod(stride for *_, stride, _ in layers) if upsampling else 1
  total = 0
  for transposed, kernel, stride, dilation in layers:
    if not transposed:
      total += (kernel - 1) * dilation * scale  # J of its input
      scale *= stride
    else:
      scale //= stride
      total += (kernel - 1) * dilation * scale  # J of its output
  return total


def margin(reach_pixels: int, downsampling: int) -> int:
  """The margin, in latent positions, that covers a reach of `reach_pixels` (plus one position
  for the extent of a latent's own block of pixels)."""
  return -(-reach_pixels // downsampling) + 1


def spans(length: int, tile: int, extra: int) -> list:
  """[(core_start, core_end, crop_start, crop_end)] along an axis of `length` latent positions:
  cores of `tile` positions covering it, each crop its core plus `extra` on both sides,
  clipped to [0, length)."""
  if tile < 1:
    raise ValueError(f"a tile must hold at least one latent position, got {tile}")
  return [(start, min(start + tile, length), max(start - extra, 0),
           min(start + tile + extra, length)) for start in range(0, length, tile)]


def analyse(transform, image: np.ndarray, downsampling: int, extra: int, tile: int) -> np.ndarray:
  """The analysis of an image, tile by tile: what `transform` gives for the whole image.

  Args:
    transform: float32 images [1, h, w, 3] (multiples of `downsampling`) -> latents [1, h/D,
      w/D, C] (a tensor or an array).
    image: uint8 (or float) [H, W, 3], any size: edge-padded to a multiple of D, as
      model.pad_to_multiple pads it.
    downsampling: D, image side / latent side.
    extra: the margin in latent positions (`margin`).
    tile: a tile's core side, in latent positions.

  Returns:
    The latents [ceil(H/D), ceil(W/D), C], of the transform's dtype.
  """
  height, width = image.shape[:2]
  rows_out, cols_out = -(-height // downsampling), -(-width // downsampling)
  result = None
  for r0, r1, cr0, cr1 in spans(rows_out, tile, extra):
    # Clamped indices: the edge replication of the whole padded image, cut to this crop.
    rows = np.minimum(np.arange(cr0 * downsampling, cr1 * downsampling), height - 1)
    for c0, c1, cc0, cc1 in spans(cols_out, tile, extra):
      cols = np.minimum(np.arange(cc0 * downsampling, cc1 * downsampling), width - 1)
      crop = image[rows[:, None], cols[None, :]].astype(np.float32)[None]
      out = np.asarray(transform(crop))[0]
      if result is None:
        result = np.empty((rows_out, cols_out, out.shape[-1]), out.dtype)
      result[r0:r1, c0:c1] = out[r0 - cr0:r1 - cr0, c0 - cc0:c1 - cc0]
  return result


def upsample(transform, latents: dict, factor: int, extra: int, tile: int, size,
             finish=None) -> np.ndarray:
  """An upsampling transform of latents, tile by tile, cropped to `size`.

  Args:
    transform: {name: [1, h, w, C]} -> [1, factor h, factor w, K] (a tensor or an array).
    latents: {name: [h, w, C]}, every array of the same spatial size (interface.py); each is
      cut to the same crop.
    factor: output side / latent side.
    extra, tile: the margin and a core's side, in latent positions (as for `analyse`).
    size: (height, width) of the output, at most `factor` times the latents' size.
    finish: applied to each core's block of the output before it is stored (None: as is).

  Returns:
    [height, width, K], of the dtype `finish` gives.
  """
  height, width = size
  first = next(iter(latents.values()))
  rows_in, cols_in = first.shape[:2]
  result = None
  for r0, r1, cr0, cr1 in spans(rows_in, tile, extra):
    p0, p1 = r0 * factor, min(r1 * factor, height)
    if p0 >= height:
      break
    for c0, c1, cc0, cc1 in spans(cols_in, tile, extra):
      q0, q1 = c0 * factor, min(c1 * factor, width)
      if q0 >= width:
        break
      part = {k: v[None, cr0:cr1, cc0:cc1] for k, v in latents.items()}
      out = np.asarray(transform(part))[0]
      block = out[p0 - cr0 * factor:p1 - cr0 * factor, q0 - cc0 * factor:q1 - cc0 * factor]
      block = finish(block) if finish is not None else block
      if result is None:
        result = np.empty((height, width, block.shape[-1]), block.dtype)
      result[p0:p1, q0:q1] = block
  return result


def _to_pixels(block) -> np.ndarray:
  # NaN must never reach the cast below (it would become black).
  if not np.all(np.isfinite(block)):
    raise NonFiniteError("non-finite pixels")
  # Rounded, not truncated, to 8 bits.
  return np.clip(np.rint(block), 0, 255).astype(np.uint8)


def synthesise(transform, latents: dict, downsampling: int, extra: int, tile: int,
               image_size) -> np.ndarray:
  """The synthesis of a file's latents, tile by tile, as uint8 pixels at the image's size.

  Args:
    transform: {name: [1, h, w, C]} -> float images [1, D h, D w, 3] in [0, 255].
    latents, extra, tile: as for `upsample`.
    downsampling: D, image side / latent side.
    image_size: (height, width) of the image.

  Returns:
    uint8 [height, width, 3]: each pixel rounded to the nearest grey level.

  Raises:
    NonFiniteError: the synthesis gives a non-finite value.
  """
  return upsample(transform, latents, downsampling, extra, tile, image_size, _to_pixels)
