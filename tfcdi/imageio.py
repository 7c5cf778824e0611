"""Image files in and out for the command-line tools: any common image -> 8-bit RGB, and back.

The codec takes 8-bit RGB. `load_rgb` turns what people actually have into that, and says what
it changed, so nothing happens silently:

- grayscale, bilevel, palette, CMYK, YCbCr: converted to RGB by Pillow;
- alpha: fully opaque alpha is dropped; any transparency is composited onto white, which is
  what a viewer shows on a white page (dropping it would reveal whatever colour the transparent
  pixels happen to hold, often black);
- 16-bit samples: rescaled to 8 bits with rounding (v / 257). Pillow reads 16-bit colour PNGs
  and TIFFs by keeping only the high byte, and clips 16-bit grayscale when converting it to RGB,
  so those files are decoded at full depth with imagecodecs and rescaled here;
- an EXIF orientation tag: applied, so the pixels are the way viewers show them (the output PNG
  cannot carry the tag);
- multi-frame files: the first frame.

Anything that cannot be read as an image raises ImageError (a ValueError) with a one-line message
that does not repeat the path (callers add it).

Writes are atomic: a file appears under its name complete, or not at all; `save_image` writes
PNG, JPEG or WebP as the output name says. `plan_files` pairs the inputs of a command-line run
(a file or a folder) with their outputs.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import warnings

import numpy as np
from PIL import Image, ImageOps

# Extensions the command-line tools pick up when given a folder (compared case-insensitively).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

_MODE_NAMES = {
    "1": "1-bit black and white",
    "L": "grayscale",
    "LA": "grayscale",
    "La": "grayscale",
    "P": "palette",
    "PA": "palette",
    "RGBa": "premultiplied RGBA",
    "CMYK": "CMYK",
    "YCbCr": "YCbCr",
    "LAB": "Lab",
    "HSV": "HSV",
}
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_EXIF_ORIENTATION = 0x0112


class ImageError(ValueError):
  """A file could not be read (or written) as an image."""


def _first_line(error: BaseException) -> str:
  text = str(error).strip()
  return text.splitlines()[0] if text else type(error).__name__


def _rawmode(image) -> str:
  # The decoder's raw mode tells the file's real sample depth, e.g. "RGB;16B" for a 48-bit PNG
  # that Pillow would otherwise present as plain "RGB".
  if not image.tile:
    return ""
  args = image.tile[0].args
  rawmode = args[0] if isinstance(args, tuple) and args else args
  return rawmode if isinstance(rawmode, str) else ""  # some formats keep other things here


def _read_16bit(path: str, image) -> np.ndarray | None:
  """Full-depth uint16 samples [H, W(, c)] of a 16-bit colour PNG or TIFF; None if not one."""
  if ";16" not in _rawmode(image) or image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
    return None  # 8-bit data, or 16-bit grayscale that Pillow already reads at full depth
  import imagecodecs  # pylint: disable=g-import-not-at-top  (only 16-bit colour files need it)
  if image.format == "PNG":
    decode = imagecodecs.png_decode
  elif image.format == "TIFF" and image.mode in ("RGB", "RGBA"):
    decode = imagecodecs.tiff_decode
  else:
    return None
  with open(path, "rb") as f:
    raw = f.read()
  try:
    samples = decode(raw)
  except Exception as e:  # imagecodecs' own error classes derive from RuntimeError
    raise ImageError(f"not a readable 16-bit image ({_first_line(e)})") from None
  if samples.dtype != np.uint16 or samples.shape[:2] != (image.height, image.width):
    return None
  return samples


def _to_8bit(samples: np.ndarray) -> np.ndarray:
  # 65535 / 255 = 257 exactly, so v / 257 maps the 16-bit range onto the 8-bit one end to end.
  return np.rint(samples.astype(np.float64) / 257.0).astype(np.uint8)


def _drop_alpha(rgba: np.ndarray, alpha_max: int, notes: list) -> np.ndarray:
  """[H, W, 4] (uint8 or uint16) -> [H, W, 3] float on the same scale; composites on white."""
  rgb, alpha = rgba[..., :3].astype(np.float64), rgba[..., 3:].astype(np.float64)
  if np.all(alpha == alpha_max):
    notes.append("dropped an alpha channel (fully opaque)")
    return rgb
  notes.append("composited the alpha channel onto white")
  a = alpha / alpha_max
  return rgb * a + alpha_max * (1.0 - a)


def _from_samples(samples: np.ndarray, notes: list) -> np.ndarray:
  """16-bit samples of 1..4 channels (gray, gray+alpha, RGB, RGBA) -> uint8 RGB."""
  if samples.ndim == 2:
    samples = samples[..., None]
  if samples.shape[-1] <= 2:
    notes.append("converted grayscale image to RGB")
    samples = samples[..., [0, 0, 0] + ([1] if samples.shape[-1] == 2 else [])]
  if samples.shape[-1] == 4:
    samples = _drop_alpha(samples, 65535, notes)
  notes.append("rescaled 16-bit samples to 8 bits")
  return _to_8bit(samples)


def _from_pillow(image, notes: list) -> np.ndarray:
  """A loaded Pillow image of any mode -> uint8 RGB [H, W, 3]."""
  mode = image.mode
  if mode == "RGB":
    return np.asarray(image, np.uint8)
  if mode.startswith("I"):  # "I;16", "I;16B", ... and "I" (32-bit integers)
    values = np.asarray(image).astype(np.int64)
    if values.size and (values.min() < 0 or values.max() > 65535):
      raise ImageError(f"unsupported image: {mode} samples outside 0..65535")
    return _from_samples(values.astype(np.uint16), notes)
  if mode == "F":
    raise ImageError("unsupported image: floating-point samples")
  if mode != "RGBA":
    notes.append(f"converted {_MODE_NAMES.get(mode, mode)} image to RGB")
  if mode in _ALPHA_MODES or (mode == "P" and "transparency" in image.info):
    rgba = np.asarray(image.convert("RGBA"), np.uint8)
    return np.rint(_drop_alpha(rgba, 255, notes)).astype(np.uint8)
  return np.asarray(image.convert("RGB"), np.uint8)


def load_rgb(path: str) -> tuple[np.ndarray, list[str]]:
  """Reads an image file as 8-bit RGB.

  Returns:
    (uint8 array [H, W, 3], notes): the notes say, one phrase each, what was converted.

  Raises:
    ImageError: the file is missing, is not an image, is truncated or has a layout we cannot
      turn into RGB.
  """
  notes = []
  try:
    with warnings.catch_warnings():
      # Pillow warns, rather than fails, on huge images and some oddities; decide on errors only.
      warnings.simplefilter("ignore")
      with Image.open(path) as image:
        if getattr(image, "n_frames", 1) > 1:
          notes.append(f"used the first of {image.n_frames} frames")
        samples16 = _read_16bit(path, image)
        image.load()  # decodes now, so a truncated file fails here and not later
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
        if samples16 is not None:
          rgb = _from_samples(samples16, notes)
          if orientation != 1:
            notes.append("ignored the EXIF orientation of a 16-bit image")
        else:
          if orientation in range(2, 9):
            image = ImageOps.exif_transpose(image)
            notes.append("applied the EXIF orientation")
          rgb = _from_pillow(image, notes)
  except FileNotFoundError:
    raise ImageError("no such file") from None
  except IsADirectoryError:
    raise ImageError("a folder, not an image file") from None
  except Image.DecompressionBombError as e:
    raise ImageError(f"image too large ({e})") from None
  except ImageError:
    raise
  except (OSError, SyntaxError, ValueError, EOFError) as e:
    # Pillow's UnidentifiedImageError is an OSError; truncated data raises OSError too.
    raise ImageError(f"not a readable image ({_first_line(e)})") from None
  return np.ascontiguousarray(rgb), notes


def write_json(path: str, value) -> None:
  """Writes `value` as indented JSON to `path` atomically (write_atomic), making its folder."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  write_atomic(path, json.dumps(value, indent=2).encode())


