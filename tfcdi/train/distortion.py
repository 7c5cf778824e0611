"""The distortion terms a hyperprior codec trains with: MSE, or 1 - MS-SSIM (differentiable).

`ms_ssim` is multi-scale SSIM (Wang, Simoncelli & Bovik 2003) written for a training loss. Its
value is tf.image.ssim_multiscale's, the function `tfcdi.metrics.ms_ssim` evaluates codecs
with: the same 11 x 11 Gaussian window (sigma 1.5) without padding, the same constants, odd
sides padded symmetrically before each 2 x 2 average pool, negative terms clipped to zero, the
weighted product per colour channel, then the mean over channels. Two differences, both for
training:

- Gradients stay finite. tf.image.ssim_multiscale raises each clipped term to a power below
  one; when a term is zero the gradient of that power is infinite, and infinity times the
  clip's zero gradient is NaN (tensorflow/tensorflow#50400), which one bad crop turns into NaN
  weights. Here each term is floored at `EPSILON` instead: a term below it has a zero gradient,
  as the clip intends, and the value differs from TensorFlow's only when a term is below 1e-6.
- Small crops. The standard five scales need a short side of at least 161 pixels (the coarsest
  scale, 1/16 of the crop, must hold the 11 x 11 window; `metrics.ms_ssim_min_size`). A smaller
  crop uses the finest scales that fit, their standard weights renormalised to sum to one
  (`scales_for`): a 128-pixel crop has four, a 64-pixel one three. Such a loss is not the
  standard MS-SSIM, so trainers log how many scales their crop gets and record it; the
  recipes of the MS-SSIM codecs train on crops that fit all five.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfcdi import metrics
from tfcdi.codec import qualities

# Floor of every term before its power: keeps the gradient finite where a term is zero.
EPSILON = 1e-6
_FILTER_SIGMA = 1.5
_K1, _K2 = 0.01, 0.03


def scales_for(size: int) -> int:
  """How many MS-SSIM scales a crop of `size` pixels per side trains with (at most five)."""
  scales = metrics.max_ms_ssim_scales(size, size)
  if scales == 0:
    raise ValueError(f"MS-SSIM needs crops of at least {metrics.SSIM_FILTER_SIZE} pixels, "
                     f"got {size}")
  return scales


def scale_weights(num_scales: int) -> tuple:
  """The standard weights of the finest `num_scales` scales, renormalised to sum to one."""
  weights = metrics.MS_SSIM_WEIGHTS[:num_scales]
  total = sum(weights)
  return tuple(w / total for w in weights)


def _gaussian(size: int, sigma: float) -> np.ndarray:
  # One axis of the separable window: the outer product of two is TF's normalised 2-D Gaussian.
  x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
  g = np.exp(-x**2 / (2.0 * sigma**2))
  return (g / g.sum()).astype(np.float32)


def _blur(x, window):
  """Valid (unpadded) separable Gaussian filter of each channel of x [B, H, W, C]."""
  channels = x.shape[-1]
  size = window.shape[0]
  column = tf.tile(tf.reshape(window, (size, 1, 1, 1)), (1, 1, channels, 1))
  row = tf.tile(tf.reshape(window, (1, size, 1, 1)), (1, 1, channels, 1))
  x = tf.nn.depthwise_conv2d(x, column, (1, 1, 1, 1), "VALID")
  return tf.nn.depthwise_conv2d(x, row, (1, 1, 1, 1), "VALID")


def _ssim_terms(x, y, window, max_val):
  """(SSIM, contrast-structure), each the spatial mean per image and channel [B, C]."""
  c1 = (_K1 * max_val)**2
  c2 = (_K2 * max_val)**2
  mean_x, mean_y = _blur(x, window), _blur(y, window)
  mean_xy2 = 2.0 * mean_x * mean_y
  mean_sq = tf.square(mean_x) + tf.square(mean_y)
  luminance = (mean_xy2 + c1) / (mean_sq + c1)
  covariance2 = 2.0 * _blur(x * y, window) - mean_xy2
  variances = _blur(tf.square(x) + tf.square(y), window) - mean_sq
  contrast_structure = (covariance2 + c2) / (variances + c2)
  return (tf.reduce_mean(luminance * contrast_structure, axis=(1, 2)),
          tf.reduce_mean(contrast_structure, axis=(1, 2)))


def _halve(x):
  """2 x 2 average pool, an odd side first padded by repeating its last row / column."""
  shape = tf.shape(x)
  x = tf.pad(x, [[0, 0], [0, shape[1] % 2], [0, shape[2] % 2], [0, 0]], mode="SYMMETRIC")
  return tf.nn.avg_pool2d(x, 2, 2, "VALID")


def ms_ssim(a, b, max_val: float = metrics.MAX_VALUE, num_scales: int | None = None):
  """MS-SSIM of each image pair of a, b [B, H, W, C] (float32 [B]), differentiable.

  num_scales: None takes as many as the images' short side allows (five from 161 pixels on);
    fewer than five renormalise the standard weights (see the module docstring).
  """
  a = tf.cast(a, tf.float32)
  b = tf.cast(b, tf.float32)
  if num_scales is None:
    num_scales = scales_for(min(int(a.shape[1]), int(a.shape[2])))
  weights = scale_weights(num_scales)
  window = tf.constant(_gaussian(metrics.SSIM_FILTER_SIZE, _FILTER_SIGMA))
  terms = []
  for scale in range(num_scales):
    if scale:
      a, b = _halve(a), _halve(b)
    ssim, contrast_structure = _ssim_terms(a, b, window, max_val)
    # The coarsest scale contributes its whole SSIM, the finer ones their contrast-structure.
    terms.append(ssim if scale == num_scales - 1 else contrast_structure)
  terms = tf.maximum(tf.stack(terms, axis=-1), EPSILON)  # [B, C, scales]
  per_channel = tf.exp(tf.reduce_sum(tf.constant(weights, tf.float32) * tf.math.log(terms), -1))
  return tf.reduce_mean(per_channel, axis=-1)


def distortion(name: str, reconstruction, images):
  """The distortion term of the loss, as a scalar: MSE on the 0-255 scale, or 1 - MS-SSIM
  (the batch mean of each). Both inputs on the 0-255 scale; computed in float32."""
  qualities.check_distortion(name)
  reconstruction = tf.cast(reconstruction, tf.float32)
  images = tf.cast(images, tf.float32)
  if name == qualities.MSE:
    return tf.reduce_mean(tf.square(reconstruction - images))
  return 1.0 - tf.reduce_mean(ms_ssim(reconstruction, images))
