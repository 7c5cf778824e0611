r"""tfcdi-compress: image files -> .tfci files, with a trained codec.

  tfcdi-compress --operating_point=0.635 photo.png photo.tfci
  tfcdi-compress --operating_point=0.635 photos/ compressed/   # every image -> <stem>.tfci
  tfcdi-compress --codec=hyperprior --quality=4 photo.png photo.tfci    # Balle et al. 2018
  tfcdi-compress --codec_path=runs/hyperprior_q4/hyperprior_q4.npz photo.png out/
  tfcdi-compress --codec=path/to/bundle.npz photo.png out/     # a bundle of either family
  tfcdi-compress --classification_view photo.jpg photo.tfci    # the view the classifiers read

Prints one line per file: sizes, the real bits per pixel of the file, and any conversion of the
input (grayscale, alpha, 16-bit, ...). Problems are one `error: ...` line each on stderr; the
exit status is 1 if any file failed. Existing outputs are kept unless --overwrite is given, and
outputs are written atomically.
"""

import os



# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags

from experiments import _cli
from tfcdi import imageio

with _cli.native_stderr_silenced():  # the first import of TensorFlow
  from tfcdi import serving
  from tfcdi.codec import coding
  from tfcdi.data import latent_store

_OPERATING_POINT, _CODEC = _cli.define_codec_flags()
_QUALITY, _CODEC_PATH = _cli.define_family_flags()
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Replace output files that already exist.", allow_override=True)
_CLASSIFICATION_VIEW = flags.DEFINE_bool(
    "classification_view", False,
    "Compress the view the shipped classifiers were trained on (shorter side resized to "
    f"{latent_store.DEFAULT_IMAGE_SIZE}, central square) instead of the whole image, for files "
    "meant to be classified: a full-size photo then classifies as the validation images do "
    "(python -m tools.scale_check measures both). The file decodes to that square view.")

USAGE = ("usage: tfcdi-compress [--operating_point=0.635 | --codec=hyperprior --quality=4] "
         "[--codec_path=BUNDLE] [--classification_view] INPUT OUTPUT")


_error = _cli.error


def _load_codec():
  family, path = _cli.resolve_codec_flag(_CODEC.value, _CODEC_PATH.value)
  return _cli.load_codec(_OPERATING_POINT.value, path, quality=_QUALITY.value, family=family,
                         families=_cli.CODEC_FAMILIES)


def compress_file(codec, job: imageio.FileJob) -> str:
  """Compresses one image file; returns the line to print."""
  image, notes = imageio.load_rgb(job.source)
  if _CLASSIFICATION_VIEW.value:
    data = serving.compress_for_classification(codec, image)
    size = latent_store.DEFAULT_IMAGE_SIZE
    notes = notes + [f"compressed its {size}x{size} classification view"]
    height = width = size
  else:
    data = coding.compress_image(codec, image)
    height, width = image.shape[:2]
  os.makedirs(os.path.dirname(os.path.abspath(job.target)), exist_ok=True)
  imageio.write_atomic(job.target, data)
  line = (f"{job.source} -> {job.target}: {width}x{height} px, {len(data)} bytes, "
          f"{8 * len(data) / (height * width):.4f} bpp")
  return line + ("; " + "; ".join(notes) if notes else "")


def main(argv):
  if len(argv) != 3:
    _error(f"expected an input and an output path, got {len(argv) - 1} arguments. {USAGE}")
    return 1
  try:
    jobs = imageio.plan_files(argv[1], argv[2], imageio.IMAGE_EXTENSIONS, ".tfci",
                              overwrite=_OVERWRITE.value)
    # The codec loads only once we know there is work, so a refusal is immediate.
    codec = _load_codec() if any(job.problem is None for job in jobs) else None
  except (ValueError, OSError) as e:
    _error(e)
    return 1
  return _cli.run_file_jobs(jobs, lambda job: compress_file(codec, job))


def run():
  app.run(main)


if __name__ == "__main__":
  run()
