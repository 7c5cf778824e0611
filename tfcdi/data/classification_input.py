"""The classifiers' input pipeline: the examples of one input, cropped, flipped and batched.

One net (a row of nets.specs.NETS) reads one input:

  original  the uncompressed images of an ImageFolder split (RGB nets)
  decoded   the codec's reconstructions of a latent store (RGB nets): the baseline of the paper
  latent    the quantized representation z_hat of the same store (cResNets): the paper's point

`describe_data` checks that an input's data exist and fit the config and gives its DataSpec,
whose `examples` are the full, uncropped examples of a split (data/latent_store.py for the
latent arm, data/rgb_arms.py for the two RGB arms).

All three see the same geometry (latent_store.square_view: a 256 x 256 view): the RGB nets take
random 224 x 224 crops, the cResNets random 28 x 28 crops of the 32 x 32 latent, both with
random mirroring (`train_input`); evaluation takes the central crop (`eval_input`). The input is
centred by a per-channel mean estimated once on the training split (`channel_mean`); the model
holds it (nets/classifier.py).

A store of the hyperprior codec (the follow-up work, shared/papers/004) holds y_hat and
sigma_hat, 16 x 16 x M for a 256 view. Its latent arm reads `latent_inputs`
(nets.classifier.LATENT_INPUTS): both, for the two-branch cResNet, or y_hat alone. Both take the
follow-up's geometry for every example (data/latent_pairs.py): y_hat and sigma_hat resized to
32 x 32 (`hyperprior_resize`), one random 28 x 28 crop and one random flip shared by the two;
evaluation takes the central 28 x 28 of the resized pair. The y_hat arm gets exactly the views
of the two-branch arm, minus sigma_hat. Each input has its own channel mean.

`config` is the training config (train.classifier.ClassifierTrainConfig); the pipeline reads
its sizes (rgb_size, rgb_crop, latent_crop, hyperprior_resize), batch_size, seed,
shuffle_buffer, cache_latents and mean_examples.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from tfcdi.codec import registry
from tfcdi.data import images as images_lib
from tfcdi.data import latent_pairs
from tfcdi.data import latent_store
from tfcdi.data import rgb_arms
from tfcdi.nets import classifier as classifier_net

# Fixed so that a limited evaluation (eval_examples > 0) sees the same subset every epoch.
_EVAL_SEED = 1234


class TrainingError(ValueError):
  """The net, the input, the data or the workdir do not fit together.

  One error for all of a classifier's training: defined here, where the input is checked, and
  raised by train.classifier (as its TrainingError) for the rest.
  """


@dataclasses.dataclass(frozen=True)
class DataSpec:
  """Where one input kind's examples come from, and what they look like."""

  input_kind: str
  data_dir: str | None
  store_dir: str | None
  classes: tuple
  channels: int
  view_size: int  # side of the example the crop is taken from (pixels or latent entries)
  train_split: str = "train"
  eval_split: str = "val"
  family: str = "autoencoder"  # of the store's codec
  latent_inputs: str | None = None  # hyperprior latent arm: one of classifier_net.LATENT_INPUTS
  latent_names: tuple = ()  # what the store's codec family gives its latent arm

  @property
  def reads_pairs(self) -> bool:
    """The latent arm of a store whose codec gives several latents (the hyperprior's y_hat and
    sigma_hat): examples are {latent name: tensor} pairs."""
    return self.input_kind == "latent" and len(self.latent_names) > 1

  def count(self, split: str) -> int:
    if self.input_kind == "original":
      return len(images_lib.list_images(self.data_dir, split)[0])
    return latent_store.num_examples(self.store_dir, split)

  def _cached(self, split: str, config) -> bool:
    """Whether the latent arm reads the split's latent cache: the same symbols in the same
    orders as the .tfci files, without range-decoding them every epoch."""
    return config.cache_latents and latent_store.has_latent_cache(self.store_dir, split)

  def examples(self, split: str, config, *, shuffle: bool = False,
               seed: int = 0, skip: int = 0) -> tf.data.Dataset:
    """Full, uncropped examples (float32 [S, S, C], int32 label).

    The latent arm of a hyperprior store gives ({"y_hat", "sigma_hat"}, label) instead, both
    float32 [h, w, M] as stored (not yet resized).
    """
    if self.reads_pairs:
      ds = latent_store.latent_dataset(
          self.store_dir, split, shuffle=shuffle, seed=seed, skip=skip,
          shuffle_buffer=config.shuffle_buffer, cached=self._cached(split, config))
      names = self.latent_names
      return ds.map(lambda *example: (dict(zip(names, example[:-1])),
                                      tf.cast(example[-1], tf.int32)),
                    num_parallel_calls=tf.data.AUTOTUNE)
    if self.input_kind == "original":
      ds = rgb_arms.original_dataset(self.data_dir, split, image_size=config.rgb_size,
                                     shuffle=shuffle, seed=seed, skip=skip)
    elif self.input_kind == "decoded":
      ds = rgb_arms.decoded_dataset(self.store_dir, split, shuffle=shuffle, seed=seed,
                                    skip=skip, shuffle_buffer=config.shuffle_buffer)
      store_size = latent_store.read_metadata(self.store_dir)["image_size"]
      if store_size != config.rgb_size:  # a preset that wants a smaller RGB view
        size = config.rgb_size
        ds = ds.map(lambda x, y: (tf.image.resize(x, [size, size], antialias=True), y),
                    num_parallel_calls=tf.data.AUTOTUNE)
    else:
      ds = latent_store.latent_dataset(self.store_dir, split, shuffle=shuffle, seed=seed,
                                       skip=skip, shuffle_buffer=config.shuffle_buffer,
                                       cached=self._cached(split, config))
    return ds.map(lambda x, y: (tf.cast(x, tf.float32), tf.cast(y, tf.int32)),
                  num_parallel_calls=tf.data.AUTOTUNE)


