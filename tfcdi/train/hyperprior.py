"""Training of one hyperprior quality (Balle et al. 2018), with checkpoints a killed run resumes.

Library code: experiments/train_codec.py (--codec=hyperprior) parses flags and calls `train`
and `finalize`. Presets are typed configs; "tiny" is the variant the tests use.

The loss is lambda * D + bpp: y and z with additive uniform noise, the rate from their
likelihoods. D is the configured distortion (tfcdi/train/distortion.py): MSE on the 0-255 scale
(the first codecs' choice) or 1 - MS-SSIM (what the follow-up's codecs, CompressAI's
bmshj2018-hyperprior MS-SSIM models, were trained for); lambda is the quality's for that
distortion (tfcdi/codec/qualities.py). A workdir trains one distortion: resuming it with another
is refused (workdir/run.json).
"""

from __future__ import annotations

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from tfcdi import configs
from tfcdi import imageio
from tfcdi.codec import bitstream
from tfcdi.codec import coding
from tfcdi.codec import hyperprior as hyperprior_lib
from tfcdi.codec import pretrained
from tfcdi.codec import qualities
from tfcdi.data import images as images_lib
from tfcdi.train import codec as codec_train
from tfcdi.train import distortion as distortion_lib
from tfcdi.train import precision as precision_lib
from tfcdi.train import workdir as workdir_lib


# The config and its presets are tfcdi/configs.py's (every stage's, reached one way).
HyperpriorTrainConfig = configs.HyperpriorTrainConfig
PRESETS = configs.PRESETS["hyperprior"]


def get_config(preset: str, **overrides) -> HyperpriorTrainConfig:
  """configs.get_config("hyperprior", ...): a preset with some fields replaced (None: unset)."""
  return configs.get_config("hyperprior", preset, **overrides)


def _suffix(distortion: str, sep: str) -> str:
  tag = qualities.distortion_tag(distortion)
  return f"{sep}{tag}" if tag else ""


def bundle_name(quality, distortion: str = qualities.MSE) -> str:
  """The bundle's file name in a workdir: hyperprior_q<quality>.npz, or
  hyperprior_q<quality>_msssim.npz for an MS-SSIM codec (so both can ship side by side)."""
  return f"hyperprior_{qualities.get_quality(quality).name}{_suffix(distortion, '_')}.npz"


def codec_name(quality, distortion: str, preset_name: str) -> str:
  """The bundle's codec name: hp-q4-cpu (MSE), hp-q4-msssim-cpu (MS-SSIM)."""
  return f"hp-{qualities.get_quality(quality).name}{_suffix(distortion, '-')}-{preset_name}"


def _check_run(quality, config: HyperpriorTrainConfig, workdir: str) -> None:
  """Refuses to resume a workdir as another quality, width, loss or seed (workdir/run.json).

  Runs from before run.json existed trained MSE, and runs from before it held the seed, seed 0.
  """
  if (not os.path.exists(os.path.join(workdir, workdir_lib.RUN_FILE))
      and os.path.isdir(workdir_lib.checkpoint_dir(workdir))
      and config.distortion != qualities.MSE):
    raise ValueError(f"{workdir} holds an earlier (MSE) hyperprior run; train "
                     f"{config.distortion} in another --workdir")
  workdir_lib.check_run(
      workdir, {"quality": qualities.get_quality(quality).quality, "widths": config.widths,
                "distortion": config.distortion, "seed": config.seed},
      "hyperprior", recorded_defaults={"distortion": qualities.MSE, "seed": 0})


