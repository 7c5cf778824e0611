"""Family 3: the mean-scale hyperprior of Minnen et al. 2018 ("mbt2018-mean"), imported.

  g_a, g_s  as the scale hyperprior's (hyperprior.py): GDN analysis, IGDN synthesis
  h_a       y -> z: 3x3/1 conv + LeakyReLU, 5x5/2 conv + LeakyReLU, 5x5/2 conv (no |y|)
  h_s       z_hat -> (scales, means): 5x5/2 transposed conv (M) + LeakyReLU, 5x5/2 transposed
            conv (3M/2) + LeakyReLU, 3x3/1 conv (2M); the first M channels are the scales, the
            other M the means (CompressAI's chunk(2, 1))

z is coded as in the hyperprior (factorized density, around its medians). y is coded as its
residual r = round(y - mu) under the zero-mean Gaussian table of the scale (hyperprior.y_tables),
and y_hat = r + mu. A decoder must get mu and the scale index exactly as the encoder had them,
so both come from the integer hyper-synthesis (hyperprior.IntegerHyperSynthesis, with integer
LeakyReLU layers and a mean output): the last accumulator's scale channels are binned into
indices, its mean channels rounded to MEAN_BITS fractional bits (mu_int). The integers are the
same on every machine. Where y - mu lies within the integer path's error of a half-integer,
r can differ from what the float forward pass rounds to (and then y_hat by 1): the hyperprior
runs at 12 bits (its integers pick only a table), this family at PRECISION_BITS for weights,
activations, z's medians and the means, which keeps the error near 1e-5 and such symbols rare
(BUILD_NOTES.md has the measured rate).

Files have family 1's two-stream layout under family byte 3 (bitstream.py): z, then the
residuals r. Reading one gives the symbol arrays "y_hat_fixed" = r * 2^MEAN_BITS + mu_int (y_hat
in fixed point: an int32 array from which y_hat follows with no network) and "indices"; the nets
read "y_hat" (the mean included, as the synthesis gets it) and "sigma_hat" =
scale_table()[index], as the hyperprior's. Codecs of this family come from other libraries'
checkpoints (importers/compressai.py); bundles: weight_bundles.py's format.
"""

from __future__ import annotations

import dataclasses
import math
import typing

import keras
import numpy as np
import tensorflow as tf

from tfcdi.codec import bitstream
from tfcdi.codec import gdn as gdn_lib
from tfcdi.codec import hyperprior as hp
from tfcdi.codec import hyperprior_codec
from tfcdi.codec import interface
from tfcdi.codec import weight_bundles
from tfcdi.codec.interface import CodecError

Y_FIXED, INDICES = "y_hat_fixed", "indices"
Y_HAT, SIGMA_HAT = hyperprior_codec.Y_HAT, hyperprior_codec.SIGMA_HAT
# The integer hyper-synthesis' weight bits, activation bits, and fractional bits of z's medians
# and of the means. Accumulators then reach about 2^(16 + 16 + log2 |activation| + log2 sum|w|),
# some 2^45 for real models, below the 2^52 that accumulate() checks on every run.
PRECISION_BITS = 16
MEAN_BITS = PRECISION_BITS
# |r| and |mu| are held to 2^14 (real models' y stay within a few hundred), so that
# y_hat_fixed = r * 2^16 + mu_int fits the int32 symbol arrays.
MAX_Y_MAGNITUDE = 1 << 14
LEAKY_SLOPE = 0.01  # PyTorch's nn.LeakyReLU default, what CompressAI's h_a and h_s use
# h_s as data: (Keras layer name, kernel, stride, activation); the last has 2M channels.
_HYPER_SYNTHESIS_LAYERS = (("deconv1", 5, 2, "leaky"), ("deconv2", 5, 2, "leaky"),
                           ("deconv3", 3, 1, "linear"))


def _leaky(x, name):
  return keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=name, dtype="float32")(x)


def build_hyper_analysis(n: int, m: int, padding: str = "symmetric") -> keras.Model:
  """h_a: y [B, h, w, M] -> z [B, h/4, w/4, N]."""
  y = keras.Input((None, None, m), name="y")
  x = _leaky(hp.conv(y, n, 3, 1, "conv1", padding), "leaky1")
  x = _leaky(hp.conv(x, n, 5, 2, "conv2", padding), "leaky2")
  return keras.Model(y, hp.conv(x, n, 5, 2, "conv3", padding), name="hyper_analysis")


