"""The follow-up's classification datasets: MINC-2500, RESISC45 and RSSCN7, for users who have them.

The follow-up work (shared/papers/004) classifies hyperprior latents of MINC-2500 (materials,
23 classes; split 1 as Deng & Karam 2021), RESISC45 (remote-sensing scenes, 45 classes) and
RSSCN7 (remote-sensing scenes, 7 classes). None of them can be downloaded by this package: each
loader reads a copy the user placed on disk and says, in one line, what to download and where
to put it when it is missing.

  MINC-2500  minc2500_source(root, split, partition=1): the archive as distributed
             (http://opensurfaces.cs.cornell.edu/publications/minc/, minc-2500.tar.gz), i.e.
             root/categories.txt, root/images/<category>/*.jpg and the split lists
             root/labels/{train,validate,test}<N>.txt. Labels index categories.txt.
  RESISC45   resisc45_source(split, root=None, data_dir=None): TensorFlow Datasets' `resisc45`
             (manual download; prepared once with `tfds build resisc45 --manual_dir=...`), or,
             with `root`, the extracted NWPU-RESISC45 folder of 45 class folders. tfds has one
             31,500-image split; train / validation / test are its first 60%, next 20% and last
             20% (the VTAB convention). The folder gets a seeded, per-class 60/20/20 split.
  RSSCN7     rsscn7_source(root, split): the 7 class folders (aGrass .. gParking, 400 images
             each) as distributed; a seeded, per-class 50/50 train/test split.
  any        image_folder_source(root, split): an ImageFolder split (root/split/<class>/*), e.g.
             the shared Imagenette, through the same interface.

Every loader returns a *source* with the interface of latent_store.ImageFolderSource (`classes`,
`count`, `digest`, `description`, `examples(start, stop)` -> (encoded image bytes, label, name)),
so `latent_store.encode_split` encodes any of them into a latent store, and `dataset()` gives
(uint8 image [H, W, 3], int64 label) for the RGB arms. Orders are fixed (sorted, then a seeded
permutation), so the same files give the same plan on every machine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Sequence

import numpy as np
import tensorflow as tf

from tfcdi.data import images as images_lib

# Seed of the example order of every source (the order a store is written in).
ORDER_SEED = 0


class DataMissingError(ValueError):
  """A dataset is not where it was looked for; the message says what to download and where."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What the loaders know of a dataset before reading it."""

  name: str
  title: str
  num_classes: int
  splits: tuple[str, ...]
  download: str  # where it comes from, for the missing-data message


MINC2500 = DatasetInfo(
    "minc2500", "MINC-2500", 23, ("train", "validate", "test"),
    "minc-2500.tar.gz from http://opensurfaces.cs.cornell.edu/publications/minc/")
RESISC45 = DatasetInfo(
    "resisc45", "RESISC45", 45, ("train", "validation", "test"),
    "NWPU-RESISC45.rar from https://1drv.ms/u/s!AmgKYzARBl5ca3HNaHIlzp_IXjs (the link tfds "
    "gives)")
RSSCN7 = DatasetInfo(
    "rsscn7", "RSSCN7", 7, ("train", "test"),
    "RSSCN7 from https://github.com/palewithout/RSSCN7 (the 7 class folders)")
DATASETS = {info.name: info for info in (MINC2500, RESISC45, RSSCN7)}

# Fractions of the seeded per-class splits of datasets that come without split lists.
RSSCN7_SPLITS = (("train", 0.5), ("test", 0.5))
RESISC45_SPLITS = (("train", 0.6), ("validation", 0.2), ("test", 0.2))


def _check_split(info: DatasetInfo, split: str, splits: Sequence[str] | None = None) -> None:
  splits = tuple(splits or info.splits)
  if split not in splits:
    raise ValueError(f"{info.title} has the splits {', '.join(splits)}; got {split!r}.")


# --- sources ----------------------------------------------------------------------------------


