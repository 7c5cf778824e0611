"""Family 2: the factorized prior of Balle et al. 2018 ("bmshj2018-factorized"), imported.

  g_a    image [B, H, W, 3] in [0, 255] -> y [B, H/16, W/16, M]: four 5x5 stride-2
         convolutions, GDN after the first three (hyperprior.build_analysis)
  g_s    y_hat -> image: four 5x5 stride-2 transposed convolutions, IGDN after the first three
  prior  y under a learned factorized density, one per channel (hyperprior.FactorizedDensity,
         CompressAI's EntropyBottleneck), quantized around the channel's median m:
         symbols v = round(y - m), y_hat = v + m

There is no hyperprior: a file holds one stream, every symbol of channel c under the codec's
integer table c (factorized_bitstream.py, family 2), made once from the imported density as the
hyperprior's z tables are (hyperprior.z_tables). The tables are fixed, like the autoencoder's,
so reading a file needs no network at all. The medians are kept exactly as the checkpoint has
them, float32 (stored as their bit patterns among the integer arrays): rounded to a grid, a
median a hair off would flip round(y - m) wherever y - m lies near a half-integer, and the
symbol would differ from the library's. y_hat = v + m is one float32 addition, correctly
rounded under IEEE 754, so the same on every machine. Compressed-domain nets read "y_hat".

Codecs of this family come from other libraries' checkpoints (importers/compressai.py); none is
shipped. Bundles: weight_bundles.py's format, family "factorized".
"""

from __future__ import annotations

import dataclasses
import math
import typing

import keras
import numpy as np
import tensorflow as tf

from tfcdi.codec import bitstream
from tfcdi.codec import factorized_bitstream
from tfcdi.codec import hyperprior as hyperprior_lib
from tfcdi.codec import hyperprior_codec
from tfcdi.codec import interface
from tfcdi.codec import weight_bundles
from tfcdi.codec.interface import CodecError

Y, Y_HAT = "y", "y_hat"
DOWNSAMPLING = hyperprior_lib.DOWNSAMPLING


def check_y_range(y) -> None:
  """Refuses symbols beyond what a real image gives (hyperprior_codec.MAX_Y_MAGNITUDE)."""
  largest = int(np.abs(np.asarray(y, np.int64)).max(initial=0))
  if largest > hyperprior_codec.MAX_Y_MAGNITUDE:
    raise bitstream.BitstreamError(f"implausible latent values (|y| up to {largest}; a real "
                                   f"image's stay within {hyperprior_codec.MAX_Y_MAGNITUDE})")


def medians_to_bits(medians) -> np.ndarray:
  """float32 medians -> their bit patterns, int64 (how the integer arrays hold them)."""
  return np.asarray(medians, np.float32).view(np.int32).astype(np.int64)


def medians_from_bits(bits) -> np.ndarray:
  """The inverse of medians_to_bits; CodecError for bit patterns that are no finite float."""
  bits = np.asarray(bits, np.int64)
  if bits.ndim != 1 or np.any(bits < -(1 << 31)) or np.any(bits >= 1 << 31):
    raise CodecError("malformed medians in the factorized coding tables")
  medians = bits.astype(np.int32).view(np.float32)
  if not np.all(np.isfinite(medians)) or np.any(np.abs(medians) > 1 << 16):
    raise CodecError("implausible medians in the factorized coding tables")
  return medians


