"""The latent store: a dataset encoded once by a codec, kept as real .tfci files in TFRecords.

Both arms of the paper's classification comparison read the same store, so they see the same
compressed data: the cResNets read the quantized representation z_hat = centers[symbols]
(`latent_dataset`), the RGB baseline reads the codec's reconstructions of it
(`decoded_dataset`, from a one-time decoded cache). The third arm, uncompressed RGB, reads the
source images through the same geometry (`original_dataset`).

Two codec families make stores (the "family" of the store's codec metadata):
  autoencoder  Torfason et al.'s codec: the latent arm reads (z_hat, label);
  hyperprior   Balle et al. 2018's scale hyperprior (the follow-up work): the latent arm reads
               (y_hat, sigma_hat, label) (`hyperprior_latent_dataset`). The z stream is decoded,
               the codec's integer hyper-synthesis gives each y symbol's scale index (the same
               integers the encoder used), the y stream is decoded with those tables, and
               sigma_hat = scale_table[index]. Neither the synthesis transform nor any float
               network runs. The integer tables live beside the metadata in
               `codec_tables.npz` (not counted in the store's size, like the autoencoder's
               table in metadata.json), so a store reads without the codec bundle.

Geometry. Every image is brought to a square view before anything else: its shorter side is
resized to `image_size` (256 by default; bilinear with antialiasing) and the central
image_size x image_size square is kept. The paper (Appendix A.4) names only random mirroring,
random 224 / 28 crops and mean centring; the fixed square view is this project's choice (see
BUILD_NOTES.md, deviations from the text), so that every latent has the same shape: a 256 x 256 view gives a 32 x 32 x C latent, from which
training takes random 28 x 28 crops (the latent of a 224 x 224 crop) and evaluation the central
one. The RGB arms take 224 x 224 crops of the same 256 x 256 view. (Imagenette's images are
224 x 224 already; they are upsampled by 8/7 to keep the paper's latent size.) The hyperprior
downsamples by 16: a 256 x 256 view gives y_hat and sigma_hat of 16 x 16 x M, which the
classifiers resize to 32 x 32 before cropping 28 x 28 (the follow-up's geometry,
data/latent_pairs.py). Its views must be multiples of 16.

What a store holds. Per example one tf.train.Example with
  tfci      bytes   the complete .tfci file of the view (header + range-coded symbols)
  label     int64   index into the store's class list
  wnid      bytes   the class folder name (an ImageNet WordNet id for ImageNet-style data)
  filename  bytes   the source file, relative to its split (or the tfds file_name)
  source_bytes int64  the size of the source image file
The .tfci bytes are what makes the store small: range coding brings the symbols close to their
entropy, while raw uint8 symbols (one byte each, 32 KiB for a 32x32x32 latent) would be larger
than the source JPEGs. Examples are spread over shards `<split>-00000-of-000NN.tfrecord` in a
fixed, seeded random order (so a shard mixes the classes), and `metadata.json` describes the
store: the codec (name, fingerprint, operating point, frequency table and centers), the
geometry, the class list and, per split, counts and the sizes of source and store.

Encoding is resumable shard by shard: a shard appears under its final name only once complete
(written to a temporary name, then renamed), and an existing shard is never re-encoded.

Sources: an ImageFolder split (root/split/<wnid>/*.JPEG, e.g. Imagenette) or a TensorFlow
Datasets dataset (e.g. imagenet2012, for users who have it prepared under their tfds data_dir).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os

import typing

import numpy as np
import tensorflow as tf

from tfcdi.codec import bitstream
from tfcdi.codec import coding
from tfcdi.codec import hyperprior as hyperprior_lib
from tfcdi.codec import model as model_lib
from tfcdi.codec import pretrained
from tfcdi.data import images as images_lib

STORE_FORMAT = 1
METADATA_FILE = "metadata.json"
DECODED_DIR = "decoded"
# A hyperprior store's integer coding tables (HyperpriorTables.save / load).
HYPERPRIOR_TABLES_FILE = "codec_tables.npz"
# A hyperprior store's entropy-decoded latents (build_latent_cache).
LATENT_CACHE_DIR = "latents"
# The square view every image is brought to; its latent is 32 x 32 (see the module docstring).
DEFAULT_IMAGE_SIZE = 256
# ~1000 examples per shard: Imagenette's train split is 10 shards of a few MB each.
DEFAULT_SHARD_SIZE = 1000
# The order examples are written in; fixed so that a resumed encoding continues the same plan.
PLAN_SEED = 0
# Records a shuffled read mixes (on top of the shuffled shard order); a decoded-RGB record is
# 192 KiB at 256 x 256, so this is about 0.5 GB for that arm.
DEFAULT_SHUFFLE_BUFFER = 2_500

_FEATURES = {
    "tfci": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
    "wnid": tf.io.FixedLenFeature([], tf.string),
    "filename": tf.io.FixedLenFeature([], tf.string),
    "source_bytes": tf.io.FixedLenFeature([], tf.int64),
}
_DECODED_FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
}
_LATENT_CACHE_FEATURES = {
    "y": tf.io.FixedLenFeature([], tf.string),  # raw little-endian int16 or int32
    "y_bits": tf.io.FixedLenFeature([], tf.int64),  # 16 or 32
    "indices": tf.io.FixedLenFeature([], tf.string),  # raw uint8 scale indices
    "label": tf.io.FixedLenFeature([], tf.int64),
}


class StoreError(ValueError):
  """A latent store is missing, incomplete, or does not match what was asked of it."""


# --- the codec's tables: what reading latents needs, without the neural network -----------------


@dataclasses.dataclass(frozen=True)
class CodecTables:
  """A codec's identity, frequency table and centers: enough to read its .tfci files.

  Duck-compatible with pretrained.Codec for coding.read_symbols / check_codec, but holds no
  Keras model, so the compressed-domain path never builds (or loads) a decoder.
  """

  name: str
  fingerprint: bytes
  operating_point: str
  frequencies: np.ndarray  # int64 [L]
  centers: np.ndarray  # float32 [L]
  channels: int
  family: typing.ClassVar[str] = "autoencoder"
  bitstream_family: typing.ClassVar[int] = bitstream.FAMILY_AUTOENCODER

  @property
  def num_centers(self) -> int:
    return int(self.frequencies.size)

  @classmethod
  def from_codec(cls, codec: pretrained.Codec) -> CodecTables:
    return cls(name=codec.name, fingerprint=bytes(codec.fingerprint),
               operating_point=codec.operating_point.name,
               frequencies=np.asarray(codec.frequencies, np.int64),
               centers=np.asarray(codec.model.quantizer.centers.numpy(), np.float32),
               channels=int(codec.channels))

  def to_json(self) -> dict:
    return {"name": self.name, "fingerprint": self.fingerprint.hex(),
            "operating_point": self.operating_point, "channels": self.channels,
            "num_centers": self.num_centers, "frequencies": self.frequencies.tolist(),
            # float32 values survive the round trip through JSON's doubles exactly.
            "centers": [float(c) for c in self.centers]}

  @classmethod
  def from_json(cls, data: dict) -> CodecTables:
    return cls(name=data["name"], fingerprint=bytes.fromhex(data["fingerprint"]),
               operating_point=data["operating_point"],
               frequencies=np.asarray(data["frequencies"], np.int64),
               centers=np.asarray(data["centers"], np.float32), channels=int(data["channels"]))

  def same_codec(self, other) -> bool:
    return (self.name, bytes(self.fingerprint)) == (other.name, bytes(other.fingerprint))


@dataclasses.dataclass(frozen=True, eq=False)
class HyperpriorTables:
  """A hyperprior codec's identity and integer coding tables: enough to read its .tfci files.

  Duck-compatible with pretrained.HyperpriorCodec for coding.read_hyperprior_symbols /
  check_codec, without its Keras model: the z tables, the y tables of the scale table and the
  integer hyper-synthesis that maps z symbols to scale indices. A reader gets the y symbols and
  sigma_hat = scale_table()[index] from these alone, so the compressed-domain path never builds
  a transform.
  """

  name: str
  fingerprint: bytes
  quality: int
  channels: int  # M, channels of y
  num_filters: int  # N, channels of z
  arrays: dict  # the named integer arrays (pretrained.hyperprior_integer_arrays)
  family: typing.ClassVar[str] = "hyperprior"
  bitstream_family: typing.ClassVar[int] = bitstream.FAMILY_HYPERPRIOR

  def __post_init__(self):
    y_tables, z_tables, hyper_synthesis = pretrained.hyperprior_coding_tables(self.arrays)
    if (y_tables.num_tables != hyperprior_lib.NUM_SCALES
        or z_tables.num_tables != self.num_filters):
      raise pretrained.CodecError(
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
    return coding.read_hyperprior_symbols(data, self)

  @classmethod
  def from_codec(cls, codec: pretrained.HyperpriorCodec) -> HyperpriorTables:
    return cls(name=codec.name, fingerprint=bytes(codec.fingerprint),
               quality=codec.quality.quality, channels=int(codec.channels),
               num_filters=int(codec.num_filters),
               arrays=pretrained.hyperprior_integer_arrays(codec))

  def to_json(self) -> dict:
    """The identity (the arrays go to a file of their own: `save`)."""
    return {"family": self.family, "name": self.name, "fingerprint": self.fingerprint.hex(),
            "quality": self.quality, "operating_point": self.operating_point,
            "channels": self.channels, "num_filters": self.num_filters,
            "tables_file": HYPERPRIOR_TABLES_FILE, "tables_digest": self.digest}

  def save(self, path: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    np.savez_compressed(tmp, **self.arrays)
    os.replace(tmp, path)

  @classmethod
  def load(cls, data: dict, path: str) -> HyperpriorTables:
    """The tables whose identity is `data` (to_json) and whose arrays are in `path` (save).

    Raises:
      pretrained.CodecError: the file is missing, unreadable or holds other tables.
    """
    try:
      with np.load(path, allow_pickle=False) as npz:
        arrays = {k: np.asarray(npz[k]) for k in npz.files}
    except (OSError, ValueError) as e:
      raise pretrained.CodecError(
          f"cannot read the hyperprior coding tables {path} ({e})") from None
    tables = cls(name=data["name"], fingerprint=bytes.fromhex(data["fingerprint"]),
                 quality=int(data["quality"]), channels=int(data["channels"]),
                 num_filters=int(data["num_filters"]), arrays=arrays)
    if tables.digest != data["tables_digest"]:
      raise pretrained.CodecError(f"{path} holds other coding tables than codec "
                                  f"{data['name']!r}'s")
    return tables

  def same_codec(self, other) -> bool:
    return (self.name, bytes(self.fingerprint)) == (other.name, bytes(other.fingerprint))


def tables_of(codec):
  """The reading tables of a loaded codec of either family (CodecTables or HyperpriorTables)."""
  if codec.family == "hyperprior":
    return HyperpriorTables.from_codec(codec)
  return CodecTables.from_codec(codec)


def codec_family(codec_json: dict) -> str:
  """The family of a codec's JSON identity (stores made before families are autoencoder)."""
  return codec_json.get("family", "autoencoder")


