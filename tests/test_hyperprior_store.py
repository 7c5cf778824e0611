"""Latent stores of the hyperprior codec: its real .tfci files, read back as (y_hat, sigma_hat).

A tiny random hyperprior (N = M = 8) and 64-pixel views (4 x 4 latents) keep every test short.
"""

import json
import os

from absl import flags
from absl.testing import flagsaver
import keras
import numpy as np
import pytest
import tensorflow as tf

from experiments import encode_dataset
from tfcdi.codec import bitstream
from tfcdi.codec import coding
from tfcdi.codec import hyperprior as hp
from tfcdi.codec import pretrained
from tfcdi.data import images as images_lib
from tfcdi.data import latent_store
from tfcdi.data import rgb_arms

IMAGENETTE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                          "imagenette2_224")
SIZE = 64  # the square view; y_hat and sigma_hat are 4 x 4 x 8, z 1 x 1 x 8

pytestmark = pytest.mark.skipif(not os.path.isdir(IMAGENETTE),
                                reason="the shared Imagenette is not beside the repo")


def _encode(codec, store_dir, split="train", limit=6, shard_size=4):
  source = latent_store.ImageFolderSource(IMAGENETTE, split, limit=limit)
  entry = latent_store.encode_split(source, codec, str(store_dir), split, image_size=SIZE,
                                    shard_size=shard_size, batch_size=4, progress=False)
  return source, entry


@pytest.fixture(scope="module", name="store")
def fixture_store(tmp_path_factory, tiny_hyperprior):
  store_dir = tmp_path_factory.mktemp("hp_store")
  source, _ = _encode(tiny_hyperprior, store_dir)
  return str(store_dir), source


def _view(path):
  return latent_store.square_view(images_lib.decode_rgb(path), SIZE).numpy()


def _records(store_dir, split="train"):
  files = latent_store.shard_files(store_dir, split)
  return [latent_store.parse_example(r) for r in tf.data.TFRecordDataset(files)]


def _never(*args, **kwargs):
  raise AssertionError("reading latents must not run a transform of the codec")


def test_store_holds_the_hyperprior_file_of_each_view(store, tiny_hyperprior):
  store_dir, source = store
  for record, path, label in zip(_records(store_dir), source.paths, source.labels):
    data = record["tfci"].numpy()
    assert data == coding.compress_image(tiny_hyperprior, _view(path))  # byte for byte
    header = bitstream.parse_header(data)
    assert header.codec_family == bitstream.FAMILY_HYPERPRIOR
    assert header.y_shape == (4, 4, 8) and header.z_shape == (1, 1, 8)
    assert int(record["label"]) == label


def test_metadata_records_the_family_and_the_sizes(store, tiny_hyperprior):
  store_dir, source = store
  meta = latent_store.read_metadata(store_dir)
  codec = meta["codec"]
  assert latent_store.store_family(meta) == "hyperprior"
  assert (codec["name"], codec["fingerprint"]) == ("hp-tiny", tiny_hyperprior.fingerprint.hex())
  assert (codec["quality"], codec["operating_point"]) == (4, "q4")
  assert (codec["channels"], codec["num_filters"]) == (8, 8)
  assert meta["latent_shape"] == [4, 4, 8] and meta["hyper_latent_shape"] == [1, 1, 8]
  entry = meta["splits"]["train"]
  assert entry["source_bytes"] == sum(os.path.getsize(p) for p in source.paths)
  assert entry["store_bytes"] == sum(
      os.path.getsize(f) for f in latent_store.shard_files(store_dir, "train"))
  assert entry["ratio"] == pytest.approx(entry["source_bytes"] / entry["store_bytes"])
  assert entry["bpp"] == pytest.approx(8 * entry["tfci_bytes"] / (6 * SIZE * SIZE))
  lines = latent_store.size_report(meta)
  assert lines[0].startswith("train: 6 images, source ")
  assert lines[-1].endswith("(codec hp-tiny, hyperprior quality 4)")


def test_reader_yields_the_latents_of_the_files_without_any_transform(store, tiny_hyperprior,
                                                                      monkeypatch):
  store_dir, source = store
  expected = []
  for path in source.paths:
    y, z = tiny_hyperprior.model.encode(_view(path)[None].astype(np.float32))
    expected.append((y, z, tiny_hyperprior.model.latent(y, z)))
  for name in ("decode", "call", "encode", "sigma"):
    monkeypatch.setattr(hp.Hyperprior, name, _never)
  pairs = list(latent_store.latent_dataset(store_dir, "train"))  # dispatches on the family
  symbols = list(latent_store.hyperprior_latent_dataset(store_dir, "train", output="symbols",
                                                        codec=tiny_hyperprior))
  assert len(pairs) == len(symbols) == 6
  for (y_hat, sigma_hat, label), (y, indices, _), (y_sym, z_sym, (e_y, e_sigma)), want in zip(
      pairs, symbols, expected, source.labels):
    assert y_hat.shape == sigma_hat.shape == (4, 4, 8) and y_hat.dtype == tf.float32
    np.testing.assert_array_equal(y_hat.numpy(), e_y[0].numpy())
    np.testing.assert_array_equal(sigma_hat.numpy(), e_sigma[0].numpy())
    np.testing.assert_array_equal(y.numpy(), y_sym[0].numpy())
    np.testing.assert_array_equal(sigma_hat.numpy(),
                                  hp.scale_table().astype(np.float32)[indices.numpy()])
    assert int(label) == want
  # A real spread of scales, not one table.
  assert len(np.unique(np.concatenate([s.numpy().ravel() for _, s, _ in pairs]))) > 5


