"""The follow-up's data: the (y_hat, sigma_hat) geometry, and the MINC-2500 / RESISC45 / RSSCN7 loaders.

Every dataset here is a tiny fake tree of a few images in tmp_path; nothing is downloaded.
"""

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfcdi import nets
from tfcdi.data import classification_sets as sets
from tfcdi.data import latent_pairs
from tfcdi.data import latent_store

# --- the pair geometry --------------------------------------------------------------------------


def _position_coded(height, width, channels=3):
  """y_hat whose every value says where it is; sigma_hat the same plus 1000."""
  rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
  y_hat = np.repeat((rows * 100 + cols)[..., None], channels, axis=-1).astype(np.float32)
  return y_hat, y_hat + 1000.0


def _window(y_hat_out, size=32):
  """(top, left, flipped) of a crop of a position-coded 32 x 32 y_hat."""
  corner_left, corner_right = y_hat_out[0, 0, 0], y_hat_out[0, -1, 0]
  flipped = corner_right < corner_left
  first = min(corner_left, corner_right)
  top, left = int(first // 100), int(first % 100)
  crop = y_hat_out.shape[0]
  expected, _ = _position_coded(size, size, y_hat_out.shape[-1])
  expected = expected[top:top + crop, left:left + crop]
  np.testing.assert_array_equal(y_hat_out, expected[:, ::-1] if flipped else expected)
  return top, left, bool(flipped)


def test_followup_preset():
  geometry = latent_pairs.get_geometry("followup")
  assert (geometry.resize, geometry.crop, geometry.flip) == (32, 28, True)
  with pytest.raises(ValueError, match="crop <= resize"):
    latent_pairs.PairGeometry(resize=28, crop=32)
  with pytest.raises(ValueError, match="Unknown pair geometry"):
    latent_pairs.get_geometry("imagenet")


def test_one_crop_and_one_flip_for_both_tensors():
  y_hat, sigma_hat = _position_coded(32, 32)
  windows = set()
  for i in range(40):
    y_out, sigma_out = latent_pairs.augment_pair(y_hat, sigma_hat, "followup", seed=[7, i])
    y_out, sigma_out = y_out.numpy(), sigma_out.numpy()
    assert y_out.shape == sigma_out.shape == (28, 28, 3)
    # At 32 x 32 the resize is the identity, so each output is an exact window of its input,
    # and sigma_hat's window is y_hat's: the same offset and the same flip.
    np.testing.assert_array_equal(sigma_out - y_out, 1000.0)
    windows.add(_window(y_out))
  tops, lefts, flips = zip(*windows)
  assert set(tops) <= set(range(5)) and set(lefts) <= set(range(5))
  assert len(set(tops)) > 1 and len(set(lefts)) > 1 and set(flips) == {False, True}


def test_same_seed_same_view_and_center_crop():
  y_hat, sigma_hat = _position_coded(32, 32)
  first = latent_pairs.augment_pair(y_hat, sigma_hat, seed=[1, 2])
  again = latent_pairs.augment_pair(y_hat, sigma_hat, seed=[1, 2])
  np.testing.assert_array_equal(first[0], again[0])
  y_out, sigma_out = latent_pairs.center_pair(y_hat, sigma_hat)
  assert _window(y_out.numpy()) == (2, 2, False)
  np.testing.assert_array_equal(sigma_out - y_out, 1000.0)


@pytest.mark.parametrize("side", [16, 23, 40])
def test_any_latent_size_is_resized_to_32_then_cropped_to_28(side):
  rng = np.random.default_rng(side)
  y_hat = rng.normal(size=(side, side, 5)).astype(np.float32)
  sigma_hat = rng.uniform(0.1, 3.0, size=(side, side, 5)).astype(np.float32)
  y_out, sigma_out = latent_pairs.augment_pair(y_hat, sigma_hat, seed=[0, side])
  assert y_out.shape == sigma_out.shape == (28, 28, 5)
  # Each tensor is resized on its own channels: a constant sigma_hat stays constant.
  _, flat = latent_pairs.center_pair(y_hat, np.full_like(sigma_hat, 0.5))
  np.testing.assert_allclose(flat, 0.5, rtol=1e-6)


def test_mismatched_pairs_are_refused():
  with pytest.raises(ValueError, match="same shape"):
    latent_pairs.augment_pair(np.zeros((8, 8, 4)), np.zeros((8, 8, 5)), seed=[0, 0])
  with pytest.raises(ValueError, match=r"\[height, width, M\]"):
    latent_pairs.center_pair(np.zeros((8, 8)), np.zeros((8, 8)))


def _pairs(count=4, side=10, channels=8):
  rng = np.random.default_rng(0)
  y_hat = rng.normal(size=(count, side, side, channels)).astype(np.float32)
  sigma_hat = rng.uniform(0.1, 2.0, size=(count, side, side, channels)).astype(np.float32)
  return tf.data.Dataset.from_tensor_slices((y_hat, sigma_hat, np.arange(count, dtype=np.int64)))


def test_pair_dataset_feeds_the_two_branch_net():
  train = latent_pairs.pair_dataset(_pairs(), "tiny", training=True, seed=3)
  inputs, label = next(iter(train))
  assert set(inputs) == {"y_hat", "sigma_hat"} and int(label) == 0
  assert inputs["y_hat"].shape == inputs["sigma_hat"].shape == (6, 6, 8)
  model = nets.build_resnet("cresnet39", (None, None, 8), 4, width_multiplier=0.125,
                            input_branches="hyperprior")
  batch_inputs, labels = next(iter(train.batch(4)))
  assert model(batch_inputs).shape == (4, 4)
  assert labels.numpy().tolist() == [0, 1, 2, 3]
  evaluation = latent_pairs.pair_dataset(_pairs(), "tiny", training=False)
  first, second = (list(evaluation.as_numpy_iterator()) for _ in range(2))
  np.testing.assert_array_equal(first[0][0]["y_hat"], second[0][0]["y_hat"])


def test_training_views_are_seeded_and_change_every_epoch():
  def views(seed, epochs):
    ds = latent_pairs.pair_dataset(_pairs(count=3), "tiny", training=True, seed=seed)
    return [x["y_hat"] for x, _ in ds.repeat(epochs).as_numpy_iterator()]

  first, again = views(5, 2), views(5, 2)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a, b)
  assert any(not np.array_equal(a, b) for a, b in zip(first[:3], first[3:]))
  assert any(not np.array_equal(a, b) for a, b in zip(first, views(6, 2)))


