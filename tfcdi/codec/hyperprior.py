"""The scale-hyperprior codec of Balle et al. 2018 ("bmshj2018"), the second codec family.

  g_a    image [B, H, W, 3] in [0, 255] -> y [B, H/16, W/16, M]:
         four 5x5 convolutions of stride 2 (N, N, N, M channels), GDN after the first three
  h_a    |y| -> z [B, H/64, W/64, N]: 3x3/1 conv + ReLU, 5x5/2 conv + ReLU, 5x5/2 conv
  h_s    z_hat -> sigma [B, H/16, W/16, M]: 5x5/2 transposed conv + ReLU, 5x5/2 transposed
         conv + ReLU, 3x3/1 transposed conv (M channels) + ReLU
  g_s    y_hat -> image: four 5x5 transposed convolutions of stride 2 (N, N, N, 3), IGDN after
         the first three

z is coded under a factorized density, one learned univariate distribution per channel
(Balle's non-parametric density: the cumulative is a monotone per-channel MLP,
`FactorizedDensity`); y under a zero-mean Gaussian whose scale sigma, per element, the
hyper-synthesis predicts from z_hat. Training replaces rounding by additive uniform noise
(both y and z), and the rate is -log2 of the likelihoods of the noisy values, so the loss is
lambda * MSE_255 + bpp, with MSE_255 the mean squared error on the 0-255 scale: the same as the
paper's lambda * 255^2 * MSE[0, 1] + bpp (qualities.py holds lambda per quality).

Deterministic entropy coding. A decoder must pick, for every y symbol, exactly the table the
encoder used. Those tables depend on sigma_hat = h_s(z_hat), a neural network output. Computed
in floating point, it differs between machines in its last bits (summation order, fused
multiply-adds, GPU vs CPU kernels), and a sigma that falls within that noise of a bin edge would
be binned differently by encoder and decoder: the decoder then reads garbage from that point on.
Binning with a margin cannot fix this, since the decoder does not know which side the encoder
saw. So the coding path never bins a float: the hyper-synthesis runs as an integer network
(after Balle, Johnston & Minnen 2019, "Integer networks for data compression with latent-variable
models"), derived from the trained float weights when the bundle is made:

  - z_hat is integer; weights are rounded to integers at a per-layer power-of-two scale
    (WEIGHT_BITS of precision), biases to the accumulator's scale;
  - every layer is an integer transposed convolution, ReLU, then a rounding right shift to
    ACTIVATION_BITS fractional bits for the next layer;
  - the last accumulator is compared with integer thresholds (the scale table's bin edges at
    its scale), which gives the scale index k, and the y symbol is coded with table k.

The integer convolutions are computed as float64 convolutions of integer-valued tensors: every
product and partial sum is an integer below 2^53, hence exact in float64 whatever the
summation order, so the result is the same integer on every machine and device (checked:
`IntegerHyperSynthesis` refuses accumulators that could leave that range). The float path is
still what training and `call` use; the integer one moves sigma by a fraction of a percent,
much less than the 13% between neighbouring scales of the table. The integer weights, the
thresholds, the z tables (one per channel, from the learned density) and the y tables (one per
scale, quantized Gaussians) are all integers stored in the codec bundle; no float computation
is on the path from file to symbols.

Deviations from bmshj2018, and why (see BUILD_NOTES.md):
  - z is rounded to integers, not around per-channel medians: integer inputs keep the
    hyper-synthesis exactly integer;
  - the tails of the z tables come from the trained density evaluated on a grid when the bundle
    is made, not from learned quantiles (no auxiliary loss);
  - values outside a table's range are coded with an escape (bitstream.py).
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from tfcdi.codec import bitstream
from tfcdi.codec import gdn as gdn_lib
from tfcdi.codec import tiling

# y is 16x smaller than the image in each spatial dimension, z 4x smaller than y.
DOWNSAMPLING = 16
HYPER_DOWNSAMPLING = 4
# The scale table: NUM_SCALES log-spaced scales from SCALE_MIN to SCALE_MAX (Balle et al.'s
# defaults). sigma is bounded below by SCALE_MIN in training too.
SCALE_MIN = 0.11
SCALE_MAX = 256.0
NUM_SCALES = 64
# Likelihoods are bounded below, so one outlier cannot dominate the rate term.
LIKELIHOOD_MIN = 1e-9
# Per side, the probability a table leaves to its escape: about one unit of a 2^20 table.
TABLE_TAIL_MASS = 2.0 ** -21
# The z tables are searched on [-Z_TABLE_RANGE, Z_TABLE_RANGE].
Z_TABLE_RANGE = 1024
# The integer hyper-synthesis: weights with WEIGHT_BITS bits of magnitude, activations with
# ACTIVATION_BITS fractional bits; accumulators must stay below 2^ACCUMULATOR_BITS.
WEIGHT_BITS = 12
ACTIVATION_BITS = 12
ACCUMULATOR_BITS = 52
# Imported codecs (CompressAI's) quantize z around per-channel medians: z_hat = round(z - m) + m.
# m is held at OFFSET_BITS fractional bits, so the integer hyper-synthesis takes z_hat exactly.
OFFSET_BITS = 12
# The integer LeakyReLU: negative activations times LEAKY_NUMERATOR / 2^LEAKY_SHIFT.
LEAKY_SHIFT = 24
# Padding conventions of the transforms. "same": Keras' (TF's) own, asymmetric at stride 2, what
# tfcdi's codecs are trained with. "symmetric": PyTorch's conv(padding=k//2) and
# ConvTranspose(padding=k//2, output_padding=stride-1), what CompressAI's models use; one pixel
# apart from "same" at stride 2, so an imported model must keep its own.
PADDINGS = ("same", "symmetric")


def scale_table() -> np.ndarray:
  """The NUM_SCALES scales the y tables are made for, log-spaced, float64."""
  return np.exp(np.linspace(np.log(SCALE_MIN), np.log(SCALE_MAX), NUM_SCALES))


# --- the transforms --------------------------------------------------------------------------


def conv(x, filters: int, kernel: int, stride: int, name: str, padding: str = "same",
         dtype=None, activation=None):
  """A convolution whose output is ceil(input / stride), under a padding convention (PADDINGS):
  "symmetric" pads kernel // 2 zeros on every side first (a weightless layer `<name>_pad`)."""
  if padding == "symmetric":
    x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad", dtype=dtype)(x)
  return keras.layers.Conv2D(filters, kernel, strides=stride,
                             padding="valid" if padding == "symmetric" else "same",
                             activation=activation, name=name, dtype=dtype)(x)


