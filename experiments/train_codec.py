r"""Trains one codec (an operating point, or a hyperprior quality), bundles it, evaluates it on Kodak.

  tfcdi-train-codec --operating_point=0.635 --preset=cpu \
      --data_dir=../shared/data/imagenette2_224 --kodak_dir=../shared/data/kodak \
      --workdir=runs/codec_0.635
  tfcdi-train-codec --codec=hyperprior --quality=4 --preset=cpu \
      --data_dir=../shared/data/imagenette2_224 --kodak_dir=../shared/data/kodak \
      --workdir=runs/hyperprior_q4
  tfcdi-train-codec --recipe=ae-0.635-cpu \
      --data_dir=../shared/data/imagenette2_224 --kodak_dir=../shared/data/kodak \
      --workdir=runs/recipe_0.635

--recipe trains a shipped autoencoder codec from scratch as its recipe says (tfcdi/train/codec.py,
RECIPES: preset, steps, schedule, precision), measuring it on Kodak from real files at each
milestone into history.json. Killed and restarted with the same flags, it continues from its
last checkpoint. Each stage is
skipped when its output exists: training (checkpoint at the last step), the bundle
(codec_<op>.npz or hyperprior_q<quality>.npz) and the Kodak evaluation from real files
(kodak_eval.json). Any field of the preset's config (the codec's, or the hyperprior's with
--codec=hyperprior) is overridden with --set, repeated (e.g. --set=num_steps=4000
--set=learning_rate=1e-4 --set=precision=float32; tfcdi/configs.py).
"""

import os

from absl import app
from absl import flags
from absl import logging

from experiments import _cli

from tfcdi.codec import operating_points
from tfcdi.codec import qualities

# TensorFlow's modules, imported at first use (in main): --help and flag errors need none.
pretrained = _cli.lazy_import("tfcdi.codec.pretrained")
codec_train = _cli.lazy_import("tfcdi.train.codec")
hyperprior_train = _cli.lazy_import("tfcdi.train.hyperprior")

# Flags that other binaries define too are declared alike (type, default None, allow_override)
# so that the binaries can share a process (the tests); main checks what is required.
FLAGS = flags.FLAGS
_OPERATING_POINT = flags.DEFINE_string(
    "operating_point", None, "Codec operating point: 0.0983, 0.330 or 0.635 (bpp; default "
    "0.635).", allow_override=True)
_, _CODEC = _cli.define_codec_flags(with_operating_point=False)
_QUALITY = _cli.define_quality_flag()
_PRESET = _cli.define_preset_flag(_cli.CODEC_PRESETS)
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "ImageFolder root with a train split (e.g. Imagenette).",
    allow_override=True)
_SPLIT = flags.DEFINE_string("split", "train", "Split of --data_dir to train on.")
_KODAK_DIR = flags.DEFINE_string(
    "kodak_dir", None, "Folder of Kodak PNGs to evaluate on (skipped if unset).")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Where checkpoints, TensorBoard logs and results go.", allow_override=True)
_SET = _cli.define_set_flag()
_RECIPE = flags.DEFINE_string(
    "recipe", None, "Train a shipped autoencoder codec from scratch by its recipe (e.g. "
    "ae-0.635-cpu; the names are tfcdi/train/codec.py's RECIPES); fixes every training "
    "setting, so it takes only --data_dir, --kodak_dir, --workdir and --split.")
