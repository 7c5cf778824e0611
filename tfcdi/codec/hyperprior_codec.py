"""Family 1: the scale hyperprior of Balle et al. 2018 (hyperprior.py), as a codec family.

Files hold two streams (bitstream.py, family 1): z under one table per channel, and y under the
table of each symbol's scale index, which the integer hyper-synthesis computes from the decoded
z. Reading a file gives the symbol arrays "y" and "indices" (both [hy, wy, M]); the nets read
"y_hat" = y and "sigma_hat" = scale_table()[indices], exactly what the encoder had. Shipped
codecs are picked by quality (qualities.py). A bundle (bundles.py) holds the float16 weights,
the integer tables (the z tables, the y tables of the scale table, the integer hyper-synthesis)
and its metadata ("family": "hyperprior", the quality, N and M); its fingerprint covers weights
and tables. The shipped ones are tfcdi/pretrained/hyperprior_q<Q>.npz.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import typing

import numpy as np
import tensorflow as tf

from tfcdi.codec import bitstream
from tfcdi.codec import bundles
from tfcdi.codec import hyperprior as hyperprior_lib
from tfcdi.codec import interface
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


class TwoLatentShapes:
  """The shapes of a family whose files hold y and z (this one, mean-scale), from `channels`
  (M) and `num_filters` (N)."""

  def latent_shapes(self, image_size) -> dict:
    y_shape, z_shape = latent_shapes(image_size, self.channels, self.num_filters)
    return {"latent_shape": list(y_shape), "hyper_latent_shape": list(z_shape)}

  def check_shapes(self, header) -> None:
    y_shape, z_shape = latent_shapes(header.image_size, self.channels, self.num_filters)
    if (tuple(header.y_shape), tuple(header.z_shape)) != (y_shape, z_shape):
      raise bitstream.BitstreamError(
          f"the header announces latents {header.y_shape} and {header.z_shape}; a "
          f"{header.image_size} image coded by {self.name!r} has {y_shape} and {z_shape}")


class _Shared(TwoLatentShapes):
  """What the codec and its tables do alike: both have the z and y tables and scale_indices."""

  family: typing.ClassVar[str] = "hyperprior"
  bitstream_family: typing.ClassVar[int] = bitstream.FAMILY_HYPERPRIOR

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
  # What it was trained for: "mse" or "ms-ssim" (qualities.DISTORTIONS); from its bundle.
  distortion: str = qualities.MSE

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
    return hyperprior_integer_arrays(self)

  def tables(self) -> HyperpriorTables:
    return HyperpriorTables(name=self.name, fingerprint=bytes(self.fingerprint),
                            quality=self.quality.quality, channels=int(self.channels),
                            num_filters=int(self.num_filters), arrays=self.integer_tables(),
                            distortion=self.distortion)

  def analysis_model(self):
    return self.model.analysis

  def synthesis_model(self):
    # Imported models' PyTorch padding (explicit pads and crops) is not what tiling.reach
    # bounds: they decode whole, as do the families that name no synthesis model.
    return self.model.synthesis if self.model.padding == "same" else None

  def _files(self, y, z, size, format_version: int | None = None) -> list:
    """Rounded latents y [B, hy, wy, M], z [B, hz, wz, N] (int32) -> B .tfci files."""
    _check_y_range(y)
    indices = self.scale_indices(z, y.shape)  # integers: the same batched or not
    return [bitstream.encode_hyperprior(y[i], indices[i], self.y_tables, z[i], self.z_tables,
                                        codec_name=self.name, fingerprint=self.fingerprint,
                                        image_size=size, format_version=format_version)
            for i in range(y.shape[0])]

  def batch_compressor(self, image_size: int | None, format_version: int | None = None):
    encode = self._encoder(image_size)

    def files(images, size) -> list:
      padded, _ = hyperprior_lib.pad_to_multiple(tf.convert_to_tensor(images, tf.float32))
      y, z = encode(padded)
      return self._files(y.numpy(), z.numpy(), size, format_version)
    return files

  def compress_tiled(self, image: np.ndarray, format_version: int | None = None) -> bytes:
    # g_a tile by tile; h_a on the stitched float y as a whole (tiling.py says why), so z, and
    # the scale indices the integer h_s makes of it, are what the whole-image encode computes
    # (z less an imported model's medians, as Hyperprior.encode). Imported models' PyTorch
    # padding is not what tiling.reach bounds: they encode whole.
    if self.model.padding != "same":
      return super().compress_tiled(image, format_version)
    y = self.analyse(self.traced("analysis", lambda crop: self.model.analysis(
        crop, training=False)), image)[None]
    z = self.traced("hyper_analysis", lambda y: self.model.hyper_analysis(
        y, training=False) - self.model.z_offset_values(), self.channels)(y)
    as_symbols = lambda t: tf.cast(tf.round(t), tf.int32).numpy()  # noqa: E731  (as encode)
    return self._files(as_symbols(y), as_symbols(z), image.shape[:2], format_version)[0]

  def reconstruct(self, symbols: dict):
    return self.decode_traced(symbols[Y])

  def latents(self, images, differentiable: bool = False) -> dict:
    return dict(zip((Y_HAT, SIGMA_HAT), self.model.latents(images, differentiable)))

  def result_identity(self) -> dict:
    return {"codec_family": self.family, "quality": self.quality.quality,
            "distortion": self.distortion, "lambda": self.quality.lambda_for(self.distortion)}

  @property
  def label(self) -> str:
    tag = qualities.distortion_tag(self.distortion)
    return f"hyperprior {self.quality.name}" + (f" {tag}" if tag else "")


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
  arrays: dict  # the named integer arrays (hyperprior_integer_arrays)
  # What the codec was trained for; stores and results carry it, so that reports can put
  # the MSE and MS-SSIM codecs of one quality side by side. Older identities: "mse".
  distortion: str = qualities.MSE

  def __post_init__(self):
    y_tables, z_tables, hyper_synthesis = hyperprior_coding_tables(self.arrays)
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
            "distortion": self.distortion, "channels": self.channels, "num_filters": self.num_filters,
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
    return cls.from_identity(data, bundles.read_tables_file(path), f"{path} holds")

  @classmethod
  def from_identity(cls, data: dict, arrays: dict, where: str = "the arrays are") -> (
      HyperpriorTables):
    """The tables of an identity (to_json) and its arrays, checked against its digest."""
    tables = cls(name=data["name"], fingerprint=bytes.fromhex(data["fingerprint"]),
                 quality=int(data["quality"]), channels=int(data["channels"]),
                 num_filters=int(data["num_filters"]), arrays=arrays,
                 distortion=data.get("distortion", qualities.MSE))
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
    return load_hyperprior_codec(selection, path=path)

  def read_tables(self, path: str) -> HyperpriorTables:
    """The integer tables (the fingerprint, over weights and tables, is checked)."""
    meta, arrays = read_hyperprior_tables(path)
    return HyperpriorTables(name=meta["name"], fingerprint=bytes.fromhex(meta["fingerprint"]),
                            quality=int(meta["quality"]), channels=int(meta["latent_channels"]),
                            num_filters=int(meta["num_filters"]), arrays=arrays,
                            distortion=meta.get("distortion", qualities.MSE))

  def tables_from_json(self, data: dict, folder=None) -> HyperpriorTables:
    if folder is None:
      raise ValueError("reading a hyperprior store's tables needs its folder")
    return HyperpriorTables.load(data, os.path.join(folder, data.get("tables_file", TABLES_FILE)))

  def tables_from_serving(self, identity: dict, arrays: dict) -> HyperpriorTables:
    return HyperpriorTables.from_identity(identity, arrays, "the export holds")

  def same_selection(self, codec_json: dict, selection) -> bool:
    return qualities.get_quality(selection).quality == codec_json.get("quality")

  def describe(self, codec_json: dict) -> str:
    tag = qualities.distortion_tag(codec_json.get("distortion", qualities.MSE))
    return f"hyperprior quality {codec_json.get('quality')}" + (f" ({tag})" if tag else "")

  def result_label(self, result: dict) -> str:
    tag = qualities.distortion_tag(result.get("distortion", qualities.MSE))
    return f"hyperprior, quality {result.get('quality', '?')}" + (f" ({tag})" if tag else "")


FAMILY = HyperpriorFamily()


# --- bundles --------------------------------------------------------------------------------

_HYPERPRIOR_FORMAT = 1
# The bundle's integer arrays: the y and z tables and the integer hyper-synthesis.
_ARRAY_PREFIXES = ("y_", "z_", "hs_")


def _table_arrays(prefix: str, tables: bitstream.Tables) -> dict:
  # Stored as int32 (every entry is below 2^20); the fingerprint reads them as int64.
  return {f"{prefix}_frequencies": tables.frequencies.astype(np.int32),
          f"{prefix}_lengths": tables.lengths.astype(np.int32),
          f"{prefix}_offsets": tables.offsets.astype(np.int32)}


def _tables_from(prefix: str, data) -> bitstream.Tables:
  return bitstream.make_tables(data[f"{prefix}_frequencies"], data[f"{prefix}_lengths"],
                               data[f"{prefix}_offsets"])


def _hyperprior_digest(weights, integer_arrays: dict) -> bytes:
  digest = hashlib.sha256()
  for arr in weights:
    digest.update(np.ascontiguousarray(arr).tobytes())
  for key in sorted(integer_arrays):
    digest.update(key.encode())
    digest.update(np.ascontiguousarray(integer_arrays[key], np.int64).tobytes())
  return digest.digest()[:8]


def hyperprior_shipped_path(quality) -> str:
  """The shipped codec a quality selects: its MSE codec, or, where none ships, its MS-SSIM one.

  Quality 8 ships as MS-SSIM only: its MSE codec lost to JPEG on every metric at its rate (a
  trap for users), the MS-SSIM one beats JPEG and JPEG 2000 on MS-SSIM (BUILD_NOTES.md).
  The path returned when neither exists is the MSE one's (the loader's error names it).
  """
  q = qualities.get_quality(quality)
  mse = os.path.join(bundles.PRETRAINED_DIR, f"hyperprior_{q.name}.npz")
  ms_ssim = os.path.join(bundles.PRETRAINED_DIR,
                         f"hyperprior_{q.name}_{qualities.distortion_tag(qualities.MS_SSIM)}.npz")
  return ms_ssim if not os.path.exists(mse) and os.path.exists(ms_ssim) else mse


def save_hyperprior_codec(model: hyperprior_lib.Hyperprior, quality, path: str, name: str,
                          extra_metadata=None, weight_dtype=np.float16,
                          distortion: str = qualities.MSE) -> bytes:
  """Writes a hyperprior bundle; returns its fingerprint.

  Rounds the model's weights to float16 in place first (what the bundle stores), then derives
  the integer tables from the rounded model, so that the shipped weights and tables agree.
  weight_dtype=np.float32 keeps them as they are: imported codecs, whose parity with the
  library that trained them float16 would break (5e-4 relative on every weight).
  """
  q = qualities.get_quality(quality)
  if np.dtype(weight_dtype) == np.float16:
    bundles.round_weights_to_float16(model)
  weights = [np.asarray(v.numpy(), weight_dtype) for v in model.weights]
  hyper_synthesis = hyperprior_lib.IntegerHyperSynthesis.from_model(model)
  offsets = None if model.z_offsets is None else model.z_offset_values().numpy()
  integer_arrays = {**_table_arrays("y", hyperprior_lib.y_tables()),
                    **_table_arrays("z", hyperprior_lib.z_tables(model.density, offsets)),
                    **hyper_synthesis.to_arrays()}
  fingerprint = _hyperprior_digest(weights, integer_arrays)
  meta = {
      "format": _HYPERPRIOR_FORMAT,
      "family": "hyperprior",
      "name": name,
      "quality": q.quality,
      # What the codec was trained for, and that distortion's lambda (qualities.py). Bundles
      # from before this field were MSE codecs; the loader reads them as such.
      "distortion": qualities.check_distortion(distortion),
      "lambda": q.lambda_for(distortion),
      "num_filters": model.num_filters,
      "latent_channels": model.latent_channels,
      # Imported models' conventions (hyperprior.PADDINGS, their density's depth).
      "padding": model.padding,
      "density_filters": list(model.density_filters),
      "weight_paths": [v.path for v in model.weights],
      "fingerprint": fingerprint.hex(),
      **(extra_metadata or {}),
  }
  bundles.write(path, meta, weights, scales=hyperprior_lib.scale_table(), **integer_arrays)
  model.shipped_hyper_synthesis = hyper_synthesis
  return fingerprint


def _bundle_distortion(meta: dict, path: str) -> str:
  """A bundle's distortion; bundles from before the field are MSE codecs."""
  distortion = meta.get("distortion", qualities.MSE)
  if distortion not in qualities.DISTORTIONS:
    raise CodecError(f"{path}: unknown distortion {distortion!r} in its metadata")
  return distortion


