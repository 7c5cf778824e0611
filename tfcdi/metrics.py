"""Metrics: image quality (PSNR, SSIM, MS-SSIM), rate (bpp), top-k accuracy and mean IoU.

Image metrics work on the uint8 pixel scale (peak value 255), the scale every codec in tfcdi
reads and writes, so the numbers are comparable with the paper's and with JPEG / JPEG 2000.
They take one image [H, W, C] and return a Python float, or a batch [B, H, W, C] and return one
value per image as a NumPy array: rate-distortion curves average per-image values, and leaving the
averaging to the caller keeps that choice visible.

Classification and segmentation metrics are plain NumPy: they run on labels gathered from any
pipeline, and a confusion matrix can be summed across batches before the IoU is taken (the
correct way to get a dataset-level mIoU; averaging per-batch mIoUs is not).
"""

from __future__ import annotations


import numpy as np
import tensorflow as tf

# Peak value of the uint8 pixel scale.
MAX_VALUE = 255.0

# SSIM's Gaussian window (Wang et al. 2004): 11 x 11, sigma 1.5. The same for every scale of
# MS-SSIM, so the coarsest scale must still be at least this large.
SSIM_FILTER_SIZE = 11

# Weights of the five MS-SSIM scales, finest first (Wang, Simoncelli & Bovik 2003); the same as
# tf.image.ssim_multiscale's defaults.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _as_float_images(a, b, dtype=np.float32):
  """Both images as float arrays of the same shape, rank 3 or 4."""
  a = np.asarray(a, dtype=dtype)
  b = np.asarray(b, dtype=dtype)
  if a.shape != b.shape:
    raise ValueError(f"Images must have the same shape, got {a.shape} and {b.shape}.")
  if a.ndim not in (3, 4):
    raise ValueError(f"Expected an image [H, W, C] or a batch [B, H, W, C], got shape {a.shape}.")
  return a, b


def _per_image(values, single: bool):
  values = np.asarray(values, dtype=np.float64)
  return float(values.reshape(-1)[0]) if single else values


def psnr(a, b):
  """Peak signal-to-noise ratio in dB on the uint8 scale: 10 log10(255^2 / MSE).

  Args:
    a, b: images with values in [0, 255] (any numeric dtype, NumPy or tf), [H, W, C] or
      [B, H, W, C]. The MSE is taken over all pixels and channels of each image.

  Returns:
    A float for one image, a float64 array [B] for a batch. Identical images give inf: the MSE is
    exactly zero, and inf is the honest answer (a finite cap would make lossless look like a
    particular quality).
  """
  # float64: the MSE of near-identical uint8 images needs more than float32's precision.
  a, b = _as_float_images(a, b, dtype=np.float64)
  single = a.ndim == 3
  if single:
    a, b = a[None], b[None]
  mse = np.mean(np.square(a - b), axis=(1, 2, 3))
  with np.errstate(divide="ignore"):
    values = np.where(mse > 0, 10.0 * np.log10(MAX_VALUE**2 / np.maximum(mse, 1e-300)), np.inf)
  return _per_image(values, single)


def _check_min_size(shape, min_side: int, what: str):
  height, width = shape[-3], shape[-2]
  if min(height, width) < min_side:
    raise ValueError(
        f"{what} needs images of at least {min_side} x {min_side} pixels, got {height} x {width}.")


# Graph mode is 3-5x faster than eager for these many small ops (0.12 s instead of 0.6 s for SSIM
# plus MS-SSIM of one Kodak image on 2 cores), which decides whether a rate-distortion sweep takes
# minutes or a quarter of an hour. One trace per image shape (Kodak has two) and weight tuple.
@tf.function
def _tf_ssim(a, b):
  return tf.image.ssim(a, b, max_val=MAX_VALUE)


@tf.function
def _tf_ms_ssim(a, b, weights):
  return tf.image.ssim_multiscale(a, b, max_val=MAX_VALUE, power_factors=weights)


