"""The latent store: a dataset encoded once by a codec, kept as real .tfci files in TFRecords.

Both arms of the paper's classification comparison read the same store, so they see the same
compressed data: the cResNets read the quantized representation z_hat = centers[symbols]
(`latent_dataset`), the RGB baseline reads the codec's reconstructions of it
(data/rgb_arms.py: `decoded_dataset`, from a one-time decoded cache). The third arm,
uncompressed RGB, reads the source images through the same geometry (rgb_arms.original_dataset).

A codec of any family makes a store; the store only talks to the codec interface
(tfcdi/codec/interface.py). Its metadata records the codec's identity (Reader.to_json: the
autoencoder's frequency table and centers; the hyperprior's identity, its integer tables in
`codec_tables.npz` beside it, not counted in the store's size), so a store reads without the
codec bundle. The latent arm reads (*latents, label), the latents the family names, in its
order: (z_hat, label) for Torfason et al.'s autoencoder; (y_hat, sigma_hat, label) for Balle et
al. 2018's scale hyperprior (the follow-up work), whose reader decodes z, runs the integer
hyper-synthesis for each y symbol's scale index (the integers the encoder used), decodes y with
those tables and looks sigma_hat up in the scale table. Neither a synthesis transform nor any
float network runs.

Geometry. Every image is brought to a square view before anything else: its shorter side is
resized to `image_size` (256 by default; bilinear with antialiasing) and the central
image_size x image_size square is kept. The paper (Appendix A.4) names only random mirroring,
random 224 / 28 crops and mean centring; the fixed square view is this project's choice (see
BUILD_NOTES.md, deviations from the text), so that every latent has the same shape: a
256 x 256 view gives a 32 x 32 x C latent, from which training takes random 28 x 28 crops (the
latent of a 224 x 224 crop) and evaluation the central one. The RGB arms take 224 x 224 crops
of the same 256 x 256 view. (Imagenette's images are 224 x 224 already; they are upsampled by
8/7 to keep the paper's latent size.) The hyperprior downsamples by 16: a 256 x 256 view gives
y_hat and sigma_hat of 16 x 16 x M, which the classifiers resize to 32 x 32 before cropping
28 x 28 (the follow-up's geometry, data/latent_pairs.py). Its views must be multiples of 16.

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

import hashlib
import json
import math
import os

import numpy as np
import tensorflow as tf

from tfcdi import configs
from tfcdi import imageio
from tfcdi.codec import autoencoder
from tfcdi.codec import hyperprior_codec
from tfcdi.codec import pretrained
from tfcdi.codec import registry
from tfcdi.data import images as images_lib

STORE_FORMAT = 1
METADATA_FILE = "metadata.json"
# A hyperprior store's integer coding tables (HyperpriorTables.save / load).
HYPERPRIOR_TABLES_FILE = hyperprior_codec.TABLES_FILE
# A store's entropy-decoded symbols (build_latent_cache).
LATENT_CACHE_DIR = "latents"
# The square view every image is brought to; its latent is 32 x 32 (see the module docstring).
DEFAULT_IMAGE_SIZE = configs.DEFAULT_IMAGE_SIZE
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


class StoreError(ValueError):
  """A latent store is missing, incomplete, or does not match what was asked of it."""


# --- the codec's tables: what reading latents needs, without the neural network -----------------

# The two built-in families' Readers, under the names they had when they lived here.
CodecTables = autoencoder.AutoencoderTables
HyperpriorTables = hyperprior_codec.HyperpriorTables


def tables_of(codec):
  """The Reader (identity and integer tables, no model) of a loaded codec of any family."""
  return codec.tables()


def codec_family(codec_json: dict) -> str:
  """The family of a codec's JSON identity (stores made before families are autoencoder)."""
  return registry.of_json(codec_json).name


def load_codec_tables(path: str):
  """Reads the Reader of a codec bundle (.npz) of any family without building its model.

  Raises:
    pretrained.CodecError: the file is not a readable bundle.
  """
  return registry.read_tables(path)


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
  """The name of the family of the codec that made the store ("autoencoder", ...)."""
  return codec_family(meta["codec"])


