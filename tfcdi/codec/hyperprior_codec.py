"""Family 1: the scale hyperprior of Balle et al. 2018 (hyperprior.py), as a codec family.

Files hold two streams (bitstream.py, family 1): z under one table per channel, and y under the
table of each symbol's scale index, which the integer hyper-synthesis computes from the decoded
z. Reading a file gives the symbol arrays "y" and "indices" (both [hy, wy, M]); the nets read
"y_hat" = y and "sigma_hat" = scale_table()[indices], exactly what the encoder had. Shipped
codecs are picked by quality (qualities.py); bundles are tfcdi/pretrained/hyperprior_q<Q>.npz
(pretrained.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import typing

import numpy as np
import tensorflow as tf

from tfcdi.codec import bitstream
from tfcdi.codec import hyperprior as hyperprior_lib
from tfcdi.codec import interface
from tfcdi.codec import pretrained
from tfcdi.codec import qualities
from tfcdi.codec.interface import CodecError

Y, INDICES = "y", "indices"
Y_HAT, SIGMA_HAT = "y_hat", "sigma_hat"
# Where a latent store keeps the integer tables (HyperpriorTables.save / load), beside its
# metadata: they are too large for JSON.
TABLES_FILE = "codec_tables.npz"
# The largest |y| a hyperprior file may hold; checked on reading, as the integer
# hyper-synthesis checks z, and on writing, so that no file we write is refused. The format
# codes any value (escapes). The shipped codecs' y stay within a few dozen on photos, but a codec
# may have wide latents (the latent cache keeps y beyond 16 bits), so the bound is generous; a
# forged y below it can still drive a synthesis to inf (the shipped q1 at +-2^16 with random
# signs), which Codec.decompress refuses as non-finite pixels.
MAX_Y_MAGNITUDE = 1 << 16


def _check_y_range(y) -> None:
  y = np.asarray(y)
  # From the extremes, without an int64 copy of y: |min| of int32 fits a Python int.
  largest = max(-int(y.min(initial=0)), int(y.max(initial=0)))
  if largest > MAX_Y_MAGNITUDE:
    raise bitstream.BitstreamError(f"implausible latent values (|y| up to {largest}; a real "
                                   f"image's stay within {MAX_Y_MAGNITUDE})")


def latent_shapes(image_size, channels: int, num_filters: int) -> tuple:
  """(H, W) of an image -> the shapes of its y [hy, wy, M] and z [hz, wz, N]."""
  hy, wy = (-(-int(s) // hyperprior_lib.DOWNSAMPLING) for s in image_size)
  hz, wz = (-(-s // hyperprior_lib.HYPER_DOWNSAMPLING) for s in (hy, wy))
  return (hy, wy, channels), (hz, wz, num_filters)


class _Shared:
  """What the codec and its tables do alike: both have the z and y tables and scale_indices."""

  family: typing.ClassVar[str] = "hyperprior"
  bitstream_family: typing.ClassVar[int] = bitstream.FAMILY_HYPERPRIOR

  def latent_shapes(self, image_size) -> dict:
    y_shape, z_shape = latent_shapes(image_size, self.channels, self.num_filters)
    return {"latent_shape": list(y_shape), "hyper_latent_shape": list(z_shape)}

  def check_shapes(self, header) -> None:
    y_shape, z_shape = latent_shapes(header.image_size, self.channels, self.num_filters)
    if (tuple(header.y_shape), tuple(header.z_shape)) != (y_shape, z_shape):
      raise bitstream.BitstreamError(
          f"the header announces latents {header.y_shape} and {header.z_shape}; a "
          f"{header.image_size} image coded by {self.name!r} has {y_shape} and {z_shape}")

  def read_streams(self, data: bytes) -> tuple:
    """A file's (header, y symbols, z symbols, scale indices), checked; int32 each."""
    header = bitstream.parse_header(data)
    self.check_header(header)
    z = bitstream.decode_hyperprior_z(data, header, self.z_tables)
    indices = self.scale_indices(z[None], (1, *header.y_shape))[0]
    y = bitstream.decode_hyperprior_y(data, header, self.y_tables, indices)
    _check_y_range(y)
    return header, y, z, indices

  def read_symbols(self, data: bytes) -> tuple:
    header, y, _, indices = self.read_streams(data)
    return header, {Y: y, INDICES: np.asarray(indices, np.int32)}

  def latents_from_symbols(self, symbols: dict) -> dict:
    latents = {}
    if Y in symbols:
      latents[Y_HAT] = tf.cast(symbols[Y], tf.float32)
    if INDICES in symbols:
      scales = tf.constant(hyperprior_lib.scale_table(), tf.float32)
      latents[SIGMA_HAT] = tf.gather(scales, symbols[INDICES])
    return latents

  def information_bits(self, data: bytes) -> tuple:
    header, y, z, indices = self.read_streams(data)
    channel_of = np.broadcast_to(np.arange(z.shape[-1]), z.shape)
    return header, (bitstream.stream_information_bits(y, indices, self.y_tables)
                    + bitstream.stream_information_bits(z, channel_of, self.z_tables))