def ssim(a, b):
  """Structural similarity (single scale, 11 x 11 Gaussian window, sigma 1.5) on the uint8 scale.

  Computed with tf.image.ssim(max_val=255) on each colour channel and averaged over channels,
  which is how TF (and most learned-compression papers that use TF) report it.

  Returns:
    A float for [H, W, C], a float64 array [B] for [B, H, W, C].
  """
  a, b = _as_float_images(a, b)
  _check_min_size(a.shape, SSIM_FILTER_SIZE, "SSIM")
  single = a.ndim == 3
  return _per_image(_tf_ssim(a, b).numpy(), single)


def ms_ssim_min_size(num_scales: int = len(MS_SSIM_WEIGHTS)) -> int:
  """The smallest side length for which MS-SSIM with `num_scales` scales is defined.

  Each scale halves the image (rounding up, as tf.image.ssim_multiscale pads odd sizes), and the
  coarsest scale must still hold the 11 x 11 window: 161 pixels for the standard five scales.
  """
  return (SSIM_FILTER_SIZE - 1) * 2**(num_scales - 1) + 1


def max_ms_ssim_scales(height: int, width: int) -> int:
  """How many MS-SSIM scales fit an image of this size (0 if not even single-scale SSIM does)."""
  scales = 0
  while (scales < len(MS_SSIM_WEIGHTS) and
         min(height, width) >= ms_ssim_min_size(scales + 1)):
    scales += 1
  return scales


def ms_ssim(a, b, num_scales: int | None = None):
  """Multi-scale SSIM (Wang et al. 2003) on the uint8 scale, via tf.image.ssim_multiscale.

  Args:
    a, b: images [H, W, C] or [B, H, W, C] with values in [0, 255].
    num_scales: None (the default) means the standard five scales and weights, the MS-SSIM every
      paper reports; it needs a short side of at least 161 pixels (Kodak's 512 is plenty), and a
      smaller image raises ValueError rather than silently giving a different metric. Pass
      1..5 to use only the finest `num_scales` scales, their standard weights renormalised to sum
      to one (so identical images still score 1); such values are not comparable with published
      MS-SSIM, which is why it has to be asked for.

  Returns:
    A float for one image, a float64 array [B] for a batch.
  """
  a, b = _as_float_images(a, b)
  height, width = a.shape[-3], a.shape[-2]
  if num_scales is None:
    weights = MS_SSIM_WEIGHTS
  else:
    if not 1 <= num_scales <= len(MS_SSIM_WEIGHTS):
      raise ValueError(f"num_scales must be in [1, {len(MS_SSIM_WEIGHTS)}], got {num_scales}.")
    total = sum(MS_SSIM_WEIGHTS[:num_scales])
    weights = tuple(w / total for w in MS_SSIM_WEIGHTS[:num_scales])
  min_side = ms_ssim_min_size(len(weights))
  if min(height, width) < min_side:
    raise ValueError(
        f"MS-SSIM with {len(weights)} scales needs a short side of at least {min_side} pixels, "
        f"got {height} x {width}; at most {max_ms_ssim_scales(height, width)} scales fit "
        "(pass num_scales to use fewer, knowing the value is then not the standard MS-SSIM).")
  single = a.ndim == 3
  return _per_image(_tf_ms_ssim(a, b, weights).numpy(), single)


def bpp_from_bytes(num_bytes: int, height: int, width: int) -> float:
  """Bits per pixel of a file of `num_bytes` bytes holding one height x width image.

  Pixels, not samples: an RGB pixel counts once. Always fed the length of a real file or
  bitstream, never an entropy estimate.
  """
  if height <= 0 or width <= 0:
    raise ValueError(f"Image size must be positive, got {height} x {width}.")
  if num_bytes < 0:
    raise ValueError(f"num_bytes must be non-negative, got {num_bytes}.")
  return 8.0 * num_bytes / (height * width)


