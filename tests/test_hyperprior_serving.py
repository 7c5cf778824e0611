"""Exports of classifiers trained on hyperprior latents, and tfcdi-classify on hyperprior files.

The two-branch net (and, in the slow tests, the net on y_hat alone) is trained for two tiny
steps on a tiny hyperprior store, exported once per module, and called through its signatures
and the binaries.
"""

import os
import shutil
import subprocess

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest
import tensorflow as tf

from experiments import classify
from experiments import export
from tfcdi import imageio
from tfcdi import serving
from tfcdi.codec import coding
from tfcdi.codec import hyperprior as hp
from tfcdi.codec import hyperprior_codec
from tfcdi.codec import pretrained
from tfcdi.data import classification_input
from tfcdi.data import latent_pairs
from tfcdi.data import latent_store
from tfcdi.train import classifier

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
IMAGENETTE = os.path.join(DATA, "imagenette2_224")
PHOTO = os.path.join(DATA, "imagenet_samples", "n01440764_tench.JPEG")
SIZE = 64  # store views: 4 x 4 latents, resized to 8, cropped to 7 (tiny preset)

pytestmark = pytest.mark.skipif(not os.path.isdir(IMAGENETTE),
                                reason="the shared data is not beside the repo")


@pytest.fixture(scope="module", name="store_dir")
def fixture_store_dir(tmp_path_factory, tiny_hyperprior):
  store_dir = str(tmp_path_factory.mktemp("hp_store"))
  for split, limit in (("train", 8), ("val", 4)):
    latent_store.encode_split(latent_store.ImageFolderSource(IMAGENETTE, split, limit=limit),
                              tiny_hyperprior, store_dir, split, image_size=SIZE, shard_size=8,
                              batch_size=8, progress=False)
  return store_dir


def _train_and_export(store_dir, tmp_path_factory, inputs):
  workdir = str(tmp_path_factory.mktemp("workdir"))
  classifier.train("cresnet39", "latent", classifier.get_config("tiny", epochs=1),
                   workdir=workdir, store_dir=store_dir, latent_inputs=inputs, log=lambda m: None)
  export_dir = str(tmp_path_factory.mktemp("export") / "classifier")
  return workdir, serving.export_latent_classifier(workdir, export_dir)


@pytest.fixture(scope="module", name="two_branch")
def fixture_two_branch(store_dir, tmp_path_factory):
  """(workdir, export_dir) of the two-branch net."""
  return _train_and_export(store_dir, tmp_path_factory, "y_hat+sigma_hat")


@pytest.fixture(scope="module", name="y_hat_only")
def fixture_y_hat_only(store_dir, tmp_path_factory):
  """(workdir, export_dir) of the net on y_hat alone."""
  return _train_and_export(store_dir, tmp_path_factory, "y_hat")


def _val_latents(store_dir):
  """y symbols, scale indices, and the central views of y_hat and sigma_hat of the val split."""
  symbols = list(latent_store.hyperprior_latent_dataset(store_dir, "val", output="symbols"))
  y = np.stack([s[0].numpy() for s in symbols])
  indices = np.stack([s[1].numpy() for s in symbols])
  sigma_hat = hp.scale_table().astype(np.float32)[indices]
  geometry = classification_input.pair_geometry(classifier.get_config("tiny"))
  views = [latent_pairs.center_pair(a, b, geometry) for a, b in zip(y.astype(np.float32),
                                                                     sigma_hat)]
  return y, indices, tf.stack([v[0] for v in views]), tf.stack([v[1] for v in views])


def _classify(*args):
  with flagsaver.flagsaver():
    argv = flags.FLAGS(["classify", *map(str, args)])
    return classify.main(argv)


def _export(*args):
  with flagsaver.flagsaver():
    argv = flags.FLAGS(["export", *map(str, args)])
    return export.main(argv)


def _never(*args, **kwargs):
  raise AssertionError("classifying a file must not run a transform of the codec")


