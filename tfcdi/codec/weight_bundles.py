"""The bundle format of the imported families (factorized, meanscale): one .npz of JSON metadata,
float32 weights w0, w1, ... and named integer arrays (the coding tables).

The fingerprint, the first 8 bytes of a SHA-256 over the weights and the integer arrays, names
the codec in every .tfci header it writes (as for the built-in families' bundles, pretrained.py).
Weights stay float32: imported codecs must reproduce the library that trained them, which
float16 storage would break (BUILD_NOTES.md, "Imported CompressAI codecs").
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import json
import os
import typing

import numpy as np

from tfcdi.codec import bundles
from tfcdi.codec import interface
from tfcdi.codec.interface import CodecError

FORMAT = 1


def fingerprint(weights, arrays: dict) -> bytes:
  digest = hashlib.sha256()
  for weight in weights:
    digest.update(np.ascontiguousarray(weight, np.float32).tobytes())
  digest.update(arrays_digest(arrays).encode())
  return digest.digest()[:8]


def arrays_digest(arrays: dict) -> str:
  """SHA-256 (hex, 16 digits) of named integer arrays: what a Reader's JSON identity keeps to
  check a stored copy of its tables."""
  digest = hashlib.sha256()
  for key in sorted(arrays):
    digest.update(key.encode())
    digest.update(np.ascontiguousarray(arrays[key], np.int64).tobytes())
  return digest.hexdigest()[:16]


def table_arrays(prefix: str, tables) -> dict:
  """A bitstream.Tables as named int32 arrays (every entry is below 2^20), as the built-in
  families' bundles hold theirs: <prefix>_frequencies, _lengths, _offsets."""
  return {f"{prefix}_frequencies": tables.frequencies.astype(np.int32),
          f"{prefix}_lengths": tables.lengths.astype(np.int32),
          f"{prefix}_offsets": tables.offsets.astype(np.int32)}


def save(path: str, meta: dict, model, arrays: dict) -> bytes:
  """Writes the bundle of a Keras model and its integer arrays; returns its fingerprint. `meta`
  gets the format, the weights' paths and the fingerprint added."""
  weights = [np.asarray(v.numpy(), np.float32) for v in model.weights]
  codec_fingerprint = fingerprint(weights, arrays)
  meta = {"format": FORMAT, **meta, "weight_paths": [v.path for v in model.weights],
          "fingerprint": codec_fingerprint.hex()}
  if any(key == "meta" or key.startswith("w") and key[1:].isdigit() for key in arrays):
    raise ValueError(f"array names clash with the bundle's own: {sorted(arrays)}")
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f"{path}.{os.getpid()}.tmp.npz"
  # Uncompressed: float32 weights barely deflate (under 10%), and deflating the 10-30 MB of a
  # full-size model takes tens of seconds.
  np.savez(tmp, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
           **{k: np.asarray(v) for k, v in arrays.items()},
           **{f"w{i}": w for i, w in enumerate(weights)})
  os.replace(tmp, path)  # a half-written bundle must never be found under its real name
  return codec_fingerprint


def read(path: str, family: str, with_weights: bool = True) -> tuple:
  """(metadata, weights, integer arrays) of a bundle of `family`, its fingerprint checked (the
  weights are read to check it even when with_weights=False, which returns None for them).

  Raises:
    CodecError: unreadable, of another family or format, or not matching its fingerprint.
  """
  try:
    with np.load(path, allow_pickle=False) as data:
      meta = json.loads(bytes(data["meta"]).decode())
      if meta.get("family") != family:
        raise CodecError(f"{path} is not a {family} codec bundle")
      count = len(meta["weight_paths"])
      weights = [data[f"w{i}"] for i in range(count)]
      arrays = {k: np.asarray(data[k]) for k in data.files
                if k != "meta" and not (k.startswith("w") and k[1:].isdigit())}
  except (OSError, KeyError, ValueError, TypeError) as e:
    if isinstance(e, CodecError):
      raise
    raise CodecError(f"{path} is not a readable tfcdi codec bundle ({e})") from None
  if meta.get("format") != FORMAT:
    raise CodecError(f"{path}: unsupported {family} bundle format {meta.get('format')}")
  if fingerprint(weights, arrays).hex() != meta.get("fingerprint"):
    raise CodecError(f"{path} is corrupt: its weights and tables do not match its fingerprint")
  return meta, (weights if with_weights else None), arrays


# Loads a bundle's weights into a model built to its metadata, checking every shape.
assign = bundles.assign_weights


def save_model(path: str, family: str, model, quality: int, name: str, arrays: dict,
               extra_metadata=None) -> bytes:
  """Writes an imported family's bundle: the model's shape in the metadata (what load_model
  builds it from), its float32 weights and integer arrays; returns the fingerprint."""
  meta = {"family": family, "name": name, "quality": int(quality),
          "num_filters": model.num_filters, "latent_channels": model.latent_channels,
          "padding": model.padding, "density_filters": list(model.density_filters),
          **(extra_metadata or {})}
  return save(path, meta, model, arrays)


