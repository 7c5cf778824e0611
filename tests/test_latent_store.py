"""The latent store: real .tfci files of real Imagenette images, read back as latents or RGB.

A tiny random codec and 64-pixel views (8 x 8 latents) keep every test to seconds.
"""

import json
import os

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest
import tensorflow as tf

from experiments import encode_dataset
from tfcdi.codec import bitstream
from tfcdi.codec import coding
from tfcdi.codec import pretrained
from tfcdi.data import imagenet_classes
from tfcdi.data import images as images_lib
from tfcdi.data import latent_store
from tfcdi.data import rgb_arms

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
IMAGENETTE = os.path.join(DATA, "imagenette2_224")
LABELS_TSV = os.path.join(DATA, "imagenet_samples", "labels.tsv")
SIZE = 64  # the square view; its latent is 8 x 8

pytestmark = pytest.mark.skipif(not os.path.isdir(IMAGENETTE),
                                reason="the shared Imagenette is not beside the repo")


def _encode(codec, store_dir, split="train", limit=6, shard_size=4):
  source = latent_store.ImageFolderSource(IMAGENETTE, split, limit=limit)
  entry = latent_store.encode_split(source, codec, str(store_dir), split, image_size=SIZE,
                                    shard_size=shard_size, batch_size=4, progress=False)
  return source, entry


@pytest.fixture(scope="module", name="store")
def fixture_store(tmp_path_factory, tiny_codec):
  store_dir = tmp_path_factory.mktemp("store")
  source, _ = _encode(tiny_codec, store_dir)
  return str(store_dir), source


def _records(store_dir, split="train"):
  files = latent_store.shard_files(store_dir, split)
  return [latent_store.parse_example(r) for r in tf.data.TFRecordDataset(files)]


def _view(path):
  return latent_store.square_view(images_lib.decode_rgb(path), SIZE).numpy()


def test_store_holds_the_real_tfci_file_of_each_view(store, tiny_codec):
  store_dir, source = store
  records = _records(store_dir)
  assert [r["filename"].numpy().decode() for r in records] == [
      os.path.relpath(p, os.path.join(IMAGENETTE, "train")) for p in source.paths]
  for record, path, label in zip(records, source.paths, source.labels):
    data = record["tfci"].numpy()
    # Byte for byte what compressing the view as a file gives.
    assert data == coding.compress_image(tiny_codec, _view(path))
    header = bitstream.parse_header(data)
    assert header.image_size == (SIZE, SIZE) and header.latent_shape == (8, 8, 8)
    assert int(record["label"]) == label
    assert record["wnid"].numpy().decode() == source.classes[label]
    assert int(record["source_bytes"]) == os.path.getsize(path)


def test_records_list_their_features_in_sorted_order_so_every_process_writes_the_same_bytes(
    store):
  # protobuf writes a map in an order seeded per process unless asked to sort its keys.
  store_dir, _ = store
  for raw in tf.data.TFRecordDataset(latent_store.shard_files(store_dir, "train")):
    raw = raw.numpy()
    positions = [raw.index(key) for key in (b"filename", b"label", b"source_bytes", b"tfci",
                                            b"wnid")]
    assert positions == sorted(positions)


def test_metadata_reports_codec_classes_and_sizes(store, tiny_codec):
  store_dir, source = store
  meta = latent_store.read_metadata(store_dir)
  assert meta["codec"]["name"] == "tiny"
  assert meta["codec"]["fingerprint"] == tiny_codec.fingerprint.hex()
  assert meta["codec"]["operating_point"] == "0.0983"
  assert meta["image_size"] == SIZE and meta["latent_shape"] == [8, 8, 8]
  assert meta["classes"] == sorted(imagenet_classes.IMAGENETTE)
  entry = meta["splits"]["train"]
  assert entry["complete"] and entry["count"] == 6 and entry["num_shards"] == 2
  assert entry["source_bytes"] == sum(os.path.getsize(p) for p in source.paths)
  files = latent_store.shard_files(store_dir, "train")
  assert entry["store_bytes"] == sum(os.path.getsize(f) for f in files)
  assert entry["ratio"] == pytest.approx(entry["source_bytes"] / entry["store_bytes"])
  assert meta["totals"]["count"] == 6
  lines = latent_store.size_report(meta, {"original": 144, "at_0.635_bpp": 24.8, "ratio": 5.8})
  assert lines[0].startswith("train: 6 images, source ")
  assert lines[-1] == "published (ImageNet, 0.635 bpp): 144 GB -> 24.8 GB, ratio 5.8x"