# --- fake dataset trees -------------------------------------------------------------------------


def _write_image(path, seed, size=(20, 24)):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  pixels = np.random.default_rng(seed).integers(0, 256, size=size + (3,), dtype=np.uint8)
  Image.fromarray(pixels).save(path)


def _class_tree(root, classes, per_class, ext=".png"):
  for c, name in enumerate(classes):
    for i in range(per_class):
      _write_image(os.path.join(root, name, f"{name}_{i:03d}{ext}"), 100 * c + i)


MINC_CATEGORIES = ["brick", "wood", "carpet"]  # categories.txt's order, not sorted


@pytest.fixture(name="minc_root")
def fixture_minc_root(tmp_path):
  root = tmp_path / "minc-2500"
  _class_tree(str(root / "images"), MINC_CATEGORIES, 4, ext=".jpg")
  (root / "categories.txt").write_text("\n".join(MINC_CATEGORIES) + "\n")
  (root / "labels").mkdir()
  lists = {"train": [0, 1], "validate": [2], "test": [3]}
  for split, indices in lists.items():
    lines = [f"images/{c}/{c}_{i:03d}.jpg" for c in MINC_CATEGORIES for i in indices]
    (root / "labels" / f"{split}1.txt").write_text("\n".join(lines) + "\n")
  # Partition 2 lists its files relative to images/, as some copies do.
  (root / "labels" / "train2.txt").write_text("wood/wood_003.jpg\nbrick/brick_000.jpg\n")
  return str(root)