def test_signatures_are_the_trained_models_on_the_evaluation_views(two_branch, store_dir):
  y, indices, view_y, view_sigma = _val_latents(store_dir)
  y_hat = y.astype(np.float32)
  sigma_hat = hp.scale_table().astype(np.float32)[indices]
  workdir, export_dir = two_branch
  model, results = classifier.restore_model(workdir)
  expected = tf.nn.softmax(model({"y_hat": view_y, "sigma_hat": view_sigma})).numpy()
  loaded = tf.saved_model.load(export_dir)
  probs = loaded.signatures["classify"](y_symbols=tf.constant(y),
                                        scale_indices=tf.constant(indices))["probabilities"]
  np.testing.assert_allclose(probs.numpy(), expected, rtol=1e-4, atol=1e-6)
  assert loaded.signatures["serving_default"].structured_input_signature[1].keys() == {
      "y_symbols", "scale_indices"}
  probs = loaded.signatures["classify_latents"](y_hat=tf.constant(y_hat),
                                                sigma_hat=tf.constant(sigma_hat))
  np.testing.assert_allclose(probs["probabilities"].numpy(), expected, rtol=1e-4, atol=1e-6)
  labels = loaded.signatures["labels"]()
  assert [w.decode() for w in labels["wnids"].numpy()] == results["classes"]
  info = serving.read_info(export_dir)
  assert info["family"] == "hyperprior" and info["latent_inputs"] == "y_hat+sigma_hat"
  assert info["codec"]["name"] == "hp-tiny" and info["view_size"] == 8
  # A non-square latent: its central square is classified.
  wide = np.concatenate([y[:1], y[:1, :, :2]], axis=2)  # 4 x 6
  wide_indices = np.concatenate([indices[:1], indices[:1, :, :2]], axis=2)
  got = loaded.signatures["classify"](y_symbols=tf.constant(wide[:, :, 1:5]),
                                      scale_indices=tf.constant(wide_indices[:, :, 1:5]))
  np.testing.assert_allclose(
      loaded.signatures["classify"](y_symbols=tf.constant(wide),
                                    scale_indices=tf.constant(wide_indices))["probabilities"],
      got["probabilities"], rtol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("saved_model_cli") is None, reason="saved_model_cli not on PATH")
def test_saved_model_cli_shows_the_two_input_signatures(two_branch):
  out = subprocess.run(["saved_model_cli", "show", "--dir", two_branch[1], "--all"],
                       capture_output=True, text=True, check=True, timeout=120).stdout
  for name in ("classify", "classify_latents", "serving_default", "labels"):
    assert f"signature_def['{name}']" in out
  for name in ("y_symbols", "scale_indices", "y_hat", "sigma_hat"):
    assert f"inputs['{name}']" in out
  assert "shape: (-1, -1, -1, 8)" in out and "shape: (-1, 10)" in out


def test_classify_reads_hyperprior_files_without_any_transform(two_branch, tiny_hyperprior,
                                                               tiny_hyperprior_path, tmp_path,
                                                               monkeypatch, capsys):
  paths, _, _ = latent_store.images_lib.list_images(IMAGENETTE, "val")
  view_file = tmp_path / "view.tfci"
  view_file.write_bytes(serving.compress_for_classification(
      tiny_hyperprior, latent_store.images_lib.decode_rgb(paths[0]).numpy(), size=SIZE))
  photo_file = tmp_path / "photo.tfci"  # 500 x 375, compressed as it is: y is 24 x 32
  photo_file.write_bytes(coding.compress_image(tiny_hyperprior, imageio.load_rgb(PHOTO)[0]))
  for name in ("decode", "call", "encode", "sigma", "latents"):
    monkeypatch.setattr(hp.Hyperprior, name, _never)
  monkeypatch.setattr(pretrained, "load_codec", _never)
  monkeypatch.setattr(hyperprior_codec, "load_hyperprior_codec", _never)

  export_dir = two_branch[1]
  assert _classify(f"--model={export_dir}", view_file, photo_file) == 0
  out = capsys.readouterr().out.splitlines()
  assert out.pop(0).startswith(f"classifier {export_dir}: scores ")  # its label set, first
  assert out[0] == f"{view_file}: 64x64 image, y_hat and sigma_hat 4x4x8 -> 8x8, central 7x7"
  assert out[6] == (f"{photo_file}: 500x375 image, y_hat and sigma_hat 24x32 -> central 24x24x8 "
                    "-> 8x8, central 7x7")
  loaded = serving.load_classifier(export_dir)
  assert isinstance(loaded, serving.HyperpriorClassifier) and loaded.two_branch
  for block, path in ((out[1:6], view_file), (out[7:12], photo_file)):
    probs = [float(line.split()[1]) for line in block]
    assert probs == sorted(probs, reverse=True)
    _, (y, indices) = serving.read_for_classification(path.read_bytes(), loaded)
    wnid, name, prob = loaded.top_k(y, indices)[0]
    assert block[0] == f"  1. {prob:.4f}  {wnid}  {name}"
  # The tables can come from the codec's bundle (no model is built from it).
  assert _classify(f"--model={export_dir}", f"--codec={tiny_hyperprior_path}", "--top_k=2",
                   view_file) == 0
  assert capsys.readouterr().out.splitlines()[2:] == out[1:3]


