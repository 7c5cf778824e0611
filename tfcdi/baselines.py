"""JPEG and JPEG 2000 baselines, and the rate-distortion comparison with the learned codec.

This is the analog of the paper's Fig. 8: image quality against bits per pixel on Kodak, for
JPEG, JPEG 2000 and the learned codec's operating points. Every number comes from a real
encode and decode, and every rate from the length of a real file:

- JPEG: Pillow (libjpeg-turbo), baseline sequential, 4:2:0 chroma subsampling (the libjpeg
  default), optimize=True (Huffman tables fitted to the image, as `cjpeg -optimize` does; this
  only removes redundancy in the entropy code, a few per cent, and is the fair choice against a
  learned codec whose files are entropy coded too). The rate counts the whole JFIF file,
  headers and tables included. The knob is Pillow's quality. At quality 1 (and nearly so at 2)
  the scaled quantisation steps are clipped at 255, the largest baseline JPEG allows, so JPEG has
  a floor rate: on Kodak its mean does not go below about 0.09 bpp. Curves stop where JPEG
  stops; nothing is extrapolated.
- JPEG 2000: OpenJPEG through imagecodecs, written as a raw J2K codestream (no JP2 boxes: they
  are container metadata, about 85 bytes, that a fair rate should not charge to the codec; the
  codestream is what a decoder needs). Irreversible 9/7 wavelet, the colour transform (MCT),
  one quality layer and OpenJPEG's other defaults. imagecodecs' `level` argument is OpenJPEG's
  fixed-quality target: the PSNR in dB that the encoder's rate allocation aims for (tcp_distoratio,
  `opj_compress -q`); no level (or 0) means lossless. So the knob of the sweep is a target PSNR;
  for very low targets (10 dB on kodim01) OpenJPEG emits an almost empty ~200-byte codestream.

Curves average per setting across images: for one quality (JPEG) or one target PSNR (JPEG 2000),
every image is coded, and the point is (mean bpp, mean PSNR, mean SSIM, mean MS-SSIM), the usual
way Kodak curves are drawn. PSNR is averaged in dB per image, not computed from the mean MSE.
A learned operating point is then compared with each baseline by interpolating the baseline's
curve linearly in bpp at the learned point's mean bpp.
"""

from __future__ import annotations

import dataclasses
import glob
import io
import json
import math
import os
import time
from typing import Callable, NamedTuple, Sequence

import numpy as np
from PIL import Image

from tfcdi import metrics

# The metrics every curve point carries; all are "higher is better".
QUALITY_METRICS = ("ms_ssim", "ssim", "psnr")
# How the baseline codecs are named on figures and tables.
LABELS = {"jpeg": "JPEG", "jpeg2000": "JPEG 2000"}
_METRIC_LABELS = {"ms_ssim": "MS-SSIM", "ssim": "SSIM", "psnr": "PSNR [dB]"}

# The default sweeps: 14 settings per codec, so that a full Kodak run (24 images, SSIM and MS-SSIM
# of every decoded image, ~0.3 CPU-seconds per image and setting) takes a few minutes on two
# cores. Denser at low rates, where the paper's operating points (0.1-0.6 bpp) lie and the curves
# bend; --jpeg_qualities / --jp2_levels of tools/rd_curve.py give any other sweep.
#
# Pillow qualities: Kodak's mean rate runs from JPEG's floor (~0.09 bpp at quality 1) to ~2.3 bpp
# (quality 90). Quality 2 is left out: its rate is within 0.2% of quality 1's.
DEFAULT_JPEG_QUALITIES = (1, 3, 5, 8, 10, 15, 20, 30, 40, 50, 65, 75, 85, 90)

# OpenJPEG target PSNRs (dB): on Kodak, 21 dB gives a mean of ~0.03 bpp and 42 dB ~2.3 bpp.
DEFAULT_JPEG2000_TARGET_PSNRS = (21.0, 22.0, 23.0, 24.0, 25.0, 26.0, 28.0, 30.0, 32.0, 34.0, 36.0,
                                 38.0, 40.0, 42.0)