def transposed_crop(kernel: int, stride: int, padding: str) -> int:
  """Where a transposed convolution's output starts in the full ((H - 1) * stride + kernel)
  one: "same" drops (kernel - stride) // 2 rows first, "symmetric" (PyTorch) kernel // 2."""
  return kernel // 2 if padding == "symmetric" else (kernel - stride) // 2


def deconv(x, filters: int, kernel: int, stride: int, name: str, padding: str = "same",
           dtype=None, activation=None):
  """A transposed convolution whose output is stride * input; "symmetric" computes the full
  output and crops it where PyTorch does (a weightless layer `<name>_crop`)."""
  if padding != "symmetric":
    return keras.layers.Conv2DTranspose(filters, kernel, strides=stride, padding="same",
                                        activation=activation, name=name, dtype=dtype)(x)
  x = keras.layers.Conv2DTranspose(filters, kernel, strides=stride, padding="valid",
                                   activation=activation, name=name, dtype=dtype)(x)
  before = transposed_crop(kernel, stride, padding)
  after = kernel - stride - before
  return keras.layers.Cropping2D(((before, after), (before, after)), name=f"{name}_crop",
                                 dtype=dtype)(x)


def build_analysis(num_filters: int, latent_channels: int, name="analysis",
                   dtype=None, padding: str = "same") -> keras.Model:
  """g_a: image [B, H, W, 3] in [0, 255] -> y [B, H/16, W/16, M] (float32)."""
  images = keras.Input((None, None, 3), name="images")
  x = keras.layers.Rescaling(1.0 / 255.0, name="to_unit_range", dtype="float32")(images)
  for i in range(3):
    x = conv(x, num_filters, 5, 2, f"conv{i + 1}", padding, dtype)
    x = gdn_lib.GDN(name=f"gdn{i + 1}", dtype="float32")(x)
  y = conv(x, latent_channels, 5, 2, "conv4", padding, dtype)
  y = keras.layers.Activation("linear", name="to_float32", dtype="float32")(y)
  return keras.Model(images, y, name=name)


def build_synthesis(num_filters: int, latent_channels: int, name="synthesis",
                    dtype=None, padding: str = "same") -> keras.Model:
  """g_s: y_hat [B, h, w, M] -> image [B, 16h, 16w, 3] in (about) [0, 255]."""
  y_hat = keras.Input((None, None, latent_channels), name="y_hat")
  x = y_hat
  for i in range(3):
    x = deconv(x, num_filters, 5, 2, f"deconv{i + 1}", padding, dtype)
    x = gdn_lib.GDN(inverse=True, name=f"igdn{i + 1}", dtype="float32")(x)
  x = deconv(x, 3, 5, 2, "deconv4", padding, dtype)
  images = keras.layers.Rescaling(255.0, name="to_pixel_range", dtype="float32")(x)
  return keras.Model(y_hat, images, name=name)


def build_hyper_analysis(num_filters: int, latent_channels: int, name="hyper_analysis",
                         dtype=None, padding: str = "same") -> keras.Model:
  """h_a: y [B, h, w, M] -> z [B, h/4, w/4, N] (float32)."""
  y = keras.Input((None, None, latent_channels), name="y")
  x = keras.layers.Activation(tf.abs, name="abs", dtype="float32")(y)
  x = conv(x, num_filters, 3, 1, "conv1", padding, dtype, "relu")
  x = conv(x, num_filters, 5, 2, "conv2", padding, dtype, "relu")
  z = conv(x, num_filters, 5, 2, "conv3", padding, dtype)
  z = keras.layers.Activation("linear", name="to_float32", dtype="float32")(z)
  return keras.Model(y, z, name=name)


# The hyper-synthesis as data: (kernel, stride, which channels) per layer, ReLU after each.
# IntegerHyperSynthesis reads the same layers.
_HYPER_SYNTHESIS_LAYERS = (("deconv1", 5, 2), ("deconv2", 5, 2), ("deconv3", 3, 1))