@dataclasses.dataclass
class HyperpriorCodec(_Shared, interface.Codec):
  """A ready-to-use hyperprior codec: the Keras model plus the integer tables the files need."""

  model: hyperprior_lib.Hyperprior
  quality: qualities.Quality
  y_tables: bitstream.Tables  # one per scale of hyperprior.scale_table()
  z_tables: bitstream.Tables  # one per channel of z
  name: str  # e.g. "hp-q4-cpu"
  fingerprint: bytes  # 8 bytes

  @property
  def channels(self) -> int:
    """M, channels of y."""
    return self.model.latent_channels

  @property
  def num_filters(self) -> int:
    """N, channels of z."""
    return self.model.num_filters

  def scale_indices(self, z_symbols, y_shape=None) -> np.ndarray:
    """z symbols [B, hz, wz, N] -> scale indices [B, hy, wy, M] (the integer hyper-synthesis)."""
    return self.model.scale_indices(z_symbols, y_shape)

  def integer_tables(self) -> dict:
    return pretrained.hyperprior_integer_arrays(self)

  def tables(self) -> HyperpriorTables:
    return HyperpriorTables(name=self.name, fingerprint=bytes(self.fingerprint),
                            quality=self.quality.quality, channels=int(self.channels),
                            num_filters=int(self.num_filters), arrays=self.integer_tables())

  def analysis_model(self):
    return self.model.analysis

  def synthesis_model(self):
    return self.model.synthesis

  def _files(self, y, z, size) -> list:
    """Rounded latents y [B, hy, wy, M], z [B, hz, wz, N] (int32) -> B .tfci files."""
    _check_y_range(y)
    indices = self.scale_indices(z, y.shape)  # integers: the same batched or not
    return [bitstream.encode_hyperprior(y[i], indices[i], self.y_tables, z[i], self.z_tables,
                                        codec_name=self.name, fingerprint=self.fingerprint,
                                        image_size=size)
            for i in range(y.shape[0])]

  def batch_compressor(self, image_size: int | None):
    encode = self._encoder(image_size)

    def files(images, size) -> list:
      padded, _ = hyperprior_lib.pad_to_multiple(tf.convert_to_tensor(images, tf.float32))
      y, z = encode(padded)
      return self._files(y.numpy(), z.numpy(), size)
    return files

  def compress_tiled(self, image: np.ndarray) -> bytes:
    # g_a tile by tile; h_a on the stitched float y as a whole (tiling.py says why), so z, and
    # the scale indices the integer h_s makes of it, are what the whole-image encode computes.
    y = self.analyse(lambda crop: self.model.analysis(crop, training=False), image)[None]
    z = self.model.hyper_analysis(y, training=False)
    as_symbols = lambda t: tf.cast(tf.round(t), tf.int32).numpy()  # noqa: E731  (as encode)
    return self._files(as_symbols(y), as_symbols(z), image.shape[:2])[0]

  def reconstruct(self, symbols: dict):
    return self.model.decode(symbols[Y])

  def latents(self, images, differentiable: bool = False) -> dict:
    return dict(zip((Y_HAT, SIGMA_HAT), self.model.latents(images, differentiable)))

  def result_identity(self) -> dict:
    return {"codec_family": self.family, "quality": self.quality.quality,
            "lambda": self.quality.lmbda}

  @property
  def label(self) -> str:
    return f"hyperprior {self.quality.name}"


