"""Geometry of the two-branch cResNet's inputs: (y_hat, sigma_hat) resized, cropped, flipped together.

The follow-up work on the scale-hyperprior codec (shared/papers/004, Section 2.3, after Deng &
Karam 2021) classifies from two tensors of the same shape, the quantized latent y_hat and the
predicted scales sigma_hat, both h x w x M with h, w = H/16, W/16 of the image. Their sizes vary
with the dataset (a 362 x 362 MINC-2500 patch gives 23 x 23, a 256 x 256 RESISC45 image 16 x 16),
so the follow-up brings every pair to one geometry:

  training     resize both to 32 x 32, one random 28 x 28 crop and one random horizontal flip,
               applied identically to y_hat and sigma_hat (a crop or flip of one but not the
               other would pair each latent with the scales of another position);
  evaluation   resize both to 32 x 32 and take the central 28 x 28 (the follow-up does not say;
               this is the usual evaluation counterpart of a random crop).

Resizing is bilinear with antialiasing (only matters when a latent is larger than 32 x 32).
The same geometry with other sizes is a `PairGeometry`; `PRESETS` names the follow-up's
("followup") and a tiny one for tests ("tiny").

Randomness is stateless and seeded per example: the stream of crops and flips is a function of
the seed alone and differs from one epoch (iteration of the dataset) to the next.

Examples in: (y_hat, sigma_hat, label). Examples out: ({"y_hat": ..., "sigma_hat": ...}, label),
keyed by the input names of the two-branch net (nets.specs.INPUT_BRANCHES["hyperprior"]), so
they can be given to keras.Model.fit as they are.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

Y_HAT = "y_hat"
SIGMA_HAT = "sigma_hat"

RESIZE_METHODS = ("bilinear", "nearest", "bicubic", "area")


@dataclasses.dataclass(frozen=True)
class PairGeometry:
  """How a (y_hat, sigma_hat) pair is brought to the net's input size.

  Attributes:
    resize: side both tensors are resized to first.
    crop: side of the crop taken from the resized pair (random in training, central otherwise);
      the net's input is crop x crop x M.
    flip: mirror left-right with probability 1/2 in training.
    method: tf.image.resize method of the resize step.
  """

  resize: int = 32
  crop: int = 28
  flip: bool = True
  method: str = "bilinear"

  def __post_init__(self):
    if not 0 < self.crop <= self.resize:
      raise ValueError(f"PairGeometry needs 0 < crop <= resize, got crop={self.crop}, "
                       f"resize={self.resize}.")
    if self.method not in RESIZE_METHODS:
      raise ValueError(f"PairGeometry.method must be one of {RESIZE_METHODS}, got "
                       f"{self.method!r}.")


PRESETS: dict[str, PairGeometry] = {
    # shared/papers/004, Section 2.3: "resized to 32 x 32 and then randomly cropped to 28 x 28,
    # followed by a random horizontal flipping".
    "followup": PairGeometry(resize=32, crop=28, flip=True),
    # For tests and smoke runs: small latents, the same steps.
    "tiny": PairGeometry(resize=8, crop=6, flip=True),
}


def get_geometry(geometry: str | PairGeometry) -> PairGeometry:
  """A preset by name, or `geometry` itself."""
  if isinstance(geometry, PairGeometry):
    return geometry
  try:
    return PRESETS[geometry]
  except KeyError:
    raise ValueError(f"Unknown pair geometry {geometry!r}; expected one of "
                     f"{', '.join(PRESETS)} or a PairGeometry.") from None


def _check_pair(y_hat, sigma_hat):
  y_hat = tf.convert_to_tensor(y_hat, tf.float32)
  sigma_hat = tf.convert_to_tensor(sigma_hat, tf.float32)
  if y_hat.shape.rank != 3 or sigma_hat.shape.rank != 3:
    raise ValueError(f"y_hat and sigma_hat must be [height, width, M] each, got shapes "
                     f"{y_hat.shape} and {sigma_hat.shape}.")
  if not y_hat.shape.is_compatible_with(sigma_hat.shape):
    raise ValueError(f"y_hat and sigma_hat must have the same shape, got {y_hat.shape} and "
                     f"{sigma_hat.shape}.")
  tf.debugging.assert_equal(tf.shape(y_hat), tf.shape(sigma_hat),
                            message="y_hat and sigma_hat must have the same shape")
  return y_hat, sigma_hat


def _stacked(y_hat, sigma_hat, geometry: PairGeometry):
  """Both tensors resized to geometry.resize and stacked along channels: [S, S, 2M]."""
  pair = tf.concat([y_hat, sigma_hat], axis=-1)
  size = [geometry.resize, geometry.resize]
  pair = tf.image.resize(pair, size, method=geometry.method, antialias=True)
  return tf.ensure_shape(pair, size + [pair.shape[-1]])


def _split(pair, channels):
  return pair[..., :channels], pair[..., channels:]


def stateless_crop_and_flip(x, crop: int, seed, flip: bool = True):
  """A crop x crop window of x [h, w, c] and (if `flip`) a horizontal flip, both drawn from
  `seed` (int tensor [2]) alone: the same seed gives the same view in any thread order."""
  crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  x = tf.image.stateless_random_crop(x, [crop, crop, tf.shape(x)[-1]], seed=crop_seed)
  if flip:
    x = tf.image.stateless_random_flip_left_right(x, seed=flip_seed)
  return x


def central_crop(x, crop, crop_width=None):
  """The central crop x crop (or crop x crop_width) window of x [..., h, w, c], batched or not.

  The one evaluation crop of every arm (classifier training's evaluation, the pair views,
  serving), so that what a net is scored on is what it is served. An odd margin leaves the
  extra row / column at the bottom / right.
  """
  # Static sizes where known keep the crop's static shape, which Keras inputs expect.
  height = x.shape[-3] if x.shape[-3] is not None else tf.shape(x)[-3]
  width = x.shape[-2] if x.shape[-2] is not None else tf.shape(x)[-2]
  crop_width = crop if crop_width is None else crop_width
  top = (height - crop) // 2
  left = (width - crop_width) // 2
  return x[..., top:top + crop, left:left + crop_width, :]


def augment_pair(y_hat, sigma_hat, geometry: str | PairGeometry = "followup", *, seed):
  """Training view of one pair: resize, one random crop and one random flip for both.

  Args:
    y_hat: float [h, w, M].
    sigma_hat: float [h, w, M], the same shape.
    geometry: a `PairGeometry` or the name of a preset.
    seed: int tensor of shape [2], the stateless seed of this example's crop and flip.

  Returns:
    (y_hat, sigma_hat), float32 [crop, crop, M] each.
  """
  geometry = get_geometry(geometry)
  y_hat, sigma_hat = _check_pair(y_hat, sigma_hat)
  channels = tf.shape(y_hat)[-1]
  pair = _stacked(y_hat, sigma_hat, geometry)
  # One crop and flip of the stacked pair keeps y_hat and sigma_hat aligned.
  pair = stateless_crop_and_flip(pair, geometry.crop, seed, geometry.flip)
  return _split(pair, channels)


def center_pair(y_hat, sigma_hat, geometry: str | PairGeometry = "followup"):
  """Evaluation view of one pair: resize, then the central crop x crop square of both."""
  geometry = get_geometry(geometry)
  y_hat, sigma_hat = _check_pair(y_hat, sigma_hat)
  channels = tf.shape(y_hat)[-1]
  pair = _stacked(y_hat, sigma_hat, geometry)
  return _split(central_crop(pair, geometry.crop), channels)


def pair_dataset(examples: tf.data.Dataset, geometry: str | PairGeometry = "followup", *,
                 training: bool, seed: int = 0) -> tf.data.Dataset:
  """(y_hat, sigma_hat, label) examples -> ({"y_hat", "sigma_hat"}, label) in the net's geometry.

  Args:
    examples: a dataset of (y_hat, sigma_hat, label), y_hat and sigma_hat float [h, w, M] of the
      same shape (h, w may vary between examples).
    geometry: a `PairGeometry` or a preset name ("followup": 32 -> random 28, flip).
    training: random crop and flip (`augment_pair`) if True, central crop (`center_pair`)
      otherwise.
    seed: the seed of the crops and flips; each iteration of the returned dataset (each epoch
      of a repeated one) draws new ones, the same for the same seed.

  Returns:
    A dataset of ({"y_hat": float32 [crop, crop, M], "sigma_hat": ...}, label), in the order of
    `examples`; batch it afterwards.
  """
  geometry = get_geometry(geometry)
  if training:
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def train_view(example, example_seed):
      y_hat, sigma_hat, label = example
      y_hat, sigma_hat = augment_pair(y_hat, sigma_hat, geometry, seed=example_seed)
      return {Y_HAT: y_hat, SIGMA_HAT: sigma_hat}, label

    return tf.data.Dataset.zip(examples, seeds).map(
        train_view, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

  def eval_view(y_hat, sigma_hat, label):
    y_hat, sigma_hat = center_pair(y_hat, sigma_hat, geometry)
    return {Y_HAT: y_hat, SIGMA_HAT: sigma_hat}, label

  return examples.map(eval_view, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