def load_model(path: str, family: str, what: str, model_class, quality=None) -> tuple:
  """A bundle of save_model read back: (metadata, the model with its weights, integer arrays).

  Raises:
    CodecError: not such a bundle, another quality than `quality`, or a model it cannot build.
  """
  meta, weights, arrays = read(path, family)
  if quality is not None and int(quality) != meta["quality"]:
    raise CodecError(f"{path} is a {what} codec of quality {meta['quality']}, not {quality}")
  try:
    model = model_class(meta["num_filters"], meta["latent_channels"], meta["padding"],
                        meta["density_filters"], name=f"{family}_q{meta['quality']}")
    model.build_weights()
  except (ValueError, TypeError, KeyError) as e:
    raise CodecError(f"{path}: unsupported {what} model ({e})") from None
  assign(model, weights, path)
  return meta, model, arrays


class TablesBeside(abc.ABC):
  """What the Readers of these families share: integer arrays (`self.arrays`) too large for a
  store's JSON metadata, written beside it (save_beside) and checked against the digest the
  identity (to_json) keeps. A subclass defines to_json (with "tables_file" and
  "tables_digest") and from_json_arrays(identity, arrays)."""

  tables_file = "codec_tables.npz"

  @property
  def digest(self) -> str:
    return arrays_digest(self.arrays)

  def integer_tables(self) -> dict:
    return dict(self.arrays)

  def serving_arrays(self) -> dict:
    return {key: np.asarray(value, np.int64) for key, value in self.arrays.items()}

  def save_beside(self, folder: str) -> None:
    path = os.path.join(folder, self.tables_file)
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    np.savez_compressed(tmp, **self.arrays)
    os.replace(tmp, path)

  @classmethod
  def load_beside(cls, identity: dict, folder: str | None):
    """The Reader of an identity whose arrays save_beside wrote into `folder`."""
    if folder is None:
      raise ValueError(f"reading the tables of codec {identity.get('name')!r} needs the folder "
                       "they were saved in")
    path = os.path.join(folder, identity.get("tables_file", cls.tables_file))
    return cls.from_identity(identity, bundles.read_tables_file(path), f"{path} holds")

  @classmethod
  def from_identity(cls, identity: dict, arrays: dict, where: str = "the arrays are"):
    """The Reader of an identity (to_json) and its arrays, checked against its digest."""
    if arrays_digest(arrays) != identity.get("tables_digest"):
      raise CodecError(f"{where} other coding tables than codec {identity.get('name')!r}'s")
    return cls.from_json_arrays(identity, arrays)

  @classmethod
  @abc.abstractmethod
  def from_json_arrays(cls, identity: dict, arrays: dict):
    """The family's Reader of an identity and its (checked) arrays."""


@dataclasses.dataclass
class ImportedCodec:
  """What the loaded codecs of these families share: their fields, the Reader they build in
  __post_init__ (`self.reader`), and their identity in results and legends."""

  model: typing.Any  # the family's Keras model
  quality: int
  name: str
  fingerprint: bytes
  arrays: dict  # the family's integer_arrays()
  architecture: str = ""

  @property
  def channels(self) -> int:
    """M, channels of y."""
    return self.model.latent_channels

  def tables(self):
    return self.reader

  def integer_tables(self) -> dict:
    return dict(self.arrays)

  def result_identity(self) -> dict:
    return {"codec_family": self.family, "quality": self.quality,
            "architecture": self.architecture}

  @property
  def label(self) -> str:
    return f"{self.family_info.what} q{self.quality} ({self.name})"


class ImportedFamily(interface.Family):
  """What these families share: no codec ships (a bundle comes from tfcdi-import-codec), one
  quality picks a codec, and a Reader is a TablesBeside subclass built from a bundle's metadata.

  A subclass sets `what` (how messages name it), `architecture` (the import's --architecture),
  `tables_class` and `load_codec(path, quality)`.
  """

  selector = "quality"
  what: str = ""
  architecture: str = ""
  tables_class: type = TablesBeside

  @staticmethod
  @abc.abstractmethod
  def load_codec(path: str, quality=None):
    """The family's codec of the bundle at `path` (of `quality`, if given)."""

  def load(self, path=None, selection=None):
    if path is None:
      raise CodecError(f"no {self.what} codec is shipped; import one with tfcdi-import-codec "
                       f"--architecture={self.architecture} and pass its bundle (--codec_path)")
    return self.load_codec(path, selection)

  def read_tables(self, path: str):
    meta, _, arrays = read(path, self.name, with_weights=False)
    # A bundle's metadata names the latent channels as the model does; a Reader's identity, as
    # its to_json does.
    return self.tables_class.from_json_arrays({**meta, "channels": meta["latent_channels"]},
                                              arrays)

  def tables_from_json(self, data: dict, folder=None):
    return self.tables_class.load_beside(data, folder)

  def tables_from_serving(self, identity: dict, arrays: dict):
    return self.tables_class.from_identity(identity, arrays, "the export holds")

  def same_selection(self, codec_json: dict, selection) -> bool:
    return int(selection) == codec_json.get("quality")

  def describe(self, codec_json: dict) -> str:
    return f"{self.what} quality {codec_json.get('quality')}"
