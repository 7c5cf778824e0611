r"""Trains one codec operating point, makes its compact bundle, and evaluates it on Kodak.

  tfcdi-train-codec --operating_point=0.635 --preset=cpu \
      --data_dir=../shared/data/imagenette2_224 --kodak_dir=../shared/data/kodak \
      --workdir=runs/codec_0.635

Killed and restarted with the same flags, it continues from its last checkpoint. Each stage is
skipped when its output exists: training (checkpoint at the last step), the bundle
(codec_<op>.npz) and the Kodak evaluation from real files (kodak_eval.json).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from experiments import _cli  # noqa: E402

from tfcdi.codec import pretrained  # noqa: E402

from tfcdi.train import codec as codec_train  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("operating_point", "0.635", ["0.0983", "0.330", "0.635"],
                  "Operating point (bpp) to train.")
flags.DEFINE_enum("preset", "cpu", list(codec_train.PRESETS), "Training preset.")
flags.DEFINE_string("data_dir", None, "ImageFolder root with a train split (e.g. Imagenette).")
flags.DEFINE_string("split", "train", "Split of --data_dir to train on.")
flags.DEFINE_string("kodak_dir", None, "Folder of Kodak PNGs to evaluate on (skipped if unset).")
flags.DEFINE_string("workdir", None, "Where checkpoints, TensorBoard logs and results go.")
flags.DEFINE_integer("num_steps", None, "Overrides the preset's number of steps.")
flags.DEFINE_integer("batch_size", None, "Overrides the preset's batch size.")
flags.DEFINE_float("learning_rate", None, "Overrides the preset's learning rate.")
_PRECISION = _cli.define_precision_flag()
_INIT_FROM = flags.DEFINE_string(
    "init_from", None, "A codec bundle (.npz) to start from when --workdir has no checkpoint: "
    "its weights and step count, with a new optimizer (give a small --learning_rate).")
flags.mark_flags_as_required(["data_dir", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  config = codec_train.get_config(FLAGS.preset, num_steps=FLAGS.num_steps,
                                  batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate,
                                  precision=_PRECISION.value, init_from=_INIT_FROM.value)
  logging.set_verbosity(logging.WARNING)  # checkpoint chatter would drown the progress lines
  log = lambda msg: print(msg, flush=True)  # noqa: E731
  codec_train.train(FLAGS.operating_point, config, FLAGS.data_dir, FLAGS.workdir,
                    split=FLAGS.split, log=log)
  bundle = os.path.join(FLAGS.workdir, f"codec_{FLAGS.operating_point}.npz")
  # A bundle made before the run was extended (a larger --num_steps) is stale: remake it.
  if (not os.path.exists(bundle)
      or pretrained.read_metadata(bundle).get("trained_steps") != config.num_steps):
    codec_train.finalize(FLAGS.operating_point, config, FLAGS.data_dir, FLAGS.workdir,
                         FLAGS.preset, split=FLAGS.split, log=log)
  if FLAGS.kodak_dir:
    from tfcdi.codec import evaluation  # Imported late: only this stage needs the bitstream.
    evaluation.evaluate_bundle_on_folder(bundle, FLAGS.kodak_dir, FLAGS.workdir, log=log)


def run():
  app.run(main)


if __name__ == "__main__":
  run()