def build(quality, config: HyperpriorTrainConfig, workdir: str, precision: str = "float32"):
  """The model, its optimizer and checkpointing, restored from `workdir` if possible."""
  q = qualities.get_quality(quality)
  model = hyperprior_lib.from_quality(q.quality, config.widths,
                                      precision_lib.conv_dtype(precision))
  decayed_at = tf.Variable(0, dtype=tf.int64, trainable=False, name="decayed_at")
  schedule = codec_train.DecayOnce(config.learning_rate, codec_train.decay_boundary(config),
                                   decayed_at)
  optimizer = keras.optimizers.Adam(schedule, global_clipnorm=config.clip_norm)
  optimizer.build(model.trainable_variables)
  checkpointing = codec_train.StepCheckpointing(model, optimizer,
                                                workdir_lib.checkpoint_dir(workdir), decayed_at)
  return model, optimizer, checkpointing


def rate_distortion_loss(outputs, images, lmbda, distortion: str = qualities.MSE):
  """(loss, distortion term, MSE on the 0-255 scale): lambda * D + bpp.

  D is MSE_255 or 1 - MS-SSIM (`distortion`); the MSE is returned either way, for the log.
  """
  mse = distortion_lib.distortion(qualities.MSE, outputs["reconstruction"], images)
  term = mse if distortion == qualities.MSE else distortion_lib.distortion(
      distortion, outputs["reconstruction"], images)
  return lmbda * term + outputs["bpp"], term, mse


def make_train_step(model, optimizer, lmbda, distortion: str, num_pixels: float):
  """One optimizer step of the rate-distortion loss on a batch; returns the loss and its parts.

  A function of its own so that tests drive the exact step training runs.
  """
  qualities.check_distortion(distortion)
  lmbda = tf.constant(lmbda, tf.float32)

  @tf.function(reduce_retracing=True)
  def step_fn(images):
    with tf.GradientTape() as tape:
      out = model(images, training=True)
      loss, term, mse = rate_distortion_loss(out, images, lmbda, distortion)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    metrics = {"loss": loss, "mse": mse, "bpp": out["bpp"],
               "y_bpp": out["y_bits"] / num_pixels, "z_bpp": out["z_bits"] / num_pixels}
    if distortion == qualities.MS_SSIM:
      metrics["ms_ssim"] = 1.0 - term
    return metrics

  return step_fn


def train(quality, config: HyperpriorTrainConfig, data_dir: str, workdir: str,
          split: str = "train", log=print) -> dict:
  """Trains (or resumes) one quality up to config.num_steps; returns the last metrics."""
  q = qualities.get_quality(quality)
  qualities.check_distortion(config.distortion)
  tag = f"[hyperprior {q.name}{_suffix(config.distortion, ' ')}]"
  os.makedirs(workdir, exist_ok=True)
  _check_run(q.quality, config, workdir)
  keras.utils.set_random_seed(config.seed)  # the initial weights: a seed is a whole replicate
  precision = precision_lib.resolve(config.precision)
  model, optimizer, checkpointing = build(q.quality, config, workdir, precision)
  start = checkpointing.restore()
  if start >= config.num_steps:
    log(f"{tag} already trained for {start} steps")
    return {"step": start}
  lmbda = q.lambda_for(config.distortion)
  scales = ""
  if config.distortion == qualities.MS_SSIM:
    # Said at every start: fewer than five scales is not the standard MS-SSIM.
    scales = f" over {distortion_lib.scales_for(config.crop)} of 5 scales"
  log(f"{tag} {'resuming from step %d' % start if start else 'starting'}, N={model.num_filters} "
      f"M={model.latent_channels}, {config.distortion}{scales}, lambda={lmbda}, computing in "
      f"{precision}")
  # A different seed per resume: the data stream is not checkpointed (see train/codec.py).
  dataset = images_lib.codec_training_dataset(
      data_dir, split, config.crop, config.batch_size, seed=config.seed + start)
  num_pixels = float(config.batch_size * config.crop * config.crop)
  step_fn = make_train_step(model, optimizer, lmbda, config.distortion, num_pixels)

  def describe(step, metrics, seconds):
    ms_ssim = f"  ms-ssim {metrics['ms_ssim']:.4f}" if "ms_ssim" in metrics else ""
    return (f"{tag} step {step}/{config.num_steps}  loss {metrics['loss']:.4f}  psnr "
            f"{metrics['psnr']:.2f} dB{ms_ssim}  bpp~{metrics['bpp']:.4f} (y "
            f"{metrics['y_bpp']:.4f}, z {metrics['z_bpp']:.4f})  {seconds:.2f} s/step")

  metrics = codec_train.run_steps(step_fn, dataset, start, config, checkpointing,
                                  os.path.join(workdir, "tensorboard"), describe, tag, log)
  return {"step": config.num_steps, **metrics}