def load_codec_tables(path: str):
  """Reads the tables of a codec bundle (.npz) of either family without building its model.

  Autoencoder: the frequency table and the centers, one of the bundle's weights (the one whose
  path ends in "centers"). Hyperprior: the integer tables (the fingerprint is checked).

  Raises:
    pretrained.CodecError: the file is not a readable bundle.
  """
  meta = pretrained.read_metadata(path)
  if meta.get("family") == "hyperprior":
    meta, arrays = pretrained.read_hyperprior_tables(path)
    return HyperpriorTables(name=meta["name"], fingerprint=bytes.fromhex(meta["fingerprint"]),
                            quality=int(meta["quality"]), channels=int(meta["latent_channels"]),
                            num_filters=int(meta["num_filters"]), arrays=arrays)
  try:
    index = next(i for i, p in enumerate(meta["weight_paths"]) if p.endswith("centers"))
    with np.load(path, allow_pickle=False) as data:
      frequencies = np.asarray(data["frequencies"], np.int64)
      centers = np.asarray(data[f"w{index}"], np.float32)
    return CodecTables(name=meta["name"], fingerprint=bytes.fromhex(meta["fingerprint"]),
                       operating_point=meta["operating_point"], frequencies=frequencies,
                       centers=centers, channels=int(meta["channels"]))
  except (StopIteration, KeyError, OSError, ValueError) as e:
    raise pretrained.CodecError(f"{path}: cannot read the codec's tables ({e!r})") from None


