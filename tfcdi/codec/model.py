"""The Theis-style convolutional autoencoder of Torfason et al. (Section 3.1, Appendix A.1).

Encoder: 5x5/2 conv to 64, 5x5/2 conv to 128, three residual units (two 3x3 convs of 128 each),
5x5/2 conv to C, giving a w/8 x h/8 x C representation. The decoder mirrors it with transposed
convolutions. Between them, the scalar quantizer of quantizer.py maps every entry to one of L
learned centers; the centers' indices are the symbols a .tfci file stores.

Images go in and come out as float32 in [0, 255] (uint8 pixel scale), so the MSE of Eq. 1 is on
the same scale as the paper's PSNR = 10 log10(255^2 / MSE). Height and width must be multiples of
8; `pad_to_multiple` / `crop_to` handle any other size.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfcdi.codec import operating_points
from tfcdi.codec import quantizer as q

# The representation is 8x smaller than the image in each spatial dimension.
DOWNSAMPLING = operating_points.DOWNSAMPLING
NUM_RESIDUAL_UNITS = 3
KERNEL = 5


def _residual_unit(x, filters, name, dtype=None):
  # Two 3x3 convolutions and an identity shortcut (Theis et al. 2017).
  y = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv1",
                          dtype=dtype)(x)
  y = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv2", dtype=dtype)(y)
  return keras.layers.Add(name=f"{name}_add", dtype=dtype)([x, y])


def build_encoder(channels: int, filters=operating_points.PAPER_FILTERS, name="encoder",
                  dtype=None) -> keras.Model:
  """image [B, H, W, 3] in [0, 255] -> representation y [B, H/8, W/8, C] (before quantization).

  `dtype` is the convolutions' dtype policy (None: float32; "mixed_bfloat16" for training on a
  CPU with bfloat16 units). The output is always float32, for the quantizer.
  """
  f1, f2 = filters
  images = keras.Input((None, None, 3), name="images")
  # [0, 255] -> [-1, 1]: the paper states no input scaling; a zero-centred input of unit range
  # is this project's choice (BUILD_NOTES.md, deviations from the text).
  x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_unit_range", dtype="float32")(
      images)
  x = keras.layers.Conv2D(f1, KERNEL, strides=2, padding="same", activation="relu", name="down1",
                          dtype=dtype)(x)
  x = keras.layers.Conv2D(f2, KERNEL, strides=2, padding="same", activation="relu", name="down2",
                          dtype=dtype)(x)
  for i in range(NUM_RESIDUAL_UNITS):
    x = _residual_unit(x, f2, name=f"res{i + 1}", dtype=dtype)
  y = keras.layers.Conv2D(channels, KERNEL, strides=2, padding="same", name="down3", dtype=dtype)(x)
  # Symbols and the entropy estimate need float32: bfloat16 keeps 8 bits of mantissa.
  y = keras.layers.Activation("linear", name="to_float32", dtype="float32")(y)
  return keras.Model(images, y, name=name)


def build_decoder(channels: int, filters=operating_points.PAPER_FILTERS, name="decoder",
                  dtype=None) -> keras.Model:
  """quantized representation [B, h, w, C] -> image [B, 8h, 8w, 3] in (about) [0, 255]."""
  f1, f2 = filters
  z_hat = keras.Input((None, None, channels), name="z_hat")
  x = keras.layers.Conv2DTranspose(
      f2, KERNEL, strides=2, padding="same", activation="relu", name="up1", dtype=dtype)(z_hat)
  for i in range(NUM_RESIDUAL_UNITS):
    x = _residual_unit(x, f2, name=f"res{i + 1}", dtype=dtype)
  x = keras.layers.Conv2DTranspose(
      f1, KERNEL, strides=2, padding="same", activation="relu", name="up2", dtype=dtype)(x)
  x = keras.layers.Conv2DTranspose(3, KERNEL, strides=2, padding="same", name="up3", dtype=dtype)(x)
  # Scaled in float32: bfloat16 steps by a whole grey level near 255.
  images = keras.layers.Rescaling(127.5, offset=127.5, name="to_pixel_range", dtype="float32")(x)
  return keras.Model(z_hat, images, name=name)


@keras.saving.register_keras_serializable(package="tfcdi")
class Quantizer(keras.layers.Layer):
  """Holds the L learned centers; maps a representation to symbols and quantized values."""

  def __init__(self, num_centers: int, sigma: float = 1.0, **kwargs):
    super().__init__(**kwargs)
    self.num_centers = int(num_centers)
    self.sigma = float(sigma)
    # Sorted, evenly spread initial centers over [-2, 2], as in Agustsson et al. (2017).
    self.centers = self.add_weight(
        name="centers",
        shape=(self.num_centers,),
        initializer=keras.initializers.Constant(np.linspace(-2.0, 2.0, self.num_centers)),
        trainable=True,
    )

  def call(self, y):
    return q.quantize(y, self.centers, self.sigma)

  def symbols(self, y):
    return q.symbols_of(y, tf.convert_to_tensor(self.centers))

  def get_config(self):
    return {**super().get_config(), "num_centers": self.num_centers, "sigma": self.sigma}


@keras.saving.register_keras_serializable(package="tfcdi")
class Autoencoder(keras.Model):
  """Encoder -> quantizer -> decoder, with the rate estimate of the histogram entropy.

  `call` is the training path; `encode`, `latent` and `decode` are the inference interfaces the
  bitstream, the latent store and the compressed-domain nets use.
  """

  def __init__(self, channels: int, num_centers: int = 6, sigma: float = 1.0,
               filters=operating_points.PAPER_FILTERS, conv_dtype=None, **kwargs):
    super().__init__(**kwargs)
    self.channels = int(channels)
    self.num_centers = int(num_centers)
    self.sigma = float(sigma)
    self.filters = tuple(int(f) for f in filters)
    # Only training changes it; the variables stay float32 either way, so a checkpoint or a
    # bundle loads into a model of either precision.
    self.conv_dtype = conv_dtype
    self.encoder = build_encoder(self.channels, self.filters, dtype=conv_dtype)
    self.quantizer = Quantizer(self.num_centers, self.sigma, name="quantizer", dtype="float32")
    self.decoder = build_decoder(self.channels, self.filters, dtype=conv_dtype)

  def call(self, images, training=False):
    """Returns reconstruction, representation, symbols and both entropy estimates (bits)."""
    y = self.encoder(images, training=training)
    z_hat = self.quantizer(y)
    reconstruction = self.decoder(z_hat, training=training)
    centers = tf.convert_to_tensor(self.quantizer.centers)
    symbols = q.symbols_of(y, centers)
    return {
        "reconstruction": reconstruction,
        "y": y,
        "z_hat": z_hat,
        "symbols": symbols,
        # The loss uses the soft histogram (differentiable); reports use the hard one.
        "soft_entropy": q.entropy_bits(q.soft_histogram(y, centers, self.sigma)),
        "entropy": q.entropy_bits(q.hard_histogram(symbols, self.num_centers)),
    }

  def build_weights(self):
    """Creates every weight by running one tiny image, so weights can be loaded or counted."""
    self(tf.zeros([1, DOWNSAMPLING, DOWNSAMPLING, 3]))
    return self

  def encode(self, images):
    """images [B, H, W, 3] in [0, 255] (H, W multiples of 8) -> symbols [B, H/8, W/8, C] int32."""
    return self.quantizer.symbols(self.encoder(images, training=False))

  def latent(self, symbols):
    """symbols -> z_hat = centers[symbols], the compressed representation the cResNets read."""
    return tf.gather(tf.convert_to_tensor(self.quantizer.centers), symbols)

  def decode(self, symbols):
    """symbols -> reconstructed images [B, 8h, 8w, 3], float32 clipped to [0, 255]."""
    images = self.decoder(self.latent(symbols), training=False)
    return tf.clip_by_value(images, 0.0, 255.0)

  def get_config(self):
    return {
        **super().get_config(),
        "channels": self.channels,
        "num_centers": self.num_centers,
        "sigma": self.sigma,
        "filters": list(self.filters),
        "conv_dtype": self.conv_dtype,
    }


def from_operating_point(op, filters=operating_points.PAPER_FILTERS,
                         conv_dtype=None) -> Autoencoder:
  """Builds the autoencoder of an operating point (see operating_points.py)."""
  model = Autoencoder(op.channels, op.num_centers, op.sigma, filters, conv_dtype,
                      name=f"codec_{op.name}")
  return model.build_weights()


def pad_to_multiple(images, multiple=DOWNSAMPLING):
  """Pads [B, H, W, 3] at the bottom/right by edge replication to multiples of `multiple`.

  Edge replication (not zeros) keeps the padded border cheap to code and free of a hard edge.
  Returns the padded batch and the original (H, W) to crop back to.
  """
  shape = tf.shape(images)
  height, width = shape[1], shape[2]
  pad_h = (-height) % multiple
  pad_w = (-width) % multiple
  # Gathering clamped indices replicates the last row / column; unlike tf.pad's SYMMETRIC mode
  # this works for any size, even an image narrower than the padding.
  rows = tf.minimum(tf.range(height + pad_h), height - 1)
  cols = tf.minimum(tf.range(width + pad_w), width - 1)
  padded = tf.gather(tf.gather(images, rows, axis=1), cols, axis=2)
  return padded, (height, width)


def crop_to(images, size):
  height, width = size
  return images[:, :height, :width, :]
