r"""tfcdi-export: SavedModels with explicit serving signatures (see tfcdi/serving.py).

  tfcdi-export --what=encoder --operating_point=0.635 --export_dir=exports/encoder_0.635
  tfcdi-export --what=classifier --workdir=runs/cls/cresnet51_latent_0.635 \
      --export_dir=exports/cresnet51_0.635 [--labels=../shared/data/imagenet_samples/labels.tsv]
  tfcdi-export --what=classifier --workdir=runs/cls/cresnet39_two_branch_q4 \
      --export_dir=exports/cresnet39_two_branch_q4 [--codec_path=BUNDLE.npz]

A classifier trained on a hyperprior store exports with `classify` (y_symbols and, for the
two-branch net, scale_indices, as a reader of the .tfci file gets them) and `classify_latents`
(y_hat and sigma_hat) signatures and the codec's integer tables, taken from the store it trained
on (or from --codec_path).

Classifier exports also get `classify_file` (a batch of .tfci files, format version 2, as
tf.string -> top-5 labels and a per-file status, all decoding inside the graph) and
`decode_symbols`; the encoder export gets `decode_symbols`.

Inspect the result with `saved_model_cli show --dir DIR --all`. Problems are one
`error: ...` line on stderr and exit status 1.
"""

import os

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
from absl import logging

from experiments import _cli

# TensorFlow's modules, imported at first use (in main): --help and flag errors need none.
serving = _cli.lazy_import("tfcdi.serving")

_WHAT = flags.DEFINE_enum("what", None, ["encoder", "classifier"], "What to export.")
_EXPORT_DIR = flags.DEFINE_string("export_dir", None, "Where the SavedModel goes.")
_OPERATING_POINT, _CODEC = _cli.define_codec_flags()
_CODEC_PATH = _cli.define_codec_path_flag()
_WORKDIR = flags.DEFINE_string("workdir", None, "A tfcdi-train-classifier workdir (classifier).",
                               allow_override=True)  # train_classifier defines it too
_LABELS = flags.DEFINE_string("labels", None, "TSV with wnid and name columns for class names.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing export.",
                               allow_override=True)


_error = _cli.error


def _load_codec():
  """The codec of the flags (a pretrained.Codec)."""
  family, path = _cli.resolve_codec_flag(_CODEC.value, _CODEC_PATH.value)
  return _cli.load_codec(_OPERATING_POINT.value, path, family=family)


def main(argv):
  if len(argv) > 1:
    _error(f"unexpected arguments: {' '.join(argv[1:])}")
    return 1
  if _WHAT.value is None or _EXPORT_DIR.value is None:
    _error("--what and --export_dir are required")
    return 1
  target = _EXPORT_DIR.value
  logging.set_verbosity(logging.WARNING)  # SavedModel writing logs every file it writes
  if os.path.isdir(target) and os.listdir(target) and not _OVERWRITE.value:
    _error(f"{target} exists and is not empty (use --overwrite to replace it)")
    return 1
  try:
    if _WHAT.value == "encoder":
      serving.export_encoder(_load_codec(), target)
      print(f"exported the encoder to {target}: signature 'encode' (serving_default), images "
            "uint8 [B, H, W, 3] -> symbols int32 [B, ceil(H/8), ceil(W/8), C]", flush=True)
    else:
      if _WORKDIR.value is None:
        _error("--what=classifier needs --workdir")
        return 1
      _, codec_path = _cli.resolve_codec_flag(_CODEC.value, _CODEC_PATH.value)
      serving.export_latent_classifier(_WORKDIR.value, target, labels_file=_LABELS.value,
                                       codec_path=codec_path)
      info = serving.read_info(target)
      if info.get("latent_inputs"):  # a net on named latents: two signatures
        inputs = ("y_symbols, scale_indices" if info["latent_inputs"] == "y_hat+sigma_hat"
                  else "y_symbols")
        latents = ("y_hat, sigma_hat" if info["latent_inputs"] == "y_hat+sigma_hat"
                   else "y_hat")
        print(f"exported the classifier to {target}: signature 'classify' (serving_default), "
              f"{inputs} int32 [B, h, w, M] -> probabilities [B, classes]; signature "
              f"'classify_latents', {latents} float32 [B, h, w, M]; signature 'labels'; "
              "signature 'classify_file', files string [B] (.tfci bytes) -> top-5 and status; "
              "signature 'decode_symbols'", flush=True)
      else:
        print(f"exported the classifier to {target}: signature 'classify' (serving_default), "
              "symbols int32 [B, h, w, C] -> probabilities [B, classes]; signature 'labels'; "
              "signature 'classify_file', files string [B] (.tfci bytes) -> top-5 and status; "
              "signature 'decode_symbols'", flush=True)
  except (ValueError, OSError) as e:
    _error(e)
    return 1
  return 0


def run():
  _cli.run(main)


if __name__ == "__main__":
  run()