# --- geometry ---------------------------------------------------------------------------------


def square_view(image, size: int = DEFAULT_IMAGE_SIZE):
  """uint8 [H, W, 3] -> uint8 [size, size, 3]: shorter side resized to `size`, center square.

  Bilinear with antialiasing, so downscaling large photos does not alias. The result is rounded
  to 8 bits: it is the image the codec compresses, and an image is 8-bit.
  """
  image = tf.convert_to_tensor(image)
  shape = tf.shape(image)
  height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
  scale = float(size) / tf.minimum(height, width)
  # max(size, ...) guards against rounding leaving the shorter side a pixel short.
  new_height = tf.maximum(size, tf.cast(tf.round(height * scale), tf.int32))
  new_width = tf.maximum(size, tf.cast(tf.round(width * scale), tf.int32))
  resized = tf.image.resize(image, [new_height, new_width], antialias=True)
  top = (new_height - size) // 2
  left = (new_width - size) // 2
  square = resized[top:top + size, left:left + size, :]
  square = tf.cast(tf.clip_by_value(tf.round(square), 0.0, 255.0), tf.uint8)
  return tf.ensure_shape(square, [size, size, 3])


def _decode_image_bytes(encoded):
  image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
  image.set_shape([None, None, 3])
  return image


# --- sources ----------------------------------------------------------------------------------


