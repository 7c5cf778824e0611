"""The two RGB arms of the classification comparison, beside the latent store's latent arm.

decoded   the codec's reconstructions of a latent store (`decoded_dataset`), read from a cache
          made once by the codec's synthesis (`build_decoded_cache`): the same examples, in the
          same orders (for the same seed), as the store's latent_dataset; the paper's baseline.
original  the uncompressed source images of an ImageFolder split (`original_dataset`), through
          the store's geometry (latent_store.square_view), so all three arms see the same pixels.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tfcdi.data import images as images_lib
from tfcdi.data import latent_store

DECODED_DIR = "decoded"

_DECODED_FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
}


# --- the decoded-RGB cache --------------------------------------------------------------------


def decoded_cache_dir(store_dir: str) -> str:
  return os.path.join(store_dir, DECODED_DIR)


def build_decoded_cache(store_dir: str, split: str, codec, *, batch_size: int = 16,
                        progress: bool = True) -> str:
  """Decodes a store split once through the codec's synthesis, for the decoded-RGB arm.

  Every store shard gets a cache shard of the same name under store_dir/decoded/, holding the
  reconstructions as raw uint8 [S, S, 3] (what coding.decompress_bytes returns for the same
  file). Raw, not PNG: the arm reads them every epoch, and raw costs no CPU to read. Resumable
  per shard, like encoding. Returns the cache folder. `codec` is the loaded codec that made the
  store (of any family: its `reconstruct` is the decoder).

  Raises:
    latent_store.StoreError: no such split, or `codec` did not make the store.
  """
  meta = latent_store.read_metadata(store_dir)
  tables = latent_store.check_codec(meta, codec, store_dir)
  decode_images = tf.function(codec.reconstruct, input_signature=[
      {name: tf.TensorSpec([None, *meta["latent_shape"]], tf.int32)
       for name in tables.symbol_names}])

  def write_shard(records, writer, bar):
    for batch, labels in records.batch(batch_size):
      images = decode_images(batch).numpy()
      images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
      for image, label in zip(images, labels.numpy()):
        example = tf.train.Example(features=tf.train.Features(feature={
            "image": latent_store.bytes_feature(image.tobytes()),
            "label": latent_store.int_feature(label)}))
        writer.write(example.SerializeToString(deterministic=True))
      bar.update(len(images))

  return latent_store.derive_cache(store_dir, split, meta, tables, decoded_cache_dir(store_dir),
                                   f"decoding {split}", write_shard, progress)


def decoded_dataset(store_dir: str, split: str, *, shuffle: bool = False, seed: int = 0,
                    skip: int = 0,
                    shuffle_buffer: int = latent_store.DEFAULT_SHUFFLE_BUFFER) -> tf.data.Dataset:
  """(uint8 image [S, S, 3], label): the codec's reconstructions of a store split.

  Reads the cache build_decoded_cache made: the same examples, in the same orders (for the
  same seed), as latent_store.latent_dataset.

  Raises:
    latent_store.StoreError: the split's cache is missing or incomplete.
  """
  meta = latent_store.read_metadata(store_dir)
  store_files = latent_store.shard_files(store_dir, split, meta)
  files = [os.path.join(decoded_cache_dir(store_dir), os.path.basename(f)) for f in store_files]
  if not all(os.path.exists(f) for f in files):
    raise latent_store.StoreError(f"the decoded cache of {split!r} in {store_dir} is missing or "
                                  "incomplete; make it with build_decoded_cache "
                                  "(tfcdi-encode-dataset --decode)")
  size = meta["image_size"]

  def parse(serialized):
    example = tf.io.parse_single_example(serialized, _DECODED_FEATURES)
    image = tf.reshape(tf.io.decode_raw(example["image"], tf.uint8), [size, size, 3])
    return image, example["label"]

  records = latent_store.ordered_records(files, shuffle, seed, skip, shuffle_buffer)
  return records.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


# --- the original-RGB arm ---------------------------------------------------------------------


def original_dataset(data_dir: str, split: str, *,
                     image_size: int = latent_store.DEFAULT_IMAGE_SIZE, shuffle: bool = False,
                     seed: int = 0, skip: int = 0) -> tf.data.Dataset:
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
  return ds.map(
      lambda path, label: (latent_store.square_view(images_lib.decode_rgb(path), image_size),
                           label),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def original_classes(data_dir: str, split: str) -> list[str]:
  return images_lib.list_images(data_dir, split)[1]