@dataclasses.dataclass(frozen=True, eq=False)
class HyperpriorTables(_Shared, interface.Reader):
  """A hyperprior codec's identity and integer coding tables: enough to read its .tfci files.

  Without its Keras model: the z tables, the y tables of the scale table and the integer
  hyper-synthesis that maps z symbols to scale indices. A reader gets the y symbols and
  sigma_hat = scale_table()[index] from these alone, so the compressed-domain path never builds
  a transform.
  """

  name: str
  fingerprint: bytes
  quality: int
  channels: int  # M, channels of y
  num_filters: int  # N, channels of z
  arrays: dict  # the named integer arrays (pretrained.hyperprior_integer_arrays)

  def __post_init__(self):
    y_tables, z_tables, hyper_synthesis = pretrained.hyperprior_coding_tables(self.arrays)
    if (y_tables.num_tables != hyperprior_lib.NUM_SCALES
        or z_tables.num_tables != self.num_filters):
      raise CodecError(
          f"codec {self.name!r}: {y_tables.num_tables} y tables and {z_tables.num_tables} z "
          f"tables, expected {hyperprior_lib.NUM_SCALES} and {self.num_filters}")
    object.__setattr__(self, "y_tables", y_tables)
    object.__setattr__(self, "z_tables", z_tables)
    object.__setattr__(self, "hyper_synthesis", hyper_synthesis)

  @property
  def operating_point(self) -> str:
    """The quality's name ("q4"): what results and reports list where the autoencoder has its
    operating point."""
    return f"q{self.quality}"

  @property
  def digest(self) -> str:
    """SHA-256 (hex, 16 digits) of the integer arrays, to check a stored copy of them."""
    digest = hashlib.sha256()
    for key in sorted(self.arrays):
      digest.update(key.encode())
      digest.update(np.ascontiguousarray(self.arrays[key], np.int64).tobytes())
    return digest.hexdigest()[:16]

  def scale_indices(self, z_symbols, y_shape=None) -> np.ndarray:
    """z symbols [B, hz, wz, N] -> scale indices [B, hy, wy, M], integer arithmetic only."""
    indices = self.hyper_synthesis(z_symbols)
    if y_shape is not None:
      indices = indices[:, :y_shape[1], :y_shape[2], :]
    return indices

  def read(self, data: bytes) -> tuple:
    """A file's (header, y symbols, z symbols, scale indices), checked against this codec."""
    return self.read_streams(data)

  def integer_tables(self) -> dict:
    return dict(self.arrays)

  def serving_arrays(self) -> dict:
    return {key: np.asarray(value, np.int64) for key, value in self.arrays.items()}

  @classmethod
  def from_codec(cls, codec: HyperpriorCodec) -> HyperpriorTables:
    return codec.tables()

  def to_json(self) -> dict:
    """The identity (the arrays go to a file of their own: `save`)."""
    return {"family": self.family, "name": self.name, "fingerprint": self.fingerprint.hex(),
            "quality": self.quality, "operating_point": self.operating_point,
            "channels": self.channels, "num_filters": self.num_filters,
            "tables_file": TABLES_FILE, "tables_digest": self.digest}

  def save(self, path: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    np.savez_compressed(tmp, **self.arrays)
    os.replace(tmp, path)

  def save_beside(self, folder: str) -> None:
    self.save(os.path.join(folder, TABLES_FILE))

  @classmethod
  def load(cls, data: dict, path: str) -> HyperpriorTables:
    """The tables whose identity is `data` (to_json) and whose arrays are in `path` (save).

    Raises:
      CodecError: the file is missing, unreadable or holds other tables.
    """
    try:
      with np.load(path, allow_pickle=False) as npz:
        arrays = {k: np.asarray(npz[k]) for k in npz.files}
    except (OSError, ValueError) as e:
      raise CodecError(f"cannot read the hyperprior coding tables {path} ({e})") from None
    return cls.from_identity(data, arrays, f"{path} holds")

  @classmethod
  def from_identity(cls, data: dict, arrays: dict, where: str = "the arrays are") -> (
      HyperpriorTables):
    """The tables of an identity (to_json) and its arrays, checked against its digest."""
    tables = cls(name=data["name"], fingerprint=bytes.fromhex(data["fingerprint"]),
                 quality=int(data["quality"]), channels=int(data["channels"]),
                 num_filters=int(data["num_filters"]), arrays=arrays)
    if tables.digest != data["tables_digest"]:
      raise CodecError(f"{where} other coding tables than codec {data['name']!r}'s")
    return tables


class HyperpriorFamily(interface.Family):
  name = "hyperprior"
  byte = bitstream.FAMILY_HYPERPRIOR
  downsampling = hyperprior_lib.DOWNSAMPLING
  latent_names = (Y_HAT, SIGMA_HAT)
  symbol_names = (Y, INDICES)
  selector = "quality"
  plot_marker, plot_marker_size = "D", 9
  serving_names = {Y: "y_symbols", INDICES: "scale_indices"}

  def load(self, path=None, selection=None) -> HyperpriorCodec:
    return pretrained.load_hyperprior_codec(selection, path=path)

  def read_tables(self, path: str) -> HyperpriorTables:
    """The integer tables (the fingerprint, over weights and tables, is checked)."""
    meta, arrays = pretrained.read_hyperprior_tables(path)
    return HyperpriorTables(name=meta["name"], fingerprint=bytes.fromhex(meta["fingerprint"]),
                            quality=int(meta["quality"]), channels=int(meta["latent_channels"]),
                            num_filters=int(meta["num_filters"]), arrays=arrays)

  def tables_from_json(self, data: dict, folder=None) -> HyperpriorTables:
    if folder is None:
      raise ValueError("reading a hyperprior store's tables needs its folder")
    return HyperpriorTables.load(data, os.path.join(folder, data.get("tables_file", TABLES_FILE)))

  def tables_from_serving(self, identity: dict, arrays: dict) -> HyperpriorTables:
    return HyperpriorTables.from_identity(identity, arrays, "the export holds")

  def same_selection(self, codec_json: dict, selection) -> bool:
    return qualities.get_quality(selection).quality == codec_json.get("quality")

  def describe(self, codec_json: dict) -> str:
    return f"hyperprior quality {codec_json.get('quality')}"

  def result_label(self, result: dict) -> str:
    return f"hyperprior, quality {result.get('quality', '?')}"


FAMILY = HyperpriorFamily()