def write_atomic(path: str, data: bytes) -> None:
  """Writes `data` to `path` through a temporary file in the same folder and os.replace.

  An interrupted run leaves either the old file or the complete new one, never a partial file
  under the real name.
  """
  folder = os.path.dirname(os.path.abspath(path))
  tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
  # O_EXCL: never write through a file (or link) someone else left there. Mode 0o666 lets the
  # umask decide the final permissions, as for any ordinary file.
  fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def encode_png(image: np.ndarray) -> bytes:
  """uint8 RGB [H, W, 3] -> PNG bytes."""
  return encode_image(image, ".png")


# What save_image writes for each output name's extension (compared case-insensitively).
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
# JPEG is lossy: a high quality keeps the decoded image's own artefacts, not new ones, visible.
JPEG_QUALITY = 95


def output_format(path: str) -> str:
  """The Pillow format an output name asks for (OUTPUT_FORMATS); ImageError for any other."""
  extension = os.path.splitext(path)[1].lower()
  if extension not in OUTPUT_FORMATS:
    raise ImageError(f"{path}: the output name must end in "
                     f"{', '.join(OUTPUT_FORMATS)} (the format written)")
  return OUTPUT_FORMATS[extension]


def encode_image(image: np.ndarray, name: str) -> bytes:
  """uint8 RGB [H, W, 3] -> the bytes of the format `name` ends with (see OUTPUT_FORMATS).

  PNG and WebP are lossless (WebP in its lossless mode); JPEG is written at JPEG_QUALITY.
  """
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
    raise ImageError(f"expected a uint8 [H, W, 3] image, got {image.dtype} {image.shape}")
  fmt = output_format(name)
  options = {"JPEG": {"quality": JPEG_QUALITY}, "WEBP": {"lossless": True}}.get(fmt, {})
  buffer = io.BytesIO()
  Image.fromarray(image, "RGB").save(buffer, format=fmt, **options)
  return buffer.getvalue()