def test_reader_yields_latents_whose_symbols_are_the_codecs_encoding(store, tiny_codec):
  store_dir, source = store
  symbols = list(latent_store.latent_dataset(store_dir, "train", output="symbols"))
  latents = list(latent_store.latent_dataset(store_dir, "train", codec=tiny_codec))
  centers = tiny_codec.model.quantizer.centers.numpy()
  assert len(latents) == 6
  for (s, label), (z, label2), path, expected_label in zip(symbols, latents, source.paths,
                                                           source.labels):
    assert z.shape == (8, 8, 8) and z.dtype == tf.float32 and s.dtype == tf.int32
    expected = tiny_codec.model.encode(_view(path)[None].astype(np.float32))[0].numpy()
    np.testing.assert_array_equal(s.numpy(), expected)
    np.testing.assert_array_equal(z.numpy(), centers[expected])
    assert int(label) == int(label2) == expected_label


def test_shuffled_reading_is_seeded_and_skip_resumes_it(store):
  store_dir, _ = store

  def labels_and_sums(**kwargs):
    return [(int(y), float(tf.reduce_sum(z))) for z, y in
            latent_store.latent_dataset(store_dir, "train", shuffle=True, **kwargs)]

  first = labels_and_sums(seed=5)
  assert first == labels_and_sums(seed=5)
  assert first[2:] == labels_and_sums(seed=5, skip=2)
  assert sorted(first) == sorted(labels_and_sums(seed=6))


def test_another_codec_is_refused(store, tmp_path, make_tiny_codec):
  store_dir, _ = store
  make_tiny_codec(tmp_path / "other.npz", name="other")
  other = pretrained.load_codec(path=str(tmp_path / "other.npz"))
  with pytest.raises(latent_store.StoreError, match="made by codec 'tiny'"):
    latent_store.latent_dataset(store_dir, "train", codec=other)
  with pytest.raises(latent_store.StoreError, match="made by codec 'tiny'"):
    _encode(other, store_dir, split="val")


def test_resume_skips_finished_shards(tmp_path, tiny_codec):
  _, entry = _encode(tiny_codec, tmp_path, limit=6, shard_size=4)
  first, second = latent_store.shard_files(str(tmp_path), "train")
  with open(second, "rb") as f:
    second_bytes = f.read()
  # An interrupted run: the second shard never got its final name, a temporary file lingers.
  os.replace(second, second + ".123.tmp")
  meta_path = tmp_path / latent_store.METADATA_FILE
  meta = json.loads(meta_path.read_text())
  meta["splits"]["train"]["complete"] = False
  meta_path.write_text(json.dumps(meta))
  with pytest.raises(latent_store.StoreError, match="incomplete"):
    latent_store.latent_dataset(str(tmp_path), "train")
  first_stat = os.stat(first)

  _, resumed = _encode(tiny_codec, tmp_path, limit=6, shard_size=4)
  assert os.stat(first).st_mtime_ns == first_stat.st_mtime_ns  # not rewritten
  with open(second, "rb") as f:
    assert f.read() == second_bytes
  assert resumed["complete"] and resumed["store_bytes"] == entry["store_bytes"]
  # Another plan for the same split (here: more images) would mix two encodings.
  with pytest.raises(latent_store.StoreError, match="different 'train' split"):
    _encode(tiny_codec, tmp_path, limit=7, shard_size=4)


def test_decoded_arm_reads_the_decoders_reconstructions_once_cached(store, tiny_codec):
  store_dir, source = store
  with pytest.raises(latent_store.StoreError, match="decoded cache"):
    rgb_arms.decoded_dataset(store_dir, "train")
  rgb_arms.build_decoded_cache(store_dir, "train", tiny_codec, progress=False)
  cache = sorted(os.listdir(rgb_arms.decoded_cache_dir(store_dir)))
  stats = [os.stat(os.path.join(rgb_arms.decoded_cache_dir(store_dir), f)) for f in cache]
  rgb_arms.build_decoded_cache(store_dir, "train", tiny_codec, progress=False)  # resumes
  assert [os.stat(os.path.join(rgb_arms.decoded_cache_dir(store_dir), f)).st_mtime_ns
          for f in cache] == [s.st_mtime_ns for s in stats]

  decoded = list(rgb_arms.decoded_dataset(store_dir, "train"))
  records = _records(store_dir)
  assert len(decoded) == 6
  for (image, label), record in zip(decoded, records):
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == tf.uint8
    np.testing.assert_array_equal(image.numpy(),
                                  coding.decompress_bytes(record["tfci"].numpy(), tiny_codec))
    assert int(label) == int(record["label"])
  # Same seed, same order as the latent arm: both arms see the same examples.
  latent_labels = [int(y) for _, y in latent_store.latent_dataset(store_dir, "train",
                                                                   shuffle=True, seed=3)]
  decoded_labels = [int(y) for _, y in rgb_arms.decoded_dataset(store_dir, "train",
                                                                shuffle=True, seed=3)]
  assert latent_labels == decoded_labels