def top_k_accuracy(labels, logits_or_probs, k: int = 1) -> float:
  """Fraction of examples whose true class is among the k highest scores.

  Args:
    labels: int array [N] of class indices.
    logits_or_probs: array [N, num_classes]; any monotonic score works (the ranking is all that
      matters), so logits need no softmax.
    k: how many top classes count as a hit. k >= num_classes gives 1.0.

  Ties are broken towards the lower class index (a stable sort), so the result is deterministic;
  with real-valued logits ties essentially never happen.
  """
  labels = np.asarray(labels)
  scores = np.asarray(logits_or_probs)
  if scores.ndim != 2 or labels.shape != scores.shape[:1]:
    raise ValueError(
        f"Expected labels [N] and scores [N, num_classes], got {labels.shape} and {scores.shape}.")
  if k < 1:
    raise ValueError(f"k must be at least 1, got {k}.")
  num_classes = scores.shape[1]
  if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
    raise ValueError(f"Labels must be in [0, {num_classes}).")
  if labels.size == 0:
    return float("nan")
  top_k = np.argsort(-scores, axis=1, kind="stable")[:, :k]
  return float(np.mean(np.any(top_k == labels[:, None], axis=1)))


def confusion_matrix(labels, predictions, num_classes: int, ignore_label: int | None = None):
  """Pixel (or example) confusion matrix: entry [i, j] counts ground truth i predicted as j.

  Args:
    labels: int array of ground-truth classes, any shape.
    predictions: int array of predicted classes, the same shape.
    num_classes: number of real classes; valid values are [0, num_classes).
    ignore_label: ground-truth value of pixels left out of the evaluation (CamVid's 11,
      VOC's 255). Only the ground truth decides: a pixel whose label is ignore_label is dropped
      whatever was predicted there.

  Returns:
    int64 array [num_classes, num_classes]. Sum matrices over batches, then take the IoU.

  Raises:
    ValueError: shapes differ, or a label outside [0, num_classes) that is not ignore_label, or a
      prediction outside [0, num_classes) at a pixel that is evaluated. A network that predicts
      the ignore value has a bug; counting it silently would hide it.
  """
  labels = np.asarray(labels)
  predictions = np.asarray(predictions)
  if labels.shape != predictions.shape:
    raise ValueError(
        f"labels and predictions must have the same shape, got {labels.shape} and "
        f"{predictions.shape}.")
  if num_classes < 1:
    raise ValueError(f"num_classes must be positive, got {num_classes}.")
  labels = labels.reshape(-1).astype(np.int64)
  predictions = predictions.reshape(-1).astype(np.int64)
  if ignore_label is not None:
    keep = labels != ignore_label
    labels, predictions = labels[keep], predictions[keep]
  for name, values in (("label", labels), ("prediction", predictions)):
    bad = (values < 0) | (values >= num_classes)
    if np.any(bad):
      raise ValueError(
          f"Found {name} {values[bad][0]} outside [0, {num_classes})"
          + (f" (ignore_label is {ignore_label})." if ignore_label is not None else "."))
  counts = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
  return counts.reshape(num_classes, num_classes)


def iou_per_class(confusion):
  """Intersection over union per class, TP / (TP + FP + FN), from a confusion matrix.

  A class absent from both ground truth and prediction has union 0 and gets NaN: there is
  nothing to score, and 0 or 1 would both bias the mean.
  """
  confusion = np.asarray(confusion, dtype=np.float64)
  if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
    raise ValueError(f"Expected a square confusion matrix, got shape {confusion.shape}.")
  true_positives = np.diag(confusion)
  union = confusion.sum(axis=0) + confusion.sum(axis=1) - true_positives
  iou = np.full(union.shape, np.nan)
  present = union > 0
  iou[present] = true_positives[present] / union[present]
  return iou


def mean_iou(confusion) -> float:
  """Mean IoU: the NaN-mean of iou_per_class, i.e. over classes with union > 0 only.

  This is the PASCAL VOC / DeepLab convention. Returns NaN if no class has a union.
  """
  iou = iou_per_class(confusion)
  present = ~np.isnan(iou)
  return float(np.mean(iou[present])) if np.any(present) else float("nan")


def image_quality(reference, distorted) -> dict:
  """PSNR, SSIM and MS-SSIM (standard five scales) of one image pair, as a dict of floats.

  What a rate-distortion curve records at every point; both images [H, W, C] on the uint8 scale.
  """
  return {
      "psnr": psnr(reference, distorted),
      "ssim": ssim(reference, distorted),
      "ms_ssim": ms_ssim(reference, distorted),
  }