# Fields a learned-codec result must have to be placed on the plot.
REQUIRED_RESULT_KEYS = ("bpp",) + QUALITY_METRICS


def _check_rgb_uint8(image) -> np.ndarray:
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f"Expected a uint8 RGB image [H, W, 3], got {image.dtype} {image.shape}.")
  return np.ascontiguousarray(image)


def jpeg_encode_decode(image, quality: int, optimize: bool = True,
                       subsampling: str = "4:2:0") -> tuple[bytes, np.ndarray]:
  """Codes a uint8 RGB image [H, W, 3] as a JFIF file with Pillow and decodes it again.

  Returns:
    (the complete JFIF file as bytes, the decoded uint8 image [H, W, 3]).
  """
  image = _check_rgb_uint8(image)
  if not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
    raise ValueError(f"JPEG quality must be an integer in [1, 100], got {quality!r}.")
  buffer = io.BytesIO()
  Image.fromarray(image, mode="RGB").save(
      buffer, format="JPEG", quality=int(quality), optimize=optimize, subsampling=subsampling)
  data = buffer.getvalue()
  with Image.open(io.BytesIO(data)) as decoded:
    decoded = np.asarray(decoded.convert("RGB"))
  return data, decoded


def jpeg2000_encode_decode(image, target_psnr: float,
                           codecformat: str = "J2K") -> tuple[bytes, np.ndarray]:
  """Codes a uint8 RGB image [H, W, 3] with OpenJPEG at a target PSNR (dB) and decodes it.

  Args:
    image: uint8 [H, W, 3].
    target_psnr: OpenJPEG's fixed-quality target in dB, in (0, 100]; the encoder truncates the
      code-block bitstreams where its PSNR estimate reaches the target. The real PSNR lands
      within a fraction of a dB at medium and high rates, but can fall 2-3 dB short at very low
      rates (22 dB asked, ~20 dB obtained on Kodak): always report the measured PSNR.
    codecformat: "J2K" (raw codestream, the default, see the module docstring) or "JP2".

  Returns:
    (the encoded bytes, the decoded uint8 image [H, W, 3]).
  """
  import imagecodecs  # pylint: disable=g-import-not-at-top  # only the baselines need it

  image = _check_rgb_uint8(image)
  if not 0 < target_psnr <= 100:
    # Outside (0, 100] imagecodecs would silently switch to lossless coding.
    raise ValueError(f"target_psnr must be in (0, 100] dB, got {target_psnr}.")
  data = bytes(imagecodecs.jpeg2k_encode(
      image, level=float(target_psnr), codecformat=codecformat, reversible=False))
  decoded = imagecodecs.jpeg2k_decode(data)
  if decoded.shape != image.shape or decoded.dtype != np.uint8:
    raise RuntimeError(f"OpenJPEG decoded {decoded.dtype} {decoded.shape}, expected {image.shape}.")
  return data, decoded


@dataclasses.dataclass(frozen=True)
class Codec:
  """A baseline codec: how to run it and which settings sweep its rate."""

  name: str
  setting_name: str  # what the sweep varies, e.g. "quality"
  encode_decode: Callable[[np.ndarray, float], tuple[bytes, np.ndarray]]
  default_settings: tuple
  description: str


def _library_versions() -> dict:
  import imagecodecs  # pylint: disable=g-import-not-at-top
  from PIL import features  # pylint: disable=g-import-not-at-top
  import PIL  # pylint: disable=g-import-not-at-top
  return {
      "pillow": PIL.__version__,
      "libjpeg_turbo": features.version_feature("libjpeg_turbo"),
      "openjpeg": imagecodecs.jpeg2k_version(),
      "imagecodecs": imagecodecs.__version__,
  }