def test_shuffled_order_is_the_decoded_arms(store, tiny_hyperprior):
  store_dir, _ = store
  rgb_arms.build_decoded_cache(store_dir, "train", tiny_hyperprior, progress=False)
  pair_labels = [int(l) for _, _, l in latent_store.hyperprior_latent_dataset(
      store_dir, "train", shuffle=True, seed=3)]
  decoded_labels = [int(l) for _, l in rgb_arms.decoded_dataset(store_dir, "train",
                                                                shuffle=True, seed=3)]
  assert pair_labels == decoded_labels
  skipped = [int(l) for _, _, l in latent_store.hyperprior_latent_dataset(
      store_dir, "train", shuffle=True, seed=3, skip=2)]
  assert skipped == pair_labels[2:]


def test_decoded_cache_holds_the_synthesis_reconstructions(store, tiny_hyperprior):
  store_dir, _ = store
  rgb_arms.build_decoded_cache(store_dir, "train", tiny_hyperprior, progress=False)
  decoded = list(rgb_arms.decoded_dataset(store_dir, "train"))
  assert len(decoded) == 6
  for (image, label), record in zip(decoded, _records(store_dir)):
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == tf.uint8
    np.testing.assert_array_equal(
        image.numpy(), coding.decompress_bytes(record["tfci"].numpy(), tiny_hyperprior))
    assert int(label) == int(record["label"])


def test_other_codecs_and_families_are_refused(store, tmp_path, make_tiny_hyperprior,
                                               tiny_codec):
  store_dir, _ = store
  make_tiny_hyperprior(tmp_path / "other.npz", name="hp-other", seed=3)
  other = pretrained.load_codec(path=str(tmp_path / "other.npz"))
  with pytest.raises(latent_store.StoreError, match="made by codec 'hp-tiny'"):
    latent_store.hyperprior_latent_dataset(store_dir, "train", codec=other)
  with pytest.raises(latent_store.StoreError, match="made by codec 'hp-tiny'"):
    _encode(other, store_dir, split="val")
  with pytest.raises(latent_store.StoreError, match="made by codec 'hp-tiny'"):
    _encode(tiny_codec, store_dir, split="val")  # an autoencoder into a hyperprior store
  with pytest.raises(latent_store.StoreError, match="multiple of 16"):
    latent_store.encode_split(latent_store.ImageFolderSource(IMAGENETTE, "val", limit=1),
                              other, str(tmp_path / "s"), "val", image_size=72, progress=False)
  # An autoencoder store is not read as pairs.
  _encode(tiny_codec, tmp_path / "ae", limit=1)
  with pytest.raises(latent_store.StoreError, match="autoencoder codec"):
    latent_store.hyperprior_latent_dataset(str(tmp_path / "ae"), "train")


def test_tables_come_from_the_store_or_the_bundle_without_a_model(store, tiny_hyperprior,
                                                                  tiny_hyperprior_path,
                                                                  tmp_path, monkeypatch):
  store_dir, _ = store
  monkeypatch.setattr(hp.Hyperprior, "build_weights", _never)
  from_bundle = latent_store.load_codec_tables(tiny_hyperprior_path)
  from_store = latent_store.store_tables(latent_store.read_metadata(store_dir), store_dir)
  for tables in (from_bundle, from_store):
    assert tables.same_codec(tiny_hyperprior) and tables.family == "hyperprior"
    assert (tables.channels, tables.num_filters, tables.quality) == (8, 8, 4)
  assert from_bundle.digest == from_store.digest
  data = _records(store_dir)[0]["tfci"].numpy()
  _, y, z, indices = from_bundle.read(data)
  _, y2, z2, indices2 = coding.read_hyperprior_symbols(data, tiny_hyperprior)
  np.testing.assert_array_equal(indices, indices2)
  np.testing.assert_array_equal(y, y2)
  # Tables that do not match the metadata are refused.
  copy = tmp_path / "copy"
  os.makedirs(copy)
  for name in (latent_store.METADATA_FILE, latent_store.HYPERPRIOR_TABLES_FILE):
    copy.joinpath(name).write_bytes(open(os.path.join(store_dir, name), "rb").read())
  arrays = dict(np.load(copy / latent_store.HYPERPRIOR_TABLES_FILE))
  arrays["hs_bias0"] = arrays["hs_bias0"] + 1
  np.savez(copy / latent_store.HYPERPRIOR_TABLES_FILE, **arrays)
  with pytest.raises(latent_store.StoreError, match="other coding tables"):
    latent_store.store_tables(latent_store.read_metadata(str(copy)), str(copy))
  meta = json.loads((copy / latent_store.METADATA_FILE).read_text())
  os.remove(copy / latent_store.HYPERPRIOR_TABLES_FILE)
  with pytest.raises(latent_store.StoreError, match="cannot read"):
    latent_store.store_tables(meta, str(copy))