@keras.saving.register_keras_serializable(package="tfcdi")
class FactorizedPrior(keras.Model):
  """g_a, g_s and the factorized density of y, with the coding interfaces of hyperprior.Hyperprior.

  `call` is the training path (noise, or quantization around the medians with training=False)
  and returns the loss terms; encode / decode / latents are the inference interfaces.
  """

  def __init__(self, num_filters: int, latent_channels: int, padding: str = "symmetric",
               density_filters=(3, 3, 3, 3), **kwargs):
    super().__init__(**kwargs)
    self.num_filters = int(num_filters)
    self.latent_channels = int(latent_channels)
    self.padding = padding
    self.density_filters = tuple(int(f) for f in density_filters)
    n, m = self.num_filters, self.latent_channels
    self.analysis = hyperprior_lib.build_analysis(n, m, padding=padding)
    self.synthesis = hyperprior_lib.build_synthesis(n, m, padding=padding)
    self.density = hyperprior_lib.FactorizedDensity(m, self.density_filters,
                                                    name="factorized_density", dtype="float32")
    # Per-channel medians (float32 [M]), which y is quantized around.
    self.medians = np.zeros([m], np.float32)

  def median_values(self):
    return tf.constant(self.medians, tf.float32)

  def call(self, images, training=False):
    """Reconstruction, likelihoods and the rate in bits (summed over the batch)."""
    y = self.analysis(images, training=training)
    if training:
      y_tilde = y + tf.random.uniform(tf.shape(y), -0.5, 0.5)
    else:
      m = self.median_values()
      y_tilde = tf.round(y - m) + m
    likelihoods = self.density(y_tilde)
    bits = -tf.reduce_sum(tf.math.log(likelihoods)) / math.log(2.0)
    shape = tf.shape(images)
    pixels = tf.cast(shape[0] * shape[1] * shape[2], tf.float32)
    return {"reconstruction": self.synthesis(y_tilde, training=training), "y": y,
            "y_tilde": y_tilde, "y_likelihoods": likelihoods, "y_bits": bits,
            "bpp": bits / pixels}

  def build_weights(self):
    self(tf.zeros([1, DOWNSAMPLING, DOWNSAMPLING, 3]))
    return self

  def encode(self, images):
    """images [B, H, W, 3] in [0, 255] (multiples of 16) -> symbols round(y - m), int32."""
    y = self.analysis(images, training=False)
    return tf.cast(tf.round(y - self.median_values()), tf.int32)

  def y_hat(self, symbols):
    return tf.cast(tf.convert_to_tensor(symbols), tf.float32) + self.median_values()

  def decode(self, symbols):
    """Symbols [B, h, w, M] -> images [B, 16h, 16w, 3], float32 in [0, 255]."""
    return tf.clip_by_value(self.synthesis(self.y_hat(symbols), training=False), 0.0, 255.0)

  def latents(self, images, differentiable: bool = False):
    """images -> y_hat [B, H/16, W/16, M]: what a file of each image gives read_latents;
    differentiable=True rounds with a straight-through gradient (joint training)."""
    if not differentiable:
      return self.y_hat(self.encode(images))
    y = self.analysis(images, training=True)
    m = self.median_values()
    return y + tf.stop_gradient(tf.round(y - m) + m - y)

  def get_config(self):
    return {**super().get_config(), "num_filters": self.num_filters,
            "latent_channels": self.latent_channels, "padding": self.padding,
            "density_filters": list(self.density_filters)}


# --- the integer tables and the reader -------------------------------------------------------


def integer_arrays(model: FactorizedPrior) -> dict:
  """The coding path's integers: one table per channel of y, centred on its median, and the
  medians themselves."""
  tables = hyperprior_lib.z_tables(model.density, model.medians)
  return {**weight_bundles.table_arrays("y", tables), "y_medians": medians_to_bits(model.medians)}


def _tables_of(arrays: dict) -> bitstream.Tables:
  try:
    return bitstream.make_tables(arrays["y_frequencies"], arrays["y_lengths"],
                                 arrays["y_offsets"])
  except (KeyError, ValueError) as e:  # BitstreamError is a ValueError
    raise CodecError(f"malformed factorized coding tables ({e!r})") from None