CODECS = {
    "jpeg": Codec(
        name="jpeg",
        setting_name="quality",
        encode_decode=lambda image, quality: jpeg_encode_decode(image, int(quality)),
        default_settings=DEFAULT_JPEG_QUALITIES,
        description=("Pillow/libjpeg-turbo JPEG, baseline, 4:2:0, optimize=True; "
                     "bpp from the whole JFIF file"),
    ),
    "jpeg2000": Codec(
        name="jpeg2000",
        setting_name="target_psnr_db",
        encode_decode=jpeg2000_encode_decode,
        default_settings=DEFAULT_JPEG2000_TARGET_PSNRS,
        description=("OpenJPEG JPEG 2000 via imagecodecs, irreversible 9/7, MCT, one layer, "
                     "fixed-quality (target PSNR) mode; bpp from the raw J2K codestream"),
    ),
}


def load_images(directory: str, pattern: str = "*.png",
                max_images: int = 0) -> list[tuple[str, np.ndarray]]:
  """Reads the images of a folder (sorted by name) as (file name, uint8 RGB [H, W, 3]) pairs.

  max_images > 0 keeps only the first max_images files.
  """
  paths = sorted(glob.glob(os.path.join(directory, pattern)))
  if max_images > 0:
    paths = paths[:max_images]
  if not paths:
    raise FileNotFoundError(f"No images matching {pattern!r} in {directory!r}.")
  images = []
  for path in paths:
    with Image.open(path) as image:
      images.append((os.path.basename(path), np.asarray(image.convert("RGB"))))
  return images


def evaluate_setting(images: Sequence[tuple[str, np.ndarray]], codec: Codec, setting) -> dict:
  """Codes every image at one setting; returns the mean point and the per-image values.

  The returned dict has the setting, mean "bpp" and mean quality metrics (the curve point), the
  smallest and largest per-image bpp, and "per_image" lists aligned with "names".
  """
  per_image = {"bpp": [], **{m: [] for m in QUALITY_METRICS}}
  for _, image in images:
    data, decoded = codec.encode_decode(image, setting)
    per_image["bpp"].append(metrics.bpp_from_bytes(len(data), image.shape[0], image.shape[1]))
    for name, value in metrics.image_quality(image, decoded).items():
      per_image[name].append(value)
  point = {"setting": setting}
  point.update({name: float(np.mean(values)) for name, values in per_image.items()})
  point["bpp_min"] = float(np.min(per_image["bpp"]))
  point["bpp_max"] = float(np.max(per_image["bpp"]))
  point["names"] = [name for name, _ in images]
  point["per_image"] = {name: [float(v) for v in values] for name, values in per_image.items()}
  return point


def sweep(images: Sequence[tuple[str, np.ndarray]], codec: Codec, settings=None,
          progress: Callable[[Codec, dict, float], None] | None = None) -> dict:
  """Sweeps a codec's settings over an image set; returns its rate-distortion curve.

  Args:
    images: (name, uint8 RGB image) pairs, e.g. from load_images.
    codec: one of CODECS.
    settings: the settings to visit (default: codec.default_settings).
    progress: called after each setting with (codec, point, seconds), e.g. to log a line.

  Returns:
    {"codec", "setting_name", "description", "num_images", "points": [point, ...] sorted by mean
    bpp, "bpp_range": [lowest, highest] mean bpp}.
  """
  settings = codec.default_settings if settings is None else tuple(settings)
  if not settings:
    raise ValueError(f"No settings to sweep for {codec.name}.")
  points = []
  for setting in settings:
    start = time.perf_counter()
    point = evaluate_setting(images, codec, setting)
    points.append(point)
    if progress is not None:
      progress(codec, point, time.perf_counter() - start)
  points.sort(key=lambda p: p["bpp"])
  return {
      "codec": codec.name,
      "setting_name": codec.setting_name,
      "description": codec.description,
      "num_images": len(images),
      "points": points,
      "bpp_range": [points[0]["bpp"], points[-1]["bpp"]],
  }


class Interpolated(NamedTuple):
  """A curve's value at a rate; value is NaN and in_range False outside the curve."""

  value: float
  in_range: bool
  # "" inside; "below_lowest_bpp" or "above_highest_bpp" outside.
  reason: str = ""


