r"""Trains a DeepLab-v2 segmenter on original, decoded or latent inputs and evaluates its mIoU.

  tfcdi-train-segmenter --net=cresnet51 --input=latent --operating_point=0.0983 \
      --preset=cpu --data_dir=../shared/data/camvid --workdir=runs/seg_cresnet51_0.0983

  tfcdi-train-segmenter --net=resnet50 --input=decoded --operating_point=0.0983 ...
  tfcdi-train-segmenter --net=resnet50 --input=original ...

The decoded and latent arms encode the dataset once into a latent store of real .tfci bytes
(and decode it once for the decoded arm) under --cache_dir (default WORKDIR/cache); point runs
that share a codec at the same --cache_dir. Killed and restarted with the same flags, a run
continues from its last checkpoint. Results: WORKDIR/results.json (mIoU, per-class IoU, config,
command) and WORKDIR/predictions.npz (a few validation masks, for tfcdi.figures).
"""

import os
import shlex
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from tfcdi.train import segmenter as segmenter_train  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("net", "resnet50", ["resnet50", "resnet71", "cresnet39", "cresnet51",
                                      "cresnet72"], "Backbone (its dilated -d variant).")
flags.DEFINE_enum("input", "original", list(segmenter_train.INPUTS),
                  "original / decoded RGB (ResNets) or the latent (cResNets).")
flags.DEFINE_enum("operating_point", None, ["0.0983", "0.330", "0.635"],
                  "Codec operating point of the decoded and latent arms (a shipped codec).")
flags.DEFINE_string("codec", None, "Codec bundle (.npz) to use instead of the shipped one.")
flags.DEFINE_enum("preset", "cpu", list(segmenter_train.PRESETS), "Training preset.")
flags.DEFINE_enum("dataset", "camvid", ["camvid", "voc"], "Segmentation dataset.")
flags.DEFINE_string("data_dir", None, "CamVid root, or VOCdevkit/VOC2012 (or a CamVid-style "
                    "folder) for VOC.")
flags.DEFINE_string("train_split", "train", "Training split (VOC with SBD: train_aug).")
flags.DEFINE_string("eval_split", "val", "Evaluation split.")
flags.DEFINE_string("workdir", None, "Checkpoints, results.json and predictions.npz go here.")
flags.DEFINE_string("cache_dir", None, "Latent / decoded stores (default WORKDIR/cache).")
flags.DEFINE_string("init_from", None, "Classifier of the same arm to initialise the backbone "
                    "from: a .keras file or a checkpoint folder.")
flags.DEFINE_integer("num_steps", None, "Overrides the preset's number of steps.")
flags.DEFINE_integer("batch_size", None, "Overrides the preset's batch size.")
flags.DEFINE_float("learning_rate", None, "Overrides the preset's backbone learning rate.")
flags.DEFINE_float("head_learning_rate_multiplier", None,
                   "Overrides the preset's ratio of the ASPP head's learning rate to the rest's.")
flags.DEFINE_float("width_multiplier", None, "Overrides the preset's width multiplier.")
flags.DEFINE_integer("crop", None, "Overrides the preset's RGB crop (latent crop = crop / 8).")
flags.DEFINE_integer("eval_every", None, "Overrides the preset's evaluation interval.")
flags.DEFINE_integer("eval_limit", None, "Evaluate on the first N validation images only.")
flags.mark_flags_as_required(["data_dir", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  config = segmenter_train.get_config(
      FLAGS.preset, num_steps=FLAGS.num_steps, batch_size=FLAGS.batch_size,
      learning_rate=FLAGS.learning_rate,
      head_learning_rate_multiplier=FLAGS.head_learning_rate_multiplier,
      width_multiplier=FLAGS.width_multiplier,
      crop=FLAGS.crop, eval_every=FLAGS.eval_every, eval_limit=FLAGS.eval_limit)
  logging.set_verbosity(logging.WARNING)  # checkpoint chatter would drown the progress lines
  segmenter_train.train(
      FLAGS.net, FLAGS.input, config, FLAGS.data_dir, FLAGS.workdir, dataset=FLAGS.dataset,
      operating_point=FLAGS.operating_point, codec_path=FLAGS.codec, init_from=FLAGS.init_from,
      cache_dir=FLAGS.cache_dir, train_split=FLAGS.train_split, eval_split=FLAGS.eval_split,
      preset_name=FLAGS.preset, command=shlex.join(sys.argv),
      log=lambda msg: print(msg, flush=True))


def run():
  app.run(main)


if __name__ == "__main__":
  run()