def check_bundle(codec: pretrained.HyperpriorCodec, paths, log=print) -> dict:
  """Real files of some images against the model's estimate and the tables' information.

  For each image: the bytes of its .tfci file, the ideal code length of its symbols under the
  bundle's integer tables, and the model's continuous estimate (the likelihoods with rounding,
  the rate training minimizes). Also checks that every file decodes to its own symbols.
  """
  file_bits = information_bits = estimate_bits = pixels = 0.0
  for path in paths:
    image, _ = imageio.load_rgb(path)
    data = coding.compress_image(codec, image)
    header, y, z, indices = coding.read_hyperprior_symbols(data, codec)
    padded, _ = hyperprior_lib.pad_to_multiple(tf.convert_to_tensor(image[None], tf.float32))
    y_ref, z_ref = codec.model.encode(padded)
    if not (np.array_equal(y, y_ref[0]) and np.array_equal(z, z_ref[0])):
      raise AssertionError(f"{path}: the file does not decode to its own symbols")
    out = codec.model(padded, training=False)
    estimate_bits += float(out["y_bits"] + out["z_bits"])
    information_bits += (
        bitstream.stream_information_bits(y, indices, codec.y_tables)
        + bitstream.stream_information_bits(z, np.broadcast_to(np.arange(z.shape[-1]), z.shape),
                                            codec.z_tables))
    file_bits += 8.0 * header.payload_length
    pixels += image.shape[0] * image.shape[1]
  result = {
      "images": len(paths),
      "payload_bpp": file_bits / pixels,
      "information_bpp": information_bits / pixels,
      "estimate_bpp": estimate_bits / pixels,
      "payload_over_information": file_bits / information_bits - 1.0,
      "information_over_estimate": information_bits / estimate_bits - 1.0,
  }
  log(f"[{codec.label}] on {len(paths)} training images: payload "
      f"{result['payload_bpp']:.4f} bpp, table information {result['information_bpp']:.4f}, "
      f"model estimate {result['estimate_bpp']:.4f}")
  return result


def finalize(quality, config: HyperpriorTrainConfig, data_dir: str, workdir: str,
             preset_name: str, split: str = "train", log=print,
             recipe: str | None = None) -> str:
  """Turns the trained checkpoint into a compact bundle (float16 weights + integer tables).

  Returns the bundle's path, workdir/hyperprior_q<quality>[_msssim].npz (bundle_name), named
  "hp-q<quality>[-msssim]-<preset>" (codec_name); its metadata records the distortion and the
  lambda it was trained with.
  """
  q = qualities.get_quality(quality)
  model, _, checkpointing = build(q.quality, config, workdir)
  step = checkpointing.restore()
  if step < config.num_steps:
    raise ValueError(f"hyperprior {q.name} in {workdir} is trained for {step} of "
                     f"{config.num_steps} steps; train it first")
  path = os.path.join(workdir, bundle_name(q.quality, config.distortion))
  name = codec_name(q.quality, config.distortion, preset_name)
  pretrained.save_hyperprior_codec(
      model, q.quality, path, name, distortion=config.distortion,
      extra_metadata={"trained_steps": step, "preset": preset_name,
                      **({"recipe": recipe} if recipe else {})})
  codec = pretrained.load_hyperprior_codec(path=path)
  paths, _, _ = images_lib.list_images(data_dir, split)
  rng = np.random.default_rng(0)
  chosen = sorted(rng.choice(len(paths), size=min(config.check_images, len(paths)),
                             replace=False))
  check = check_bundle(codec, [paths[i] for i in chosen], log=log)
  log(f"[{codec.label}] bundle {path} ({os.path.getsize(path) / 1024:.0f} KiB), "
      f"fingerprint {codec.fingerprint.hex()}")
  workdir_lib.write_json(os.path.join(workdir, "train_summary.json"), {
      "codec": "hyperprior", "quality": q.quality, "distortion": config.distortion,
      "lambda": q.lambda_for(config.distortion), "preset": preset_name, "steps": step,
      "config": dataclasses.asdict(config), "num_filters": model.num_filters,
      "latent_channels": model.latent_channels, "bundle": os.path.basename(path), "name": name,
      "fingerprint": codec.fingerprint.hex(), "training_image_check": check})
  return path