def describe_data(input_kind: str, *, data_dir: str | None, store_dir: str | None,
                  config, operating_point: str | None = None,
                  train_split: str = "train", eval_split: str = "val",
                  latent_inputs: str | None = None, quality: int | None = None) -> DataSpec:
  """Checks that the input's data exists and fits the config; returns its DataSpec.

  Args:
    latent_inputs: for the latent arm of a hyperprior store, "y_hat+sigma_hat" (the default)
      or "y_hat"; refused for any other arm or store.
    quality: if given, a hyperprior store must hold this quality (as `operating_point` for an
      autoencoder store).

  Raises:
    TrainingError: a missing folder or store, a store of another operating point, quality or
      family, or crops larger than the examples.
    latent_store.StoreError: an unreadable store.
  """
  if latent_inputs is not None and latent_inputs not in classifier_net.LATENT_INPUTS:
    raise TrainingError(f"unknown latent inputs {latent_inputs!r}; choose one of "
                        f"{', '.join(classifier_net.LATENT_INPUTS)}")
  if input_kind == "original":
    if not data_dir:
      raise TrainingError("--input=original needs --data_dir (an ImageFolder with train/val)")
    if latent_inputs is not None:
      raise TrainingError("--latent_inputs is for the latent arm of a hyperprior store")
    classes = rgb_arms.original_classes(data_dir, train_split)
    spec = DataSpec(input_kind, data_dir, None, tuple(classes), 3, config.rgb_size, train_split,
                    eval_split)
  else:
    if not store_dir:
      raise TrainingError(f"--input={input_kind} needs --store_dir (a latent store made by "
                          "tfcdi-encode-dataset)")
    meta = latent_store.read_metadata(store_dir)
    family = registry.of_json(meta["codec"])
    _check_store_codec(meta, store_dir, operating_point, quality)
    # Choosing among latents needs a store whose codec gives several (the hyperprior's).
    several = len(family.latent_names) > 1
    if latent_inputs is not None and (input_kind != "latent" or not several):
      owners = " or ".join(f.name for f in registry.families() if len(f.latent_names) > 1)
      raise TrainingError(f"--latent_inputs is for the latent arm of a {owners} store; the "
                          f"store at {store_dir} is an {family.name} store read as {input_kind}"
                          if not several else
                          f"--latent_inputs is for the latent arm of a {owners} store, not "
                          f"for --input={input_kind}")
    if input_kind == "latent":
      size, channels = meta["latent_shape"][0], meta["latent_shape"][-1]
      if several:
        size = config.hyperprior_resize  # the pair is resized before it is cropped
        latent_inputs = latent_inputs or "+".join(family.latent_names)
    else:
      size, channels = config.rgb_size, 3
    spec = DataSpec(input_kind, None, store_dir, tuple(meta["classes"]), channels, size,
                    train_split, eval_split, family.name, latent_inputs, family.latent_names)
  crop = config.crop_for(input_kind)
  if crop > spec.view_size:
    raise TrainingError(f"a {crop}x{crop} crop does not fit the {spec.view_size}x"
                        f"{spec.view_size} {input_kind} examples")
  return spec


def _check_store_codec(meta: dict, store_dir: str, operating_point, quality) -> None:
  """Refuses a store of another operating point or quality than the one asked for."""
  codec = meta["codec"]
  family = registry.of_json(codec)
  for selector, value in (("operating_point", operating_point), ("quality", quality)):
    if value is None:
      continue
    if not family.selected_by(selector):  # it picks a codec of another family
      owner = registry.of_selector(selector)
      raise TrainingError(f"the store at {store_dir} holds {family.describe(codec)} latents; "
                          f"--{selector} is for {owner.name if owner else 'other'} stores")
    if not family.same_selection(codec, value):
      raise TrainingError(f"the store at {store_dir} holds {family.describe(codec)}, not "
                          f"{value}")