def build_hyper_synthesis(num_filters: int, latent_channels: int, name="hyper_synthesis",
                          dtype=None, padding: str = "same") -> keras.Model:
  """h_s: z_hat [B, hz, wz, N] -> sigma [B, 4hz, 4wz, M] (float32, >= 0)."""
  z_hat = keras.Input((None, None, num_filters), name="z_hat")
  x = z_hat
  for i, (layer_name, kernel, stride) in enumerate(_HYPER_SYNTHESIS_LAYERS):
    last = i == len(_HYPER_SYNTHESIS_LAYERS) - 1
    x = deconv(x, latent_channels if last else num_filters, kernel, stride, layer_name,
               padding, dtype, "relu")
  sigma = keras.layers.Activation("linear", name="to_float32", dtype="float32")(x)
  return keras.Model(z_hat, sigma, name=name)


# --- the entropy models ----------------------------------------------------------------------


def _probability_between(lower_logits, upper_logits):
  """sigmoid(upper) - sigmoid(lower), computed on the side where it does not cancel."""
  # Far in the upper tail both sigmoids are ~1 and their difference rounds to 0; flipping the
  # sign of both logits there computes the same difference from ~0 values instead.
  sign = tf.stop_gradient(-tf.sign(lower_logits + upper_logits))
  return tf.abs(tf.sigmoid(sign * upper_logits) - tf.sigmoid(sign * lower_logits))


@keras.saving.register_keras_serializable(package="tfcdi")
class FactorizedDensity(keras.layers.Layer):
  """A learned univariate density per channel (Balle et al. 2018, appendix 6.1).

  Its cumulative is c(x) = sigmoid(f_K(... f_1(x))), each f_k a small affine map with a positive
  matrix (softplus of the variable) followed, except for the last, by x + tanh(a) * tanh(x)
  with tanh(a) > -1: a composition of increasing functions, so c increases from 0 to 1. The
  probability of an integer z (or of z + uniform noise at training) is c(z + 1/2) - c(z - 1/2).

  Args:
    channels: number of channels (N); each has its own density.
    filters: widths of the hidden layers (Balle: 3, 3, 3).
    init_scale: the initial density's spread, about uniform over [-init_scale, init_scale].
  """

  def __init__(self, channels: int, filters=(3, 3, 3), init_scale: float = 10.0, **kwargs):
    super().__init__(**kwargs)
    self.channels = int(channels)
    self.filters = tuple(int(f) for f in filters)
    self.init_scale = float(init_scale)
    dims = (1, *self.filters, 1)
    scale = self.init_scale ** (1.0 / (len(self.filters) + 1))
    self.matrices, self.biases, self.factors = [], [], []
    for k in range(len(dims) - 1):
      # softplus(init) * dims[k + 1] = 1 / scale: each layer shrinks the spread by `scale`.
      init = math.log(math.expm1(1.0 / scale / dims[k + 1]))
      self.matrices.append(self.add_weight(
          name=f"matrix{k}", shape=(self.channels, dims[k + 1], dims[k]), dtype="float32",
          initializer=keras.initializers.Constant(init)))
      self.biases.append(self.add_weight(
          name=f"bias{k}", shape=(self.channels, dims[k + 1], 1), dtype="float32",
          initializer=keras.initializers.RandomUniform(-0.5, 0.5)))
      if k < len(dims) - 2:
        self.factors.append(self.add_weight(
            name=f"factor{k}", shape=(self.channels, dims[k + 1], 1), dtype="float32",
            initializer="zeros"))

  def cdf_logits(self, x):
    """x [C, 1, n] float32 -> logits of the cumulative of each channel at x, [C, 1, n]."""
    for k, (matrix, bias) in enumerate(zip(self.matrices, self.biases)):
      x = tf.linalg.matmul(tf.nn.softplus(matrix), x) + bias
      if k < len(self.factors):
        x = x + tf.tanh(self.factors[k]) * tf.tanh(x)
    return x

  def call(self, z):
    """Likelihoods of z [B, h, w, C] (integers, or integers plus noise), same shape."""
    z = tf.cast(z, tf.float32)
    shape = tf.shape(z)
    # [C, 1, B*h*w]: every channel through its own MLP.
    x = tf.reshape(tf.transpose(z, [3, 0, 1, 2]), [self.channels, 1, -1])
    p = _probability_between(self.cdf_logits(x - 0.5), self.cdf_logits(x + 0.5))
    p = tf.transpose(tf.reshape(p, [self.channels, shape[0], shape[1], shape[2]]), [1, 2, 3, 0])
    return gdn_lib.lower_bound(p, LIKELIHOOD_MIN)

  def get_config(self):
    return {**super().get_config(), "channels": self.channels, "filters": list(self.filters),
            "init_scale": self.init_scale}


def gaussian_likelihood(y, sigma):
  """P(y - 1/2 < Y < y + 1/2) for Y ~ N(0, sigma^2), elementwise, bounded below."""
  y = tf.abs(tf.cast(y, tf.float32))
  sigma = tf.cast(sigma, tf.float32)
  # Both ends on the upper tail (Phi(-t) = erfc(t / sqrt2) / 2), where float32 keeps precision.
  upper_tail = lambda t: 0.5 * tf.math.erfc(t / (math.sqrt(2.0) * sigma))  # noqa: E731
  p = upper_tail(y - 0.5) - upper_tail(y + 0.5)
  return gdn_lib.lower_bound(p, LIKELIHOOD_MIN)