def build_hyper_synthesis(n: int, m: int, padding: str = "symmetric") -> keras.Model:
  """h_s: z_hat [B, hz, wz, N] -> [B, 4hz, 4wz, 2M]: scales, then means."""
  z_hat = keras.Input((None, None, n), name="z_hat")
  x = z_hat
  for i, (name, kernel, stride, activation) in enumerate(_HYPER_SYNTHESIS_LAYERS):
    filters = (m, m * 3 // 2, 2 * m)[i]
    x = hp.deconv(x, filters, kernel, stride, name, padding)
    if activation == "leaky":
      x = _leaky(x, f"leaky{i + 1}")
  return keras.Model(z_hat, x, name="hyper_synthesis")


def offsets_of(medians) -> np.ndarray:
  """z's medians (float) -> int64 at PRECISION_BITS, what the model and its tables hold."""
  return np.rint(np.asarray(medians, np.float64) * 2.0 ** PRECISION_BITS).astype(np.int64)


def y_hat_of(y_fixed):
  """y_hat_fixed symbols (int) -> y_hat, float32: one conversion and an exact scaling by a power
  of two, so the same on every machine."""
  return tf.cast(y_fixed, tf.float32) * (2.0 ** -MEAN_BITS)


def _check_range(values, what: str) -> None:
  largest = int(np.abs(np.asarray(values, np.int64)).max(initial=0))
  if largest > MAX_Y_MAGNITUDE:
    raise bitstream.BitstreamError(f"implausible {what} (up to {largest}; a real image's stay "
                                   f"within {MAX_Y_MAGNITUDE})")


@keras.saving.register_keras_serializable(package="tfcdi")
class MeanScaleHyperprior(keras.Model):
  """g_a, h_a, h_s, g_s and the z density; the coding path goes through `coding_path` (the
  integer hyper-synthesis), the float one (call) reproduces the library's forward pass."""

  def __init__(self, num_filters: int, latent_channels: int, padding: str = "symmetric",
               density_filters=(3, 3, 3, 3), **kwargs):
    super().__init__(**kwargs)
    self.num_filters, self.latent_channels = int(num_filters), int(latent_channels)
    self.padding = padding
    self.density_filters = tuple(int(f) for f in density_filters)
    n, m = self.num_filters, self.latent_channels
    self.analysis = hp.build_analysis(n, m, padding=padding)
    self.synthesis = hp.build_synthesis(n, m, padding=padding)
    self.hyper_analysis = build_hyper_analysis(n, m, padding)
    self.hyper_synthesis = build_hyper_synthesis(n, m, padding)
    self.density = hp.FactorizedDensity(n, self.density_filters, name="factorized_density",
                                        dtype="float32")
    # z's medians, int64 [N] at PRECISION_BITS (the integer h_s takes z_hat exactly).
    self.z_offsets = np.zeros([n], np.int64)
    self.shipped_hyper_synthesis = None  # a bundle's; None: derived from the weights

  def z_offset_values(self):
    return tf.constant(np.asarray(self.z_offsets, np.float64) / 2.0 ** PRECISION_BITS,
                       tf.float32)

  def scales_and_means(self, z_hat, y_shape):
    params = self.hyper_synthesis(z_hat)[:, :y_shape[1], :y_shape[2], :]
    return params[..., :self.latent_channels], params[..., self.latent_channels:]

  def call(self, images, training=False):
    """The float forward pass (noise with training=True), its likelihoods and rate in bits."""
    y = self.analysis(images, training=training)
    z = self.hyper_analysis(y, training=training)
    if training:
      z_tilde = z + tf.random.uniform(tf.shape(z), -0.5, 0.5)
    else:
      offsets = self.z_offset_values()
      z_tilde = tf.round(z - offsets) + offsets
    scales, means = self.scales_and_means(z_tilde, tf.shape(y))
    if training:
      y_tilde = y + tf.random.uniform(tf.shape(y), -0.5, 0.5)
    else:
      y_tilde = tf.round(y - means) + means
    sigma = gdn_lib.lower_bound(scales, hp.SCALE_MIN)
    y_likelihoods = hp.gaussian_likelihood(y_tilde - means, sigma)
    z_likelihoods = self.density(z_tilde)
    y_bits = -tf.reduce_sum(tf.math.log(y_likelihoods)) / math.log(2.0)
    z_bits = -tf.reduce_sum(tf.math.log(z_likelihoods)) / math.log(2.0)
    shape = tf.shape(images)
    pixels = tf.cast(shape[0] * shape[1] * shape[2], tf.float32)
    return {"reconstruction": self.synthesis(y_tilde, training=training), "y": y, "z": z,
            "y_tilde": y_tilde, "z_tilde": z_tilde, "sigma": sigma, "means": means,
            "y_likelihoods": y_likelihoods, "z_likelihoods": z_likelihoods,
            "bpp": (y_bits + z_bits) / pixels}

  def build_weights(self):
    side = hp.DOWNSAMPLING * hp.HYPER_DOWNSAMPLING
    self(tf.zeros([1, side, side, 3]))
    return self

  def hyper_synthesis_layers(self) -> list:
    """h_s as data for hyperprior.IntegerHyperSynthesis (kernel [k, k, out, in], bias, stride,
    activation per layer)."""
    return [(np.asarray(self.hyper_synthesis.get_layer(name).kernel.numpy(), np.float64),
             np.asarray(self.hyper_synthesis.get_layer(name).bias.numpy(), np.float64),
             stride, activation) for name, _, stride, activation in _HYPER_SYNTHESIS_LAYERS]

  def integer_hyper_synthesis(self) -> hp.IntegerHyperSynthesis:
    if self.shipped_hyper_synthesis is not None:
      return self.shipped_hyper_synthesis
    crops = tuple(hp.transposed_crop(k, s, self.padding) for _, k, s, _ in
                  _HYPER_SYNTHESIS_LAYERS)
    return hp.IntegerHyperSynthesis.from_layers(
        self.hyper_synthesis_layers(), crops=crops, input_offsets=self.z_offsets,
        leaky_slope=LEAKY_SLOPE, scale_channels=self.latent_channels,
        input_bits=PRECISION_BITS, weight_bits=PRECISION_BITS, activation_bits=PRECISION_BITS)

  def encode(self, images):
    """images (multiples of 16) -> (y float32 [B, h, w, M], z symbols int32 [B, hz, wz, N])."""
    y = self.analysis(images, training=False)
    z = self.hyper_analysis(y, training=False) - self.z_offset_values()
    return y, tf.cast(tf.round(z), tf.int32)

  def decode(self, y_fixed):
    """y_hat_fixed [B, h, w, M] -> images [B, 16h, 16w, 3], float32 in [0, 255]."""
    return tf.clip_by_value(self.synthesis(y_hat_of(y_fixed), training=False), 0.0, 255.0)


def coding_path(hyper_synthesis: hp.IntegerHyperSynthesis, z_symbols, y_shape) -> tuple:
  """z symbols [B, hz, wz, N] -> (scale indices int32, mu_int int64), each [B, hy, wy, M]:
  integer arithmetic only (the encoder's and every decoder's)."""
  acc = hyper_synthesis.accumulate(z_symbols)[:, :y_shape[1], :y_shape[2], :]
  means = hyper_synthesis.means_of(acc, MEAN_BITS)
  _check_range(np.abs(means) >> MEAN_BITS, "means")
  return hyper_synthesis.indices_of(acc), means


def residuals(y, means) -> np.ndarray:
  """The encoder's r = round(y - mu), int64 (y float, mu_int at MEAN_BITS)."""
  r = np.rint(np.asarray(y, np.float64) - np.asarray(means, np.float64) * 2.0 ** -MEAN_BITS)
  return r.astype(np.int64)


class _Shared(hyperprior_codec.TwoLatentShapes):
  """What the codec and its Reader do alike, from y_tables, z_tables and hyper_synthesis."""

  family: typing.ClassVar[str] = "meanscale"
  bitstream_family: typing.ClassVar[int] = bitstream.FAMILY_MEANSCALE

  def read_streams(self, data: bytes) -> tuple:
    """A file's (header, residuals r, z symbols, scale indices, mu_int), checked."""
    header = bitstream.parse_header(data)
    self.check_header(header)
    z = bitstream.decode_hyperprior_z(data, header, self.z_tables)
    indices, means = coding_path(self.hyper_synthesis, z[None], (1, *header.y_shape))
    r = bitstream.decode_hyperprior_y(data, header, self.y_tables, indices[0])
    _check_range(r, "latent residuals")
    return header, r, z, indices[0], means[0]

  def read_symbols(self, data: bytes) -> tuple:
    header, r, _, indices, means = self.read_streams(data)
    y_fixed = (np.asarray(r, np.int64) << MEAN_BITS) + means
    return header, {Y_FIXED: y_fixed.astype(np.int32), INDICES: indices.astype(np.int32)}

  def latents_from_symbols(self, symbols: dict) -> dict:
    latents = {}
    if Y_FIXED in symbols:
      latents[Y_HAT] = y_hat_of(symbols[Y_FIXED])
    if INDICES in symbols:
      latents[SIGMA_HAT] = tf.gather(tf.constant(hp.scale_table(), tf.float32),
                                     symbols[INDICES])
    return latents

  def information_bits(self, data: bytes) -> tuple:
    header, r, z, indices, _ = self.read_streams(data)
    channel_of = np.broadcast_to(np.arange(z.shape[-1]), z.shape)
    return header, (bitstream.stream_information_bits(r, indices, self.y_tables)
                    + bitstream.stream_information_bits(z, channel_of, self.z_tables))

  @property
  def operating_point(self) -> str:
    return f"q{self.quality}"


def _coding_tables(arrays: dict, channels: int, num_filters: int, name: str) -> tuple:
  y_tables, z_tables, hyper_synthesis = hyperprior_codec.hyperprior_coding_tables(arrays)
  if (y_tables.num_tables != hp.NUM_SCALES or z_tables.num_tables != num_filters
      or hyper_synthesis.scale_channels != channels
      or hyper_synthesis.kernels[-1].shape[2] != 2 * channels):
    raise CodecError(f"codec {name!r}: its coding tables do not fit a mean-scale codec with "
                     f"M={channels}, N={num_filters}")
  return y_tables, z_tables, hyper_synthesis


@dataclasses.dataclass(frozen=True, eq=False)
class MeanScaleTables(_Shared, weight_bundles.TablesBeside, interface.Reader):
  """A mean-scale codec's identity and integer tables (no model): enough to read its files."""

  name: str
  fingerprint: bytes
  quality: int
  channels: int  # M
  num_filters: int  # N
  arrays: dict  # integer_arrays()

  def __post_init__(self):
    y_tables, z_tables, hyper_synthesis = _coding_tables(self.arrays, self.channels,
                                                         self.num_filters, self.name)
    object.__setattr__(self, "y_tables", y_tables)
    object.__setattr__(self, "z_tables", z_tables)
    object.__setattr__(self, "hyper_synthesis", hyper_synthesis)

  def to_json(self) -> dict:
    return {"family": self.family, "name": self.name, "fingerprint": self.fingerprint.hex(),
            "quality": self.quality, "operating_point": self.operating_point,
            "channels": self.channels, "num_filters": self.num_filters,
            "tables_file": self.tables_file, "tables_digest": self.digest}

  @classmethod
  def from_json_arrays(cls, identity: dict, arrays: dict) -> MeanScaleTables:
    return cls(name=identity["name"], fingerprint=bytes.fromhex(identity["fingerprint"]),
               quality=int(identity["quality"]), channels=int(identity["channels"]),
               num_filters=int(identity["num_filters"]), arrays=arrays)


@dataclasses.dataclass
class MeanScaleCodec(_Shared, weight_bundles.ImportedCodec, interface.Codec):
  """A loaded mean-scale codec: the Keras model (a MeanScaleHyperprior), its integer tables and
  its identity."""

  def __post_init__(self):
    self.reader = MeanScaleTables(self.name, bytes(self.fingerprint), self.quality,
                                  self.channels, self.num_filters, self.arrays)
    self.y_tables, self.z_tables = self.reader.y_tables, self.reader.z_tables
    self.hyper_synthesis = self.reader.hyper_synthesis

  @property
  def num_filters(self) -> int:
    return self.model.num_filters

  def symbols_of(self, images) -> tuple:
    """Padded images -> (residuals, scale indices, mu_int, z symbols), numpy, batched."""
    y, z = self.model.encode(images)
    y, z = y.numpy(), z.numpy()
    indices, means = coding_path(self.hyper_synthesis, z, y.shape)
    r = residuals(y, means)
    _check_range(r, "latent residuals")
    return r, indices, means, z

  def batch_compressor(self, image_size: int | None):
    del image_size  # the encoder runs eagerly: its output feeds NumPy at once

    def files(images, size) -> list:
      padded, _ = hp.pad_to_multiple(tf.convert_to_tensor(images, tf.float32))
      r, indices, _, z = self.symbols_of(padded)
      return [bitstream.encode_hyperprior(r[i], indices[i], self.y_tables, z[i], self.z_tables,
                                          codec_name=self.name, fingerprint=self.fingerprint,
                                          image_size=size, codec_family=self.bitstream_family)
              for i in range(r.shape[0])]
    return files

  def reconstruct(self, symbols: dict):
    return self.decode_traced(symbols[Y_FIXED])

  def latents(self, images, differentiable: bool = False) -> dict:
    """What a file of each image gives read_latents; differentiable=True: y rounded around the
    float means with a straight-through gradient, and the float scales (joint training)."""
    if not differentiable:
      r, indices, means, _ = self.symbols_of(images)
      return self.latents_from_symbols({Y_FIXED: (r << MEAN_BITS) + means, INDICES: indices})
    model = self.model
    y = model.analysis(images, training=True)
    z = model.hyper_analysis(y, training=True)
    offsets = model.z_offset_values()
    z_hat = z + tf.stop_gradient(tf.round(z - offsets) + offsets - z)
    scales, means = model.scales_and_means(z_hat, tf.shape(y))
    y_hat = y + tf.stop_gradient(tf.round(y - means) + means - y)
    return {Y_HAT: y_hat, SIGMA_HAT: gdn_lib.lower_bound(scales, hp.SCALE_MIN)}



# --- bundles ---------------------------------------------------------------------------------


def integer_arrays(model: MeanScaleHyperprior) -> dict:
  """The coding path's integers: the y tables (hyperprior.y_tables), the z tables from the
  density around z's medians, and the integer hyper-synthesis."""
  z_tables = hp.z_tables(model.density, model.z_offset_values().numpy())
  return {**weight_bundles.table_arrays("y", hp.y_tables()),
          **weight_bundles.table_arrays("z", z_tables),
          **model.integer_hyper_synthesis().to_arrays()}


def save_codec(model: MeanScaleHyperprior, quality: int, path: str, name: str,
               extra_metadata=None) -> bytes:
  """Writes a mean-scale bundle (float32 weights, integer tables); returns its fingerprint."""
  return weight_bundles.save_model(path, FAMILY.name, model, quality, name, integer_arrays(model),
                                   extra_metadata)


def load_codec(path: str, quality=None) -> MeanScaleCodec:
  meta, model, arrays = weight_bundles.load_model(path, FAMILY.name, "mean-scale",
                                                  MeanScaleHyperprior, quality)
  codec = MeanScaleCodec(model=model, quality=int(meta["quality"]), name=meta["name"],
                         fingerprint=bytes.fromhex(meta["fingerprint"]), arrays=arrays,
                         architecture=meta.get("architecture", ""))
  model.shipped_hyper_synthesis = codec.hyper_synthesis
  if codec.hyper_synthesis.input_offsets is not None:
    model.z_offsets = codec.hyper_synthesis.input_offsets
  return codec


class MeanScaleFamily(weight_bundles.ImportedFamily):
  name = "meanscale"
  what = "mean-scale"
  architecture = "mbt2018-mean"
  byte = bitstream.FAMILY_MEANSCALE
  downsampling = hp.DOWNSAMPLING
  latent_names = (Y_HAT, SIGMA_HAT)
  symbol_names = (Y_FIXED, INDICES)
  plot_marker, plot_marker_size = "^", 9
  serving_names = {INDICES: "scale_indices"}
  tables_class = MeanScaleTables
  load_codec = staticmethod(load_codec)

  def describe(self, codec_json: dict) -> str:
    return f"mean-scale hyperprior quality {codec_json.get('quality')}"


FAMILY = MeanScaleFamily()
