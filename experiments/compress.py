r"""tfcdi-compress: image files -> .tfci files, with a trained codec.

  tfcdi-compress --operating_point=0.635 photo.png photo.tfci
  tfcdi-compress --operating_point=0.635 photos/ compressed/   # every image -> <stem>.tfci
  tfcdi-compress --codec=hyperprior --quality=4 photo.png photo.tfci    # Balle et al. 2018
  tfcdi-compress --codec_path=runs/hyperprior_q4/hyperprior_q4.npz photo.png out/
  tfcdi-compress --codec=path/to/bundle.npz photo.png out/     # a bundle of either family
  tfcdi-compress --classification_view photo.jpg photo.tfci    # the view the classifiers read

Prints one line per file: sizes, the real bits per pixel of the file, and any conversion of the
input (grayscale, alpha, 16-bit, ...). A folder's files that are not images (or are subfolders)
are named as skipped, and a closing line counts the files written, failed and skipped. Problems
are one `error: ...` line each on stderr; the exit status is 1 if any file failed.

Existing outputs are kept unless --overwrite is given; --skip_existing leaves them and goes on
with the others (to resume a folder run that was stopped). Outputs are written atomically, an
output that is the input itself is refused, and an output name must end in .tfci (unless
--any_output_name). Images of more than --max_pixels pixels are refused.
"""

import os

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

from experiments import _cli
from tfcdi import imageio

# TensorFlow's modules, imported at first use (in main): --help and flag errors need none.
serving = _cli.lazy_import("tfcdi.serving")
coding = _cli.lazy_import("tfcdi.codec.coding")
latent_store = _cli.lazy_import("tfcdi.data.latent_store")

_OPERATING_POINT, _CODEC = _cli.define_codec_flags()
_QUALITY, _CODEC_PATH = _cli.define_family_flags()
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Replace output files that already exist.", allow_override=True)
_SKIP_EXISTING = flags.DEFINE_bool(
    "skip_existing", False, "Leave output files that already exist as they are, and go on with "
    "the other files (resumes a folder run that was stopped).", allow_override=True)
_ANY_OUTPUT_NAME = flags.DEFINE_bool(
    "any_output_name", False, "Write the .tfci bytes to an output name that does not end in "
    ".tfci (refused otherwise: `compress x.png x.jpg` is more likely a slip than a wish).")
_MAX_PIXELS = _cli.define_max_pixels_flag()
_CLASSIFICATION_VIEW = flags.DEFINE_bool(
    "classification_view", False,
    "Compress the view the shipped classifiers were trained on (shorter side resized to "
    f"{_cli.STORE_IMAGE_SIZE}, central square) instead of the whole image, for files "
    "meant to be classified: a full-size photo then classifies as the validation images do "
    "(python -m tools.scale_check measures both). The file decodes to that square view.")

_FORMAT_VERSION = flags.DEFINE_enum(
    "format_version", None, ["1", "2"],
    ".tfci format version to write: 1, range coded (constriction); 2, interleaved rANS, which a "
    "SavedModel's classify_file signature decodes inside the graph. Default: the library's "
    "(bitstream.DEFAULT_FORMAT_VERSION).")

USAGE = ("usage: tfcdi-compress [--operating_point=0.635 | --codec=hyperprior --quality=4] "
         "[--codec_path=BUNDLE] [--classification_view] INPUT OUTPUT\n"
         "  INPUT   an image file, or a folder of them\n"
         "  OUTPUT  the .tfci file, or a folder (ending in / if it does not exist yet)")


_error = _cli.error


def _load_codec():
  family, path = _cli.resolve_codec_flag(_CODEC.value, _CODEC_PATH.value)
  return _cli.load_codec(_OPERATING_POINT.value, path, quality=_QUALITY.value, family=family,
                         families=_cli.CODEC_FAMILIES + _cli.IMPORTED_FAMILIES)


def _format_version():
  return None if _FORMAT_VERSION.value is None else int(_FORMAT_VERSION.value)


def compress_file(codec, job: imageio.FileJob) -> str:
  """Compresses one image file; returns the line to print."""
  image, notes = imageio.load_rgb(job.source)
  _cli.check_pixels(*image.shape[:2], _MAX_PIXELS.value)
  if _CLASSIFICATION_VIEW.value:
    data = serving.compress_for_classification(codec, image, format_version=_format_version())
    size = latent_store.DEFAULT_IMAGE_SIZE
    notes = notes + [f"compressed its {size}x{size} classification view"]
    height = width = size
  else:
    data = coding.compress_image(codec, image, format_version=_format_version())
    height, width = image.shape[:2]
  imageio.make_parent_folder(job.target)
  imageio.write_atomic(job.target, data)
  line = _cli.coded_line(job, width, height, len(data))
  return line + ("; " + "; ".join(notes) if notes else "")


def main(argv):
  if not _cli.has_two_paths(argv, USAGE):
    return 1
  try:
    jobs = imageio.plan_files(
        argv[1], argv[2], imageio.IMAGE_EXTENSIONS, ".tfci", overwrite=_OVERWRITE.value,
        skip_existing=_SKIP_EXISTING.value,
        target_suffixes=None if _ANY_OUTPUT_NAME.value else (".tfci",))
    # The codec loads only once we know there is work, so a refusal is immediate.
    runnable = any(job.problem is None and job.skipped is None for job in jobs)
    codec = _load_codec() if runnable else None
  except (ValueError, OSError) as e:
    _error(e)
    return 1
  return _cli.run_file_jobs(jobs, lambda job: compress_file(codec, job),
                            summary=os.path.isdir(argv[1]))


def run():
  _cli.run(main)


if __name__ == "__main__":
  run()