# --- the model -------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="tfcdi")
class Hyperprior(keras.Model):
  """g_a, h_a, h_s, g_s and the two entropy models, with training and coding interfaces.

  `call` is the training path (noise, or rounding with training=False) and returns the loss
  terms. `encode` / `decode` / `latent` / `latents` are the inference interfaces, parallel to
  model.Autoencoder's: symbols are the rounded y and z.
  """

  def __init__(self, num_filters: int, latent_channels: int, conv_dtype=None,
               padding: str = "same", density_filters=(3, 3, 3), **kwargs):
    super().__init__(**kwargs)
    self.num_filters = int(num_filters)
    self.latent_channels = int(latent_channels)
    # Training only (see model.Autoencoder); variables are float32 under every policy.
    self.conv_dtype = conv_dtype
    if padding not in PADDINGS:
      raise ValueError(f"unknown padding convention {padding!r}; choose one of {PADDINGS}")
    # tfcdi's own codecs: "same"; imported CompressAI models: "symmetric" (PADDINGS).
    self.padding = padding
    self.density_filters = tuple(int(f) for f in density_filters)
    n, m = self.num_filters, self.latent_channels
    self.analysis = build_analysis(n, m, dtype=conv_dtype, padding=padding)
    self.synthesis = build_synthesis(n, m, dtype=conv_dtype, padding=padding)
    self.hyper_analysis = build_hyper_analysis(n, m, dtype=conv_dtype, padding=padding)
    self.hyper_synthesis = build_hyper_synthesis(n, m, dtype=conv_dtype, padding=padding)
    self.density = FactorizedDensity(n, self.density_filters, name="factorized_density",
                                     dtype="float32")
    # The integer hyper-synthesis a bundle ships (pretrained.py sets it); None derives one
    # from the current weights whenever it is needed.
    self.shipped_hyper_synthesis = None
    # Per-channel medians z is quantized around (int64 [N] at OFFSET_BITS fractional bits), or
    # None: tfcdi's own codecs round z itself; imported ones keep their medians (see
    # z_offset_values).
    self.z_offsets = None

  def z_offset_values(self):
    """The medians as float32 [N] (zeros without them): z symbols are round(z - m), z_hat is
    symbols + m, as in CompressAI's entropy bottleneck at inference."""
    if self.z_offsets is None:
      return tf.zeros([self.num_filters], tf.float32)
    return tf.constant(np.asarray(self.z_offsets, np.float64) / 2.0 ** OFFSET_BITS, tf.float32)

  @property
  def channels(self) -> int:
    """M, channels of the representation y the compressed-domain nets read."""
    return self.latent_channels

  def sigma(self, z_hat, y_shape):
    """The float hyper-synthesis, cropped to y's spatial size and bounded below by SCALE_MIN."""
    sigma = self.hyper_synthesis(z_hat)[:, :y_shape[1], :y_shape[2], :]
    return gdn_lib.lower_bound(sigma, SCALE_MIN)

  def call(self, images, training=False):
    """Reconstruction, latents, likelihoods and the rate in bits (summed over the batch).

    training=True adds uniform noise in [-1/2, 1/2) to y and z (Balle et al.); False rounds.
    """
    y = self.analysis(images, training=training)
    z = self.hyper_analysis(y, training=training)
    if training:
      z_tilde = z + tf.random.uniform(tf.shape(z), -0.5, 0.5)
      y_tilde = y + tf.random.uniform(tf.shape(y), -0.5, 0.5)
    else:
      offsets = self.z_offset_values()
      z_tilde, y_tilde = tf.round(z - offsets) + offsets, tf.round(y)
    sigma = self.sigma(z_tilde, tf.shape(y))
    reconstruction = self.synthesis(y_tilde, training=training)
    y_likelihoods = gaussian_likelihood(y_tilde, sigma)
    z_likelihoods = self.density(z_tilde)
    y_bits = -tf.reduce_sum(tf.math.log(y_likelihoods)) / math.log(2.0)
    z_bits = -tf.reduce_sum(tf.math.log(z_likelihoods)) / math.log(2.0)
    shape = tf.shape(images)
    num_pixels = tf.cast(shape[0] * shape[1] * shape[2], tf.float32)
    return {
        "reconstruction": reconstruction,
        "y": y,
        "z": z,
        "y_tilde": y_tilde,
        "z_tilde": z_tilde,
        "sigma": sigma,
        "y_likelihoods": y_likelihoods,
        "z_likelihoods": z_likelihoods,
        "y_bits": y_bits,
        "z_bits": z_bits,
        "bpp": (y_bits + z_bits) / num_pixels,
    }

  def build_weights(self):
    """Creates every weight by running one tiny image, so weights can be loaded or counted."""
    self(tf.zeros([1, DOWNSAMPLING * HYPER_DOWNSAMPLING, DOWNSAMPLING * HYPER_DOWNSAMPLING, 3]))
    return self

  # --- inference -----------------------------------------------------------------------------

  def encode(self, images):
    """images [B, H, W, 3] in [0, 255] (H, W multiples of 16) -> (y, z) symbols, int32.

    y [B, H/16, W/16, M] and z [B, ceil(H/64), ceil(W/64), N]: the rounded latents.
    """
    y = self.analysis(images, training=False)
    z = self.hyper_analysis(y, training=False) - self.z_offset_values()
    return tf.cast(tf.round(y), tf.int32), tf.cast(tf.round(z), tf.int32)

  def integer_hyper_synthesis(self) -> "IntegerHyperSynthesis":
    """The integer hyper-synthesis the coding path uses: the bundle's, or one from the weights."""
    if self.shipped_hyper_synthesis is not None:
      return self.shipped_hyper_synthesis
    return IntegerHyperSynthesis.from_model(self)

  def scale_indices(self, z_symbols, y_shape=None) -> np.ndarray:
    """z symbols [B, hz, wz, N] -> the scale index of every y element, int32 [B, hy, wy, M].

    Integer arithmetic only (see the module docstring): the same on every machine. y_shape
    (B, hy, wy[, M]) crops the result; by default it is [B, 4hz, 4wz, M].
    """
    indices = self.integer_hyper_synthesis()(z_symbols)
    if y_shape is not None:
      indices = indices[:, :y_shape[1], :y_shape[2], :]
    return indices

  def latent(self, y_symbols, z_symbols):
    """Symbols -> (y_hat, sigma_hat), float32: what the compressed-domain nets read.

    sigma_hat is the scale of the table each y symbol was coded with (scale_table()[index]), so
    a file's reader gets exactly what its writer had. No synthesis transform runs.
    """
    y_symbols = tf.convert_to_tensor(y_symbols)
    indices = self.scale_indices(np.asarray(z_symbols), tuple(y_symbols.shape))
    sigma_hat = tf.gather(tf.constant(scale_table(), tf.float32), indices)
    return tf.cast(y_symbols, tf.float32), sigma_hat

  def latents(self, images, differentiable: bool = False):
    """images -> (y_hat, sigma_hat) [B, H/16, W/16, M] each, for the classifiers.

    By default exactly what a .tfci file of the images holds (latent(*encode(images))).
    differentiable=True gives the training-time path instead, for joint training: y rounded
    with a straight-through gradient, and the float sigma of h_s(round(z)) (not binned).
    """
    if not differentiable:
      return self.latent(*self.encode(images))
    y = self.analysis(images, training=True)
    z = self.hyper_analysis(y, training=True)
    y_hat = y + tf.stop_gradient(tf.round(y) - y)
    offsets = self.z_offset_values()
    z_hat = z + tf.stop_gradient(tf.round(z - offsets) + offsets - z)
    return y_hat, self.sigma(z_hat, tf.shape(y))

  def decode(self, y_symbols):
    """y symbols [B, h, w, M] -> reconstructed images [B, 16h, 16w, 3], float32 in [0, 255]."""
    y_hat = tf.cast(tf.convert_to_tensor(y_symbols), tf.float32)
    return tf.clip_by_value(self.synthesis(y_hat, training=False), 0.0, 255.0)

  def get_config(self):
    return {**super().get_config(), "num_filters": self.num_filters,
            "latent_channels": self.latent_channels, "conv_dtype": self.conv_dtype,
            "padding": self.padding, "density_filters": list(self.density_filters)}

  def hyper_synthesis_layers(self) -> list:
    """h_s as data for IntegerHyperSynthesis: (kernel float64 [k, k, out, in] in Keras'
    Conv2DTranspose layout, bias float64 [out], stride, activation) per layer."""
    layers = []
    for layer_name, _, stride in _HYPER_SYNTHESIS_LAYERS:
      layer = self.hyper_synthesis.get_layer(layer_name)
      layers.append((np.asarray(layer.kernel.numpy(), np.float64),
                     np.asarray(layer.bias.numpy(), np.float64), stride, "relu"))
    return layers


