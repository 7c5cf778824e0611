r"""tfcdi-import-codec: another library's trained codec -> an ordinary tfcdi codec bundle.

  tfcdi-import-codec --from=compressai --architecture=bmshj2018-hyperprior --quality=3 \
      --checkpoint=bmshj2018-hyperprior-3.pth.tar --output=hp_compressai_q3.npz
  tfcdi-compress --codec_path=hp_compressai_q3.npz photo.png photo.tfci

Reads the checkpoint without torch (a torch.save'd state dict, or an .npz of the same names),
maps its parameters (tfcdi/codec/importers/compressai.py says how), derives the integer coding
tables from the imported weights as for tfcdi's own codecs, and writes the bundle: compress,
decompress, encode-dataset, the classifiers and classify then take it like a shipped one.
Nothing is downloaded: bring the checkpoint. A checkpoint that does not match the architecture
and quality given is refused with one line naming the first tensor that differs.
"""

import os

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

from experiments import _cli

compressai = _cli.lazy_import("tfcdi.codec.importers.compressai")
pretrained = _cli.lazy_import("tfcdi.codec.pretrained")

# The importer's architectures, listed here so that --help and flag errors need no TensorFlow.
_ARCHITECTURES = ("bmshj2018-factorized", "bmshj2018-hyperprior", "mbt2018-mean")

_FROM = flags.DEFINE_enum("from", "compressai", ["compressai"],
                          "The library that trained the checkpoint.")
_ARCHITECTURE = flags.DEFINE_enum("architecture", None, _ARCHITECTURES,
                                  "The checkpoint's architecture, by the library's zoo name.")
_QUALITY = flags.DEFINE_integer("quality", None, "The checkpoint's quality (1-8): fixes N and M.",
                                lower_bound=1, upper_bound=8)
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "The checkpoint file (.pth, .pth.tar, "
                                  ".npz).")
# allow_override: tests import this binary beside tools that also have an --output.
_OUTPUT = flags.DEFINE_string("output", None, "Where to write the bundle (.npz).",
                              allow_override=True)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing output bundle.")

USAGE = ("usage: tfcdi-import-codec --from=compressai --architecture=NAME --quality=Q "
         "--checkpoint=FILE --output=BUNDLE.npz")


def main(argv):
  missing = [f"--{name}" for name, flag in (("architecture", _ARCHITECTURE),
                                            ("quality", _QUALITY), ("checkpoint", _CHECKPOINT),
                                            ("output", _OUTPUT)) if flag.value is None]
  if len(argv) > 1 or missing:
    _cli.error(f"{'missing ' + ', '.join(missing) if missing else 'unexpected arguments'}. "
               f"{USAGE}")
    return 1
  output = _OUTPUT.value
  if not output.endswith(".npz"):
    _cli.error(f"the bundle's name must end in .npz, got {output!r}")
    return 1
  if os.path.exists(output) and not _OVERWRITE.value:
    _cli.error(f"{output} exists; give --overwrite to replace it")
    return 1
  try:
    fingerprint = compressai.import_checkpoint(_CHECKPOINT.value, _ARCHITECTURE.value,
                                               _QUALITY.value, output)
    meta = pretrained.read_metadata(output)
  except (ValueError, OSError) as e:
    _cli.error(e)
    return 1
  print(f"{_CHECKPOINT.value} -> {output}: codec {meta['name']!r} ({meta['family']} family, "
        f"N={meta['num_filters']}, M={meta['latent_channels']}, fingerprint "
        f"{fingerprint.hex()})")
  return 0


def run():
  _cli.run(main)


if __name__ == "__main__":
  run()