@pytest.mark.slow
def test_the_y_hat_classifier_exports_and_classifies_from_y_alone(y_hat_only, store_dir,
                                                                  tiny_hyperprior, tmp_path,
                                                                  capsys):
  y, _, view_y, _ = _val_latents(store_dir)
  workdir, export_dir = y_hat_only
  model, _ = classifier.restore_model(workdir)
  loaded = tf.saved_model.load(export_dir)
  assert loaded.signatures["classify"].structured_input_signature[1].keys() == {"y_symbols"}
  probs = loaded.signatures["classify"](y_symbols=tf.constant(y))["probabilities"].numpy()
  np.testing.assert_allclose(probs, tf.nn.softmax(model(view_y)).numpy(), rtol=1e-4, atol=1e-6)
  probs = loaded.signatures["classify_latents"](y_hat=tf.constant(y.astype(np.float32)))
  np.testing.assert_allclose(probs["probabilities"].numpy(),
                             tf.nn.softmax(model(view_y)).numpy(), rtol=1e-4, atol=1e-6)
  view_file = tmp_path / "view.tfci"
  view_file.write_bytes(coding.compress_image(
      tiny_hyperprior, np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)))
  assert _classify(f"--model={export_dir}", "--top_k=2", view_file) == 0
  lines = capsys.readouterr().out.splitlines()[1:]  # after the label set
  assert lines[0] == f"{view_file}: 64x64 image, y_hat 4x4x8 -> 8x8, central 7x7"
  assert len(lines) == 3


def test_classify_refuses_files_of_other_codecs_by_fingerprint(two_branch, tiny_hyperprior,
                                                               tiny_codec,
                                                               tiny_codec_path,
                                                               make_tiny_hyperprior, tmp_path,
                                                               capsys):
  image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
  good = tmp_path / "good.tfci"
  good.write_bytes(coding.compress_image(tiny_hyperprior, image))
  make_tiny_hyperprior(tmp_path / "other.npz", name="hp-tiny", seed=7)  # same name, other codec
  other_codec = pretrained.load_codec(path=str(tmp_path / "other.npz"))
  other = tmp_path / "other.tfci"
  other.write_bytes(coding.compress_image(other_codec, image))
  autoencoder = tmp_path / "autoencoder.tfci"
  autoencoder.write_bytes(coding.compress_image(tiny_codec, image))

  export_dir = two_branch[1]
  assert _classify(f"--model={export_dir}", good, other, autoencoder) == 1
  captured = capsys.readouterr()
  assert captured.out.splitlines()[1].startswith(f"{good}: 64x64 image")
  errors = captured.err.splitlines()
  assert errors == [
      f"error: {other}: the file was made by codec 'hp-tiny' "
      f"({other_codec.fingerprint.hex()}); this classifier reads latents of codec 'hp-tiny' "
      f"({tiny_hyperprior.fingerprint.hex()})",
      f"error: {autoencoder}: the file is an autoencoder file (codec 'tiny'); this classifier "
      "reads hyperprior latents of codec 'hp-tiny'"]
  assert _classify(f"--model={export_dir}", f"--codec={tmp_path / 'other.npz'}", good) == 1
  assert capsys.readouterr().err.startswith("error: --codec is codec 'hp-tiny'")
  assert _classify(f"--model={export_dir}", f"--codec={tiny_codec_path}", good) == 1
  assert capsys.readouterr().err.startswith("error: --codec is codec 'tiny'")


def test_export_binary_takes_the_tables_from_the_store_or_the_bundle(two_branch, store_dir,
                                                                      tiny_hyperprior_path,
                                                                      tiny_codec_path, tmp_path,
                                                                      capsys):
  workdir = two_branch[0]
  # The store moved away: the codec's bundle gives the tables instead.
  moved = str(tmp_path / "moved_store")
  os.rename(store_dir, moved)
  try:
    assert _export("--what=classifier", f"--workdir={workdir}",
                   f"--export_dir={tmp_path / 'a'}") == 1
    assert "give the codec's bundle (--codec_path=BUNDLE.npz)" in capsys.readouterr().err
    assert _export("--what=classifier", f"--workdir={workdir}", f"--export_dir={tmp_path / 'b'}",
                   f"--codec_path={tiny_hyperprior_path}") == 0
  finally:
    os.rename(moved, store_dir)
  assert ("signature 'classify' (serving_default), y_symbols, scale_indices int32 "
          "[B, h, w, M]") in capsys.readouterr().out
  assert serving.read_info(str(tmp_path / "b"))["codec"] == serving.read_info(
      two_branch[1])["codec"]
  assert _export("--what=classifier", f"--workdir={workdir}", f"--export_dir={tmp_path / 'c'}",
                 f"--codec_path={tiny_codec_path}") == 1
  assert "reads latents of codec 'hp-tiny'" in capsys.readouterr().err
  assert _export("--what=encoder", f"--codec_path={tiny_hyperprior_path}",
                 f"--export_dir={tmp_path / 'd'}") == 1
  assert "hyperprior" in capsys.readouterr().err