def from_quality(quality, preset: str = "paper", conv_dtype=None, channels=None) -> Hyperprior:
  """Builds the hyperprior model of a quality (qualities.py) at a preset's widths."""
  from tfcdi.codec import qualities  # pylint: disable=g-import-not-at-top
  q = qualities.get_quality(quality)
  n, m = channels or qualities.channels(q.quality, preset)
  model = Hyperprior(n, m, conv_dtype, name=f"hyperprior_{q.name}")
  return model.build_weights()


# --- the integer hyper-synthesis -------------------------------------------------------------


def _power_of_two_exponent(max_abs: float, bits: int) -> int:
  """e such that max_abs * 2^e lies in [2^(bits-1), 2^bits) (e = bits - 1 for max_abs = 0)."""
  if max_abs <= 0:
    return bits - 1
  return bits - 1 - math.floor(math.log2(max_abs))


def _rounding_shift(x, shift: int):
  """x / 2^shift rounded half up (shift > 0), or x * 2^-shift: exact on integer float64."""
  if shift > 0:
    return tf.floor((x + 2.0 ** (shift - 1)) / 2.0 ** shift)
  return x * 2.0 ** (-shift)


_ACTIVATION_CODES = {"relu": 0, "linear": 1, "leaky": 2}


@dataclasses.dataclass(frozen=True, eq=False)
class IntegerHyperSynthesis:
  """h_s in integer arithmetic, mapping z symbols to scale indices (see the module docstring).

  The input is x = z * 2^input_bits + input_offsets (per channel; z_hat = z + medians, with the
  medians at input_bits fractional bits; tfcdi's own codecs: input_bits 0, no offsets). Layer l
  computes acc = conv_transpose(x, kernels[l], strides[l]) + biases[l], then its activation
  (ReLU unless `activations` says otherwise); x of the next layer is acc shifted right by
  shifts[l] bits (rounding; a negative shift multiplies), a LeakyReLU acting on the shifted
  value. The last accumulator's first `scale_channels` channels (all, if 0), compared with
  `thresholds`, give the index: the number of thresholds below it, i.e. the first scale of the
  table at or above sigma. Its other channels are means (`means`). All fields are integers.
  `crops` (per layer, where the output starts in the full transposed convolution; empty: TF's
  "same") carries the padding convention of imported models (hyperprior.PADDINGS).
  """

  kernels: tuple  # int64 [k, k, out, in] per layer (Keras' Conv2DTranspose layout)
  biases: tuple  # int64 [out] per layer
  strides: tuple  # int per layer
  shifts: tuple  # int per layer but the last
  thresholds: np.ndarray  # int64 [NUM_SCALES - 1], increasing
  output_bits: int  # the last accumulator is sigma * 2^output_bits
  crops: tuple = ()  # int per layer, or () for "same"
  activations: tuple = ()  # "relu" / "linear" / "leaky" per layer, or () for all ReLU
  leaky_numerator: int = 0  # LeakyReLU slope * 2^LEAKY_SHIFT
  input_bits: int = 0
  input_offsets: np.ndarray | None = None  # int64 [N] at input_bits, or None
  scale_channels: int = 0  # 0: every output channel is a scale

  @classmethod
  def from_model(cls, model: Hyperprior) -> "IntegerHyperSynthesis":
    """Integerizes the model's h_s (float32 weights; a bundle's are float16-rounded first)."""
    crops = ()
    if model.padding != "same":
      crops = tuple(transposed_crop(k, s, model.padding) for _, k, s in _HYPER_SYNTHESIS_LAYERS)
    return cls.from_layers(model.hyper_synthesis_layers(), crops=crops,
                           input_offsets=model.z_offsets)

  @classmethod
  def from_layers(cls, layers, crops=(), input_offsets=None, leaky_slope: float = 0.0,
                  scale_channels: int = 0, input_bits: int = OFFSET_BITS,
                  weight_bits: int = WEIGHT_BITS,
                  activation_bits: int = ACTIVATION_BITS) -> "IntegerHyperSynthesis":
    """From float layers (kernel [k, k, out, in], bias [out], stride, activation), each kernel
    rounded at its own power-of-two scale (weight_bits); input_offsets: int64 [N] at
    input_bits fractional bits, or None (integer inputs). A family whose outputs need more
    precision (the mean-scale hyperprior's means) asks for more bits; the accumulators' bound
    is checked on every run (accumulate)."""
    kernels, biases, strides, shifts = [], [], [], []
    input_bits = 0 if input_offsets is None else int(input_bits)
    bits = input_bits
    for i, (kernel, bias, stride, _) in enumerate(layers):
      e = _power_of_two_exponent(float(np.abs(kernel).max()), weight_bits)
      kernels.append(np.rint(np.asarray(kernel, np.float64) * 2.0 ** e).astype(np.int64))
      accumulator_bits = bits + e
      biases.append(np.rint(np.asarray(bias, np.float64) * 2.0 ** accumulator_bits)
                    .astype(np.int64))
      strides.append(int(stride))
      if i < len(layers) - 1:
        shifts.append(accumulator_bits - activation_bits)
        bits = activation_bits
    activations = tuple(a for *_, a in layers)
    thresholds = np.floor(scale_table()[:-1] * 2.0 ** accumulator_bits).astype(np.int64)
    return cls(tuple(kernels), tuple(biases), tuple(strides), tuple(shifts), thresholds,
               int(accumulator_bits), tuple(int(c) for c in crops),
               () if all(a == "relu" for a in activations) else activations,
               int(round(leaky_slope * 2 ** LEAKY_SHIFT)), input_bits,
               None if input_offsets is None else np.asarray(input_offsets, np.int64),
               int(scale_channels))

  def _activation(self, i: int) -> str:
    return self.activations[i] if self.activations else "relu"

  def accumulate(self, z_symbols) -> np.ndarray:
    """z symbols [B, hz, wz, N] -> the last layer's accumulators, integer-valued float64.

    Raises:
      bitstream.BitstreamError: an accumulator could leave the exactly representable range (z
        values no real image produces: a forged file).
    """
    acc, fits = self.graph_accumulate(tf.constant(np.asarray(z_symbols)))
    if not bool(fits):
      raise bitstream.BitstreamError("implausible hyper-latent values (the integer "
                                     "hyper-synthesis would overflow)")
    return acc.numpy()

  def graph_accumulate(self, z_symbols):
    """accumulate in graph ops: (accumulators float64 [B, 4hz, 4wz, M], fits bool scalar).

    One implementation for the Python path (accumulate) and for a SavedModel that reads files
    (graph_decode.py), where the range check must be a tensor: once an accumulator could leave
    the exact range, `fits` is False and the layers run on zeros, never on inexact values.
    """
    x = tf.cast(z_symbols, tf.float64)
    if self.input_offsets is not None:
      x = x * 2.0 ** self.input_bits + tf.constant(self.input_offsets, tf.float64)
    limit = 2.0 ** ACCUMULATOR_BITS
    fits = tf.constant(True)
    for i, (kernel, bias, stride) in enumerate(zip(self.kernels, self.biases, self.strides)):
      # |acc| <= max |x| * (sum of |w| over one output channel's taps) + |bias|, checked
      # before computing it.
      taps = float(np.abs(kernel).sum(axis=(0, 1, 3)).max())
      fits = tf.logical_and(
          fits, tf.reduce_max(tf.abs(x)) * taps + float(np.abs(bias).max()) < limit)
      x = tf.where(fits, x, tf.zeros_like(x))
      shape = tf.shape(x)
      k = kernel.shape[0]
      if self.crops:  # the full transposed convolution, cropped (exact: integers in float64)
        full = tf.stack([shape[0], (shape[1] - 1) * stride + k, (shape[2] - 1) * stride + k,
                         kernel.shape[2]])
        acc = tf.nn.conv2d_transpose(x, tf.constant(kernel, tf.float64), full, stride,
                                     padding="VALID")
        c = self.crops[i]
        acc = acc[:, c:c + shape[1] * stride, c:c + shape[2] * stride, :]
      else:
        out_shape = tf.stack([shape[0], shape[1] * stride, shape[2] * stride, kernel.shape[2]])
        acc = tf.nn.conv2d_transpose(x, tf.constant(kernel, tf.float64), out_shape, stride,
                                     padding="SAME")
      acc = acc + tf.constant(bias, tf.float64)
      activation = self._activation(i)
      if activation == "relu":
        acc = tf.nn.relu(acc)
      x = _rounding_shift(acc, self.shifts[i]) if i < len(self.shifts) else acc
      if activation == "leaky":
        # On the shifted integers, so the product stays far below 2^53.
        x = tf.where(x >= 0, x, _rounding_shift(x * float(self.leaky_numerator), LEAKY_SHIFT))
    return x, fits

  def _scales_part(self, acc):
    return acc[..., :self.scale_channels] if self.scale_channels else acc

  # z positions per side of a tile (tiling.py): a large image's last accumulators, float64 at
  # y's resolution, would take 8 bytes per y element at once (160 MB for 16 megapixels at
  # M = 320). Tiles are exact here whatever the kernels do: the arithmetic is integer.
  TILE = 16

  def reach(self) -> int:
    """How far (in y positions) an index depends on z (tiling.reach_of_layers)."""
    return tiling.reach_of_layers([(True, int(k.shape[0]), int(s), 1)
                                   for k, s in zip(self.kernels, self.strides)])

  def indices_of(self, acc) -> np.ndarray:
    return np.searchsorted(self.thresholds, self._scales_part(acc), side="left").astype(np.int32)

  def _indices(self, z_symbols) -> np.ndarray:
    return self.indices_of(self.accumulate(z_symbols))

  def means_of(self, acc, bits: int) -> np.ndarray:
    """The mean channels of an accumulator, as integers at `bits` fractional bits (int64)."""
    return np.asarray(_rounding_shift(tf.constant(acc[..., self.scale_channels:]),
                                      self.output_bits - bits)).astype(np.int64)

  def __call__(self, z_symbols) -> np.ndarray:
    """z symbols [B, hz, wz, N] -> scale indices [B, 4hz, 4wz, M], int32 (see accumulate)."""
    z_symbols = np.asarray(z_symbols)
    # Imported models' cropped transposed convolutions (PyTorch's padding) are not the "same"
    # convolutions reach() describes: they run whole.
    if max(z_symbols.shape[1:3]) <= self.TILE or self.crops:
      return self._indices(z_symbols)
    factor = math.prod(self.strides)
    extra = tiling.margin(self.reach(), factor)
    size = (z_symbols.shape[1] * factor, z_symbols.shape[2] * factor)
    return np.stack([tiling.upsample(lambda part: self._indices(part["z"]), {"z": z}, factor,
                                     extra, self.TILE, size)
                     for z in z_symbols])

  def sigma(self, z_symbols) -> np.ndarray:
    """The integer path's sigma before binning, float64: to check it against the float h_s."""
    return self._scales_part(self.accumulate(z_symbols)) / 2.0 ** self.output_bits

  def to_arrays(self) -> dict:
    """Named integer arrays for a bundle (from_arrays reads them back). The fields of imported
    models are written only where they differ from tfcdi's own, so that a shipped bundle's
    arrays (and the digests stores keep of them) do not change."""
    arrays = {"hs_strides": np.asarray(self.strides, np.int64),
              "hs_shifts": np.asarray(self.shifts, np.int64),
              "hs_thresholds": self.thresholds.astype(np.int64),
              "hs_output_bits": np.asarray([self.output_bits], np.int64)}
    for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
      arrays[f"hs_kernel{i}"] = kernel.astype(np.int32)  # |w| < 2^WEIGHT_BITS
      arrays[f"hs_bias{i}"] = bias.astype(np.int64)
    if self.crops:
      arrays["hs_crops"] = np.asarray(self.crops, np.int64)
    if self.activations:
      arrays["hs_activations"] = np.asarray([_ACTIVATION_CODES[a] for a in self.activations],
                                            np.int64)
      arrays["hs_leaky_numerator"] = np.asarray([self.leaky_numerator], np.int64)
    if self.input_offsets is not None:
      arrays["hs_input_bits"] = np.asarray([self.input_bits], np.int64)
      arrays["hs_input_offsets"] = self.input_offsets.astype(np.int64)
    if self.scale_channels:
      arrays["hs_scale_channels"] = np.asarray([self.scale_channels], np.int64)
    return arrays

  @classmethod
  def from_arrays(cls, arrays) -> "IntegerHyperSynthesis":
    strides = tuple(int(s) for s in arrays["hs_strides"])
    kernels = tuple(np.asarray(arrays[f"hs_kernel{i}"], np.int64) for i in range(len(strides)))
    biases = tuple(np.asarray(arrays[f"hs_bias{i}"], np.int64) for i in range(len(strides)))
    names = {v: k for k, v in _ACTIVATION_CODES.items()}
    scalar = lambda key, default: (int(np.asarray(arrays[key])[0]) if key in arrays  # noqa: E731
                                   else default)
    crops = tuple(int(c) for c in arrays.get("hs_crops", ()))
    activations = tuple(names[int(a)] for a in arrays.get("hs_activations", ()))
    if (crops and len(crops) != len(strides)) or (activations
                                                  and len(activations) != len(strides)):
      raise ValueError("the integer hyper-synthesis' crops or activations do not match its "
                       "layers")
    offsets = arrays.get("hs_input_offsets")
    return cls(kernels, biases, strides, tuple(int(s) for s in arrays["hs_shifts"]),
               np.asarray(arrays["hs_thresholds"], np.int64),
               int(np.asarray(arrays["hs_output_bits"])[0]), crops, activations,
               scalar("hs_leaky_numerator", 0), scalar("hs_input_bits", 0),
               None if offsets is None else np.asarray(offsets, np.int64),
               scalar("hs_scale_channels", 0))