def _cli(*args):
  with flagsaver.flagsaver():
    argv = flags.FLAGS(["encode_dataset", *map(str, args)])
    return encode_dataset.main(argv)


def test_binary_encodes_a_hyperprior_store(tmp_path, tiny_hyperprior_path, capsys):
  store_dir = tmp_path / "store"
  status = _cli(f"--codec_path={tiny_hyperprior_path}", f"--data_dir={IMAGENETTE}",
                "--splits=val", f"--store_dir={store_dir}", f"--image_size={SIZE}", "--limit=2",
                "--noprogress", "--decode")
  captured = capsys.readouterr()
  assert status == 0, captured.err
  assert "val: 2 images encoded" in captured.out
  assert "(codec hp-tiny, hyperprior quality 4)" in captured.out
  assert latent_store.store_family(latent_store.read_metadata(str(store_dir))) == "hyperprior"
  assert len(list(rgb_arms.decoded_dataset(str(store_dir), "val"))) == 2
  # --codec=hyperprior --quality=Q names the shipped bundle of that quality; quality 2 is one
  # that is never trained here (1, 4 and 8 are), so it is refused with the command to train it.
  assert _cli("--codec=hyperprior", "--quality=2", f"--data_dir={IMAGENETTE}",
              f"--store_dir={tmp_path / 's2'}", "--limit=1", "--noprogress") == 1
  assert "no trained hyperprior codec is shipped for quality 2" in capsys.readouterr().err


def test_latent_cache_gives_the_same_examples_in_the_same_orders(store, tmp_path):
  store_dir, _ = store
  with pytest.raises(latent_store.StoreError, match="latent cache"):
    latent_store.hyperprior_latent_dataset(store_dir, "train", cached=True)
  assert not latent_store.has_latent_cache(store_dir, "train")
  latent_store.build_latent_cache(store_dir, "train", progress=False)
  assert latent_store.has_latent_cache(store_dir, "train")
  cache = latent_store.latent_cache_dir(store_dir)
  mtimes = {f: os.stat(os.path.join(cache, f)).st_mtime_ns for f in os.listdir(cache)}
  latent_store.build_latent_cache(store_dir, "train", progress=False)  # resumes: nothing to do
  assert {f: os.stat(os.path.join(cache, f)).st_mtime_ns for f in os.listdir(cache)} == mtimes
  for kwargs in ({}, {"shuffle": True, "seed": 4}, {"shuffle": True, "seed": 4, "skip": 3}):
    for output in ("latent", "symbols"):
      fresh = list(latent_store.hyperprior_latent_dataset(store_dir, "train", output=output,
                                                          **kwargs))
      cached = list(latent_store.hyperprior_latent_dataset(store_dir, "train", output=output,
                                                           cached=True, **kwargs))
      assert len(fresh) == len(cached) > 0
      for a, b in zip(fresh, cached):
        for x, y in zip(a, b):
          assert x.dtype == y.dtype
          np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_latent_cache_keeps_values_beyond_16_bits(tmp_path):
  keras.utils.set_random_seed(1)
  model = hp.Hyperprior(8, 8).build_weights()
  kernel = model.analysis.get_layer("conv4").kernel
  kernel.assign(kernel * 3e4)  # y far beyond int16, coded through the escapes
  pretrained.save_hyperprior_codec(model, 4, str(tmp_path / "wide.npz"), "hp-wide")
  codec = pretrained.load_codec(path=str(tmp_path / "wide.npz"))
  _encode(codec, tmp_path / "store", limit=2)
  store_dir = str(tmp_path / "store")
  latent_store.build_latent_cache(store_dir, "train", progress=False)
  fresh = [y.numpy() for y, _, _ in latent_store.hyperprior_latent_dataset(
      store_dir, "train", output="symbols")]
  cached = [y.numpy() for y, _, _ in latent_store.hyperprior_latent_dataset(
      store_dir, "train", output="symbols", cached=True)]
  assert max(np.abs(y).max() for y in fresh) > 32767
  for a, b in zip(fresh, cached):
    np.testing.assert_array_equal(a, b)
