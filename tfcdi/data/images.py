"""tf.data pipelines over image folders (ImageFolder layout: root/split/<class>/<image>).

The shared Imagenette follows this layout, and so does an ImageNet export for users who have one.
Paths always come from the caller (a flag or a config), never from library code.
"""

from __future__ import annotations

import os

import tensorflow as tf

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp")


def list_images(root: str, split: str | None = None):
  """Sorted (paths, class names, integer labels) of an ImageFolder split.

  A folder that holds images itself (like Kodak) is a flat folder: label -1 for every image,
  and its sub-folders are ignored.
  """
  base = os.path.join(root, split) if split else root
  if not os.path.isdir(base):
    raise ValueError(f"image folder {base!r} does not exist")
  flat = any(f.lower().endswith(IMAGE_EXTENSIONS) for f in os.listdir(base))
  classes = [] if flat else sorted(
      d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d)))
  paths, labels = [], []
  if classes:
    for index, name in enumerate(classes):
      folder = os.path.join(base, name)
      for fname in sorted(os.listdir(folder)):
        if fname.lower().endswith(IMAGE_EXTENSIONS):
          paths.append(os.path.join(folder, fname))
          labels.append(index)
  else:
    for fname in sorted(os.listdir(base)):
      if fname.lower().endswith(IMAGE_EXTENSIONS):
        paths.append(os.path.join(base, fname))
        labels.append(-1)
  if not paths:
    raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {base!r}")
  return paths, classes, labels


def decode_rgb(path):
  """Reads a JPEG/PNG/BMP as uint8 RGB; grayscale images are replicated to three channels."""
  image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
  image.set_shape([None, None, 3])
  return image


def _random_crop_at_least(image, crop):
  # Images smaller than the crop are upscaled first (a crop is never padded with fake pixels).
  shape = tf.shape(image)
  scale = tf.maximum(1.0, tf.cast(crop, tf.float32) / tf.cast(tf.minimum(shape[0], shape[1]),
                                                             tf.float32))
  new_size = tf.cast(tf.math.ceil(tf.cast(shape[:2], tf.float32) * scale), tf.int32)
  image = tf.cond(scale > 1.0,
                  lambda: tf.cast(tf.image.resize(image, new_size), tf.uint8),
                  lambda: image)
  return tf.image.random_crop(image, [crop, crop, 3])


def codec_training_dataset(root: str, split: str, crop: int, batch_size: int, seed: int = 0):
  """Endless batches of random crops with random mirroring, float32 in [0, 255], for the codec.

  The shuffle is seeded and the stream is deterministic up to the parallel map's ordering,
  which is kept deterministic so that a resumed run sees a reproducible stream.
  """
  paths, _, _ = list_images(root, split)
  ds = tf.data.Dataset.from_tensor_slices(paths)
  ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True).repeat()

  def load(path):
    image = _random_crop_at_least(decode_rgb(path), crop)
    image = tf.image.random_flip_left_right(image)
    return tf.cast(image, tf.float32)

  ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def full_images_dataset(root: str, split: str | None = None, limit: int = 0):
  """Full-size images one at a time (uint8 [H, W, 3]) with their paths, for evaluation."""
  paths, _, _ = list_images(root, split)
  if limit:
    paths = paths[:limit]
  ds = tf.data.Dataset.from_tensor_slices(paths)
  return ds.map(lambda p: (decode_rgb(p), p), num_parallel_calls=tf.data.AUTOTUNE)