def store_tables(meta: dict, store_dir: str | None = None):
  """The Reader of the codec that made the store (interface.Reader).

  Some families keep tables in a file beside the metadata (the hyperprior): give `store_dir`.

  Raises:
    StoreError: the tables are missing or do not match the store's metadata.
  """
  try:
    return registry.tables_from_json(meta["codec"], store_dir)
  except pretrained.CodecError as e:
    raise StoreError(f"the store at {store_dir}: {e}") from None


def _same_identity(codec_json: dict, codec) -> bool:
  return (codec_json["name"], codec_json["fingerprint"]) == (codec.name,
                                                             bytes(codec.fingerprint).hex())


def split_entry(meta: dict, split: str, store_dir: str) -> dict:
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
  entry = split_entry(meta, split, store_dir)
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


def bytes_feature(value: bytes):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def int_feature(value: int):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def _open_store(store_dir: str, tables, image_size: int, classes) -> dict:
  """Existing metadata checked against this encoding, or fresh metadata for a new store."""
  os.makedirs(store_dir, exist_ok=True)
  if not os.path.exists(os.path.join(store_dir, METADATA_FILE)):
    shapes = tables.latent_shapes((image_size, image_size))
    meta = {"format": STORE_FORMAT, "codec": tables.to_json(), "image_size": image_size,
            "latent_shape": shapes.pop("latent_shape"),
            "preprocessing": (f"shorter side resized to {image_size} (bilinear, antialiased), "
                              f"central {image_size}x{image_size} square, rounded to uint8"),
            "classes": list(classes), "splits": {}, **shapes}
    # The tables before the metadata: a store with metadata always has them.
    tables.save_beside(store_dir)
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