@dataclasses.dataclass(frozen=True)
class HyperpriorRecipe:
  """Everything that makes one hyperprior codec: from it, one command trains it from scratch
  (`tfcdi-train-codec --recipe=NAME`), and a killed run resumes on the same schedule. The name
  is the bundle's (codec_name), so a bundle names its recipe."""

  quality: int
  distortion: str
  preset: str
  # (field, value) pairs over the preset's HyperpriorTrainConfig.
  overrides: tuple = ()
  data: str = "imagenette2_224"  # the training images (--data_dir) the recipe is written for

  @property
  def name(self) -> str:
    return codec_name(self.quality, self.distortion, self.preset)

  def config(self) -> HyperpriorTrainConfig:
    return get_config(self.preset, distortion=self.distortion, **dict(self.overrides))


# The MS-SSIM codecs at the cpu preset train on 192-px crops: the standard five MS-SSIM scales
# need a short side of 161 px (distortion.py), the cpu preset's 128-px crops hold four, and
# Imagenette's 224-px images allow at most 224. Four crops of 192 px are 147,456 pixels per
# step, 12.5% more than the MSE codecs' eight of 128, so the two train on about the same pixels
# per step and differ in the distortion (and in crop geometry); BUILD_NOTES.md has the cost.
_MS_SSIM_CPU = (("crop", 192), ("batch_size", 4))

RECIPES = {recipe.name: recipe for recipe in (
    # What the shipped MSE codecs ran: the cpu preset as it is.
    *(HyperpriorRecipe(q, qualities.MSE, "cpu") for q in qualities.TRAINED_QUALITIES),
    # The follow-up's codecs (HyperMS-SSIM-1 / -4 / -8) at this CPU's scale.
    *(HyperpriorRecipe(q, qualities.MS_SSIM, "cpu", _MS_SSIM_CPU)
      for q in qualities.TRAINED_QUALITIES),
    # Seconds, for the tests.
    HyperpriorRecipe(4, qualities.MS_SSIM, "tiny", (("num_steps", 4), ("checkpoint_every", 2))),
)}


def train_recipe(recipe: HyperpriorRecipe, data_dir: str, kodak_dir: str | None, workdir: str,
                 split: str = "train", log=print) -> str:
  """Trains (or resumes) a recipe, bundles it and measures the bundle on Kodak from real files
  (when kodak_dir is given); returns the bundle's path. Each stage is skipped when its output
  is there and current."""
  config = recipe.config()
  train(recipe.quality, config, data_dir, workdir, split=split, log=log)
  bundle = os.path.join(workdir, bundle_name(recipe.quality, recipe.distortion))
  if (not os.path.exists(bundle)
      or pretrained.read_metadata(bundle).get("trained_steps") != config.num_steps):
    finalize(recipe.quality, config, data_dir, workdir, recipe.preset, split, log,
             recipe=recipe.name)
  if kodak_dir:
    from tfcdi.codec import evaluation  # pylint: disable=g-import-not-at-top  (bitstream only)
    evaluation.evaluate_bundle_on_folder(bundle, kodak_dir, workdir, log=log)
  return bundle