class FileListSource:
  """Labelled image files in a fixed order: a latent-store source and an RGB dataset.

  Attributes:
    classes: class names; labels index them.
    paths, labels: the files and their labels, in the source's order.
    count, digest, description: what latent_store.encode_split records of a source.
  """

  kind = "file_list"

  def __init__(self, dataset: str, split: str, root: str, paths: Sequence[str],
               labels: Sequence[int], classes: Sequence[str], *, seed: int = ORDER_SEED,
               limit: int = 0, options: dict | None = None):
    if not paths:
      raise DataMissingError(f"{dataset} split {split!r} under {root} has no images")
    self.dataset_name, self.split = dataset, split
    self.root = os.path.abspath(root)
    self.classes = list(classes)
    order = np.random.default_rng(seed).permutation(len(paths))
    if limit:
      order = order[:limit]
    self.paths = [os.path.abspath(paths[i]) for i in order]
    self.labels = [int(labels[i]) for i in order]
    self.count = len(self.paths)
    self.names = [os.path.relpath(p, self.root) for p in self.paths]
    digest = hashlib.sha256()
    for name, label in zip(self.names, self.labels):
      digest.update(f"{name}\t{label}\n".encode())
    self.digest = digest.hexdigest()[:16]
    self.description = {"kind": self.kind, "dataset": dataset, "root": self.root, "split": split,
                        "seed": seed, "limit": limit, **(options or {})}

  def examples(self, start: int, stop: int) -> tf.data.Dataset:
    """(encoded image bytes, int64 label, file name relative to the root) of entries."""
    ds = tf.data.Dataset.from_tensor_slices(
        (self.paths[start:stop], np.asarray(self.labels[start:stop], np.int64),
         self.names[start:stop]))
    return ds.map(lambda path, label, name: (tf.io.read_file(path), label, name),
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

  def dataset(self) -> tf.data.Dataset:
    """(uint8 RGB image [H, W, 3], int64 label) of every entry, in the source's order."""
    ds = tf.data.Dataset.from_tensor_slices(
        (self.paths, np.asarray(self.labels, np.int64)))
    return ds.map(lambda path, label: (images_lib.decode_rgb(path), label),
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


class TfdsRangeSource:
  """A contiguous range [begin, end) of one split of a prepared tfds dataset.

  tfds' own order (shuffled when the dataset was prepared) is kept, so the range is a fixed
  set of examples; images are read undecoded, as the latent store wants them.
  """

  kind = "tfds_range"

  def __init__(self, builder, tfds_split: str, split: str, begin: int, end: int,
               limit: int = 0):
    info = builder.info
    self._builder = builder
    self.tfds_split, self.split = tfds_split, split
    self.begin = begin
    self.end = min(end, begin + limit) if limit else end
    self.count = self.end - self.begin
    self.classes = list(info.features["label"].names)
    self._has_file_name = "filename" in info.features
    name = builder.name
    self.digest = hashlib.sha256(
        f"{name}\t{info.version}\t{tfds_split}[{self.begin}:{self.end}]".encode()).hexdigest()[:16]
    self.description = {"kind": self.kind, "name": name, "version": str(info.version),
                        "split": split, "tfds_split": f"{tfds_split}[{self.begin}:{self.end}]",
                        "data_dir": str(getattr(builder, "data_dir", None)), "limit": limit}

  def _read(self, start: int, stop: int, decode: bool) -> tf.data.Dataset:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (only this source)
    start, stop = self.begin + start, self.begin + min(stop, self.count)
    decoders = None if decode else {"image": tfds.decode.SkipDecoding()}
    return self._builder.as_dataset(split=f"{self.tfds_split}[{start}:{stop}]",
                                    decoders=decoders, shuffle_files=False)

  def examples(self, start: int, stop: int) -> tf.data.Dataset:
    """(encoded image bytes, int64 label, file name) of entries start..stop of the range."""
    has_name = self._has_file_name

    def fields(example):
      name = example["filename"] if has_name else tf.constant("")
      return example["image"], tf.cast(example["label"], tf.int64), name

    return self._read(start, stop, decode=False).map(fields)

  def dataset(self) -> tf.data.Dataset:
    """(uint8 RGB image [H, W, 3], int64 label) of the range, in tfds' order."""
    return self._read(0, self.count, decode=True).map(
        lambda example: (example["image"], tf.cast(example["label"], tf.int64)))


# --- splits -------------------------------------------------------------------------------------


def stratified_split(labels: Sequence[int], fractions: Sequence[tuple[str, float]], split: str,
                     seed: int) -> list[int]:
  """Indices of `split`: each class's items in a seeded random order, cut by `fractions`.

  Args:
    labels: one label per item, items in a fixed (e.g. sorted) order.
    fractions: (split name, fraction) pairs summing to 1; every class is cut at the rounded
      cumulative fractions, so every split gets its share of every class.
    split: the split whose indices to return.
    seed: the seed of the per-class orders.

  Returns:
    Sorted indices into `labels`.
  """
  names = [name for name, _ in fractions]
  if split not in names:
    raise ValueError(f"Unknown split {split!r}; expected one of {', '.join(names)}.")
  shares = np.asarray([share for _, share in fractions], np.float64)
  if np.any(shares <= 0) or not np.isclose(shares.sum(), 1.0):
    raise ValueError(f"Split fractions must be positive and sum to 1, got {list(fractions)}.")
  which = names.index(split)
  labels = np.asarray(labels)
  rng = np.random.default_rng(seed)
  chosen = []
  for label in np.unique(labels):
    members = np.flatnonzero(labels == label)
    members = members[rng.permutation(members.size)]
    cuts = np.rint(np.concatenate([[0.0], np.cumsum(shares)]) * members.size).astype(int)
    chosen.extend(members[cuts[which]:cuts[which + 1]].tolist())
  return sorted(chosen)


def _class_folders(root: str) -> tuple[list[str], list[int], list[str]]:
  """(paths, labels, classes) of root/<class>/<image>, sorted; no class folders -> empty."""
  classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
  paths, labels = [], []
  kept = []
  for name in classes:
    folder = os.path.join(root, name)
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith(images_lib.IMAGE_EXTENSIONS))
    if not files:
      continue
    label = len(kept)
    kept.append(name)
    paths.extend(os.path.join(folder, f) for f in files)
    labels.extend([label] * len(files))
  return paths, labels, kept


def _missing(info: DatasetInfo, where: str, expected: str) -> DataMissingError:
  return DataMissingError(f"{info.title} not found: {expected} does not exist; download "
                          f"{info.download} and extract it so that {where}.")


# --- MINC-2500 ----------------------------------------------------------------------------------


# MINC-2500 calls its validation lists validate<N>.txt; the other usual names are accepted.
_MINC_ALIASES = {"val": "validate", "validation": "validate"}


def minc2500_source(root: str, split: str = "train", *, partition: int = 1,
                    limit: int = 0) -> FileListSource:
  """MINC-2500 split `split` ("train", "validate" or "test") of partition `partition` (1..5).

  "val" and "validation" are accepted for "validate".

  The follow-up (like Deng & Karam 2021) uses partition 1: 2,125 / 125 / 250 images per class.
  Labels index categories.txt (23 categories, zero-indexed); a list entry may be relative to
  `root` ("images/brick/brick_001968.jpg", as distributed) or to root/images.

  Raises:
    DataMissingError: no MINC-2500 at `root`, or a listed file is missing.
    ValueError: an unknown split or partition.
  """
  info = MINC2500
  split = _MINC_ALIASES.get(split, split)
  _check_split(info, split)
  if partition not in (1, 2, 3, 4, 5):
    raise ValueError(f"MINC-2500 has the partitions 1..5; got {partition!r}.")
  list_file = os.path.join(root, "labels", f"{split}{partition}.txt")
  if not os.path.isfile(list_file):
    raise _missing(info, f"{list_file} exists", list_file)
  categories_file = os.path.join(root, "categories.txt")
  if os.path.isfile(categories_file):
    with open(categories_file) as f:
      classes = [line.strip() for line in f if line.strip()]
  else:
    images_dir = os.path.join(root, "images")
    if not os.path.isdir(images_dir):
      raise _missing(info, f"{categories_file} exists", categories_file)
    classes = sorted(d for d in os.listdir(images_dir)
                     if os.path.isdir(os.path.join(images_dir, d)))
  index = {name: i for i, name in enumerate(classes)}
  paths, labels = [], []
  with open(list_file) as f:
    entries = [line.strip() for line in f if line.strip()]
  for entry in entries:
    parts = entry.replace("\\", "/").split("/")
    relative = parts if parts[0] == "images" else ["images"] + parts
    if len(relative) != 3 or relative[1] not in index:
      raise DataMissingError(f"{list_file}: entry {entry!r} is not images/<category>/<file> "
                             f"with a category of {categories_file}")
    paths.append(os.path.join(root, *relative))
    labels.append(index[relative[1]])
  absent = [p for p in paths if not os.path.isfile(p)]
  if absent:
    raise DataMissingError(f"MINC-2500 incomplete: {len(absent)} of the {len(paths)} files of "
                           f"{list_file} are missing, e.g. {absent[0]}; extract all of "
                           f"{info.download} into {root}.")
  return FileListSource(info.name, split, root, paths, labels, classes, limit=limit,
                        options={"partition": partition})


# --- RSSCN7 -------------------------------------------------------------------------------------


def rsscn7_source(root: str, split: str = "train", *,
                  fractions: Sequence[tuple[str, float]] = RSSCN7_SPLITS, seed: int = 0,
                  limit: int = 0) -> FileListSource:
  """RSSCN7 split `split` of a seeded per-class split (50/50 train/test by default).

  `root` holds the 7 class folders (aGrass, bField, cIndustry, dRiverLake, eForest, fResident,
  gParking); class names are the folder names, labels their sorted order.

  Raises:
    DataMissingError: `root` does not exist or holds no class folders with images.
    ValueError: an unknown split, or fractions that do not sum to 1.
  """
  info = RSSCN7
  _check_split(info, split, [name for name, _ in fractions])
  return _folder_split_source(info, root, split, fractions, seed, limit,
                              f"{root}/<class>/*.jpg holds the {info.num_classes} class folders")


def _folder_split_source(info: DatasetInfo, root: str, split: str, fractions, seed: int,
                         limit: int, where: str) -> FileListSource:
  if not os.path.isdir(root):
    raise _missing(info, where, root)
  paths, labels, classes = _class_folders(root)
  if not paths:
    raise _missing(info, where, f"a class folder with images under {root}")
  chosen = stratified_split(labels, fractions, split, seed)
  return FileListSource(info.name, split, root, [paths[i] for i in chosen],
                        [labels[i] for i in chosen], classes, limit=limit,
                        options={"fractions": [list(f) for f in fractions], "split_seed": seed})


# --- RESISC45 -----------------------------------------------------------------------------------


def resisc45_source(split: str = "train", *, root: str | None = None, data_dir: str | None = None,
                    fractions: Sequence[tuple[str, float]] = RESISC45_SPLITS, seed: int = 0,
                    limit: int = 0, builder=None):
  """RESISC45 split `split` ("train", "validation", "test") from tfds or from a folder.

  Args:
    split: a name of `fractions`.
    root: the extracted NWPU-RESISC45 folder (45 class folders, or a folder holding
      NWPU-RESISC45/); if given, tfds is not used.
    data_dir: tfds' data_dir where `resisc45` is prepared (None: tfds' default).
    fractions: (split, fraction) pairs: contiguous ranges of tfds' single "train" split in
      tfds' order, or seeded per-class shares of the folder.
    seed: the seed of the folder's per-class split (tfds' order is fixed by tfds).
    limit: keep only the first `limit` examples (0: all).
    builder: a tfds builder to read instead of tfds.builder("resisc45", data_dir) (tests).

  Raises:
    DataMissingError: neither a prepared tfds dataset nor the folder.
  """
  info = RESISC45
  _check_split(info, split, [name for name, _ in fractions])
  if root is not None:
    nested = os.path.join(root, "NWPU-RESISC45")
    folder = nested if os.path.isdir(nested) else root
    return _folder_split_source(info, folder, split, fractions, seed, limit,
                                f"{root}/<class>/*.jpg holds the {info.num_classes} class folders")
  if builder is None:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (only this path)
    builder = tfds.builder("resisc45", data_dir=data_dir)
  if not builder.is_prepared():
    manual = os.path.join(data_dir or "~/tensorflow_datasets", "downloads", "manual")
    raise DataMissingError(
        f"RESISC45 is not prepared in tfds' data_dir {data_dir or '(default)'}: download "
        f"{info.download}, extract it into {manual} and run `tfds build resisc45 "
        f"--manual_dir={manual}`, or pass the extracted NWPU-RESISC45 folder as root.")
  total = builder.info.splits["train"].num_examples
  names = [name for name, _ in fractions]
  shares = np.asarray([share for _, share in fractions], np.float64)
  if np.any(shares <= 0) or not np.isclose(shares.sum(), 1.0):
    raise ValueError(f"Split fractions must be positive and sum to 1, got {list(fractions)}.")
  cuts = np.rint(np.concatenate([[0.0], np.cumsum(shares)]) * total).astype(int)
  which = names.index(split)
  return TfdsRangeSource(builder, "train", split, int(cuts[which]), int(cuts[which + 1]),
                         limit=limit)


# --- any ImageFolder ----------------------------------------------------------------------------


def image_folder_source(root: str, split: str, *, limit: int = 0) -> FileListSource:
  """An ImageFolder split (root/split/<class>/<image>, e.g. Imagenette) as a FileListSource."""
  base = os.path.join(root, split)
  if not os.path.isdir(base):
    raise DataMissingError(f"image folder {base} does not exist; pass the folder that holds "
                           f"{split}/<class>/<image> as root.")
  paths, classes, labels = images_lib.list_images(root, split)
  if not classes:
    raise DataMissingError(f"{base} has no class folders; expected {split}/<class>/<image>.")
  return FileListSource("image_folder", split, base, paths, labels, classes, limit=limit)


def get_source(dataset: str, split: str, *, root: str | None = None,
               data_dir: str | None = None, limit: int = 0):
  """The source of `dataset` ("minc2500", "resisc45", "rsscn7" or "image_folder") split `split`.

  `root` is the dataset's folder (required but for RESISC45 from tfds); `data_dir` is tfds'.
  """
  if dataset == "resisc45":
    return resisc45_source(split, root=root, data_dir=data_dir, limit=limit)
  loaders = {"minc2500": minc2500_source, "rsscn7": rsscn7_source,
             "image_folder": image_folder_source}
  if dataset not in loaders:
    raise ValueError(f"Unknown dataset {dataset!r}; expected one of "
                     f"{', '.join(list(DATASETS) + ['image_folder'])}.")
  if root is None:
    raise DataMissingError(f"{dataset} needs root= (the folder it was extracted to).")
  return loaders[dataset](root, split, limit=limit)