def test_minc2500_split_lists_and_categories(minc_root):
  train = sets.minc2500_source(minc_root, "train")
  assert train.classes == MINC_CATEGORIES
  assert train.count == 6
  assert sorted(zip(train.names, train.labels)) == sorted(
      (os.path.join("images", c, f"{c}_{i:03d}.jpg"), label)
      for label, c in enumerate(MINC_CATEGORIES) for i in (0, 1))
  assert sets.minc2500_source(minc_root, "val").count == 3
  assert sets.minc2500_source(minc_root, "test").count == 3
  second = sets.minc2500_source(minc_root, "train", partition=2)
  assert sorted(zip(second.names, second.labels)) == [
      (os.path.join("images", "brick", "brick_000.jpg"), 0),
      (os.path.join("images", "wood", "wood_003.jpg"), 1)]
  # The same files give the same order and digest.
  assert sets.minc2500_source(minc_root, "train").digest == train.digest
  images = list(train.dataset().as_numpy_iterator())
  assert len(images) == 6 and images[0][0].shape == (20, 24, 3)
  assert images[0][0].dtype == np.uint8 and images[0][1] == train.labels[0]


def test_minc2500_missing_data_says_what_to_download(tmp_path, minc_root):
  with pytest.raises(sets.DataMissingError) as error:
    sets.minc2500_source(str(tmp_path / "nowhere"), "train")
  message = str(error.value)
  assert "\n" not in message
  assert "minc-2500.tar.gz" in message and "labels/train1.txt" in message
  os.remove(os.path.join(minc_root, "images", "wood", "wood_001.jpg"))
  with pytest.raises(sets.DataMissingError, match="1 of the 6 files"):
    sets.minc2500_source(minc_root, "train")
  with pytest.raises(ValueError, match="partitions 1..5"):
    sets.minc2500_source(minc_root, "train", partition=6)
  with pytest.raises(ValueError, match="splits train, validate, test"):
    sets.minc2500_source(minc_root, "holdout")


RSSCN7_CLASSES = ["aGrass", "bField", "cIndustry"]


def test_rsscn7_seeded_per_class_split(tmp_path):
  root = str(tmp_path / "RSSCN7-master")
  _class_tree(root, RSSCN7_CLASSES, 6, ext=".jpg")
  train = sets.rsscn7_source(root, "train")
  test = sets.rsscn7_source(root, "test")
  assert train.classes == RSSCN7_CLASSES and train.count == test.count == 9
  assert not set(train.paths) & set(test.paths)
  assert np.bincount(train.labels).tolist() == [3, 3, 3]
  assert sets.rsscn7_source(root, "train").paths == train.paths
  other = sets.rsscn7_source(root, "train", seed=1)
  assert set(other.paths) != set(train.paths)
  assert sets.rsscn7_source(root, "train", limit=4).count == 4
  with pytest.raises(sets.DataMissingError) as error:
    sets.rsscn7_source(str(tmp_path / "missing"), "train")
  assert "RSSCN7" in str(error.value) and "download" in str(error.value)
  assert "\n" not in str(error.value)


def test_stratified_split_partitions_every_class():
  labels = [0] * 10 + [1] * 5 + [2] * 7
  fractions = sets.RESISC45_SPLITS
  parts = {name: sets.stratified_split(labels, fractions, name, seed=0) for name, _ in fractions}
  assert sorted(sum(parts.values(), [])) == list(range(len(labels)))
  assert [np.bincount(np.asarray(labels)[parts["train"]]).tolist()] == [[6, 3, 4]]
  with pytest.raises(ValueError, match="sum to 1"):
    sets.stratified_split(labels, (("train", 0.5), ("test", 0.4)), "train", seed=0)


def test_resisc45_from_the_extracted_folder(tmp_path):
  _class_tree(str(tmp_path / "NWPU-RESISC45"), ["airplane", "beach"], 5, ext=".jpg")
  counts = {split: sets.resisc45_source(split, root=str(tmp_path)).count
            for split in ("train", "validation", "test")}
  assert counts == {"train": 6, "validation": 2, "test": 2}