# --- the integer tables ----------------------------------------------------------------------


def _standard_upper_tail(t):
  """P(X > t) for a standard normal X, float64, accurate far into the tail."""
  return 0.5 * np.vectorize(math.erfc)(np.asarray(t, np.float64) / math.sqrt(2.0))


def y_tables() -> bitstream.Tables:
  """One table per scale of scale_table(): the quantized zero-mean Gaussian of that scale.

  Table k covers [-R_k, R_k], the smallest range whose two tails together hold at most
  2 * TABLE_TAIL_MASS, plus an escape holding those tails. Made once per bundle and stored:
  erfc is not guaranteed to be bit-identical across math libraries; the integers are.
  """
  # t* with P(X > t*) = TABLE_TAIL_MASS, by bisection.
  lo, hi = 0.0, 40.0
  for _ in range(200):
    mid = 0.5 * (lo + hi)
    lo, hi = (mid, hi) if _standard_upper_tail(mid) > TABLE_TAIL_MASS else (lo, mid)
  t_star = hi
  freqs, lengths, offsets = [], [], []
  for scale in scale_table():
    r = max(1, math.ceil(scale * t_star - 0.5))
    values = np.arange(-r, r + 1, dtype=np.float64)
    # P(v - 1/2 < Y < v + 1/2) from the tails: symmetric, so use |v|.
    a = np.abs(values)
    probs = (_standard_upper_tail((a - 0.5) / scale) - _standard_upper_tail((a + 0.5) / scale))
    probs[r] = 1.0 - 2.0 * _standard_upper_tail(0.5 / scale)  # the centre, without cancelling
    escape = 2.0 * _standard_upper_tail((r + 0.5) / scale)
    freqs.append(bitstream.quantize_pmf(np.append(probs, escape)))
    lengths.append(values.size + 1)
    offsets.append(-r)
  return bitstream.make_tables(np.concatenate(freqs), lengths, offsets)


