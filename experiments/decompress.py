r"""tfcdi-decompress: .tfci files -> PNG images.

  tfcdi-decompress photo.tfci photo.png
  tfcdi-decompress compressed/ decoded/                 # every .tfci -> <stem>.png
  tfcdi-decompress --codec_path=path/to/bundle.npz photo.tfci photo.png

Each file names its codec family (autoencoder or hyperprior) and the codec that made it; without
--codec_path that codec is looked up among the shipped ones. A file made by another codec than --codec is refused, never decoded into a wrong
image. Problems are one `error: ...` line each on stderr; the exit status is 1 if any file
failed. Existing outputs are kept unless --overwrite is given, and outputs are written
atomically.
"""

import os
import sys



# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags

from experiments import _cli

from tfcdi import imageio

with _cli.native_stderr_silenced():  # the first import of TensorFlow
  from tfcdi.codec import bitstream
  from tfcdi.codec import coding
  from tfcdi.codec import pretrained

# allow_override: the compress binary defines flags of the same names; see compress.py.
_CODEC = flags.DEFINE_string(
    "codec", None, "The codec: a family (autoencoder, hyperprior; files of another family are "
    "then refused), or the path of the codec bundle (.npz) that made the files (same as "
    "--codec_path). Default: the family and the shipped codec each file names.",
    allow_override=True)
_CODEC_PATH = _cli.define_codec_path_flag()
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "Replace output files that already exist.", allow_override=True)

USAGE = "usage: tfcdi-decompress [--codec_path=BUNDLE] INPUT OUTPUT"


def _error(message) -> None:
  print("error: " + " ".join(str(message).split("\n")), file=sys.stderr, flush=True)


def decompress_file(codec, job: imageio.FileJob, family: str | None = None) -> str:
  """Decompresses one .tfci file; returns the line to print.

  codec: the codec that made it, or None to find the one its header names; family: the only
  codec family accepted, or None for any.
  """
  with open(job.source, "rb") as f:
    data = f.read()
  if family is not None:
    made_by = bitstream.FAMILY_NAMES[bitstream.parse_header(data).codec_family]
    if made_by != family:
      raise pretrained.CodecError(f"the file is of the {made_by} family, not of the {family} "
                                  f"family (--codec={family})")
  image = coding.decompress_bytes(data, codec)
  os.makedirs(os.path.dirname(os.path.abspath(job.target)), exist_ok=True)
  imageio.save_png(job.target, image)
  height, width = image.shape[:2]
  return (f"{job.source} -> {job.target}: {width}x{height} px, {len(data)} bytes, "
          f"{8 * len(data) / (height * width):.4f} bpp")


def main(argv):
  if len(argv) != 3:
    _error(f"expected an input and an output path, got {len(argv) - 1} arguments. {USAGE}")
    return 1
  try:
    jobs = imageio.plan_files(argv[1], argv[2], (".tfci",), ".png", overwrite=_OVERWRITE.value)
    family, path = _cli.resolve_codec_flag(_CODEC.value, _CODEC_PATH.value)
    wanted = path and any(job.problem is None for job in jobs)
    codec = pretrained.load_codec(path=path) if wanted else None
    if codec is not None and family not in (None, codec.family):
      raise ValueError(f"{path} is a codec of the {codec.family} family, not of the {family} "
                       "family")
  except (ValueError, OSError) as e:
    _error(e)
    return 1
  return _cli.run_file_jobs(jobs, lambda job: decompress_file(codec, job, family))


def run():
  app.run(main)


if __name__ == "__main__":
  run()