def load_hyperprior_codec(quality=None, path: str | None = None):
  """Loads a hyperprior bundle: the shipped one of a quality, or the one at `path`."""
  if path is None:
    if quality is None:
      raise CodecError("give a hyperprior quality or a codec bundle path")
    q = qualities.get_quality(quality)
    path = hyperprior_shipped_path(q.quality)
    if not os.path.exists(path):
      raise CodecError(
          f"no trained hyperprior codec is shipped for quality {q.quality}; train one with "
          f"`tfcdi-train-codec --codec=hyperprior --quality={q.quality} --preset=cpu "
          f"--data_dir=DATA --workdir=runs/hyperprior_{q.name}` and pass "
          f"--codec_path=runs/hyperprior_{q.name}/hyperprior_{q.name}.npz")
  meta, weights, integer_arrays = bundles.read(path, _ARRAY_PREFIXES)
  if meta.get("family") != "hyperprior":
    raise CodecError(f"{path} is not a hyperprior codec bundle")
  if meta.get("format") != _HYPERPRIOR_FORMAT:
    raise CodecError(f"{path}: unsupported hyperprior bundle format {meta.get('format')}")
  q = qualities.get_quality(meta["quality"])
  if quality is not None and qualities.get_quality(quality).quality != q.quality:
    raise CodecError(f"{path} is a hyperprior codec of quality {q.quality}, not {quality}")
  if _hyperprior_digest(weights, integer_arrays).hex() != meta["fingerprint"]:
    raise CodecError(f"{path} is corrupt: its weights and tables do not match its fingerprint")
  try:
    model = hyperprior_lib.Hyperprior(
        meta["num_filters"], meta["latent_channels"], padding=meta.get("padding", "same"),
        density_filters=meta.get("density_filters", (3, 3, 3)),
        name=f"hyperprior_{q.name}").build_weights()
  except (ValueError, TypeError) as e:
    raise CodecError(f"{path}: unsupported hyperprior model ({e})") from None
  bundles.assign_weights(model, weights, path)
  try:
    y_tables = _tables_from("y", integer_arrays)
    z_tables = _tables_from("z", integer_arrays)
    model.shipped_hyper_synthesis = hyperprior_lib.IntegerHyperSynthesis.from_arrays(
        integer_arrays)
    model.z_offsets = model.shipped_hyper_synthesis.input_offsets
  except (KeyError, ValueError) as e:  # BitstreamError is a ValueError
    raise CodecError(f"{path}: malformed coding tables ({e})") from None
  if (y_tables.num_tables != hyperprior_lib.NUM_SCALES
      or z_tables.num_tables != model.num_filters):
    raise CodecError(f"{path}: {y_tables.num_tables} y tables and {z_tables.num_tables} z "
                     f"tables, expected {hyperprior_lib.NUM_SCALES} and {model.num_filters}")
  return HyperpriorCodec(
      model=model, quality=q, y_tables=y_tables, z_tables=z_tables, name=meta["name"],
      fingerprint=bytes.fromhex(meta["fingerprint"]),
      distortion=_bundle_distortion(meta, path))


