r"""tfcdi-decompress: .tfci files -> PNG (or JPEG, WebP) images.

  tfcdi-decompress photo.tfci photo.png
  tfcdi-decompress photo.tfci photo.jpg                 # JPEG (quality 95); .webp: lossless WebP
  tfcdi-decompress compressed/ decoded/                 # every .tfci -> <stem>.png
  tfcdi-decompress --skip_existing compressed/ decoded/ # resume a stopped folder run
  tfcdi-decompress --codec_path=path/to/bundle.npz photo.tfci photo.png

Each file names its codec family (autoencoder or hyperprior) and the codec that made it; without
--codec_path that codec is looked up among the shipped ones. A file made by another codec than
--codec is refused, never decoded into a wrong image, and so is a file whose header announces an
image of more than --max_pixels pixels (before anything is decoded). The output's format is the
one its name ends in: .png, .jpg / .jpeg or .webp.

Problems are one `error: ...` line each on stderr; the exit status is 1 if any file failed. A
folder's other files are named as skipped, and a closing line counts the files written, failed
and skipped. Existing outputs are kept unless --overwrite is given (--skip_existing leaves them
and goes on), and outputs are written atomically.
"""

import os

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

from experiments import _cli

from tfcdi import imageio
from tfcdi.codec import bitstream  # NumPy and the entropy coder only

# TensorFlow's modules, imported at first use (in main): --help and flag errors need none.
registry = _cli.lazy_import("tfcdi.codec.registry")
coding = _cli.lazy_import("tfcdi.codec.coding")
pretrained = _cli.lazy_import("tfcdi.codec.pretrained")

# allow_override: the compress binary defines flags of the same names; see compress.py.
_CODEC = flags.DEFINE_string(
    "codec", None, "The codec: a family (autoencoder, hyperprior; files of another family are "
    "then refused), or the path of the codec bundle (.npz) that made the files (same as "
    "--codec_path). Default: the family and the shipped codec each file names.",
    allow_override=True)
_CODEC_PATH = _cli.define_codec_path_flag()
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Replace output files that already exist.", allow_override=True)
_SKIP_EXISTING = flags.DEFINE_bool(
    "skip_existing", False, "Leave output files that already exist as they are, and go on with "
    "the other files (resumes a folder run that was stopped).", allow_override=True)
_MAX_PIXELS = _cli.define_max_pixels_flag()

USAGE = ("usage: tfcdi-decompress [--codec_path=BUNDLE] INPUT OUTPUT\n"
         "  INPUT   a .tfci file, or a folder of them\n"
         "  OUTPUT  the image file (.png, .jpg, .jpeg or .webp), or a folder (ending in / if it "
         "does not exist yet)")


_error = _cli.error


def decompress_file(codec, job: imageio.FileJob, family: str | None = None) -> str:
  """Decompresses one .tfci file; returns the line to print.

  codec: the codec that made it, or None to find the one its header names; family: the only
  codec family accepted, or None for any.
  """
  with open(job.source, "rb") as f:
    data = f.read()
  # Before anything is decoded: a file of a few hundred KB can announce a 16384 x 16384 image.
  # The built-in families' headers parse without TensorFlow, so such a file is refused at once,
  # before the codecs' modules load.
  if bitstream.family_byte(data) in bitstream.SUPPORTED_FAMILIES:
    _cli.check_pixels(*bitstream.parse_header(data).image_size, _MAX_PIXELS.value,
                      what="the image the file announces")
  header = registry.parse_header(data)
  _cli.check_pixels(*header.image_size, _MAX_PIXELS.value, what="the image the file announces")
  if family is not None:
    try:
      registry.check_file_family(header, family)
    except pretrained.CodecError as e:
      raise pretrained.CodecError(f"{e} (--codec={family})") from None
  image = coding.decompress_bytes(data, codec)
  imageio.make_parent_folder(job.target)
  imageio.save_image(job.target, image)
  height, width = image.shape[:2]
  return _cli.coded_line(job, width, height, len(data))


def main(argv):
  if not _cli.has_two_paths(argv, USAGE):
    return 1
  try:
    jobs = imageio.plan_files(argv[1], argv[2], (".tfci",), ".png", overwrite=_OVERWRITE.value,
                              skip_existing=_SKIP_EXISTING.value,
                              target_suffixes=tuple(imageio.OUTPUT_FORMATS))
    family, path = _cli.resolve_codec_flag(_CODEC.value, _CODEC_PATH.value)
    wanted = path and any(job.problem is None and job.skipped is None for job in jobs)
    # registry.load refuses a bundle of another family than --codec names.
    codec = registry.load(path, family=family) if wanted else None
  except (ValueError, OSError) as e:
    _error(e)
    return 1
  return _cli.run_file_jobs(jobs, lambda job: decompress_file(codec, job, family),
                            summary=os.path.isdir(argv[1]))


def run():
  _cli.run(main)


if __name__ == "__main__":
  run()