def z_tables(density: FactorizedDensity, offsets=None) -> bitstream.Tables:
  """One table per channel of the factorized density, over its bulk; tails go to the escape.

  The density's cumulative is evaluated at the half-integers of [-Z_TABLE_RANGE,
  Z_TABLE_RANGE] (shifted by each channel's median where `offsets`, float [C], are given: a
  symbol v stands for v + median); each channel's table spans the integers between its
  TABLE_TAIL_MASS quantiles (and at most bitstream.MAX_TABLE_LENGTH - 1 of them).
  """
  edges = np.arange(-Z_TABLE_RANGE - 0.5, Z_TABLE_RANGE + 1.0)  # c(v - 1/2), c(v + 1/2), ...
  grid = np.broadcast_to(edges, (density.channels, 1, edges.size))
  if offsets is not None:
    grid = grid + np.asarray(offsets, np.float64).reshape(-1, 1, 1)
  x = tf.constant(grid, tf.float32)
  logits = density.cdf_logits(x).numpy()[:, 0, :].astype(np.float64)
  with np.errstate(over="ignore"):  # a logit beyond +-709: exp is inf, the sigmoid exactly 0 / 1
    cdf = 1.0 / (1.0 + np.exp(-logits))
    upper = 1.0 / (1.0 + np.exp(logits))  # 1 - cdf, without cancelling
  values = np.arange(-Z_TABLE_RANGE, Z_TABLE_RANGE + 1)
  freqs, lengths, offsets = [], [], []
  for c in range(density.channels):
    # First value whose mass up to it exceeds the tail; last whose mass from it on does.
    first = int(np.argmax(cdf[c, 1:] > TABLE_TAIL_MASS))
    above = upper[c, :-1] > TABLE_TAIL_MASS
    last = int(values.size - 1 - np.argmax(above[::-1]))
    if last < first:  # a density narrower than one integer
      first = last = int(np.argmax(np.diff(cdf[c])))
    if last - first + 2 > bitstream.MAX_TABLE_LENGTH:
      centre = (first + last) // 2
      half = (bitstream.MAX_TABLE_LENGTH - 2) // 2
      first, last = centre - half, centre + half - 1
    probs = np.clip(np.diff(cdf[c])[first:last + 1], 0.0, None)
    escape = max(cdf[c, first], 0.0) + max(upper[c, last + 1], 0.0)
    freqs.append(bitstream.quantize_pmf(np.append(probs, escape)))
    lengths.append(last - first + 2)
    offsets.append(int(values[first]))
  return bitstream.make_tables(np.concatenate(freqs), lengths, offsets)


def pad_to_multiple(images, multiple=DOWNSAMPLING):
  """Edge-replication padding to multiples of 16 (model.pad_to_multiple, another multiple)."""
  from tfcdi.codec import model as model_lib  # pylint: disable=g-import-not-at-top
  return model_lib.pad_to_multiple(images, multiple)