class ImageFolderSource:
  """An ImageFolder split (root/split/<class>/<image>) in a fixed, seeded random order."""

  kind = "image_folder"

  def __init__(self, root: str, split: str, limit: int = 0):
    paths, classes, labels = images_lib.list_images(root, split)
    if not classes:
      raise StoreError(f"{os.path.join(root, split)} has no class folders; a store needs "
                       "labelled images (root/split/<class>/<image>)")
    order = np.random.default_rng(PLAN_SEED).permutation(len(paths))
    if limit:
      order = order[:limit]
    self.root, self.split = os.path.abspath(root), split
    self.classes = classes
    self._base = os.path.join(self.root, split)
    self.paths = [paths[i] for i in order]
    self.labels = [labels[i] for i in order]
    self.count = len(self.paths)
    digest = hashlib.sha256()
    for path, label in zip(self.paths, self.labels):
      digest.update(f"{os.path.relpath(path, self._base)}\t{label}\n".encode())
    self.digest = digest.hexdigest()[:16]
    self.description = {"kind": self.kind, "root": self.root, "split": split, "limit": limit}

  def examples(self, start: int, stop: int) -> tf.data.Dataset:
    """(encoded image bytes, label, file name relative to the split) of plan entries."""
    names = [os.path.relpath(p, self._base) for p in self.paths[start:stop]]
    ds = tf.data.Dataset.from_tensor_slices(
        (self.paths[start:stop], np.asarray(self.labels[start:stop], np.int64), names))
    return ds.map(lambda path, label, name: (tf.io.read_file(path), label, name),
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


class TfdsSource:
  """A split of a TensorFlow Datasets dataset with `image` and `label` features.

  For ImageNet (`imagenet2012`), tfds needs the ILSVRC tars placed in its manual download
  folder and prepared once (`tfds build imagenet2012 --manual_dir=...`); the label names are
  then the wnids. Images are read undecoded, so `source_bytes` counts the stored JPEGs.
  """

  kind = "tfds"

  def __init__(self, name: str, split: str, data_dir: str | None = None, limit: int = 0):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (only this source)
    self._tfds = tfds
    try:
      builder = tfds.builder(name, data_dir=data_dir)
      info = builder.info
      total = info.splits[split].num_examples
    except Exception as e:  # tfds raises many kinds of errors for a missing or unprepared dataset
      raise StoreError(f"tfds dataset {name!r} split {split!r} is not available under "
                       f"{data_dir or 'the default tfds data_dir'} ({e})") from None
    if "label" not in info.features or "image" not in info.features:
      raise StoreError(f"tfds dataset {name!r} has no 'image' and 'label' features")
    self.name, self.split, self.data_dir = name, split, data_dir
    self.classes = list(info.features["label"].names)
    self.count = min(total, limit) if limit else total
    self._has_file_name = "file_name" in info.features
    self.digest = hashlib.sha256(
        f"{name}\t{info.version}\t{split}\t{self.count}".encode()).hexdigest()[:16]
    self.description = {"kind": self.kind, "name": name, "version": str(info.version),
                        "split": split, "data_dir": data_dir, "limit": limit}

  def examples(self, start: int, stop: int) -> tf.data.Dataset:
    # tfds keeps its own (shuffled at preparation) order; slicing keeps shards reproducible.
    ds = self._tfds.load(self.name, split=f"{self.split}[{start}:{stop}]", data_dir=self.data_dir,
                         decoders={"image": self._tfds.decode.SkipDecoding()},
                         shuffle_files=False)
    has_name = self._has_file_name

    def fields(example):
      if has_name:
        name = example["file_name"]
      else:
        name = tf.strings.as_string(example.get("id", tf.constant(-1)))
      return example["image"], tf.cast(example["label"], tf.int64), name

    return ds.map(fields, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


# --- metadata ---------------------------------------------------------------------------------


def _write_json_atomic(path: str, data: dict) -> None:
  tmp = f"{path}.{os.getpid()}.tmp"
  with open(tmp, "w") as f:
    json.dump(data, f, indent=2)
  os.replace(tmp, path)


def read_metadata(store_dir: str) -> dict:
  """The store's metadata.json.

  Raises:
    StoreError: no store there.
  """
  path = os.path.join(store_dir, METADATA_FILE)
  try:
    with open(path) as f:
      meta = json.load(f)
  except FileNotFoundError:
    raise StoreError(f"no latent store at {store_dir} (no {METADATA_FILE}); make one with "
                     "tfcdi-encode-dataset") from None
  except (OSError, ValueError) as e:
    raise StoreError(f"{path} is not a readable store description ({e})") from None
  if meta.get("format") != STORE_FORMAT:
    raise StoreError(f"{path}: unsupported store format {meta.get('format')}")
  return meta


def store_family(meta: dict) -> str:
  """"autoencoder" or "hyperprior": the family of the codec that made the store."""
  return codec_family(meta["codec"])


def store_tables(meta: dict, store_dir: str | None = None):
  """The tables of the codec that made the store (CodecTables or HyperpriorTables).

  A hyperprior store keeps its tables in a file beside the metadata: give `store_dir`.

  Raises:
    StoreError: a hyperprior store's tables are missing or do not match its metadata.
  """
  if store_family(meta) == "hyperprior":
    if store_dir is None:
      raise ValueError("reading a hyperprior store's tables needs its folder")
    try:
      return HyperpriorTables.load(meta["codec"],
                                   os.path.join(store_dir, HYPERPRIOR_TABLES_FILE))
    except pretrained.CodecError as e:
      raise StoreError(f"the store at {store_dir}: {e}") from None
  return CodecTables.from_json(meta["codec"])


def _same_identity(codec_json: dict, codec) -> bool:
  return (codec_json["name"], codec_json["fingerprint"]) == (codec.name,
                                                             bytes(codec.fingerprint).hex())


def _split_entry(meta: dict, split: str, store_dir: str) -> dict:
  entry = meta.get("splits", {}).get(split)
  if entry is None:
    raise StoreError(f"the store at {store_dir} has no {split!r} split (it has "
                     f"{', '.join(meta.get('splits', {})) or 'none'})")
  if not entry.get("complete"):
    raise StoreError(f"the {split!r} split of the store at {store_dir} is incomplete; run "
                     "tfcdi-encode-dataset again to finish it")
  return entry


def shard_name(split: str, index: int, num_shards: int) -> str:
  return f"{split}-{index:05d}-of-{num_shards:05d}.tfrecord"


def shard_files(store_dir: str, split: str, meta: dict | None = None) -> list[str]:
  """Paths of a complete split's shards, in order."""
  meta = meta or read_metadata(store_dir)
  entry = _split_entry(meta, split, store_dir)
  files = [os.path.join(store_dir, shard_name(split, i, entry["num_shards"]))
           for i in range(entry["num_shards"])]
  missing = [f for f in files if not os.path.exists(f)]
  if missing:
    raise StoreError(f"the store at {store_dir} lacks {len(missing)} shard(s) of {split!r}, "
                     f"e.g. {os.path.basename(missing[0])}")
  return files


def _totals(meta: dict) -> dict:
  done = [e for e in meta["splits"].values() if e.get("complete")]
  source = sum(e["source_bytes"] for e in done)
  store = sum(e["store_bytes"] for e in done)
  return {"count": sum(e["count"] for e in done), "source_bytes": source, "store_bytes": store,
          "ratio": source / store if store else None}


# --- encoding ---------------------------------------------------------------------------------


def _bytes_feature(value: bytes):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int_feature(value: int):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def _downsampling(family: str) -> int:
  return hyperprior_lib.DOWNSAMPLING if family == "hyperprior" else model_lib.DOWNSAMPLING


def _open_store(store_dir: str, tables, image_size: int, classes) -> dict:
  """Existing metadata checked against this encoding, or fresh metadata for a new store."""
  os.makedirs(store_dir, exist_ok=True)
  if not os.path.exists(os.path.join(store_dir, METADATA_FILE)):
    side = image_size // _downsampling(tables.family)
    meta = {"format": STORE_FORMAT, "codec": tables.to_json(), "image_size": image_size,
            "latent_shape": [side, side, tables.channels],
            "preprocessing": (f"shorter side resized to {image_size} (bilinear, antialiased), "
                              f"central {image_size}x{image_size} square, rounded to uint8"),
            "classes": list(classes), "splits": {}}
    if tables.family == "hyperprior":
      hyper_side = -(-side // hyperprior_lib.HYPER_DOWNSAMPLING)
      meta["hyper_latent_shape"] = [hyper_side, hyper_side, tables.num_filters]
      # The tables before the metadata: a store with metadata always has them.
      tables.save(os.path.join(store_dir, HYPERPRIOR_TABLES_FILE))
    return meta
  meta = read_metadata(store_dir)
  if not _same_identity(meta["codec"], tables):
    raise StoreError(f"the store at {store_dir} was made by codec {meta['codec']['name']!r} "
                     f"({meta['codec']['fingerprint']}), not {tables.name!r} "
                     f"({tables.fingerprint.hex()}); use another --store_dir")
  if meta["image_size"] != image_size:
    raise StoreError(f"the store at {store_dir} holds {meta['image_size']}-pixel views, not "
                     f"{image_size}; use another --store_dir")
  if meta["classes"] != list(classes):
    raise StoreError(f"the store at {store_dir} has other classes than this source")
  return meta


def encode_split(source, codec: pretrained.Codec, store_dir: str, split: str, *,
                 image_size: int = DEFAULT_IMAGE_SIZE, shard_size: int = DEFAULT_SHARD_SIZE,
                 batch_size: int = 16, progress: bool = True, log=print) -> dict:
  """Encodes a source split into the store (or finishes an interrupted encoding).

  Args:
    source: an ImageFolderSource or TfdsSource.
    codec: the codec to encode with (pretrained.load_codec): a Codec (autoencoder) or a
      HyperpriorCodec; the store's metadata records its family.
    store_dir: the store's folder; created if needed. One store holds one codec's encodings of
      any number of splits with the same classes and geometry.
    split: the name the split gets in the store ("train", "val").
    image_size: side of the square view (a multiple of 8; see the module docstring).
    shard_size: examples per shard.
    batch_size: images the encoder runs at once.
    progress: show a tqdm progress bar.
    log: where one-line messages go.

  Returns:
    The split's metadata entry (counts and sizes).

  Raises:
    StoreError: the store exists but was made by another codec, at another size, with other
      classes, or holds a different plan for this split.
  """
  multiple = _downsampling(codec.family)
  if image_size % multiple or image_size <= 0:
    raise StoreError(f"image_size must be a positive multiple of {multiple} for a "
                     f"{codec.family} codec, got {image_size}")
  if shard_size < 1 or batch_size < 1:
    raise StoreError("shard_size and batch_size must be positive")
  tables = tables_of(codec)
  meta = _open_store(store_dir, tables, image_size, source.classes)
  num_shards = max(1, math.ceil(source.count / shard_size))
  plan = {"source": source.description, "digest": source.digest, "count": source.count,
          "shard_size": shard_size, "num_shards": num_shards}
  previous = meta["splits"].get(split)
  if previous is not None and previous["plan"] != plan:
    raise StoreError(f"the store at {store_dir} already holds a different {split!r} split "
                     f"(from {previous['plan']['source']}); use another --store_dir")
  meta["splits"][split] = {**(previous or {}), "plan": plan, "count": source.count,
                           "num_shards": num_shards, "complete": False}
  _write_json_atomic(os.path.join(store_dir, METADATA_FILE), meta)

  to_files = _file_writer(codec, image_size)
  bar = _progress_bar(source.count, f"encoding {split}", progress)
  shard_stats = []
  for index in range(num_shards):
    start, stop = index * shard_size, min(source.count, (index + 1) * shard_size)
    path = os.path.join(store_dir, shard_name(split, index, num_shards))
    if not os.path.exists(path):
      _encode_shard(source.examples(start, stop), to_files, meta["classes"], path, image_size,
                    batch_size, bar)
    else:
      bar.update(stop - start)
    with open(path + ".json") as f:
      shard_stats.append(json.load(f))
  bar.close()

  entry = meta["splits"][split]
  entry["source_bytes"] = sum(s["source_bytes"] for s in shard_stats)
  entry["store_bytes"] = sum(os.path.getsize(os.path.join(
      store_dir, shard_name(split, i, num_shards))) for i in range(num_shards))
  entry["tfci_bytes"] = sum(s["tfci_bytes"] for s in shard_stats)
  entry["ratio"] = entry["source_bytes"] / entry["store_bytes"]
  entry["bpp"] = 8.0 * entry["tfci_bytes"] / (source.count * image_size ** 2)
  entry["complete"] = True
  meta["totals"] = _totals(meta)
  _write_json_atomic(os.path.join(store_dir, METADATA_FILE), meta)
  return entry


def _progress_bar(total: int, desc: str, enabled: bool):
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top  (a display dependency only)
  return tqdm(total=total, desc=desc, unit="img", disable=not enabled, dynamic_ncols=True)


def _file_writer(codec, image_size: int):
  """A function: float32 views [B, S, S, 3] -> their B .tfci files, byte for byte what
  coding.compress_image writes for each view (no padding: S is a multiple of the codec's
  downsampling)."""
  encode = tf.function(codec.model.encode, input_signature=[
      tf.TensorSpec([None, image_size, image_size, 3], tf.float32)])
  if codec.family == "hyperprior":

    def hyperprior_files(images):
      y, z = encode(images)
      y, z = y.numpy(), z.numpy()
      indices = codec.scale_indices(z, y.shape)  # integers: the same batched or not
      return [bitstream.encode_hyperprior(y[i], indices[i], codec.y_tables, z[i], codec.z_tables,
                                          codec_name=codec.name, fingerprint=codec.fingerprint,
                                          image_size=(image_size, image_size))
              for i in range(y.shape[0])]
    return hyperprior_files

  def autoencoder_files(images):
    return [bitstream.encode(symbols, codec.frequencies, codec_name=codec.name,
                             fingerprint=codec.fingerprint, image_size=(image_size, image_size),
                             codec_family=bitstream.FAMILY_AUTOENCODER)
            for symbols in encode(images).numpy()]
  return autoencoder_files


def _encode_shard(examples, to_files, classes, path, image_size, batch_size, bar):
  """Writes one shard: to a temporary name, its stats beside it, then renames it into place."""
  views = examples.map(
      lambda data, label, name: (square_view(_decode_image_bytes(data), image_size), data,
                                 label, name),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  tmp = f"{path}.{os.getpid()}.tmp"
  stats = {"count": 0, "source_bytes": 0, "tfci_bytes": 0}
  with tf.io.TFRecordWriter(tmp) as writer:
    for images, encoded, labels, names in views.batch(batch_size).prefetch(1):
      files = to_files(tf.cast(images, tf.float32))
      for i, data in enumerate(files):
        label = int(labels[i])
        source_bytes = len(encoded[i].numpy())
        example = tf.train.Example(features=tf.train.Features(feature={
            "tfci": _bytes_feature(data),
            "label": _int_feature(label),
            "wnid": _bytes_feature(classes[label].encode()),
            "filename": _bytes_feature(names[i].numpy()),
            "source_bytes": _int_feature(source_bytes),
        }))
        writer.write(example.SerializeToString())
        stats["count"] += 1
        stats["source_bytes"] += source_bytes
        stats["tfci_bytes"] += len(data)
      bar.update(len(files))
  # The stats first, the shard last: a shard under its final name always has its stats.
  _write_json_atomic(path + ".json", stats)
  os.replace(tmp, path)


def size_report(meta: dict, published: dict | None = None) -> list[str]:
  """Lines comparing the store with its source, and with the paper's ImageNet numbers.

  Args:
    meta: the store's metadata.
    published: paper_numbers.json's claims.imagenet_storage_gb, or None.
  """
  lines = []
  for split, entry in meta["splits"].items():
    if entry.get("complete"):
      lines.append(
          f"{split}: {entry['count']} images, source {_mb(entry['source_bytes'])} -> store "
          f"{_mb(entry['store_bytes'])} in {entry['num_shards']} shard(s), ratio "
          f"{entry['ratio']:.2f}x, {entry['bpp']:.4f} bpp of .tfci payload+header at "
          f"{meta['image_size']}x{meta['image_size']}")
  if "totals" in meta and meta["totals"]["store_bytes"]:
    t = meta["totals"]
    point = (f"operating point {meta['codec']['operating_point']}"
             if store_family(meta) == "autoencoder" else
             f"hyperprior quality {meta['codec']['quality']}")
    lines.append(f"total: {t['count']} images, {_mb(t['source_bytes'])} of source images -> "
                 f"{_mb(t['store_bytes'])} store, ratio {t['ratio']:.2f}x "
                 f"(codec {meta['codec']['name']}, {point})")
  if published:
    lines.append(f"published (ImageNet, 0.635 bpp): {published['original']} GB -> "
                 f"{published['at_0.635_bpp']} GB, ratio {published['ratio']}x")
  return lines


def _mb(num_bytes: int) -> str:
  """Decimal units, like the paper's GB."""
  for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
    if num_bytes >= scale:
      return f"{num_bytes / scale:.1f} {unit}"
  return f"{num_bytes} B"


# --- reading ----------------------------------------------------------------------------------


def _ordered_records(files, shuffle: bool, seed: int, skip: int, shuffle_buffer: int):
  """Serialized records of the shards: in store order, or in a seeded shuffled order.

  The order is a function of `seed` alone, so a resumed epoch can `skip` the records it has
  already seen; skipping happens on the raw records, before any decoding.
  """
  ds = tf.data.Dataset.from_tensor_slices(files)
  if shuffle:
    ds = ds.shuffle(len(files), seed=seed)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(files)), block_length=1,
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.shuffle(shuffle_buffer, seed=seed + 1)
  else:
    ds = tf.data.TFRecordDataset(ds)
  if skip:
    ds = ds.skip(skip)
  return ds


def parse_example(serialized) -> dict:
  """A store record -> {"tfci", "label", "wnid", "filename", "source_bytes"} tensors."""
  return tf.io.parse_single_example(serialized, _FEATURES)


def _check_codec(meta: dict, codec, store_dir: str):
  tables = store_tables(meta, store_dir)
  if codec is not None and not tables.same_codec(codec):
    raise StoreError(f"the store at {store_dir} was made by codec {tables.name!r} "
                     f"({tables.fingerprint.hex()}), not {codec.name!r} "
                     f"({bytes(codec.fingerprint).hex()})")
  return tables


def _symbols_fn(tables: CodecTables):
  def decode(data):
    # coding.read_symbols checks the file's codec identity and shapes against the tables.
    _, symbols = coding.read_symbols(bytes(data), tables)
    return symbols
  return decode


def _read_hyperprior(tables: HyperpriorTables, shape):
  """A graph function: .tfci bytes -> (y symbols, scale indices), int32 [h, w, M] each."""

  def decode(data):
    # read_hyperprior_symbols checks the identity and shapes, decodes z, runs the integer
    # hyper-synthesis and decodes y with the tables of the resulting scale indices.
    _, y, _, indices = tables.read(bytes(data))
    return y, indices

  def read(data):
    y, indices = tf.numpy_function(decode, [data], (tf.int32, tf.int32), stateful=False)
    return tf.ensure_shape(y, shape), tf.ensure_shape(indices, shape)
  return read


def latent_dataset(store_dir: str, split: str, *, shuffle: bool = False, seed: int = 0,
                   skip: int = 0, shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER, codec=None,
                   output: str = "latent") -> tf.data.Dataset:
  """(z_hat, label) of a store split: the cResNets' input, entropy-decoded on the fly.

  Args:
    store_dir: the store.
    split: a complete split of it.
    shuffle: read in a seeded random order (shards and records); otherwise in store order.
    seed: the order's seed.
    skip: records to skip at the start of that order (to resume an epoch).
    shuffle_buffer: records the shuffle mixes.
    codec: optional pretrained.Codec or CodecTables the store must have been made by.
    output: "latent" for z_hat = centers[symbols] (float32 [h, w, C]), "symbols" for the int32
      symbols themselves.

  A hyperprior store yields (y_hat, sigma_hat, label) instead: see hyperprior_latent_dataset,
  which this calls for one.

  Raises:
    StoreError: no such store or split, or another codec's store.
  """
  if output not in ("latent", "symbols"):
    raise ValueError(f"output must be 'latent' or 'symbols', got {output!r}")
  meta = read_metadata(store_dir)
  if store_family(meta) == "hyperprior":
    return hyperprior_latent_dataset(store_dir, split, shuffle=shuffle, seed=seed, skip=skip,
                                     shuffle_buffer=shuffle_buffer, codec=codec, output=output)
  tables = _check_codec(meta, codec, store_dir)
  files = shard_files(store_dir, split, meta)
  shape = meta["latent_shape"]
  centers = tf.constant(tables.centers, tf.float32)
  decode = _symbols_fn(tables)

  def to_latent(serialized):
    example = parse_example(serialized)
    symbols = tf.numpy_function(decode, [example["tfci"]], tf.int32, stateful=False)
    symbols = tf.ensure_shape(symbols, shape)
    value = tf.gather(centers, symbols) if output == "latent" else symbols
    return value, example["label"]

  records = _ordered_records(files, shuffle, seed, skip, shuffle_buffer)
  return records.map(to_latent, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def hyperprior_latent_dataset(store_dir: str, split: str, *, shuffle: bool = False,
                              seed: int = 0, skip: int = 0,
                              shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER, codec=None,
                              output: str = "latent", cached: bool = False) -> tf.data.Dataset:
  """(y_hat, sigma_hat, label) of a hyperprior store split: the two-branch cResNet's input.

  Each record's .tfci file is entropy-decoded on the fly (see the module docstring): y_hat is
  the y symbols as float32, sigma_hat the scale each was coded with, float32 [h, w, M] each,
  exactly what Hyperprior.latent gives for the file's symbols. No transform runs.

  Args:
    store_dir, split, shuffle, seed, skip, shuffle_buffer: as for latent_dataset (the same
      orders, so the decoded arm reads the same examples in the same order for a seed).
    codec: optional codec (HyperpriorCodec or HyperpriorTables) the store must have been made by.
    output: "latent" for (y_hat, sigma_hat), "symbols" for the int32 (y symbols, scale
      indices) themselves.
    cached: read the symbols from the split's latent cache (build_latent_cache) instead of
      entropy-decoding the files: the same values, in the same orders, without the ~40 ms of
      range decoding and integer hyper-synthesis per file.

  Raises:
    StoreError: no such store or split, a store of another family, another codec's store, or
      (cached) no complete latent cache of the split.
  """
  if output not in ("latent", "symbols"):
    raise ValueError(f"output must be 'latent' or 'symbols', got {output!r}")
  meta = read_metadata(store_dir)
  if store_family(meta) != "hyperprior":
    raise StoreError(f"the store at {store_dir} was made by an {store_family(meta)} codec; its "
                     "latent arm reads (z_hat, label) with latent_dataset")
  tables = _check_codec(meta, codec, store_dir)
  files = shard_files(store_dir, split, meta)
  shape = meta["latent_shape"]
  scales = tf.constant(hyperprior_lib.scale_table(), tf.float32)
  if cached:
    files = _latent_cache_files(store_dir, split, files)

    def symbols_of(serialized):
      example = tf.io.parse_single_example(serialized, _LATENT_CACHE_FEATURES)
      y = tf.cond(tf.equal(example["y_bits"], 16),
                  lambda: tf.cast(tf.io.decode_raw(example["y"], tf.int16), tf.int32),
                  lambda: tf.io.decode_raw(example["y"], tf.int32))
      indices = tf.cast(tf.io.decode_raw(example["indices"], tf.uint8), tf.int32)
      return tf.reshape(y, shape), tf.reshape(indices, shape), example["label"]
  else:
    read = _read_hyperprior(tables, shape)

    def symbols_of(serialized):
      example = parse_example(serialized)
      return (*read(example["tfci"]), example["label"])

  def to_pair(serialized):
    y, indices, label = symbols_of(serialized)
    if output == "symbols":
      return y, indices, label
    return tf.cast(y, tf.float32), tf.gather(scales, indices), label

  records = _ordered_records(files, shuffle, seed, skip, shuffle_buffer)
  return records.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


# --- the latent cache of a hyperprior store ---------------------------------------------------


def latent_cache_dir(store_dir: str) -> str:
  return os.path.join(store_dir, LATENT_CACHE_DIR)


def _latent_cache_files(store_dir: str, split: str, store_files) -> list[str]:
  files = [os.path.join(latent_cache_dir(store_dir), os.path.basename(f)) for f in store_files]
  if not all(os.path.exists(f) for f in files):
    raise StoreError(f"the latent cache of {split!r} in {store_dir} is missing or incomplete; "
                     "make it with build_latent_cache")
  return files


def has_latent_cache(store_dir: str, split: str) -> bool:
  """Whether a hyperprior store split has a complete latent cache."""
  try:
    _latent_cache_files(store_dir, split, shard_files(store_dir, split))
    return True
  except StoreError:
    return False


def build_latent_cache(store_dir: str, split: str, *, progress: bool = True) -> str:
  """Entropy-decodes a hyperprior store split once, for classifiers that read it every epoch.

  Reading a hyperprior file costs its range decoding and the integer hyper-synthesis (tens of
  milliseconds on a CPU core, more than a small cResNet's training step per example). The cache
  holds their result per store shard, under store_dir/latents/ with the shard's name: the y
  symbols as raw int16 (int32 for a file whose values do not fit), the scale indices as uint8,
  the label. It is derived from the .tfci files with the store's tables, so the classifiers see
  the same numbers (hyperprior_latent_dataset(cached=True)); it is no part of the store's size.
  Resumable per shard. Returns the cache folder.

  Raises:
    StoreError: no such split, or not a hyperprior store.
  """
  meta = read_metadata(store_dir)
  if store_family(meta) != "hyperprior":
    raise StoreError(f"the store at {store_dir} is an {store_family(meta)} store; only "
                     "hyperprior stores have a latent cache")
  if hyperprior_lib.NUM_SCALES > 256:
    raise StoreError("scale indices no longer fit a byte")
  tables = store_tables(meta, store_dir)
  files = shard_files(store_dir, split, meta)
  cache = latent_cache_dir(store_dir)
  os.makedirs(cache, exist_ok=True)
  read = _read_hyperprior(tables, meta["latent_shape"])
  bar = _progress_bar(_split_entry(meta, split, store_dir)["count"],
                      f"entropy-decoding {split}", progress)

  def symbols_and_label(serialized):
    example = parse_example(serialized)
    return (*read(example["tfci"]), example["label"])

  for store_shard in files:
    target = os.path.join(cache, os.path.basename(store_shard))
    if os.path.exists(target):
      with open(store_shard + ".json") as f:
        bar.update(json.load(f)["count"])
      continue
    records = tf.data.TFRecordDataset(store_shard).map(
        symbols_and_label, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    tmp = f"{target}.{os.getpid()}.tmp"
    with tf.io.TFRecordWriter(tmp) as writer:
      for y, indices, label in records.as_numpy_iterator():
        narrow = np.iinfo(np.int16)
        bits = 16 if narrow.min <= y.min() and y.max() <= narrow.max else 32
        example = tf.train.Example(features=tf.train.Features(feature={
            "y": _bytes_feature(y.astype("<i2" if bits == 16 else "<i4").tobytes()),
            "y_bits": _int_feature(bits),
            "indices": _bytes_feature(indices.astype(np.uint8).tobytes()),
            "label": _int_feature(label)}))
        writer.write(example.SerializeToString())
        bar.update(1)
    os.replace(tmp, target)
  bar.close()
  return cache


def num_examples(store_dir: str, split: str) -> int:
  meta = read_metadata(store_dir)
  return int(_split_entry(meta, split, store_dir)["count"])


# --- the decoded-RGB cache --------------------------------------------------------------------


def decoded_cache_dir(store_dir: str) -> str:
  return os.path.join(store_dir, DECODED_DIR)


def build_decoded_cache(store_dir: str, split: str, codec: pretrained.Codec, *,
                        batch_size: int = 16, progress: bool = True) -> str:
  """Decodes a store split once through the codec's decoder, for the decoded-RGB arm.

  Every store shard gets a cache shard of the same name under store_dir/decoded/, holding the
  reconstructions as raw uint8 [S, S, 3] (what coding.decompress_bytes returns for the same
  file). Raw, not PNG: the arm reads them every epoch, and raw costs no CPU to read. Resumable
  per shard, like encoding. Returns the cache folder. For a hyperprior store the decoder is
  the synthesis transform of the y symbols (`codec` must be the HyperpriorCodec).

  Raises:
    StoreError: no such split, or `codec` did not make the store.
  """
  meta = read_metadata(store_dir)
  tables = _check_codec(meta, codec, store_dir)
  files = shard_files(store_dir, split, meta)
  cache = decoded_cache_dir(store_dir)
  os.makedirs(cache, exist_ok=True)
  decode_images = tf.function(codec.model.decode, input_signature=[
      tf.TensorSpec([None, *meta["latent_shape"]], tf.int32)])
  bar = _progress_bar(_split_entry(meta, split, store_dir)["count"], f"decoding {split}",
                      progress)
  if tables.family == "hyperprior":
    read = _read_hyperprior(tables, meta["latent_shape"])

    def symbols_and_label(serialized):
      example = parse_example(serialized)
      return read(example["tfci"])[0], example["label"]  # the y symbols
  else:
    decode = _symbols_fn(tables)

    def symbols_and_label(serialized):
      example = parse_example(serialized)
      symbols = tf.numpy_function(decode, [example["tfci"]], tf.int32, stateful=False)
      return tf.ensure_shape(symbols, meta["latent_shape"]), example["label"]

  for store_shard in files:
    target = os.path.join(cache, os.path.basename(store_shard))
    if os.path.exists(target):
      with open(store_shard + ".json") as f:
        bar.update(json.load(f)["count"])
      continue
    symbols = tf.data.TFRecordDataset(store_shard).map(symbols_and_label)
    tmp = f"{target}.{os.getpid()}.tmp"
    with tf.io.TFRecordWriter(tmp) as writer:
      for batch, labels in symbols.batch(batch_size):
        images = decode_images(batch).numpy()
        images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
        for image, label in zip(images, labels.numpy()):
          example = tf.train.Example(features=tf.train.Features(feature={
              "image": _bytes_feature(image.tobytes()), "label": _int_feature(label)}))
          writer.write(example.SerializeToString())
        bar.update(len(images))
    os.replace(tmp, target)
  bar.close()
  return cache


def decoded_dataset(store_dir: str, split: str, *, shuffle: bool = False, seed: int = 0,
                    skip: int = 0,
                    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER) -> tf.data.Dataset:
  """(uint8 image [S, S, 3], label): the codec's reconstructions of a store split.

  Reads the cache build_decoded_cache made: the same examples, in the same orders (for the
  same seed), as latent_dataset.

  Raises:
    StoreError: the split's cache is missing or incomplete.
  """
  meta = read_metadata(store_dir)
  store_files = shard_files(store_dir, split, meta)
  files = [os.path.join(decoded_cache_dir(store_dir), os.path.basename(f)) for f in store_files]
  if not all(os.path.exists(f) for f in files):
    raise StoreError(f"the decoded cache of {split!r} in {store_dir} is missing or incomplete; "
                     "make it with build_decoded_cache (tfcdi-encode-dataset --decode)")
  size = meta["image_size"]

  def parse(serialized):
    example = tf.io.parse_single_example(serialized, _DECODED_FEATURES)
    image = tf.reshape(tf.io.decode_raw(example["image"], tf.uint8), [size, size, 3])
    return image, example["label"]

  records = _ordered_records(files, shuffle, seed, skip, shuffle_buffer)
  return records.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


# --- the original-RGB arm ---------------------------------------------------------------------


def original_dataset(data_dir: str, split: str, *, image_size: int = DEFAULT_IMAGE_SIZE,
                     shuffle: bool = False, seed: int = 0, skip: int = 0) -> tf.data.Dataset:
  """(uint8 square view [S, S, 3], label) of an ImageFolder split: the uncompressed arm.

  The same geometry as the store (square_view), so all three arms see the same pixels.
  Labels index the sorted class folders, as in a store made from the same folder.
  """
  paths, _, labels = images_lib.list_images(data_dir, split)
  ds = tf.data.Dataset.from_tensor_slices((paths, np.asarray(labels, np.int64)))
  if shuffle:
    ds = ds.shuffle(len(paths), seed=seed)
  if skip:
    ds = ds.skip(skip)
  return ds.map(lambda path, label: (square_view(images_lib.decode_rgb(path), image_size), label),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def original_classes(data_dir: str, split: str) -> list[str]:
  return images_lib.list_images(data_dir, split)[1]
