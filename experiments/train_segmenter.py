r"""Trains a DeepLab-v2 segmenter on original, decoded or latent inputs and evaluates its mIoU.

  tfcdi-train-segmenter --net=cresnet51 --input=latent --operating_point=0.0983 \
      --preset=cpu --data_dir=../shared/data/camvid --workdir=runs/seg_cresnet51_0.0983

  tfcdi-train-segmenter --net=resnet50 --input=decoded --operating_point=0.0983 ...
  tfcdi-train-segmenter --net=resnet50 --input=original ...

The decoded and latent arms encode the dataset once into a latent store of real .tfci bytes
(and decode it once for the decoded arm) under --cache_dir (default WORKDIR/cache); point runs
that share a codec at the same --cache_dir. Killed and restarted with the same flags, a run
continues from its last checkpoint. Results: WORKDIR/results.json (mIoU, per-class IoU, config,
command) and WORKDIR/predictions.npz (a few validation masks, for tfcdi.figures). Any field of
the preset's config is overridden with --set, repeated (e.g. --set=num_steps=100
--set=eval_limit=20; tfcdi/configs.py).
"""

import shlex

from absl import app
from absl import flags
from absl import logging

from experiments import _cli

# TensorFlow's modules, imported at first use (in main): --help and flag errors need none.
segmenter_train = _cli.lazy_import("tfcdi.train.segmenter")

# Flags that other binaries define too (train_classifier, train_codec) are declared with the
# same type, choices and default and allow_override, so that tests can import the binaries into
# one process; none is marked required (a validator would apply to every binary there), main
# checks instead.
_NET = flags.DEFINE_enum("net", None, list(_cli.NETS),
                         "Backbone; its dilated -d variant is trained.", allow_override=True)
_INPUT = flags.DEFINE_enum("input", None, list(_cli.SEGMENTER_INPUTS),
                           "original / decoded RGB (ResNets) or the latent (cResNets).",
                           allow_override=True)
_OPERATING_POINT = flags.DEFINE_string(
    "operating_point", None, "Codec operating point of the decoded and latent arms (0.0983, "
    "0.330, 0.635): its shipped codec.", allow_override=True)
_CODEC = flags.DEFINE_string("codec", None, "Codec bundle (.npz) instead of the shipped one.",
                             allow_override=True)
_PRESET = _cli.define_preset_flag(_cli.SEGMENTER_PRESETS)
_DATASET = flags.DEFINE_enum("dataset", "camvid", ["camvid", "voc"], "Segmentation dataset.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "CamVid root, or for VOC VOCdevkit/VOC2012 or a CamVid-style folder.",
    allow_override=True)
_TRAIN_SPLIT = flags.DEFINE_string("train_split", "train",
                                   "Training split (VOC with SBD: train_aug).", allow_override=True)
_EVAL_SPLIT = flags.DEFINE_string("eval_split", "val", "Evaluation split.", allow_override=True)
_WORKDIR = flags.DEFINE_string("workdir", None,
                               "Checkpoints, results.json and predictions.npz go here.",
                               allow_override=True)
_CACHE_DIR = flags.DEFINE_string("cache_dir", None,
                                 "Latent / decoded stores (default WORKDIR/cache).")
_INIT_FROM = flags.DEFINE_string(
    "init_from", None, "Classifier of the same arm to initialise the backbone from: a .keras "
    "file or a checkpoint folder.")
_SET = _cli.define_set_flag()
_SEED = flags.DEFINE_integer("seed", None, "Overrides the preset's seed of the training data "
                             "order (the initial weights differ from run to run anyway).",
                             allow_override=True)  # train_classifier defines it too
_ALL_FLAGS = (_NET, _INPUT, _OPERATING_POINT, _CODEC, _PRESET, _DATASET, _DATA_DIR, _TRAIN_SPLIT,
              _EVAL_SPLIT, _WORKDIR, _CACHE_DIR, _INIT_FROM, _SET, _SEED)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if missing := _cli.missing_flags(_NET, _INPUT, _DATA_DIR, _WORKDIR):
    raise app.UsageError(missing)
  try:
    preset = _PRESET.value
    config = _cli.config_from_flags("segmenter", preset, _SET.value, seed=_SEED.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  logging.set_verbosity(logging.WARNING)  # checkpoint chatter would drown the progress lines
  try:
    segmenter_train.train(
        _NET.value, _INPUT.value, config, _DATA_DIR.value, _WORKDIR.value,
        dataset=_DATASET.value, operating_point=_OPERATING_POINT.value, codec_path=_CODEC.value,
        init_from=_INIT_FROM.value, cache_dir=_CACHE_DIR.value, train_split=_TRAIN_SPLIT.value,
        eval_split=_EVAL_SPLIT.value, preset_name=preset, command=_command_line(),
        log=lambda msg: print(msg, flush=True))
  except _cli.clean_errors() as e:
    _cli.error(e)
    return 1
  return 0


def _command_line() -> str:
  """The invocation, rebuilt from the flags given explicitly (recorded in results.json)."""
  given = [f"--{h.name}={value}" for h in _ALL_FLAGS if h.present
           for value in (h.value if isinstance(h.value, list) else [h.value])]
  return shlex.join(["tfcdi-train-segmenter", *given])


def run():
  _cli.run(main)


if __name__ == "__main__":
  run()