def interpolate_at_bpp(curve_bpps, curve_values, bpp: float) -> Interpolated:
  """Linear interpolation (in bpp) of a rate-distortion curve at `bpp`.

  The points may come in any order; they are sorted by bpp, and points sharing one bpp are
  averaged. Outside [lowest, highest] bpp there is no value, and the reason says which side:
  "below_lowest_bpp" is the case to report as "the codec cannot go as low as this". No
  extrapolation, ever.
  """
  bpps = np.asarray(curve_bpps, dtype=np.float64).reshape(-1)
  values = np.asarray(curve_values, dtype=np.float64).reshape(-1)
  if bpps.shape != values.shape or bpps.size == 0:
    raise ValueError(f"Need equally long, non-empty bpp and value lists, got {bpps.size} and "
                     f"{values.size}.")
  if not np.all(np.isfinite(bpps)):
    raise ValueError("Curve bpps must be finite.")
  unique_bpps, inverse = np.unique(bpps, return_inverse=True)
  unique_values = np.bincount(inverse, weights=values) / np.bincount(inverse)
  if bpp < unique_bpps[0]:
    return Interpolated(float("nan"), False, "below_lowest_bpp")
  if bpp > unique_bpps[-1]:
    return Interpolated(float("nan"), False, "above_highest_bpp")
  return Interpolated(float(np.interp(bpp, unique_bpps, unique_values)), True, "")


def _family(result: dict):
  """The codec family of an evaluation result (codec.evaluation; "codec_family" names it)."""
  from tfcdi.codec import registry  # pylint: disable=g-import-not-at-top  (imports TensorFlow)
  return registry.of_json(result, key="codec_family")


def result_label(result: dict) -> str:
  """How a learned-codec result is named in plots: its operating point or hyperprior quality."""
  return _family(result).result_label(result)


def validate_codec_result(result: dict) -> dict:
  """Checks a learned-codec result has the fields the comparison needs; returns it."""
  if not isinstance(result, dict):
    raise ValueError(f"A codec result must be a JSON object, got {type(result).__name__}.")
  # Each result names its codec by what selects it in its family: an autoencoder operating
  # point, a hyperprior quality.
  identity = (_family(result).selector,)
  missing = [key for key in identity + REQUIRED_RESULT_KEYS if key not in result]
  if missing:
    raise ValueError(f"Codec result ({result_label(result)}) lacks {missing}.")
  for key in ("bpp",) + QUALITY_METRICS:
    if not isinstance(result[key], (int, float)) or not math.isfinite(result[key]):
      raise ValueError(f"Codec result field {key!r} must be a finite number, got "
                       f"{result[key]!r}.")
  return result


def load_codec_results(paths: Sequence[str]) -> list[dict]:
  """Reads learned-codec results: each file holds one JSON object or a list of them."""
  results = []
  for path in paths:
    with open(path) as f:
      content = json.load(f)
    for result in content if isinstance(content, list) else [content]:
      results.append(validate_codec_result(result))
  return results


def compare_with_baselines(result: dict, curves: dict[str, dict]) -> dict:
  """Places one learned operating point against each baseline curve at the same bpp.

  Args:
    result: a learned-codec result (see REQUIRED_RESULT_KEYS), measured from real files.
    curves: codec name -> curve from sweep.

  Returns:
    {"operating_point", "bpp", the learned metrics, "baselines": {codec: {"in_range", "reason",
    "bpp_range", and per metric the baseline's interpolated value (None outside the curve) and
    "learned_better": {metric: bool or None}}}, and "<codec>_cannot_reach": True where the
    learned bpp is below the lowest mean bpp that codec reached}.
  """
  validate_codec_result(result)
  bpp = float(result["bpp"])
  comparison = {key: result[key] for key in result if key != "baselines"}
  comparison["baselines"] = {}
  for name, curve in curves.items():
    bpps = [p["bpp"] for p in curve["points"]]
    entry = {"bpp_range": list(curve["bpp_range"]), "learned_better": {}}
    for metric in QUALITY_METRICS:
      at = interpolate_at_bpp(bpps, [p[metric] for p in curve["points"]], bpp)
      entry["in_range"], entry["reason"] = at.in_range, at.reason
      entry[metric] = at.value if at.in_range else None
      entry["learned_better"][metric] = (
          bool(result[metric] > at.value) if at.in_range else None)
    comparison["baselines"][name] = entry
    comparison[f"{name}_cannot_reach"] = entry["reason"] == "below_lowest_bpp"
  return comparison


