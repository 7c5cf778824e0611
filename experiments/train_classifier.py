r"""tfcdi-train-classifier: one classifier of Table 2 on original, decoded or latent inputs.

  tfcdi-train-classifier --net=cresnet39 --input=latent --preset=cpu \
      --store_dir=stores/0.635 --workdir=runs/cls/cresnet39_latent_0.635
  tfcdi-train-classifier --net=resnet50 --input=decoded --preset=cpu \
      --store_dir=stores/0.635 --workdir=runs/cls/resnet50_decoded_0.635
  tfcdi-train-classifier --net=resnet50 --input=original --preset=cpu \
      --data_dir=../shared/data/imagenette2_224 --workdir=runs/cls/resnet50_original

A store of the hyperprior codec (tfcdi-encode-dataset --codec=hyperprior) holds y_hat and
sigma_hat; its latent arm trains the follow-up's two-branch net or the net on y_hat alone:

  tfcdi-train-classifier --net=cresnet39 --input=latent --latent_inputs=y_hat+sigma_hat \
      --preset=cpu --store_dir=stores/hp_q4 --workdir=runs/cls/cresnet39_two_branch_q4
  tfcdi-train-classifier --net=cresnet39 --input=latent --latent_inputs=y_hat \
      --preset=cpu --store_dir=stores/hp_q4 --workdir=runs/cls/cresnet39_y_hat_q4
  tfcdi-train-classifier --net=resnet50 --input=decoded --preset=cpu --store_dir=stores/hp_q4 \
      --codec_path=runs/hyperprior_q4/hyperprior_q4.npz --workdir=runs/cls/resnet50_decoded_q4

The latent and decoded arms read the same latent store (tfcdi-encode-dataset); the decoded arm
decodes it once into a cache beside the store (with the store's codec: the shipped bundle of its
operating point or quality, or --codec / --codec_path). Killed and restarted with the same flags,
a run resumes from its
last checkpoint. Results (config, command, per-epoch validation curves, final top-1 / top-5) go
to WORKDIR/results.json. Any field of the preset's config is overridden with --set, repeated
(e.g. --set=epochs=3 --set=lr_drop_epochs=2 --set=width_multiplier=0.25; tfcdi/configs.py).
"""

import os
import sys

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
from absl import logging

from experiments import _cli

# TensorFlow's modules, imported at first use (in main): --help and flag errors need none.
registry = _cli.lazy_import("tfcdi.codec.registry")
latent_store = _cli.lazy_import("tfcdi.data.latent_store")
classifier = _cli.lazy_import("tfcdi.train.classifier")

# allow_override on the flags other binaries share: tests import several binaries into one process.
_NET = flags.DEFINE_enum("net", None, list(_cli.NETS), "The net to train.",
                         allow_override=True)
_INPUT = flags.DEFINE_enum("input", None, list(_cli.CLASSIFIER_INPUTS), "What the net reads.",
                           allow_override=True)
_OPERATING_POINT = flags.DEFINE_string(
    "operating_point", None,
    "Codec operating point (0.0983, 0.330, 0.635); the store must hold it. Default: the "
    "store's.", allow_override=True)
_CODEC = flags.DEFINE_string(
    "codec", None, "The store's codec bundle, to build the decoded cache (default: the shipped "
    "bundle of the store's operating point).", allow_override=True)
_QUALITY, _CODEC_PATH = _cli.define_family_flags()
_LATENT_INPUTS = flags.DEFINE_enum(
    "latent_inputs", None, list(_cli.LATENT_INPUTS),
    "Hyperprior stores, --input=latent: the two-branch net on y_hat and sigma_hat (the "
    "default) or the net on y_hat alone.")
_PRESET = _cli.define_preset_flag(_cli.CLASSIFIER_PRESETS)
_STORE_DIR = flags.DEFINE_string("store_dir", None, "Latent store (inputs decoded and latent).",
                                 allow_override=True)  # encode_dataset defines it too
_DATA_DIR = flags.DEFINE_string("data_dir", None, "ImageFolder root (input original).",
                                allow_override=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints and results.json go here.",
                               allow_override=True)  # export defines it too
_TRAIN_SPLIT = flags.DEFINE_string("train_split", "train", "Split to train on.",
                                   allow_override=True)
_EVAL_SPLIT = flags.DEFINE_string("eval_split", "val",
                                  "Split evaluated every epoch (tfds ImageNet: validation).",
    allow_override=True)
_STRATEGY = _cli.define_strategy_flag()
_SET = _cli.define_set_flag()
_SEED = flags.DEFINE_integer(
    "seed", None, "Overrides the preset's seed (0): the weights' initialisation, the data order "
    "and the random crops. Give each seed of an arm its own --workdir.",
    allow_override=True)  # train_segmenter defines it too


def _codec_loader():
  """Loads the store's codec only if the decoded cache has to be built."""
  def load():
    family, path = _cli.resolve_codec_flag(_CODEC.value, _CODEC_PATH.value)
    codec_json = latent_store.read_metadata(_STORE_DIR.value)["codec"]
    store = registry.of_json(codec_json)
    # The store's own operating point or quality unless the flag gives one.
    flags_given = {"operating_point": _OPERATING_POINT.value, "quality": _QUALITY.value}
    selection = {store.selector: flags_given[store.selector] or store.selection_of(codec_json)}
    return _cli.load_codec(selection.get("operating_point"), path,
                           quality=selection.get("quality"), family=family or store.name,
                           families=(store.name,))
  return load


def main(argv):
  if len(argv) > 1:
    _cli.error(f"unexpected arguments: {' '.join(argv[1:])}")
    return 1
  if missing := _cli.missing_flags(_NET, _INPUT, _WORKDIR):
    _cli.error(missing)
    return 1
  try:  # before TensorFlow loads: a bad --set is refused at once
    config = _cli.config_from_flags("classifier", _PRESET.value, _SET.value, seed=_SEED.value)
  except ValueError as e:
    _cli.error(e)
    return 1
  logging.set_verbosity(logging.WARNING)  # checkpoint chatter would drown the progress lines
  try:
    results = classifier.train(
        _NET.value, _INPUT.value, config, workdir=_WORKDIR.value, data_dir=_DATA_DIR.value,
        store_dir=_STORE_DIR.value, codec=_codec_loader(),
        operating_point=_OPERATING_POINT.value, strategy=_STRATEGY.value,
        train_split=_TRAIN_SPLIT.value, eval_split=_EVAL_SPLIT.value,
        preset_name=_PRESET.value, command=list(sys.argv), latent_inputs=_LATENT_INPUTS.value,
        quality=_QUALITY.value,
        log=lambda msg: print(msg, flush=True))
  except _cli.clean_errors() as e:
    _cli.error(e)
    return 1
  if results.get("final"):
    final = results["final"]
    print(f"final: top-1 {final['top1']:.4f}  top-5 {final['top5']:.4f} after {final['epoch']} "
          f"epochs; results in {os.path.join(_WORKDIR.value, classifier.RESULTS_FILE)}",
          flush=True)
  return 0


def run():
  _cli.run(main)


if __name__ == "__main__":
  run()
