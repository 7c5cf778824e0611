"""The runtime benchmark's inputs: images (real or synthetic), their .tfci files and JPEGs of the
same rate. Made once, outside the timing (tfcdi/benchmark.py times what consumes them)."""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


class BenchmarkError(ValueError):
  """The benchmark was asked for something it cannot do (bad setting, missing device or data)."""


# --- inputs: images, .tfci files and JPEGs -------------------------------------------------------


def _image_files(image_dir: str) -> list[str]:
  found = []
  for root, _, names in os.walk(image_dir):
    found.extend(os.path.join(root, n) for n in names if n.lower().endswith(IMAGE_EXTENSIONS))
  return sorted(found)


def _square(image: np.ndarray, size: int) -> np.ndarray:
  """Central square crop resized to size x size (Pillow, bicubic); as-is if already that size."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  height, width = image.shape[:2]
  if (height, width) == (size, size):
    return image
  side = min(height, width)
  top, left = (height - side) // 2, (width - side) // 2
  crop = Image.fromarray(image[top:top + side, left:left + side])
  return np.asarray(crop.resize((size, size), Image.BICUBIC))


def synthetic_images(count: int, size: int, seed: int = 0) -> list[np.ndarray]:
  """Smooth random uint8 images: coarse noise upsampled, plus a little fine noise.

  Smooth rather than white noise, so that a codec codes them at a rate near a photo's.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  coarse = max(2, size // 16)
  images = []
  for _ in range(count):
    base = rng.integers(0, 256, (coarse, coarse, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(base).resize((size, size), Image.BICUBIC), np.float32)
    noisy = smooth + rng.normal(0.0, 4.0, smooth.shape)
    images.append(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
  return images


def load_images(image_dir: str | None, count: int, size: int, seed: int = 0):
  """`count` size x size RGB images spread over image_dir's sorted files, or synthetic ones.

  Returns:
    (images, a one-line description of where they came from).
  """
  if image_dir is None:
    return synthetic_images(count, size, seed), f"{count} synthetic {size}x{size} images"
  from tfcdi import imageio  # pylint: disable=g-import-not-at-top
  files = _image_files(image_dir)
  if not files:
    raise BenchmarkError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {image_dir}")
  # Evenly spread over the sorted list, so that a class-sorted folder gives every class.
  picks = [files[i * len(files) // count] for i in range(min(count, len(files)))]
  images = [_square(imageio.load_rgb(path)[0], size) for path in picks]
  return images, f"{len(images)} images from {image_dir}, as {size}x{size}"


@dataclasses.dataclass
class FileSet:
  """Real .tfci and JPEG files of the same images, for the from-file paths."""

  tfci: list[bytes]
  jpeg: list[bytes]
  tfci_bpp: float  # mean over the files, whole file (header included)
  jpeg_bpp: float
  jpeg_quality: int
  source: str

  def to_json(self) -> dict:
    return {"count": len(self.tfci), "source": self.source, "tfci_mean_bpp": self.tfci_bpp,
            "jpeg_quality": self.jpeg_quality, "jpeg_mean_bpp": self.jpeg_bpp,
            "tfci_mean_bytes": float(np.mean([len(d) for d in self.tfci])),
            "jpeg_mean_bytes": float(np.mean([len(d) for d in self.jpeg]))}


def _mean_bpp(files: Sequence[bytes], pixels: int) -> float:
  return float(np.mean([8.0 * len(d) / pixels for d in files]))


def jpeg_at_bpp(images: Sequence[np.ndarray], target_bpp: float):
  """JPEGs (Pillow, the rate-distortion baseline's settings) at the quality whose mean bpp is
  closest to target_bpp. Returns (files, quality, mean bpp).

  JPEG's rate grows with quality (all but monotonically), so a bisection finds the crossing and
  its two neighbours are compared; qualities run 1..95 (above 95 Pillow's tables stop changing
  the quantization meaningfully).
  """
  from tfcdi import baselines  # pylint: disable=g-import-not-at-top
  pixels = images[0].shape[0] * images[0].shape[1]
  cache = {}

  def coded(quality):
    if quality not in cache:
      files = [baselines.jpeg_encode_decode(image, quality)[0] for image in images]
      cache[quality] = (files, _mean_bpp(files, pixels))
    return cache[quality]

  low, high = 1, 95
  while high - low > 1:
    middle = (low + high) // 2
    if coded(middle)[1] < target_bpp:
      low = middle
    else:
      high = middle
  best = min((low, high), key=lambda q: (abs(coded(q)[1] - target_bpp), q))
  files, bpp = coded(best)
  return files, best, bpp


def make_files(codec, images: Sequence[np.ndarray], source: str) -> FileSet:
  """Codes the images as .tfci files with `codec`, and as JPEGs of the nearest mean bpp."""
  from tfcdi.codec import coding  # pylint: disable=g-import-not-at-top
  tfci = [coding.compress_image(codec, image) for image in images]
  pixels = images[0].shape[0] * images[0].shape[1]
  tfci_bpp = _mean_bpp(tfci, pixels)
  jpeg, quality, jpeg_bpp = jpeg_at_bpp(images, tfci_bpp)
  return FileSet(tfci, jpeg, tfci_bpp, jpeg_bpp, quality, source)