class _Shared:
  """What the codec and its Reader do alike, from `y_tables` and `medians`."""

  family: typing.ClassVar[str] = "factorized"
  bitstream_family: typing.ClassVar[int] = bitstream.FAMILY_FACTORIZED

  def latent_shape(self, image_size) -> tuple:
    return (*(-(-int(s) // DOWNSAMPLING) for s in image_size), self.channels)

  def latent_shapes(self, image_size) -> dict:
    return {"latent_shape": list(self.latent_shape(image_size))}

  def check_shapes(self, header) -> None:
    expected = self.latent_shape(header.image_size)
    if tuple(header.latent_shape) != expected:
      raise bitstream.BitstreamError(
          f"the header announces a latent {header.latent_shape}; a {header.image_size} image "
          f"coded by {self.name!r} has {expected}")

  def read_symbols(self, data: bytes) -> tuple:
    header = factorized_bitstream.parse_header(data)
    self.check_header(header)
    y = factorized_bitstream.decode(data, header, self.y_tables)
    check_y_range(y)
    return header, {Y: y}

  def latents_from_symbols(self, symbols: dict) -> dict:
    if Y not in symbols:
      return {}
    return {Y_HAT: tf.cast(symbols[Y], tf.float32) + tf.constant(self.medians, tf.float32)}

  def information_bits(self, data: bytes) -> tuple:
    header, symbols = self.read_symbols(data)
    y = symbols[Y]
    channel_of = np.broadcast_to(np.arange(y.shape[-1]), y.shape)
    return header, bitstream.stream_information_bits(y, channel_of, self.y_tables)

  @property
  def operating_point(self) -> str:
    """The quality's name ("q3"), where results list the autoencoder's operating point."""
    return f"q{self.quality}"


@dataclasses.dataclass(frozen=True, eq=False)
class FactorizedTables(_Shared, weight_bundles.TablesBeside, interface.Reader):
  """A factorized codec's identity and integer tables (no model): enough to read its files."""

  name: str
  fingerprint: bytes
  quality: int
  channels: int  # M
  arrays: dict  # integer_arrays()

  def __post_init__(self):
    tables = _tables_of(self.arrays)
    medians = medians_from_bits(self.arrays.get("y_medians", ()))
    if tables.num_tables != self.channels or medians.shape != (self.channels,):
      raise CodecError(f"codec {self.name!r}: {tables.num_tables} tables and {medians.size} "
                       f"medians for {self.channels} channels")
    object.__setattr__(self, "y_tables", tables)
    object.__setattr__(self, "medians", medians)

  def to_json(self) -> dict:
    return {"family": self.family, "name": self.name, "fingerprint": self.fingerprint.hex(),
            "quality": self.quality, "operating_point": self.operating_point,
            "channels": self.channels, "tables_file": self.tables_file,
            "tables_digest": self.digest}

  @classmethod
  def from_json_arrays(cls, identity: dict, arrays: dict) -> FactorizedTables:
    return cls(name=identity["name"], fingerprint=bytes.fromhex(identity["fingerprint"]),
               quality=int(identity["quality"]), channels=int(identity["channels"]),
               arrays=arrays)


@dataclasses.dataclass
class FactorizedCodec(_Shared, weight_bundles.ImportedCodec, interface.Codec):
  """A loaded factorized codec: the Keras model (a FactorizedPrior), its tables and identity."""

  def __post_init__(self):
    self.reader = FactorizedTables(self.name, bytes(self.fingerprint), self.quality,
                                   self.channels, self.arrays)
    self.y_tables, self.medians = self.reader.y_tables, self.reader.medians

  def batch_compressor(self, image_size: int | None):
    encode = self._encoder(image_size)

    def files(images, size) -> list:
      padded, _ = hyperprior_lib.pad_to_multiple(tf.convert_to_tensor(images, tf.float32))
      y = encode(padded).numpy()
      check_y_range(y)
      return [factorized_bitstream.encode(y[i], self.y_tables, codec_name=self.name,
                                          fingerprint=self.fingerprint, image_size=size)
              for i in range(y.shape[0])]
    return files

  def reconstruct(self, symbols: dict):
    return self.decode_traced(symbols[Y])

  def latents(self, images, differentiable: bool = False) -> dict:
    return {Y_HAT: self.model.latents(images, differentiable)}



# --- bundles ---------------------------------------------------------------------------------


def save_codec(model: FactorizedPrior, quality: int, path: str, name: str,
               extra_metadata=None) -> bytes:
  """Writes a factorized bundle (float32 weights, integer tables); returns its fingerprint."""
  return weight_bundles.save_model(path, FAMILY.name, model, quality, name, integer_arrays(model),
                                   extra_metadata)


def load_codec(path: str, quality=None) -> FactorizedCodec:
  meta, model, arrays = weight_bundles.load_model(path, FAMILY.name, "factorized", FactorizedPrior,
                                                  quality)
  try:
    model.medians = medians_from_bits(arrays["y_medians"])
  except KeyError:
    raise CodecError(f"{path}: no medians among its coding tables") from None
  return FactorizedCodec(model=model, quality=int(meta["quality"]), name=meta["name"],
                         fingerprint=bytes.fromhex(meta["fingerprint"]), arrays=arrays,
                         architecture=meta.get("architecture", ""))


class FactorizedFamily(weight_bundles.ImportedFamily):
  name = "factorized"
  what = "factorized"
  architecture = "bmshj2018-factorized"
  byte = bitstream.FAMILY_FACTORIZED
  downsampling = DOWNSAMPLING
  latent_names = (Y_HAT,)
  symbol_names = (Y,)
  plot_marker, plot_marker_size = "s", 8
  serving_names = {Y: "y_symbols"}
  tables_class = FactorizedTables
  load_codec = staticmethod(load_codec)

  def parse_header(self, data: bytes):
    return factorized_bitstream.parse_header(data)


FAMILY = FactorizedFamily()