_INIT_FROM = flags.DEFINE_string(
    "init_from_bundle", None, "A codec bundle (.npz) to start from when --workdir has no "
    "checkpoint: its weights and step count, with a new optimizer (give a small "
    "--set=learning_rate=...).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  for name in ("data_dir", "workdir"):
    if FLAGS[name].value is None:
      raise app.UsageError(f"--{name} is required")
  if _RECIPE.value is not None:
    return _train_recipe()
  family = _CODEC.value or "autoencoder"
  if family not in _TRAINERS:
    raise app.UsageError(f"--codec={family}: training takes a codec family, one of "
                         f"{', '.join(_TRAINERS)}")
  return _TRAINERS[family]()


def _train_autoencoder():
  """The autoencoder (the default): train, bundle and evaluate one operating point."""
  if _QUALITY.value is not None:
    raise app.UsageError("--quality is for --codec=hyperprior; the autoencoder codec takes "
                         "--operating_point")
  try:
    preset = _PRESET.value
    op_name = operating_points.get_operating_point(
        _OPERATING_POINT.value or _cli.DEFAULT_OPERATING_POINT).name
    config = _cli.config_from_flags("codec", preset, _SET.value, init_from=_INIT_FROM.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  logging.set_verbosity(logging.WARNING)  # checkpoint chatter would drown the progress lines
  log = lambda msg: print(msg, flush=True)  # noqa: E731
  codec_train.train(op_name, config, FLAGS.data_dir, FLAGS.workdir,
                    split=FLAGS.split, log=log)
  bundle = os.path.join(FLAGS.workdir, f"codec_{op_name}.npz")
  # A bundle made before the run was extended (a larger --num_steps) is stale: remake it.
  if (not os.path.exists(bundle)
      or pretrained.read_metadata(bundle).get("trained_steps") != config.num_steps):
    codec_train.finalize(op_name, config, FLAGS.data_dir, FLAGS.workdir,
                         preset, split=FLAGS.split, log=log)
  if FLAGS.kodak_dir:
    from tfcdi.codec import evaluation  # Imported late: only this stage needs the bitstream.
    evaluation.evaluate_bundle_on_folder(bundle, FLAGS.kodak_dir, FLAGS.workdir, log=log)


def _train_recipe():
  """--recipe: train, measure at milestones, bundle and evaluate one shipped codec's recipe."""
  fixed = [name for name in ("operating_point", "codec", "quality", "preset", "set",
                             "init_from_bundle")
           if FLAGS[name].present]
  if fixed:
    raise app.UsageError(f"--recipe fixes the training settings; drop --{', --'.join(fixed)}")
  if _KODAK_DIR.value is None:
    raise app.UsageError("--recipe measures the codec at its milestones: --kodak_dir is required")
  try:
    recipe = codec_train.get_recipe(_RECIPE.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  logging.set_verbosity(logging.WARNING)
  log = lambda msg: print(msg, flush=True)  # noqa: E731
  codec_train.train_recipe(recipe, _DATA_DIR.value, _KODAK_DIR.value, _WORKDIR.value,
                           split=_SPLIT.value, log=log)


def _train_hyperprior():
  """--codec=hyperprior: train, bundle and evaluate one quality."""
  if _OPERATING_POINT.value is not None:
    raise app.UsageError("--operating_point is for the autoencoder codec; the hyperprior codec "
                         "takes --quality")
  if _INIT_FROM.value is not None:
    raise app.UsageError("--init_from_bundle is for the autoencoder codec")
  try:
    preset = _PRESET.value
    quality = qualities.get_quality(
        _QUALITY.value if _QUALITY.value is not None else _cli.DEFAULT_QUALITY).quality
    config = _cli.config_from_flags("hyperprior", preset, _SET.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  logging.set_verbosity(logging.WARNING)
  log = lambda msg: print(msg, flush=True)  # noqa: E731
  hyperprior_train.train(quality, config, FLAGS.data_dir, FLAGS.workdir, split=FLAGS.split,
                         log=log)
  bundle = os.path.join(FLAGS.workdir, hyperprior_train.bundle_name(quality))
  if (not os.path.exists(bundle)
      or pretrained.read_metadata(bundle).get("trained_steps") != config.num_steps):
    hyperprior_train.finalize(quality, config, FLAGS.data_dir, FLAGS.workdir, preset,
                              split=FLAGS.split, log=log)
  if FLAGS.kodak_dir:
    from tfcdi.codec import evaluation  # pylint: disable=g-import-not-at-top
    evaluation.evaluate_bundle_on_folder(bundle, FLAGS.kodak_dir, FLAGS.workdir, log=log)


# How each codec family trains (its own trainer module, with its own flags); the codec package
# knows no training code.
_TRAINERS = {"autoencoder": _train_autoencoder, "hyperprior": _train_hyperprior}


def run():
  _cli.run(main)


if __name__ == "__main__":
  run()
