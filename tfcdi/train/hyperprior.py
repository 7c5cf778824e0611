"""Training of one hyperprior quality (Balle et al. 2018), with checkpoints a killed run resumes.

Library code: experiments/train_codec.py (--codec=hyperprior) parses flags and calls `train`
and `finalize`. Presets are typed configs; "tiny" is the variant the tests use.

The loss is lambda * MSE_255 + bpp (tfcdi/codec/hyperprior.py): y and z with additive uniform
noise, the rate from their likelihoods, lambda from tfcdi/codec/qualities.py.
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
from tfcdi.train import precision as precision_lib
from tfcdi.train import workdir as workdir_lib


# The config and its presets are tfcdi/configs.py's (every stage's, reached one way).
HyperpriorTrainConfig = configs.HyperpriorTrainConfig
PRESETS = configs.PRESETS["hyperprior"]


def get_config(preset: str, **overrides) -> HyperpriorTrainConfig:
  """configs.get_config("hyperprior", ...): a preset with some fields replaced (None: unset)."""
  return configs.get_config("hyperprior", preset, **overrides)


def bundle_name(quality) -> str:
  """The bundle's file name in a workdir: hyperprior_q<quality>.npz."""
  return f"hyperprior_{qualities.get_quality(quality).name}.npz"


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


def rate_distortion_loss(outputs, images, lmbda):
  """(loss, MSE on the 0-255 scale): lambda * MSE_255 + bpp."""
  mse = tf.reduce_mean(tf.square(outputs["reconstruction"] - images))
  return lmbda * mse + outputs["bpp"], mse


def train(quality, config: HyperpriorTrainConfig, data_dir: str, workdir: str,
          split: str = "train", log=print) -> dict:
  """Trains (or resumes) one quality up to config.num_steps; returns the last metrics."""
  q = qualities.get_quality(quality)
  tag = f"[hyperprior {q.name}]"
  os.makedirs(workdir, exist_ok=True)
  precision = precision_lib.resolve(config.precision)
  model, optimizer, checkpointing = build(q.quality, config, workdir, precision)
  start = checkpointing.restore()
  if start >= config.num_steps:
    log(f"{tag} already trained for {start} steps")
    return {"step": start}
  log(f"{tag} {'resuming from step %d' % start if start else 'starting'}, N={model.num_filters} "
      f"M={model.latent_channels}, lambda={q.lmbda}, computing in {precision}")
  # A different seed per resume: the data stream is not checkpointed (see train/codec.py).
  dataset = images_lib.codec_training_dataset(
      data_dir, split, config.crop, config.batch_size, seed=config.seed + start)
  lmbda = tf.constant(q.lmbda, tf.float32)
  num_pixels = float(config.batch_size * config.crop * config.crop)

  @tf.function(reduce_retracing=True)
  def step_fn(images):
    with tf.GradientTape() as tape:
      out = model(images, training=True)
      loss, mse = rate_distortion_loss(out, images, lmbda)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return {"loss": loss, "mse": mse, "bpp": out["bpp"], "y_bpp": out["y_bits"] / num_pixels,
            "z_bpp": out["z_bits"] / num_pixels}

  def describe(step, metrics, seconds):
    return (f"{tag} step {step}/{config.num_steps}  loss {metrics['loss']:.4f}  psnr "
            f"{metrics['psnr']:.2f} dB  bpp~{metrics['bpp']:.4f} (y {metrics['y_bpp']:.4f}, z "
            f"{metrics['z_bpp']:.4f})  {seconds:.2f} s/step")

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
  log(f"[hyperprior {codec.quality.name}] on {len(paths)} training images: payload "
      f"{result['payload_bpp']:.4f} bpp, table information {result['information_bpp']:.4f}, "
      f"model estimate {result['estimate_bpp']:.4f}")
  return result


def finalize(quality, config: HyperpriorTrainConfig, data_dir: str, workdir: str,
             preset_name: str, split: str = "train", log=print) -> str:
  """Turns the trained checkpoint into a compact bundle (float16 weights + integer tables).

  Returns the bundle's path, workdir/hyperprior_q<quality>.npz, named "hp-q<quality>-<preset>".
  """
  q = qualities.get_quality(quality)
  model, _, checkpointing = build(q.quality, config, workdir)
  step = checkpointing.restore()
  if step < config.num_steps:
    raise ValueError(f"hyperprior {q.name} in {workdir} is trained for {step} of "
                     f"{config.num_steps} steps; train it first")
  path = os.path.join(workdir, bundle_name(q.quality))
  name = f"hp-{q.name}-{preset_name}"
  pretrained.save_hyperprior_codec(model, q.quality, path, name,
                                   extra_metadata={"trained_steps": step, "preset": preset_name})
  codec = pretrained.load_hyperprior_codec(path=path)
  paths, _, _ = images_lib.list_images(data_dir, split)
  rng = np.random.default_rng(0)
  chosen = sorted(rng.choice(len(paths), size=min(config.check_images, len(paths)),
                             replace=False))
  check = check_bundle(codec, [paths[i] for i in chosen], log=log)
  log(f"[hyperprior {q.name}] bundle {path} ({os.path.getsize(path) / 1024:.0f} KiB), "
      f"fingerprint {codec.fingerprint.hex()}")
  workdir_lib.write_json(os.path.join(workdir, "train_summary.json"), {
      "codec": "hyperprior", "quality": q.quality, "lambda": q.lmbda, "preset": preset_name,
      "steps": step, "config": dataclasses.asdict(config), "num_filters": model.num_filters,
      "latent_channels": model.latent_channels, "bundle": os.path.basename(path), "name": name,
      "fingerprint": codec.fingerprint.hex(), "training_image_check": check})
  return path
