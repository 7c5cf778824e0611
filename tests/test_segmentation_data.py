"""Segmentation data: pairing and checking files, joint crops that keep labels aligned, stores."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfcdi.data import segmentation as seg

CAMVID = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "camvid")
needs_camvid = pytest.mark.skipif(not os.path.isdir(CAMVID),
                                  reason="the shared CamVid is not beside the repo")


def _write_pair(root, split, name, image_size, label, palette=False):
  os.makedirs(os.path.join(root, split, "images"), exist_ok=True)
  os.makedirs(os.path.join(root, split, "labels"), exist_ok=True)
  Image.fromarray(np.full((*image_size, 3), 100, np.uint8)).save(
      os.path.join(root, split, "images", f"{name}.jpg"))
  label_image = Image.fromarray(np.asarray(label, np.uint8))
  if palette:
    label_image = label_image.convert("P")
    label_image.putpalette(np.random.default_rng(0).integers(0, 256, 768).tolist())
  label_image.save(os.path.join(root, split, "labels", f"{name}.png"))


@needs_camvid
def test_camvid_reader_pairs_real_files_by_name():
  source = seg.camvid_source(CAMVID, "val", limit=3)
  assert len(source) == 3 and source.info.num_classes == 11 and source.info.ignore_label == 11
  items = list(source.dataset().as_numpy_iterator())
  assert [i["name"].decode() for i in items] == list(source.names)
  for item in items:
    assert item["image"].shape == (360, 480, 3) and item["image"].dtype == np.uint8
    assert item["label"].shape == (360, 480)
    values = np.unique(item["label"])
    assert np.all((values < 11) | (values == 11))
    # The same pixels as the PNG on disk, not a re-rendered version of it.
    on_disk = np.asarray(Image.open(
        os.path.join(CAMVID, "val", "labels", item["name"].decode() + ".png")))
    np.testing.assert_array_equal(item["label"], on_disk)
  np.testing.assert_array_equal(source.original_image(source.names[0]), items[0]["image"])


def test_a_label_of_another_size_is_a_value_error_naming_the_file(tmp_path):
  _write_pair(tmp_path, "train", "a", (16, 24), np.zeros((16, 24)))
  _write_pair(tmp_path, "train", "b", (16, 24), np.zeros((16, 23)))
  with pytest.raises(ValueError,
                     match=r"b\.jpg is 16x24 \(HxW\) but its label .*b\.png is 16x23"):
    seg.camvid_source(str(tmp_path), "train")


def test_a_label_outside_the_classes_is_a_value_error_naming_the_file(tmp_path):
  label = np.zeros((8, 8))
  label[2, 3] = 13  # neither a CamVid class (0..10) nor its ignore label (11)
  _write_pair(tmp_path, "train", "bad", (8, 8), label)
  with pytest.raises(ValueError, match=r"bad\.png has label value\(s\) \[13\]"):
    seg.camvid_source(str(tmp_path), "train")
  # Unchecked at construction, the graph check still stops the pipeline with a ValueError.
  source = seg.folder_source(str(tmp_path), "train", check_values=False)
  with pytest.raises(seg.SegmentationDataError, match="label values outside"):
    with seg.raise_data_errors():
      list(source.dataset())


def test_an_image_without_label_is_a_value_error(tmp_path):
  _write_pair(tmp_path, "train", "a", (8, 8), np.zeros((8, 8)))
  os.remove(os.path.join(tmp_path, "train", "labels", "a.png"))
  with pytest.raises(ValueError, match=r"a\.jpg has no label"):
    seg.camvid_source(str(tmp_path), "train")


def test_voc_devkit_palette_labels_keep_their_class_indices(tmp_path):
  root = tmp_path / "VOC2012"
  for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
    os.makedirs(root / folder)
  label = np.zeros((10, 12), np.uint8)
  label[2:5, 3:9] = 15  # person
  label[0, :] = 255  # void boundary
  image = Image.fromarray(np.full((10, 12, 3), 50, np.uint8))
  image.save(root / "JPEGImages" / "2007_000032.jpg")
  palette_label = Image.fromarray(label, mode="L").convert("P")
  palette_label.putpalette([c for colour in seg.VOC.colour_table() for c in colour])
  palette_label.save(root / "SegmentationClass" / "2007_000032.png")
  (root / "ImageSets/Segmentation/val.txt").write_text("2007_000032\n")
  source = seg.voc_devkit_source(str(root), "val", check_values=True)
  item = next(source.dataset().as_numpy_iterator())
  np.testing.assert_array_equal(item["label"], label)
  with pytest.raises(ValueError, match="SBD"):
    seg.voc_devkit_source(str(root), "train_aug")


def test_tfds_voc_is_constructed_without_download_and_explains_it_has_no_masks(tmp_path):
  with pytest.raises(seg.SegmentationDataError, match="voc_devkit_source"):
    seg.tfds_source("voc/2012", "train", data_dir=str(tmp_path))
  example = {"image": tf.zeros([4, 6, 3], tf.uint8),
             "segmentation_mask": tf.fill([4, 6, 1], tf.constant(255, tf.uint8))}
  pair = seg.tfds_example_to_pair(example, seg.VOC, "segmentation_mask")
  assert pair["label"].shape == (4, 6) and int(pair["label"][0, 0]) == 255


def _coordinate_image(height, width):
  rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
  # Channels hold (row + 1, col + 1), so the zero padding is told apart from pixel (0, 0).
  image = np.stack([rows + 1, cols + 1], axis=-1).astype(np.float32)
  label = (1000 * rows + cols).astype(np.int32)
  return image, label


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("size,crop", [((20, 30), 8), ((6, 9), 10)])
def test_joint_crop_keeps_image_and_label_aligned(seed, size, crop):
  image, label = _coordinate_image(*size)
  out, out_label = seg.joint_random_crop(tf.constant(image), tf.constant(label), crop, 1, -1,
                                         seed=tf.constant([seed, 7]))
  out, out_label = out.numpy(), out_label.numpy()
  assert out.shape == (crop, crop, 2) and out_label.shape == (crop, crop)
  real = out[..., 0] > 0
  assert np.all(out_label[~real] == -1) and np.all(out[~real] == 0)
  np.testing.assert_array_equal(out_label[real], 1000 * (out[..., 0][real] - 1)
                                + (out[..., 1][real] - 1))


@pytest.mark.parametrize("seed", range(6))
def test_latent_crop_takes_the_eight_times_larger_label_crop(seed):
  latent, _ = _coordinate_image(5, 7)  # a 5x7 latent of a 37x56 image
  _, label = _coordinate_image(37, 56)
  padded = seg.pad_label_to_grid(tf.constant(label), (5, 7), 8, -1)
  assert padded.shape == (40, 56) and np.all(padded.numpy()[37:] == -1)
  out, out_label = seg.joint_random_crop(tf.constant(latent), padded, 3, 8, -1,
                                         seed=tf.constant([seed, 1]))
  out, out_label = out.numpy(), out_label.numpy()
  assert out.shape == (3, 3, 2) and out_label.shape == (24, 24)
  for a in range(3):
    for b in range(3):
      block = out_label[8 * a:8 * a + 8, 8 * b:8 * b + 8]
      known = block >= 0
      # Every label pixel of the block lies in the image block under latent pixel (a, b).
      assert known.any()
      assert np.all(block[known] // 1000 // 8 == out[a, b, 0] - 1)
      assert np.all(block[known] % 1000 // 8 == out[a, b, 1] - 1)


def test_a_label_that_does_not_fit_the_latent_grid_is_refused():
  with pytest.raises(seg.SegmentationDataError, match="does not fit"):
    with seg.raise_data_errors():
      tf.data.Dataset.from_tensors(tf.zeros([30, 56], tf.int32)).map(
          lambda label: seg.pad_label_to_grid(label, (5, 7), 8, 11)).get_single_element()


def test_channel_mean_is_weighted_by_pixels():
  ds = tf.data.Dataset.from_generator(
      lambda: iter([{"image": np.full((2, 2, 3), 1.0)}, {"image": np.full((4, 2, 3), 4.0)}]),
      output_signature={"image": tf.TensorSpec([None, None, 3], tf.float64)})
  assert seg.compute_channel_mean(ds, "image") == pytest.approx([3.0, 3.0, 3.0])


@needs_camvid
def test_latent_store_holds_real_tfci_files_and_full_resolution_labels(tmp_path, tiny_codec):
  from tfcdi.codec import coding  # pylint: disable=g-import-not-at-top
  source = seg.camvid_source(CAMVID, "val", limit=2)
  paths = seg.ensure_stores(source, tiny_codec, str(tmp_path), decoded=True, limit=2,
                            log=None)
  latents = list(seg.latent_store_dataset(paths["latent"], tiny_codec, seg.CAMVID)
                 .as_numpy_iterator())
  originals = list(source.dataset().as_numpy_iterator())
  assert len(latents) == 2
  for item, original in zip(latents, originals):
    assert item["latent"].shape == (45, 60, tiny_codec.channels)
    np.testing.assert_array_equal(item["label"], original["label"])
  # The store's bytes are .tfci files: the same as compressing the image now.
  record = next(iter(tf.data.TFRecordDataset(paths["latent"])))
  features = seg._LATENT_FEATURES  # pylint: disable=protected-access
  parsed = tf.io.parse_single_example(record, features)
  data = parsed["tfci"].numpy()
  assert data == coding.compress_image(tiny_codec, originals[0]["image"])
  _, symbols = coding.read_symbols(data, tiny_codec)
  np.testing.assert_allclose(latents[0]["latent"],
                             tiny_codec.model.latent(symbols).numpy())
  with open(paths["summary"]) as f:
    summary = json.load(f)
  assert summary["images"] == 2 and summary["tfci_bytes"] > 0
  decoded = list(seg.decoded_store_dataset(paths["decoded"], seg.CAMVID).as_numpy_iterator())
  assert decoded[0]["image"].shape == (360, 480, 3)
  np.testing.assert_array_equal(decoded[0]["image"], coding.decompress_bytes(data, tiny_codec))


def test_two_writers_of_one_cache_file_do_not_collide(tmp_path):
  # Two segmenters of one operating point may fill the same shared cache at once: a writer that
  # finishes while another is still writing must not take the other's temporary file.
  path = str(tmp_path / "cache.tfrecord")

  def records(interleave):
    for i in range(3):
      if interleave and i == 1:
        assert seg._write_records(path, records(False)) == 3  # pylint: disable=protected-access
      yield {"value": i}

  assert seg._write_records(path, records(True)) == 3  # pylint: disable=protected-access
  assert os.listdir(tmp_path) == ["cache.tfrecord"]


def _damage(path, where):
  """Flips one byte of a file: `where` is a fraction of its length."""
  with open(path, "r+b") as f:
    data = bytearray(f.read())
    data[int(len(data) * where)] ^= 0xFF
    f.seek(0)
    f.write(data)


@pytest.mark.parametrize("damage", ["flip_header", "flip_payload", "truncate"])
def test_a_damaged_store_is_found_before_training(tmp_path, damage):
  path = str(tmp_path / "store.tfrecord")
  seg._write_records(path, ({"value": i, "blob": b"x" * 100} for i in range(20)))  # pylint: disable=protected-access
  assert seg.store_is_intact(path)
  if damage == "truncate":
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) - 7)
  else:
    _damage(path, 0.005 if damage == "flip_header" else 0.6)
  assert not seg.store_is_intact(path)
  # Read anyway (damaged after the check), it is one SegmentationDataError, not a DataLossError.
  with pytest.raises(seg.SegmentationDataError, match="damaged"):
    with seg.raise_data_errors():
      for _ in tf.data.TFRecordDataset(path):
        pass


@needs_camvid
def test_ensure_stores_rebuilds_a_damaged_store(tmp_path, tiny_codec):
  source = seg.camvid_source(CAMVID, "val", limit=1)
  paths = seg.ensure_stores(source, tiny_codec, str(tmp_path), decoded=True, limit=1, log=None)
  with open(paths["latent"], "rb") as f:
    good = f.read()
  _damage(paths["latent"], 0.5)
  notes = []
  again = seg.ensure_stores(source, tiny_codec, str(tmp_path), decoded=True, limit=1,
                            log=notes.append)
  assert again == paths
  assert any("damaged" in note for note in notes)
  with open(paths["latent"], "rb") as f:
    assert f.read() == good
  assert seg.store_is_intact(paths["decoded"])
