r"""Trains one codec (an operating point, or a hyperprior quality), bundles it, evaluates it on Kodak.

  tfcdi-train-codec --operating_point=0.635 --preset=cpu \
      --data_dir=../shared/data/imagenette2_224 --kodak_dir=../shared/data/kodak \
      --workdir=runs/codec_0.635
  tfcdi-train-codec --codec=hyperprior --quality=4 --preset=cpu \
      --data_dir=../shared/data/imagenette2_224 --kodak_dir=../shared/data/kodak \
      --workdir=runs/hyperprior_q4
  tfcdi-train-codec --codec=hyperprior --distortion=ms-ssim --quality=4 --preset=cpu \
      --data_dir=../shared/data/imagenette2_224 --kodak_dir=../shared/data/kodak \
      --workdir=runs/hyperprior_q4_msssim
  tfcdi-train-codec --recipe=ae-0.635-cpu \
      --data_dir=../shared/data/imagenette2_224 --kodak_dir=../shared/data/kodak \
      --workdir=runs/recipe_0.635
  tfcdi-train-codec --recipe=hp-q4-msssim-cpu \
      --data_dir=../shared/data/imagenette2_224 --kodak_dir=../shared/data/kodak \
      --workdir=runs/hp_q4_msssim

--distortion picks what a hyperprior quality trains for: mse (lambda * MSE + bpp) or ms-ssim
(lambda * (1 - MS-SSIM) + bpp), each with CompressAI's lambda of the quality; the default is
the preset's (paper: ms-ssim, cpu and tiny: mse). The bundle records it.

--recipe trains a codec from scratch as its recipe says: an autoencoder's (tfcdi/train/codec.py,
RECIPES: preset, steps, schedule, precision; measured on Kodak from real files at each
milestone into history.json) or a hyperprior's (tfcdi/train/hyperprior.py, RECIPES: quality,
distortion, preset and what it changes, e.g. hp-q4-msssim-cpu). A recipe that starts from
another's codec (ae-0.635-cpu-wide) trains that one first, in <workdir>/start/. Killed and
restarted with the same flags, it continues from its last checkpoint. Each stage is
skipped when its output exists: training (checkpoint at the last step), the bundle
(codec_<op>.npz or hyperprior_q<quality>[_msssim].npz) and the Kodak evaluation from real files
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
_DISTORTION = flags.DEFINE_enum(
    "distortion", None, list(qualities.DISTORTIONS), "What a hyperprior codec trains for "
    "(--codec=hyperprior): mse or ms-ssim; default: the preset's (paper ms-ssim, cpu mse).")
_RECIPE = flags.DEFINE_string(
    "recipe", None, "Train a codec from scratch by its recipe (e.g. ae-0.635-cpu or "
    "hp-q4-msssim-cpu; the names are the RECIPES of tfcdi/train/codec.py and "
    "tfcdi/train/hyperprior.py); fixes every training "
    "setting, so it takes only --data_dir, --kodak_dir, --workdir, --split and --seed.")
_SEED = flags.DEFINE_integer(
    "seed", None, "Overrides the preset's or recipe's seed (0): the initial weights and the data "
    "order. A recipe run with another seed is a replicate of it, for its run-to-run spread; give "
    "each seed its own --workdir.", lower_bound=0,
    allow_override=True)  # train_classifier and train_segmenter define it too
_INIT_FROM = flags.DEFINE_string(
    "init_from_bundle", None, "A codec bundle (.npz) to start from when --workdir has no "
    "checkpoint: its weights and step count, with a new optimizer (give a small "
    "--set=learning_rate=...). A bundle whose filters divide --set=filters=... is widened to "
    "them first, computing the same function (tfcdi/codec/widen.py).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if missing := _cli.missing_flags(FLAGS["data_dir"], FLAGS["workdir"]):
    raise app.UsageError(missing)
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
  if _DISTORTION.value is not None:
    raise app.UsageError("--distortion is for --codec=hyperprior; the autoencoder codec trains "
                         "Eq. 1 (MSE)")
  try:
    preset = _PRESET.value
    op_name = operating_points.get_operating_point(
        _OPERATING_POINT.value or _cli.DEFAULT_OPERATING_POINT).name
    config = _cli.config_from_flags("codec", preset, _SET.value, init_from=_INIT_FROM.value,
                                    seed=_SEED.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  logging.set_verbosity(logging.WARNING)  # checkpoint chatter would drown the progress lines
  log = lambda msg: print(msg, flush=True)  # noqa: E731
  try:
    codec_train.train(op_name, config, FLAGS.data_dir, FLAGS.workdir, split=FLAGS.split, log=log)
  except ValueError as e:  # an --init_from_bundle of another point or of filters it cannot widen
    raise app.UsageError(str(e)) from None
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
                             "init_from_bundle", "distortion")
           if FLAGS[name].present]
  if fixed:
    raise app.UsageError(f"--recipe fixes the training settings; drop --{', --'.join(fixed)}")
  if _KODAK_DIR.value is None:
    raise app.UsageError("--recipe measures the codec on Kodak: --kodak_dir is required")
  if _RECIPE.value in hyperprior_train.RECIPES:
    recipe, run = hyperprior_train.RECIPES[_RECIPE.value], hyperprior_train.train_recipe
  elif _RECIPE.value in codec_train.RECIPES:
    recipe, run = codec_train.RECIPES[_RECIPE.value], codec_train.train_recipe
  else:
    known = ", ".join([*codec_train.RECIPES, *hyperprior_train.RECIPES])
    raise app.UsageError(f"unknown codec recipe {_RECIPE.value!r}; choose one of {known}")
  recipe = codec_train.replicate(recipe, _SEED.value or 0)
  logging.set_verbosity(logging.WARNING)
  log = lambda msg: print(msg, flush=True)  # noqa: E731
  try:
    run(recipe, _DATA_DIR.value, _KODAK_DIR.value, _WORKDIR.value, split=_SPLIT.value, log=log)
  except ValueError as e:  # e.g. a workdir that trains something else
    raise app.UsageError(str(e)) from None


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
    config = _cli.config_from_flags("hyperprior", preset, _SET.value,
                                    distortion=_DISTORTION.value, seed=_SEED.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  logging.set_verbosity(logging.WARNING)
  log = lambda msg: print(msg, flush=True)  # noqa: E731
  try:
    hyperprior_train.train(quality, config, FLAGS.data_dir, FLAGS.workdir, split=FLAGS.split,
                           log=log)
  except ValueError as e:  # a workdir that trains another quality or distortion
    raise app.UsageError(str(e)) from None
  bundle = os.path.join(FLAGS.workdir,
                        hyperprior_train.bundle_name(quality, config.distortion))
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