def plot_rd_curves(curves: dict[str, dict], results: Sequence[dict], path: str,
                   note: str = "measured on Kodak, from real file sizes") -> None:
  """Draws MS-SSIM, SSIM and PSNR against bpp: baselines as lines, learned points as markers.

  Uses matplotlib's Agg canvas directly, so it works headless and never touches the global
  backend of a caller that has its own.
  """
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  figure = Figure(figsize=(15, 4.6))
  FigureCanvasAgg(figure)
  axes = figure.subplots(1, len(QUALITY_METRICS))
  for ax, metric in zip(axes, QUALITY_METRICS):
    for name, curve in curves.items():
      points = curve["points"]
      ax.plot([p["bpp"] for p in points], [p[metric] for p in points], ".-",
              label=LABELS.get(name, name))
    for result in results:
      # Each family its own marker (hyperprior diamonds, autoencoder stars), so they read apart.
      family = _family(result)
      ax.plot(result["bpp"], result[metric], family.plot_marker,
              markersize=family.plot_marker_size, label=result_label(result))
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel(_METRIC_LABELS[metric])
    ax.set_title(f"{_METRIC_LABELS[metric].split(' ')[0]} vs rate")
    ax.grid(True, alpha=0.3)
  axes[0].legend(loc="lower right", fontsize=8)
  num_images = max((c["num_images"] for c in curves.values()), default=0)
  figure.suptitle(f"Rate-distortion, {num_images} images: {note}")
  figure.tight_layout()
  figure.savefig(path, dpi=110)


def _json_ready(value):
  """NaN and inf are not JSON; write them as null."""
  if isinstance(value, float) and not math.isfinite(value):
    return None
  if isinstance(value, dict):
    return {k: _json_ready(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_ready(v) for v in value]
  if isinstance(value, np.generic):
    return _json_ready(value.item())
  return value


def rd_report(images: Sequence[tuple[str, np.ndarray]], results: Sequence[dict] = (),
              settings: dict[str, Sequence] | None = None,
              progress: Callable[[Codec, dict, float], None] | None = None,
              note: str = "measured on Kodak, from real file sizes",
              curves: dict[str, dict] | None = None) -> dict:
  """Sweeps JPEG and JPEG 2000 over the images and compares each learned result with them.

  Args:
    images: (name, image) pairs.
    results: learned-codec results (validated).
    settings: optional codec name -> settings overriding the defaults.
    progress: see sweep.
    note: how the numbers were obtained, carried into the JSON (and the plot).
    curves: baseline curves swept earlier on the same images (an earlier report's "curves");
      given, nothing is swept again.

  Returns:
    A JSON-ready dict: "curves" (codec -> curve), "learned" (one comparison per result),
    "lowest_bpp" (codec -> lowest mean bpp reached), "images", "versions", "seconds".
  """
  settings = settings or {}
  start = time.perf_counter()
  if curves is None:
    curves = {name: sweep(images, codec, settings.get(name), progress)
              for name, codec in CODECS.items()}
  learned = [compare_with_baselines(validate_codec_result(r), curves) for r in results]
  return _json_ready({
      "note": note,
      "averaging": "per setting: mean bpp and mean metric over all images",
      "images": [name for name, _ in images],
      "versions": _library_versions(),
      "curves": curves,
      "lowest_bpp": {name: curve["bpp_range"][0] for name, curve in curves.items()},
      "learned": learned,
      "seconds": time.perf_counter() - start,
  })
