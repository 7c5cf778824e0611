r"""tfcdi-train-joint: Eq. 2 fine-tuning of codec and cResNet-51, and its control arms.

  # joint ft.: codec + classifier, from the shipped codec and the baseline cResNet-51
  tfcdi-train-joint --arm=joint --operating_point=0.0983 --preset=cpu \
      --classifier=runs/cls/cresnet51_0.0983 --data_dir=../shared/data/imagenette2_224 \
      --kodak_dir=../shared/data/kodak --workdir=runs/joint/joint_0.0983

  # the control (Section 6.1): compression ft. alone, a new store, cResNet-51 from scratch on
  # it, then the same schedule on the classifier alone
  tfcdi-train-joint --arm=codec --operating_point=0.0983 --preset=cpu \
      --data_dir=../shared/data/imagenette2_224 --kodak_dir=../shared/data/kodak \
      --workdir=runs/joint/codec_0.0983
  tfcdi-encode-dataset --codec=runs/joint/codec_0.0983/codec_0.0983.npz \
      --data_dir=../shared/data/imagenette2_224 --store_dir=stores/codecft_0.0983
  tfcdi-train-classifier --net=cresnet51 --input=latent --preset=cpu \
      --store_dir=stores/codecft_0.0983 --workdir=runs/cls/cresnet51_codecft_0.0983
  tfcdi-train-joint --arm=classifier --codec=runs/joint/codec_0.0983/codec_0.0983.npz \
      --classifier=runs/cls/cresnet51_codecft_0.0983 --preset=cpu \
      --data_dir=../shared/data/imagenette2_224 --workdir=runs/joint/control_0.0983

Killed and restarted with the same flags, a run resumes from its last checkpoint. Results go to
WORKDIR/results.json: the evaluation before and after (top-1 / top-5 on the whole validation
split, PSNR and entropy of the codec), per-epoch curves and, with --kodak_dir, the Kodak rate and
quality of the codec before and after, from real files. A fine-tuned codec is written as
WORKDIR/codec_OP.npz and a fine-tuned classifier as WORKDIR/classifier (a train_classifier
workdir: tfcdi-export and tfcdi-train-segmenter --init_from take it). Any field of the preset's
config is overridden with --set, repeated (e.g. --set=epochs=2 --set=gamma=0.01;
tfcdi/configs.py).
"""

import os
import sys

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
from absl import logging

from experiments import _cli

# TensorFlow's modules, imported at first use (in main): --help and flag errors need none.
joint = _cli.lazy_import("tfcdi.train.joint")

_ARM = flags.DEFINE_enum("arm", None, list(_cli.JOINT_ARMS),
                         "joint: codec + classifier (Eq. 2); codec: the codec alone; "
                         "classifier: the classifier alone on a fixed codec.")
_OPERATING_POINT, _CODEC = _cli.define_codec_flags()
_CLASSIFIER = flags.DEFINE_string(
    "classifier", None, "train_classifier workdir of the cResNet trained on the codec's "
    "latents (arms joint and classifier; arm codec only evaluates it).")
_PRESET = _cli.define_preset_flag(_cli.JOINT_PRESETS)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "ImageFolder root with train and val splits.",
                                allow_override=True)
_KODAK_DIR = flags.DEFINE_string("kodak_dir", None, "Kodak PNGs, to measure the codec before "
                                 "and after from real files (skipped if unset).",
                                 allow_override=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints and results.json go here.",
                               allow_override=True)
_TRAIN_SPLIT = flags.DEFINE_string("train_split", "train", "Split to train on.",
                                   allow_override=True)
_EVAL_SPLIT = flags.DEFINE_string("eval_split", "val", "Split evaluated on.",
                                  allow_override=True)
_SET = _cli.define_set_flag()


def main(argv):
  if len(argv) > 1:
    _cli.error(f"unexpected arguments: {' '.join(argv[1:])}")
    return 1
  if missing := _cli.missing_flags(_ARM, _DATA_DIR, _WORKDIR):
    _cli.error(missing)
    return 1
  try:  # before TensorFlow loads: a bad --set is refused at once
    config = _cli.config_from_flags("joint", _PRESET.value, _SET.value)
  except ValueError as e:
    _cli.error(e)
    return 1
  logging.set_verbosity(logging.WARNING)
  try:
    results = joint.train(
        _ARM.value, config, workdir=_WORKDIR.value, data_dir=_DATA_DIR.value,
        codec_path=_CODEC.value,
        operating_point=_OPERATING_POINT.value or (None if _CODEC.value else "0.635"),
        classifier_dir=_CLASSIFIER.value, kodak_dir=_KODAK_DIR.value,
        train_split=_TRAIN_SPLIT.value, eval_split=_EVAL_SPLIT.value,
        preset_name=_PRESET.value, command=list(sys.argv),
        log=lambda msg: print(msg, flush=True))
  except _cli.clean_errors() as e:
    _cli.error(e)
    return 1
  print(f"results in {os.path.join(_WORKDIR.value, joint.RESULTS_FILE)}", flush=True)
  return 0


def run():
  _cli.run(main)


if __name__ == "__main__":
  run()