def hyperprior_integer_arrays(codec) -> dict:
  """The integer arrays of a hyperprior codec's coding path, named as in its bundle.

  The y tables, the z tables and the integer hyper-synthesis: everything a reader of its files
  needs to get the symbols and the scales, and nothing of the transforms.
  """
  return {**_table_arrays("y", codec.y_tables), **_table_arrays("z", codec.z_tables),
          **codec.model.integer_hyper_synthesis().to_arrays()}


def hyperprior_coding_tables(arrays: dict) -> tuple:
  """(y tables, z tables, integer hyper-synthesis) from the named integer arrays.

  Raises:
    CodecError: arrays missing or malformed.
  """
  try:
    return (_tables_from("y", arrays), _tables_from("z", arrays),
            hyperprior_lib.IntegerHyperSynthesis.from_arrays(arrays))
  except (KeyError, IndexError, ValueError) as e:  # BitstreamError is a ValueError
    raise CodecError(f"malformed hyperprior coding tables ({e!r})") from None


def read_hyperprior_tables(path: str) -> tuple[dict, dict]:
  """A hyperprior bundle's metadata and integer arrays, checked, without building its model.

  The fingerprint covers the weights too, so they are read (as bytes) to check it; no Keras
  model is made.

  Raises:
    CodecError: not a readable hyperprior bundle, or one whose content does not match its
      fingerprint.
  """
  meta, weights, arrays = bundles.read(path, _ARRAY_PREFIXES)
  if meta.get("family") != "hyperprior":
    raise CodecError(f"{path} is not a hyperprior codec bundle")
  if _hyperprior_digest(weights, arrays).hex() != meta["fingerprint"]:
    raise CodecError(f"{path} is corrupt: its weights and tables do not match its fingerprint")
  return meta, arrays