def test_original_arm_has_the_stores_geometry():
  ds = rgb_arms.original_dataset(IMAGENETTE, "val", image_size=SIZE)
  image, label = next(iter(ds))
  paths, classes, labels = images_lib.list_images(IMAGENETTE, "val")
  assert image.shape == (SIZE, SIZE, 3) and image.dtype == tf.uint8
  np.testing.assert_array_equal(image.numpy(), _view(paths[0]))
  assert int(label) == labels[0] and rgb_arms.original_classes(IMAGENETTE, "val") == classes


def test_square_view_keeps_the_central_square_of_the_shorter_side():
  # 375 x 500 with a left-to-right ramp: the view is the middle 375 columns, resized to 256.
  ramp = np.tile(np.linspace(0, 255, 500), (375, 1))
  image = np.stack([ramp] * 3, axis=-1).round().astype(np.uint8)
  view = latent_store.square_view(image, 256).numpy()
  assert view.shape == (256, 256, 3) and view.dtype == np.uint8
  expected_left = 255 * (500 - 375) / 2 / 499
  assert abs(int(view[128, 0, 0]) - expected_left) <= 2
  assert abs(int(view[128, -1, 0]) - (255 - expected_left)) <= 2


def test_codec_tables_come_from_the_bundle_without_building_the_model(tiny_codec,
                                                                      tiny_codec_path):
  tables = latent_store.load_codec_tables(tiny_codec_path)
  expected = latent_store.CodecTables.from_codec(tiny_codec)
  assert tables.same_codec(expected) and tables.channels == expected.channels == 8
  np.testing.assert_array_equal(tables.centers, expected.centers)
  np.testing.assert_array_equal(tables.frequencies, expected.frequencies)
  again = latent_store.CodecTables.from_json(json.loads(json.dumps(tables.to_json())))
  np.testing.assert_array_equal(again.centers, tables.centers)


def test_tfds_source_that_is_not_prepared_is_refused(tmp_path):
  with pytest.raises(latent_store.StoreError, match="not available"):
    latent_store.TfdsSource("imagenet2012", "train", data_dir=str(tmp_path))


def test_imagenet_class_names():
  assert imagenet_classes.class_names(["n01440764", "n03888257", "n99999999"]) == [
      "tench", "parachute", "n99999999"]
  assert imagenet_classes.class_names(["n01601694"], LABELS_TSV) == ["water ouzel"]
  with pytest.raises(imagenet_classes.LabelsFileError):
    imagenet_classes.read_labels_file("/nonexistent/labels.tsv")


def _cli(*args):
  with flagsaver.flagsaver():
    argv = flags.FLAGS(["encode_dataset", *map(str, args)])
    return encode_dataset.main(argv)


def test_binary_encodes_splits_and_prints_sizes(tmp_path, tiny_codec_path, capsys):
  store_dir = tmp_path / "store"
  status = _cli(f"--codec={tiny_codec_path}", f"--data_dir={IMAGENETTE}", "--splits=train,val",
                f"--store_dir={store_dir}", f"--image_size={SIZE}", "--limit=3",
                "--noprogress", "--decode", "--latent_cache")
  out = capsys.readouterr().out
  assert status == 0
  assert "train: 3 images encoded" in out and "val: 3 images, source " in out
  assert "total: 6 images" in out and "published (ImageNet, 0.635 bpp): 144 GB" in out
  assert len(list(rgb_arms.decoded_dataset(str(store_dir), "val"))) == 3
  # The latent cache holds what range-decoding the files gives, in the same order.
  from_files, from_cache = ([x.numpy() for x, _ in latent_store.latent_dataset(
      str(store_dir), "val", cached=cached)] for cached in (False, True))
  assert len(from_cache) == 3
  assert all(np.array_equal(a, b) for a, b in zip(from_files, from_cache))

  assert _cli(f"--codec={tiny_codec_path}", f"--store_dir={store_dir}") == 1
  assert "error: give exactly one of --data_dir and --tfds_name" in capsys.readouterr().err
  assert _cli(f"--codec={tmp_path}/missing.npz", f"--data_dir={IMAGENETTE}",
              f"--store_dir={store_dir}") == 1
  assert capsys.readouterr().err.startswith("error: ")


def test_binary_beam_flags_fail_in_one_line(tmp_path, tiny_codec_path, capsys):
  common = [f"--codec={tiny_codec_path}", f"--data_dir={IMAGENETTE}", "--splits=train",
            f"--store_dir={tmp_path / 'store'}", f"--image_size={SIZE}", "--limit=2",
            "--noprogress"]
  assert _cli(*common, "--beam_option=--runner=DirectRunner") == 1
  assert capsys.readouterr().err == "error: --beam_option is for --beam\n"
  try:
    import apache_beam  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    # Without the extra, --beam says how to get it (tests/test_beam_encode.py runs it with).
    assert _cli(*common, "--beam") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --beam needs Apache Beam, the optional extra: pip install -e "
                          "'.[beam]'") and err.count("\n") == 1
  else:
    assert _cli(*common, "--beam", "--beam_option=--runner=NoSuchRunner") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