def save_png(path: str, image: np.ndarray) -> None:
  """Writes uint8 RGB [H, W, 3] as a PNG, atomically."""
  write_atomic(path, encode_png(image))


def save_image(path: str, image: np.ndarray) -> None:
  """Writes uint8 RGB [H, W, 3] atomically, as PNG, JPEG or WebP as the name's extension says."""
  write_atomic(path, encode_image(image, path))


def make_parent_folder(path: str) -> None:
  """Creates the folder `path` goes into; a file in the way is a one-line ValueError.

  os.makedirs would report it as "[Errno 17] File exists" (or "[Errno 20] Not a directory").
  """
  folder = os.path.dirname(os.path.abspath(path))
  if os.path.isdir(folder):
    return
  ancestor = folder
  while not os.path.exists(ancestor) and os.path.dirname(ancestor) != ancestor:
    ancestor = os.path.dirname(ancestor)
  if not os.path.isdir(ancestor):
    raise ValueError(f"cannot write {path}: {ancestor} is a file, not a folder")
  os.makedirs(folder, exist_ok=True)


@dataclasses.dataclass(frozen=True)
class FileJob:
  """One input file of a command-line run and the file it becomes."""

  source: str
  target: str | None
  problem: str | None = None  # why this one cannot go ahead (a failure); None when it can
  skipped: str | None = None  # why this one is left alone on purpose (not a failure)


def _stem(path: str) -> str:
  return os.path.splitext(os.path.basename(path))[0]


def _why_not_picked(folder: str, name: str, kinds: str) -> str:
  if os.path.isdir(os.path.join(folder, name)):
    return "a folder (subfolders are not searched)"
  return f"not a {kinds} file"


def plan_files(source: str, target: str, extensions, suffix: str, overwrite: bool = False,
               skip_existing: bool = False, target_suffixes=None) -> list[FileJob]:
  """Pairs inputs with outputs for a command-line run.

  A file goes to `target`, or into it as <stem><suffix> if `target` is a folder (or ends with a
  path separator). A folder's files whose names end with one of `extensions` (any case) go into
  the folder `target` as <stem><suffix>; its other entries, subfolders included (they are not
  searched), come back as skipped jobs, each with its reason.

  Not errors of the whole run, but jobs that carry a `problem` while the others go ahead: an
  output that exists (unless `overwrite`; with `skip_existing` the job is skipped instead, so
  that a killed folder run resumes), an output that is the input itself (under any spelling or
  link), two inputs sharing an output name ("a.png", "a.jpg").

  Raises:
    ValueError: the source does not exist, a folder holds no matching file, a folder's outputs
      would go to a file, or a file's output name does not end with one of `target_suffixes`
      (when given).
  """
  if overwrite and skip_existing:
    raise ValueError("--overwrite and --skip_existing contradict each other; give one")
  extensions = tuple(e.lower() for e in extensions)
  kinds = ", ".join(e.lstrip(".") for e in extensions)
  pairs = []  # (source, target), or (entry, None) for a folder's entry that is not picked
  if os.path.isdir(source):
    if os.path.exists(target) and not os.path.isdir(target):
      raise ValueError(f"{target} is a file; the outputs of a folder go into a folder")
    for name in sorted(os.listdir(source)):
      path = os.path.join(source, name)
      picked = name.lower().endswith(extensions) and os.path.isfile(path)
      pairs.append((path, os.path.join(target, _stem(name) + suffix) if picked else None))
    if not any(dst for _, dst in pairs):
      raise ValueError(f"{source} holds no {kinds} files")
  elif os.path.exists(source):
    if os.path.isdir(target) or target.endswith(("/", os.sep)):
      target = os.path.join(target, _stem(source) + suffix)
    elif target_suffixes and not target.lower().endswith(tuple(target_suffixes)):
      raise ValueError(f"{target}: the output name must end in {', '.join(target_suffixes)} "
                       "(or end it with / to write into a folder)")
    pairs = [(source, target)]
  else:
    raise ValueError(f"{source}: no such file or folder")

  jobs, claimed = [], {}
  for src, dst in pairs:
    if dst is None:
      jobs.append(FileJob(src, None, skipped=_why_not_picked(source, os.path.basename(src),
                                                             kinds)))
      continue
    key = os.path.normcase(os.path.abspath(dst))
    problem = skipped = None
    if os.path.exists(dst) and os.path.samefile(src, dst):
      problem = f"{dst} is the input file itself; give the output another name"
    elif key in claimed:
      problem = f"{claimed[key]} is written to {dst} already"
    elif os.path.lexists(dst) and skip_existing:
      skipped = f"{dst} already exists (--skip_existing)"
    elif os.path.lexists(dst) and not overwrite:
      problem = (f"{dst} already exists (--overwrite replaces it; --skip_existing leaves it and "
                 "goes on with the others)")
    claimed.setdefault(key, src)
    jobs.append(FileJob(src, dst, problem, skipped))
  return jobs