def pair_geometry(config) -> latent_pairs.PairGeometry:
  """The follow-up's geometry at the config's sizes: resize, crop, flip."""
  return latent_pairs.PairGeometry(resize=config.hyperprior_resize, crop=config.latent_crop)


def _pair_views(data: DataSpec, config, ds, training: bool, seed: int = 0):
  """({"y_hat", "sigma_hat"}, label) -> the net's input views: both, or y_hat alone."""
  triples = ds.map(lambda x, y: (x[latent_pairs.Y_HAT], x[latent_pairs.SIGMA_HAT], y),
                   num_parallel_calls=tf.data.AUTOTUNE)
  views = latent_pairs.pair_dataset(triples, pair_geometry(config), training=training, seed=seed)
  if data.latent_inputs == classifier_net.Y_HAT:
    views = views.map(lambda x, y: (x[latent_pairs.Y_HAT], y),
                      num_parallel_calls=tf.data.AUTOTUNE)
  return views


def _crop_and_flip(x, crop: int, training: bool, seed=None):
  """A random crop and flip (training; `seed`: this example's stateless seed, shape [2]), or
  the central crop."""
  if training:
    return latent_pairs.stateless_crop_and_flip(x, crop, seed)
  return latent_pairs.central_crop(x, crop)


def train_input(data: DataSpec, config, epoch: int, skip_steps: int = 0):
  """Batches of one training epoch, in an order fixed by (seed, epoch).

  A resumed epoch skips the `skip_steps` batches it has already trained on, on the raw records.
  """
  crop = config.crop_for(data.input_kind)
  seed = config.seed + 1000 * epoch
  ds = data.examples(data.train_split, config, shuffle=True, seed=seed,
                     skip=skip_steps * config.batch_size)
  if data.reads_pairs:
    ds = _pair_views(data, config, ds, True, seed)
  else:
    # Stateless crops, one seed per example drawn from a stream fixed by the epoch's seed: a
    # stateful random op inside a parallel map hands out its draws in whatever order the
    # threads run, so two runs of one seed would not see the same crops. A resumed epoch skips
    # the seeds of the examples it skips.
    seeds = tf.data.Dataset.random(seed=seed).batch(2).skip(skip_steps * config.batch_size)
    ds = tf.data.Dataset.zip(ds, seeds).map(
        lambda example, s: (_crop_and_flip(example[0], crop, True, s), example[1]),
        num_parallel_calls=tf.data.AUTOTUNE)
  return ds.batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def eval_input(data: DataSpec, config, limit: int = 0):
  """Batches of central crops of the validation split; `limit` > 0: a fixed random subset."""
  crop = config.crop_for(data.input_kind)
  ds = data.examples(data.eval_split, config, shuffle=limit > 0, seed=_EVAL_SEED)
  if limit:
    ds = ds.take(limit)
  if data.reads_pairs:
    ds = _pair_views(data, config, ds, False)
  else:
    ds = ds.map(lambda x, y: (_crop_and_flip(x, crop, False), y),
                num_parallel_calls=tf.data.AUTOTUNE)
  return ds.batch(config.batch_size).prefetch(tf.data.AUTOTUNE)


def channel_mean(data: DataSpec, config):
  """Per-channel mean of the full training examples (or of `mean_examples` random ones).

  float32 [C]; for the two-branch net {"y_hat": [M], "sigma_hat": [M]}, one mean per input.
  The y_hat arm of a hyperprior store takes y_hat's.
  """
  limited = config.mean_examples > 0
  ds = data.examples(data.train_split, config, shuffle=limited, seed=_EVAL_SEED)
  if limited:
    ds = ds.take(config.mean_examples)
  if data.reads_pairs and data.latent_inputs == classifier_net.Y_HAT:
    ds = ds.map(lambda x, y: (x[latent_pairs.Y_HAT], y))
  totals, count = None, 0
  for x, _ in ds.batch(64):
    parts = {k: v.numpy().astype(np.float64) for k, v in x.items()} if isinstance(x, dict) else {
        None: x.numpy().astype(np.float64)}
    sums = {k: v.sum(axis=(0, 1, 2)) for k, v in parts.items()}
    totals = sums if totals is None else {k: totals[k] + sums[k] for k in totals}
    first = next(iter(parts.values()))
    count += first.shape[0] * first.shape[1] * first.shape[2]
  if not count:
    raise TrainingError(f"the {data.train_split!r} split is empty")
  means = {k: (v / count).astype(np.float32) for k, v in totals.items()}
  return means[None] if None in means else means
