r"""Rate-distortion curves of JPEG and JPEG 2000 on Kodak, with the learned codec's points.

The analog of the paper's Fig. 8. Sweeps both baselines over the Kodak images (real files, real
sizes), places each learned operating point against them at the same bpp, and writes
rd_curve.json and rd_curve.png to --output_dir. The logic lives in tfcdi/baselines.py.

  python -m tools.rd_curve --output_dir=/tmp/rd \
      --codec_results=runs/0.635/kodak.json --codec_results=runs/0.0983/kodak.json

Each --codec_results file holds one JSON object, or a list of them, measured from real .tfci
files, with at least {"operating_point": "0.635", "bpp": ..., "psnr": ..., "ssim": ...,
"ms_ssim": ...} (a hyperprior codec's: {"codec_family": "hyperprior", "quality": 4, ...}; the
kodak_eval.json that tfcdi-train-codec writes is such a file). To add points to curves already
swept: --curves_from=reports/codec/rd_curve.json (same images), which takes seconds.
"""

import json
import os

from absl import app
from absl import flags
from absl import logging

from tfcdi import baselines

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_KODAK_DIR = flags.DEFINE_string(
    "kodak_dir", os.path.join(_REPO_ROOT, "..", "shared", "data", "kodak"),
    "Folder of the Kodak PNGs (kodim01..24.png).")
_CODEC_RESULTS = flags.DEFINE_multi_string(
    "codec_results", [], "JSON file(s) of learned-codec operating points; repeat the flag.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where rd_curve.json/.png go.",
                                  required=True)
_CURVES_FROM = flags.DEFINE_string(
    "curves_from", None, "An earlier rd_curve.json whose JPEG / JPEG 2000 curves to reuse "
    "instead of sweeping again (they must come from the same images).")
_MAX_IMAGES = flags.DEFINE_integer("max_images", 0, "Use only the first N images; 0 = all.")
_JPEG_QUALITIES = flags.DEFINE_list(
    "jpeg_qualities", None, "Comma-separated Pillow JPEG qualities (default: "
    f"{','.join(map(str, baselines.DEFAULT_JPEG_QUALITIES))}).")
_JP2_LEVELS = flags.DEFINE_list(
    "jp2_levels", None, "Comma-separated JPEG 2000 target PSNRs in dB, OpenJPEG's fixed-quality "
    f"levels (default: {','.join(f'{p:g}' for p in baselines.DEFAULT_JPEG2000_TARGET_PSNRS)}).")


def _log_point(codec, point, seconds):
  logging.info("%-8s %s=%-5g  bpp %.3f  PSNR %.2f  SSIM %.4f  MS-SSIM %.4f  (%.1f s)",
               codec.name, codec.setting_name, point["setting"], point["bpp"], point["psnr"],
               point["ssim"], point["ms_ssim"], seconds)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  results = baselines.load_codec_results(_CODEC_RESULTS.value)
  images = baselines.load_images(_KODAK_DIR.value, max_images=_MAX_IMAGES.value)
  logging.info("%d images from %s, %d learned point(s)", len(images), _KODAK_DIR.value,
               len(results))
  settings = {}
  if _JPEG_QUALITIES.value:
    settings["jpeg"] = [int(q) for q in _JPEG_QUALITIES.value]
  if _JP2_LEVELS.value:
    settings["jpeg2000"] = [float(level) for level in _JP2_LEVELS.value]

  curves = None
  if _CURVES_FROM.value:
    with open(_CURVES_FROM.value) as f:
      previous = json.load(f)
    names = [name for name, _ in images]
    if previous.get("images") != names:
      raise app.UsageError(f"{_CURVES_FROM.value} was measured on {previous.get('images')}, not "
                           f"on the {len(names)} images of {_KODAK_DIR.value}; sweep again "
                           "without --curves_from")
    curves = previous["curves"]
  report = baselines.rd_report(images, results, settings, progress=_log_point, curves=curves)

  os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
  json_path = os.path.join(_OUTPUT_DIR.value, "rd_curve.json")
  with open(json_path, "w") as f:
    json.dump(report, f, indent=1)
  png_path = os.path.join(_OUTPUT_DIR.value, "rd_curve.png")
  baselines.plot_rd_curves(report["curves"], results, png_path, note=report["note"])

  for name, (low, high) in ((n, c["bpp_range"]) for n, c in report["curves"].items()):
    logging.info("%s covers %.3f .. %.3f bpp (mean over images)", name, low, high)
  for entry in report["learned"]:
    for name, base in entry["baselines"].items():
      if base["in_range"]:
        better = ", ".join(f"{m} {'yes' if v else 'no'}" for m, v in base["learned_better"].items())
        logging.info("%s vs %s: learned better? %s", baselines.result_label(entry), name,
                     better)
      else:
        logging.info("%s vs %s: outside its curve (%s)", baselines.result_label(entry), name,
                     base["reason"])
  logging.info("Wrote %s and %s in %.0f s", json_path, png_path, report["seconds"])


def run():
  app.run(main)


if __name__ == "__main__":
  run()