class _FakeBuilder:
  """What the RESISC45 loader uses of a tfds builder: info, is_prepared, as_dataset."""

  name = "resisc45"
  data_dir = "/fake"

  def __init__(self, count=10, prepared=True):
    self.prepared = prepared
    self.count = count
    names = ["airplane", "airport", "beach"]
    labels = np.arange(count) % len(names)
    self._images = [tf.io.encode_png(np.full((8, 8, 3), i, np.uint8)).numpy()
                    for i in range(count)]
    self._labels = labels.astype(np.int64)
    self.info = type("Info", (), {
        "splits": {"train": type("Split", (), {"num_examples": count})()},
        "features": {"label": type("Label", (), {"names": names})(), "filename": None,
                     "image": None},
        "version": "3.0.0"})()
    self.reads = []

  def is_prepared(self):
    return self.prepared

  def as_dataset(self, split, decoders=None, shuffle_files=False):
    assert not shuffle_files
    self.reads.append(split)
    start, stop = (int(v) for v in split[len("train["):-1].split(":"))
    images = self._images[start:stop]
    ds = tf.data.Dataset.from_tensor_slices({
        "image": images, "label": self._labels[start:stop],
        "filename": [f"img_{i}.jpg" for i in range(start, stop)]})
    if decoders is None:
      ds = ds.map(lambda ex: {**ex, "image": tf.io.decode_png(ex["image"], channels=3)})
    return ds


def test_resisc45_from_tfds_is_three_contiguous_ranges():
  builder = _FakeBuilder(count=10)
  ranges = {}
  for split in ("train", "validation", "test"):
    source = sets.resisc45_source(split, builder=builder)
    ranges[split] = (source.begin, source.end)
    assert source.classes == ["airplane", "airport", "beach"]
  assert ranges == {"train": (0, 6), "validation": (6, 8), "test": (8, 10)}
  validation = sets.resisc45_source("validation", builder=builder)
  examples = list(validation.examples(0, 2).as_numpy_iterator())
  assert [name for _, _, name in examples] == [b"img_6.jpg", b"img_7.jpg"]
  assert [label for _, label, _ in examples] == [0, 1]
  assert tf.io.decode_png(examples[0][0]).numpy()[0, 0, 0] == 6
  assert builder.reads[-1] == "train[6:8]"
  images = list(validation.dataset().as_numpy_iterator())
  assert images[1][0].shape == (8, 8, 3) and images[1][0][0, 0, 0] == 7


def test_resisc45_not_prepared_says_how_to_prepare():
  with pytest.raises(sets.DataMissingError) as error:
    sets.resisc45_source("train", data_dir="/data/tfds", builder=_FakeBuilder(prepared=False))
  message = str(error.value)
  assert "\n" not in message
  assert "NWPU-RESISC45.rar" in message and "tfds build resisc45" in message
  assert "/data/tfds/downloads/manual" in message


def test_get_source_dispatches(tmp_path, minc_root):
  assert sets.get_source("minc2500", "test", root=minc_root).count == 3
  with pytest.raises(ValueError, match="Unknown dataset"):
    sets.get_source("imagenet", "train", root=minc_root)
  with pytest.raises(sets.DataMissingError, match="root="):
    sets.get_source("rsscn7", "train")
  folder = tmp_path / "folder"
  _class_tree(str(folder / "val"), ["n01", "n02"], 2)
  source = sets.get_source("image_folder", "val", root=str(folder))
  assert source.classes == ["n01", "n02"] and source.count == 4


def test_a_source_encodes_into_a_latent_store(tmp_path, tiny_codec):
  root = str(tmp_path / "RSSCN7-master")
  _class_tree(root, RSSCN7_CLASSES, 2, ext=".jpg")
  source = sets.rsscn7_source(root, "test")
  store = str(tmp_path / "store")
  entry = latent_store.encode_split(source, tiny_codec, store, "test", image_size=32,
                                    shard_size=2, batch_size=2, progress=False)
  assert entry["count"] == 3 and entry["complete"]
  latents = list(latent_store.latent_dataset(store, "test").as_numpy_iterator())
  assert len(latents) == 3 and latents[0][0].shape[:2] == (4, 4)
  assert sorted(int(label) for _, label in latents) == sorted(source.labels)


@pytest.mark.parametrize("shape, crop, top, left", [((8, 8, 2), 6, 1, 1), ((9, 12, 1), 5, 2, 3),
                                                    ((3, 10, 10, 2), 7, 1, 1)])
def test_central_crop_takes_the_middle_window(shape, crop, top, left):
  x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
  out = latent_pairs.central_crop(tf.constant(x), crop).numpy()
  np.testing.assert_array_equal(out, x[..., top:top + crop, left:left + crop, :])
