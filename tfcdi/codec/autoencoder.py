"""Family 0: the convolutional autoencoder of Torfason et al. (model.py), as a codec family.

Files hold one symbol array, "symbols" [h, w, C] (the indices of the quantizer's L centers),
under one integer frequency table (bitstream.py, family 0). The compressed-domain nets read
"z_hat" = centers[symbols]. Shipped codecs are picked by operating point (operating_points.py);
bundles (bundles.py) hold the float16 weights, the frequency table and the operating point, and
are fingerprinted over weights and table; the shipped ones are
tfcdi/pretrained/codec_<operating point>.npz.
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
from tfcdi.codec import interface
from tfcdi.codec import model as model_lib
from tfcdi.codec import operating_points
from tfcdi.codec.interface import CodecError

SYMBOLS = "symbols"
Z_HAT = "z_hat"
_FORMAT = 1


class _Shared:
  """What the codec and its tables do alike; both have frequencies, channels and centers."""

  family: typing.ClassVar[str] = "autoencoder"
  bitstream_family: typing.ClassVar[int] = bitstream.FAMILY_AUTOENCODER

  def latent_shapes(self, image_size) -> dict:
    side = [-(-int(s) // model_lib.DOWNSAMPLING) for s in image_size]
    return {"latent_shape": [*side, int(self.channels)]}

  def check_shapes(self, header) -> None:
    expected = tuple(self.latent_shapes(header.image_size)["latent_shape"])
    if tuple(header.latent_shape) != expected or header.num_centers != self.num_centers:
      raise bitstream.BitstreamError(
          f"the header announces a {header.latent_shape} latent with {header.num_centers} "
          f"centers; a {header.image_size} image coded by {self.name!r} has {expected} with "
          f"{self.num_centers}")

  def read_symbols(self, data: bytes) -> tuple:
    header = bitstream.parse_header(data)
    self.check_header(header)
    return header, {SYMBOLS: bitstream.decode_symbols(data, header, self.frequencies)}

  def latents_from_symbols(self, symbols: dict) -> dict:
    return {Z_HAT: tf.gather(tf.constant(self.center_values(), tf.float32), symbols[SYMBOLS])}

  def information_bits(self, data: bytes) -> tuple:
    header, symbols = self.read_symbols(data)
    return header, bitstream.information_content_bits(symbols[SYMBOLS], self.frequencies)

  def integer_tables(self) -> dict:
    return {"frequencies": np.asarray(self.frequencies, np.int64)}


@dataclasses.dataclass
class AutoencoderCodec(_Shared, interface.Codec):
  """A ready-to-use codec: the Keras autoencoder plus what the bitstream needs."""

  model: model_lib.Autoencoder
  operating_point: operating_points.OperatingPoint
  frequencies: np.ndarray  # int64 [L], sums to bundles.FREQUENCY_TOTAL, every entry >= 1
  name: str  # e.g. "ae-0.635-cpu"
  fingerprint: bytes  # 8 bytes, see _weights_digest
  filters: tuple = operating_points.PAPER_FILTERS

  @property
  def num_centers(self) -> int:
    return self.operating_point.num_centers

  @property
  def channels(self) -> int:
    return self.operating_point.channels

  def center_values(self) -> np.ndarray:
    return np.asarray(self.model.quantizer.centers.numpy(), np.float32)

  def tables(self) -> AutoencoderTables:
    return AutoencoderTables(name=self.name, fingerprint=bytes(self.fingerprint),
                             operating_point=self.operating_point.name,
                             frequencies=np.asarray(self.frequencies, np.int64),
                             centers=self.center_values(), channels=int(self.channels))

  def batch_compressor(self, image_size: int | None, format_version: int | None = None):
    encode = self._encoder(image_size)

    def files(images, size) -> list:
      padded, _ = model_lib.pad_to_multiple(tf.convert_to_tensor(images, tf.float32))
      return [bitstream.encode(symbols, self.frequencies, codec_name=self.name,
                               fingerprint=self.fingerprint, image_size=size,
                               codec_family=bitstream.FAMILY_AUTOENCODER,
                               format_version=format_version)
              for symbols in encode(padded).numpy()]
    return files

  def analysis_model(self):
    return self.model.encoder

  def synthesis_model(self):
    return self.model.decoder

  def compress_tiled(self, image: np.ndarray, format_version: int | None = None) -> bytes:
    # The quantizer maps each element on its own, so quantizing each tile is quantizing the whole.
    symbols = self.analyse(self.traced("encode", self.model.encode), image)
    return bitstream.encode(symbols, self.frequencies, codec_name=self.name,
                            fingerprint=self.fingerprint, image_size=image.shape[:2],
                            codec_family=bitstream.FAMILY_AUTOENCODER,
                            format_version=format_version)

  def reconstruct(self, symbols: dict):
    return self.decode_traced(symbols[SYMBOLS])

  def latents(self, images, differentiable: bool = False) -> dict:
    if differentiable:
      return {Z_HAT: self.model.quantizer(self.model.encoder(images, training=True))}
    return {Z_HAT: self.model.latent(self.model.encode(images))}

  def result_identity(self) -> dict:
    return {"operating_point": self.operating_point.name,
            "target_bpp": self.operating_point.bpp}

  @property
  def label(self) -> str:
    return self.operating_point.name

  @property
  def target_bpp(self) -> float:
    return self.operating_point.bpp


@dataclasses.dataclass(frozen=True)
class AutoencoderTables(_Shared, interface.Reader):
  """A codec's identity, frequency table and centers: enough to read its .tfci files, with no
  Keras model, so the compressed-domain path never builds (or loads) a decoder."""

  name: str
  fingerprint: bytes
  operating_point: str
  frequencies: np.ndarray  # int64 [L]
  centers: np.ndarray  # float32 [L]
  channels: int

  @property
  def num_centers(self) -> int:
    return int(self.frequencies.size)

  def center_values(self) -> np.ndarray:
    return self.centers

  @classmethod
  def from_codec(cls, codec: AutoencoderCodec) -> AutoencoderTables:
    return codec.tables()

  def to_json(self) -> dict:
    return {"name": self.name, "fingerprint": self.fingerprint.hex(),
            "operating_point": self.operating_point, "channels": self.channels,
            "num_centers": self.num_centers, "frequencies": self.frequencies.tolist(),
            # float32 values survive the round trip through JSON's doubles exactly.
            "centers": [float(c) for c in self.centers]}

  @classmethod
  def from_json(cls, data: dict) -> AutoencoderTables:
    return cls(name=data["name"], fingerprint=bytes.fromhex(data["fingerprint"]),
               operating_point=data["operating_point"],
               frequencies=np.asarray(data["frequencies"], np.int64),
               centers=np.asarray(data["centers"], np.float32), channels=int(data["channels"]))

  def serving_arrays(self) -> dict:
    return {"frequencies": np.asarray(self.frequencies, np.int64),
            "centers": np.asarray(self.centers, np.float32)}


class AutoencoderFamily(interface.Family):
  name = "autoencoder"
  byte = bitstream.FAMILY_AUTOENCODER
  downsampling = model_lib.DOWNSAMPLING
  latent_names = (Z_HAT,)
  symbol_names = (SYMBOLS,)
  selector = "operating_point"
  plot_marker, plot_marker_size = "*", 13

  def load(self, path=None, selection=None) -> AutoencoderCodec:
    return load_bundle(selection, path)

  def read_tables(self, path: str) -> AutoencoderTables:
    """The frequency table and the centers (the one weight whose path ends in "centers")."""
    meta = bundles.read_metadata(path)
    try:
      index = next(i for i, p in enumerate(meta["weight_paths"]) if p.endswith("centers"))
      with np.load(path, allow_pickle=False) as data:
        frequencies = np.asarray(data["frequencies"], np.int64)
        centers = np.asarray(data[f"w{index}"], np.float32)
      return AutoencoderTables(name=meta["name"], fingerprint=bytes.fromhex(meta["fingerprint"]),
                               operating_point=meta["operating_point"], frequencies=frequencies,
                               centers=centers, channels=int(meta["channels"]))
    except (StopIteration, KeyError, OSError, ValueError) as e:
      raise CodecError(f"{path}: cannot read the codec's tables ({e!r})") from None

  def tables_from_json(self, data: dict, folder=None) -> AutoencoderTables:
    return AutoencoderTables.from_json(data)

  def same_selection(self, codec_json: dict, selection) -> bool:
    return (operating_points.get_operating_point(selection).name
            == codec_json.get("operating_point"))

  def describe(self, codec_json: dict) -> str:
    return f"operating point {codec_json.get('operating_point')}"

  def result_label(self, result: dict) -> str:
    return f"learned, {result.get('operating_point', '?')} bpp point"


FAMILY = AutoencoderFamily()


# --- bundles --------------------------------------------------------------------------------


def _weights_digest(arrays, frequencies) -> bytes:
  """The fingerprint: the first 8 bytes of the SHA-256 of the stored weights and table. A .tfci
  header carries it, and decoding with any other bundle is refused, even one trained for the
  same operating point."""
  digest = hashlib.sha256()
  for arr in arrays:
    digest.update(np.ascontiguousarray(arr).tobytes())
  digest.update(np.asarray(frequencies, np.int64).tobytes())
  return digest.digest()[:8]


def save_codec(model: model_lib.Autoencoder, op: operating_points.OperatingPoint,
               frequencies, path: str, name: str, extra_metadata=None) -> bytes:
  """Writes a bundle; returns its fingerprint."""
  frequencies = np.asarray(frequencies, np.int64)
  if frequencies.shape != (op.num_centers,) or frequencies.sum() != bundles.FREQUENCY_TOTAL:
    raise ValueError("the frequency table must have one entry per center and sum to "
                     f"{bundles.FREQUENCY_TOTAL}, got {frequencies}")
  arrays = [np.asarray(v.numpy(), np.float16) for v in model.weights]
  fingerprint = _weights_digest(arrays, frequencies)
  meta = {
      "format": _FORMAT,
      "name": name,
      "operating_point": op.name,
      "channels": op.channels,
      "num_centers": op.num_centers,
      "sigma": op.sigma,
      "filters": list(model.filters),
      "weight_paths": [v.path for v in model.weights],
      "fingerprint": fingerprint.hex(),
      **(extra_metadata or {}),
  }
  bundles.write(path, meta, arrays, frequencies=frequencies)
  return fingerprint


def shipped_path(operating_point) -> str:
  op = operating_points.get_operating_point(operating_point)
  return os.path.join(bundles.PRETRAINED_DIR, f"codec_{op.name}.npz")


def load_bundle(operating_point=None, path: str | None = None) -> AutoencoderCodec:
  """An autoencoder bundle: the shipped one of an operating point, or the one at `path`."""
  if path is None:
    if operating_point is None:
      raise CodecError("give an operating point or a codec bundle path")
    path = shipped_path(operating_point)
    if not os.path.exists(path):
      raise CodecError(
          f"no pretrained codec is shipped for operating point {operating_point} ({path}); "
          "train one with tfcdi-train-codec and pass its bundle with --codec")
  meta, arrays, tables = bundles.read(path, ("frequencies",))
  if "frequencies" not in tables:
    raise CodecError(f"{path} is not a readable tfcdi codec bundle (no frequency table)")
  frequencies = np.asarray(tables["frequencies"], np.int64)
  if meta.get("format") != _FORMAT:
    raise CodecError(f"{path}: unsupported codec bundle format {meta.get('format')}")
  op = operating_points.get_operating_point(meta["operating_point"])
  if operating_point is not None and op.name != operating_points.get_operating_point(
      operating_point).name:
    raise CodecError(f"{path} is a codec for operating point {op.name}, not {operating_point}")
  if _weights_digest(arrays, frequencies).hex() != meta["fingerprint"]:
    raise CodecError(f"{path} is corrupt: its weights do not match its fingerprint")
  model = model_lib.from_operating_point(op, tuple(meta["filters"]))
  bundles.assign_weights(model, arrays, path)
  return AutoencoderCodec(
      model=model, operating_point=op, frequencies=frequencies, name=meta["name"],
      fingerprint=bytes.fromhex(meta["fingerprint"]), filters=tuple(meta["filters"]))