def encode_split(source, codec, store_dir: str, split: str, *,
                 image_size: int = DEFAULT_IMAGE_SIZE, shard_size: int = DEFAULT_SHARD_SIZE,
                 batch_size: int = 16, progress: bool = True, log=print) -> dict:
  """Encodes a source split into the store (or finishes an interrupted encoding).

  Args:
    source: an ImageFolderSource or TfdsSource.
    codec: the codec to encode with (pretrained.load_codec), of any family; the store's
      metadata records its identity and family.
    store_dir: the store's folder; created if needed. One store holds one codec's encodings of
      any number of splits with the same classes and geometry.
    split: the name the split gets in the store ("train", "val").
    image_size: side of the square view (a multiple of the codec's downsampling).
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
  meta = plan_split(source, codec, store_dir, split, image_size=image_size,
                    shard_size=shard_size, batch_size=batch_size)
  to_files = file_writer(codec, image_size)
  bar = progress_bar(source.count, f"encoding {split}", progress)
  for index in range(meta["splits"][split]["num_shards"]):
    encode_shard(source, to_files, meta, store_dir, split, index, batch_size=batch_size, bar=bar)
  bar.close()
  return finish_split(meta, store_dir, split)


# The steps of encoding a split, shared by encode_split (one process, shard after shard) and
# data/beam_encode.py (shards spread over Beam workers). A shard's bytes are a function of the
# plan and its index alone (its images in plan order, batched from its first image).


def plan_split(source, codec, store_dir: str, split: str, *, image_size: int, shard_size: int,
               batch_size: int) -> dict:
  """Checks the sizes, opens (or creates) the store, records the split's plan as incomplete;
  returns the metadata. Raises StoreError as encode_split."""
  multiple = codec.downsampling
  if image_size % multiple or image_size <= 0:
    raise StoreError(f"image_size must be a positive multiple of {multiple} for a "
                     f"{codec.family} codec, got {image_size}")
  if shard_size < 1 or batch_size < 1:
    raise StoreError("shard_size and batch_size must be positive")
  meta = _open_store(store_dir, codec.tables(), image_size, source.classes)
  num_shards = max(1, math.ceil(source.count / shard_size))
  plan = {"source": source.description, "digest": source.digest, "count": source.count,
          "shard_size": shard_size, "num_shards": num_shards}
  previous = meta["splits"].get(split)
  if previous is not None and previous["plan"] != plan:
    raise StoreError(f"the store at {store_dir} already holds a different {split!r} split "
                     f"(from {previous['plan']['source']}); use another --store_dir")
  meta["splits"][split] = {**(previous or {}), "plan": plan, "count": source.count,
                           "num_shards": num_shards, "complete": False}
  imageio.write_json(os.path.join(store_dir, METADATA_FILE), meta)
  return meta


def shard_path(meta: dict, store_dir: str, split: str, index: int) -> str:
  return os.path.join(store_dir, shard_name(split, index, meta["splits"][split]["num_shards"]))


def encode_shard(source, to_files, meta: dict, store_dir: str, split: str, index: int, *,
                 batch_size: int, bar) -> bool:
  """Writes shard `index` of a planned split unless it exists; whether it wrote it. `to_files`
  is file_writer(codec, image_size); `bar` a progress bar, advanced by the shard either way."""
  entry = meta["splits"][split]
  shard_size = entry["plan"]["shard_size"]
  start, stop = index * shard_size, min(entry["count"], (index + 1) * shard_size)
  path = shard_path(meta, store_dir, split, index)
  if os.path.exists(path):
    bar.update(stop - start)
    return False
  _encode_shard(source.examples(start, stop), to_files, meta["classes"], path,
                meta["image_size"], batch_size, bar)
  return True


def finish_split(meta: dict, store_dir: str, split: str) -> dict:
  """Sums the shards' stats into the split's entry and marks it complete; returns the entry.
  Raises StoreError if a shard of the plan is missing."""
  entry = meta["splits"][split]
  paths = [shard_path(meta, store_dir, split, i) for i in range(entry["num_shards"])]
  missing = [p for p in paths if not os.path.exists(p)]
  if missing:
    raise StoreError(f"{len(missing)} shard(s) of {split!r} in {store_dir} were not written, "
                     f"e.g. {os.path.basename(missing[0])}")
  shard_stats = []
  for path in paths:
    with open(path + ".json") as f:
      shard_stats.append(json.load(f))
  entry["source_bytes"] = sum(s["source_bytes"] for s in shard_stats)
  entry["store_bytes"] = sum(os.path.getsize(p) for p in paths)
  entry["tfci_bytes"] = sum(s["tfci_bytes"] for s in shard_stats)
  entry["ratio"] = entry["source_bytes"] / entry["store_bytes"]
  entry["bpp"] = 8.0 * entry["tfci_bytes"] / (entry["count"] * meta["image_size"] ** 2)
  entry["complete"] = True
  meta["totals"] = _totals(meta)
  imageio.write_json(os.path.join(store_dir, METADATA_FILE), meta)
  return entry


def progress_bar(total: int, desc: str, enabled: bool):
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top  (a display dependency only)
  return tqdm(total=total, desc=desc, unit="img", disable=not enabled, dynamic_ncols=True)


def file_writer(codec, image_size: int):
  """A function: float32 views [B, S, S, 3] -> their B .tfci files, byte for byte what
  coding.compress_image writes for each view (no padding: S is a multiple of the codec's
  downsampling)."""
  compress = codec.batch_compressor(image_size)
  return lambda images: compress(images, (image_size, image_size))


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
            "tfci": bytes_feature(data),
            "label": int_feature(label),
            "wnid": bytes_feature(classes[label].encode()),
            "filename": bytes_feature(names[i].numpy()),
            "source_bytes": int_feature(source_bytes),
        }))
        # deterministic: protobuf's upb writes a map (the features) in an order seeded per
        # process, so without it two runs, or two Beam workers, write different bytes.
        writer.write(example.SerializeToString(deterministic=True))
        stats["count"] += 1
        stats["source_bytes"] += source_bytes
        stats["tfci_bytes"] += len(data)
      bar.update(len(files))
  # The stats first, the shard last: a shard under its final name always has its stats.
  imageio.write_json(path + ".json", stats)
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
    point = registry.describe(meta["codec"])
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


def ordered_records(files, shuffle: bool, seed: int, skip: int, shuffle_buffer: int):
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


def check_codec(meta: dict, codec, store_dir: str):
  tables = store_tables(meta, store_dir)
  if codec is not None and not tables.same_codec(codec):
    raise StoreError(f"the store at {store_dir} was made by codec {tables.name!r} "
                     f"({tables.fingerprint.hex()}), not {codec.name!r} "
                     f"({bytes(codec.fingerprint).hex()})")
  return tables


def symbols_reader(tables, shape):
  """A graph function: .tfci bytes -> {symbol name: int32 [h, w, C]} (the Reader's arrays)."""
  names = tables.symbol_names

  def decode(data):
    # The Reader checks the file's codec identity and shapes against its tables.
    _, symbols = tables.read_symbols(bytes(data))
    return tuple(np.asarray(symbols[name], np.int32) for name in names)

  def read(data):
    arrays = tf.numpy_function(decode, [data], (tf.int32,) * len(names), stateful=False)
    return {name: tf.ensure_shape(a, shape) for name, a in zip(names, arrays)}
  return read


def latent_dataset(store_dir: str, split: str, *, shuffle: bool = False, seed: int = 0,
                   skip: int = 0, shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER, codec=None,
                   output: str = "latent", cached: bool = False) -> tf.data.Dataset:
  """(*latents, label) of a store split: the compressed-domain nets' input, entropy-decoded on
  the fly. The latents are those the store's codec family names, in its order: (z_hat, label)
  for the autoencoder, (y_hat, sigma_hat, label) for the hyperprior; float32 [h, w, C] each.

  Args:
    store_dir: the store.
    split: a complete split of it.
    shuffle: read in a seeded random order (shards and records); otherwise in store order.
    seed: the order's seed.
    skip: records to skip at the start of that order (to resume an epoch).
    shuffle_buffer: records the shuffle mixes.
    codec: optional codec (or its Reader) the store must have been made by.
    output: "latent" for the latents, "symbols" for the int32 symbol arrays they come from
      (the autoencoder's symbols; the hyperprior's y symbols and scale indices).
    cached: read the symbols from the split's latent cache (build_latent_cache) instead of
      entropy-decoding the files: the same values, in the same orders, without the range
      decoding (for the hyperprior, ~40 ms per file with its integer hyper-synthesis).

  Raises:
    StoreError: no such store or split, another codec's store, or (cached) no complete latent
      cache of the split.
  """
  if output not in ("latent", "symbols"):
    raise ValueError(f"output must be 'latent' or 'symbols', got {output!r}")
  meta = read_metadata(store_dir)
  tables = check_codec(meta, codec, store_dir)
  files = shard_files(store_dir, split, meta)
  shape = meta["latent_shape"]
  if cached:
    files = _latent_cache_files(store_dir, split, files)
    features = _latent_cache_features(tables)

    def symbols_of(serialized):
      example = tf.io.parse_single_example(serialized, features)
      return ({name: tf.reshape(_from_narrow(example[name], example[f"{name}_bits"]), shape)
               for name in tables.symbol_names}, example["label"])
  else:
    read = symbols_reader(tables, shape)

    def symbols_of(serialized):
      example = parse_example(serialized)
      return read(example["tfci"]), example["label"]

  def to_output(serialized):
    symbols, label = symbols_of(serialized)
    if output == "symbols":
      return (*(symbols[name] for name in tables.symbol_names), label)
    latents = tables.latents_from_symbols(symbols)
    return (*(latents[name] for name in tables.latent_names), label)

  records = ordered_records(files, shuffle, seed, skip, shuffle_buffer)
  return records.map(to_output, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def hyperprior_latent_dataset(store_dir: str, split: str, *, shuffle: bool = False,
                              seed: int = 0, skip: int = 0,
                              shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER, codec=None,
                              output: str = "latent", cached: bool = False) -> tf.data.Dataset:
  """(y_hat, sigma_hat, label) of a store whose codec gives those latents (the two-branch
  cResNet's input): latent_dataset, refusing a store of any other latents.

  Raises:
    StoreError: as latent_dataset, or a store whose codec gives other latents.
  """
  meta = read_metadata(store_dir)
  latent_names = registry.of_json(meta["codec"]).latent_names
  if tuple(latent_names) != (hyperprior_codec.Y_HAT, hyperprior_codec.SIGMA_HAT):
    raise StoreError(f"the store at {store_dir} was made by an {store_family(meta)} codec; its "
                     f"latent arm reads ({', '.join(latent_names)}, label) with latent_dataset")
  return latent_dataset(store_dir, split, shuffle=shuffle, seed=seed, skip=skip,
                        shuffle_buffer=shuffle_buffer, codec=codec, output=output, cached=cached)


# --- the latent cache ---------------------------------------------------------------------------


def latent_cache_dir(store_dir: str) -> str:
  return os.path.join(store_dir, LATENT_CACHE_DIR)


def _latent_cache_files(store_dir: str, split: str, store_files) -> list[str]:
  files = [os.path.join(latent_cache_dir(store_dir), os.path.basename(f)) for f in store_files]
  if not all(os.path.exists(f) for f in files):
    raise StoreError(f"the latent cache of {split!r} in {store_dir} is missing or incomplete; "
                     "make it with build_latent_cache")
  return files


def _latent_cache_features(tables) -> dict:
  # Per symbol array: its raw little-endian values and their width. A missing width is 8: the
  # hyperprior caches written before caches were generic stored "indices" as uint8 with none.
  features = {"label": tf.io.FixedLenFeature([], tf.int64)}
  for name in tables.symbol_names:
    features[name] = tf.io.FixedLenFeature([], tf.string)
    features[f"{name}_bits"] = tf.io.FixedLenFeature([], tf.int64, default_value=8)
  return features


def _to_narrow(values: np.ndarray) -> tuple:
  """(raw bytes, bits): uint8 if every value fits, else int16, else int32 (little-endian)."""
  if values.size == 0 or (values.min() >= 0 and values.max() <= 255):
    return values.astype(np.uint8).tobytes(), 8
  narrow = np.iinfo(np.int16)
  if narrow.min <= values.min() and values.max() <= narrow.max:
    return values.astype("<i2").tobytes(), 16
  return values.astype("<i4").tobytes(), 32


def _from_narrow(raw, bits):
  return tf.case([
      (tf.equal(bits, 8), lambda: tf.cast(tf.io.decode_raw(raw, tf.uint8), tf.int32)),
      (tf.equal(bits, 16), lambda: tf.cast(tf.io.decode_raw(raw, tf.int16), tf.int32))],
      default=lambda: tf.io.decode_raw(raw, tf.int32))


def has_latent_cache(store_dir: str, split: str) -> bool:
  """Whether a store split has a complete latent cache."""
  try:
    _latent_cache_files(store_dir, split, shard_files(store_dir, split))
    return True
  except StoreError:
    return False


def build_latent_cache(store_dir: str, split: str, *, progress: bool = True) -> str:
  """Entropy-decodes a store split once, for classifiers that read it every epoch.

  Reading a hyperprior file costs its range decoding and the integer hyper-synthesis (tens of
  milliseconds on a CPU core, more than a small cResNet's training step per example). The cache
  holds the result per store shard, under store_dir/latents/ with the shard's name: each of the
  codec's symbol arrays as raw uint8, int16 or int32 (the narrowest that holds the file's
  values), and the label. It is derived from the .tfci files with the store's tables, so the
  classifiers see the same numbers (latent_dataset(cached=True)); it is no part of the store's
  size. Resumable per shard. Returns the cache folder.

  Raises:
    StoreError: no such split.
  """
  meta = read_metadata(store_dir)
  tables = store_tables(meta, store_dir)

  def write_shard(records, writer, bar):
    for symbols, label in records.as_numpy_iterator():
      feature = {"label": int_feature(label)}
      for name, values in symbols.items():
        raw, bits = _to_narrow(values)
        feature[name], feature[f"{name}_bits"] = bytes_feature(raw), int_feature(bits)
      writer.write(tf.train.Example(features=tf.train.Features(
          feature=feature)).SerializeToString(deterministic=True))
      bar.update(1)

  return derive_cache(store_dir, split, meta, tables, latent_cache_dir(store_dir),
                      f"entropy-decoding {split}", write_shard, progress)


def derive_cache(store_dir: str, split: str, meta: dict, tables, cache: str, label: str,
                 write_shard, progress: bool) -> str:
  """The loop every cache derived from a store split shares (latents, decoded images).

  Each store shard's (symbols {name: int32}, label) records, entropy-decoded with `tables` in
  the shard's order, go to `write_shard(records, writer, bar)`, which writes the cache shard of
  the same name under `cache`. A finished cache shard is kept, and a shard is written beside and
  renamed, so a killed build resumes per shard. Returns `cache`.
  """
  files = shard_files(store_dir, split, meta)
  os.makedirs(cache, exist_ok=True)
  read = symbols_reader(tables, meta["latent_shape"])
  bar = progress_bar(split_entry(meta, split, store_dir)["count"], label, progress)

  def symbols_and_label(serialized):
    example = parse_example(serialized)
    return read(example["tfci"]), example["label"]

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
      write_shard(records, writer, bar)
    os.replace(tmp, target)
  bar.close()
  return cache


def num_examples(store_dir: str, split: str) -> int:
  meta = read_metadata(store_dir)
  return int(split_entry(meta, split, store_dir)["count"])
