"""SavedModel exports with explicit signatures, and tfcdi-classify reading .tfci files.

One tiny cResNet-39 is trained for two steps on a tiny store and exported once per module; the
tests call its signatures, show them with saved_model_cli, and classify real files with it.
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
from tfcdi.codec import model as model_lib
from tfcdi.codec import pretrained
from tfcdi.data import images as images_lib
from tfcdi.data import latent_store
from tfcdi.train import classifier

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
IMAGENETTE = os.path.join(DATA, "imagenette2_224")
SAMPLES = os.path.join(DATA, "imagenet_samples")
LABELS_TSV = os.path.join(SAMPLES, "labels.tsv")
SIZE = 64  # store views: 8 x 8 latents, 7 x 7 crops

pytestmark = pytest.mark.skipif(not os.path.isdir(IMAGENETTE),
                                reason="the shared data is not beside the repo")


@pytest.fixture(scope="module", name="workdir")
def fixture_workdir(tmp_path_factory, tiny_codec):
  store_dir = str(tmp_path_factory.mktemp("store"))
  for split, limit in (("train", 8), ("val", 4)):
    latent_store.encode_split(latent_store.ImageFolderSource(IMAGENETTE, split, limit=limit),
                              tiny_codec, store_dir, split, image_size=SIZE, shard_size=8,
                              batch_size=8, progress=False)
  workdir = str(tmp_path_factory.mktemp("cresnet39"))
  classifier.train("cresnet39", "latent", classifier.get_config("tiny", epochs=1),
                   workdir=workdir, store_dir=store_dir, log=lambda m: None)
  return workdir


@pytest.fixture(scope="module", name="export_dir")
def fixture_export_dir(workdir, tmp_path_factory):
  export_dir = str(tmp_path_factory.mktemp("export") / "classifier")
  labels = LABELS_TSV if os.path.exists(LABELS_TSV) else None
  return serving.export_latent_classifier(workdir, export_dir, labels_file=labels)


@pytest.fixture(scope="module", name="other_codecs")
def fixture_other_codecs(tmp_path_factory, make_tiny_codec):
  folder = tmp_path_factory.mktemp("other_codecs")
  make_tiny_codec(folder / "other.npz", name="other")  # same channels, another codec
  make_tiny_codec(folder / "wide.npz", name="wide", operating_point="0.635")  # 32 channels
  return {name: str(folder / f"{name}.npz") for name in ("other", "wide")}


def _image(height, width, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_encoder_signature_gives_the_symbols_a_file_holds(tiny_codec, tmp_path):
  export_dir = serving.export_encoder(tiny_codec, str(tmp_path / "encoder"))
  loaded = tf.saved_model.load(export_dir)
  images = np.stack([_image(20, 33, seed) for seed in range(2)])  # not multiples of 8
  symbols = loaded.signatures["encode"](images=tf.constant(images))["symbols"].numpy()
  assert symbols.shape == (2, 3, 5, 8) and symbols.dtype == np.int32
  for image, got in zip(images, symbols):
    _, expected = coding.read_symbols(coding.compress_image(tiny_codec, image), tiny_codec)
    np.testing.assert_array_equal(got, expected)
  assert loaded.codec_name.numpy() == b"tiny"
  np.testing.assert_array_equal(loaded.frequencies.numpy(), tiny_codec.frequencies)


def test_classifier_signature_is_the_trained_model_on_the_central_crop(workdir, export_dir,
                                                                      tiny_codec):
  model, results = classifier.restore_model(workdir)
  loaded = tf.saved_model.load(export_dir)
  signature = loaded.signatures["serving_default"]
  symbols = np.random.default_rng(0).integers(0, 6, (3, 9, 11, 8)).astype(np.int32)
  probs = signature(symbols=tf.constant(symbols))["probabilities"].numpy()
  assert probs.shape == (3, 10)
  np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
  # The export does what training's evaluation does: centers, central 7 x 7 crop, the net.
  z_hat = tiny_codec.model.quantizer.centers.numpy()[symbols][:, 1:8, 2:9, :]
  expected = tf.nn.softmax(model(z_hat, training=False)).numpy()
  np.testing.assert_allclose(probs, expected, rtol=1e-4, atol=1e-6)

  labels = loaded.signatures["labels"]()
  assert [w.decode() for w in labels["wnids"].numpy()] == results["classes"]
  assert labels["names"].numpy()[0] == b"tench"
  assert os.path.exists(os.path.join(export_dir, "assets", serving.LABELS_ASSET))
  # 32 channels do not fit the net (the wrapper checks only the dtype: callers check shapes).
  with pytest.raises((ValueError, tf.errors.InvalidArgumentError)):
    signature(symbols=tf.zeros([1, 8, 8, 32], tf.int32))


@pytest.mark.skipif(shutil.which("saved_model_cli") is None, reason="saved_model_cli not on PATH")
def test_saved_model_cli_shows_the_signatures(export_dir):
  out = subprocess.run(["saved_model_cli", "show", "--dir", export_dir, "--all"],
                       capture_output=True, text=True, check=True, timeout=120).stdout
  assert "signature_def['classify']" in out and "signature_def['serving_default']" in out
  assert "inputs['symbols']" in out and "shape: (-1, -1, -1, 8)" in out
  assert "outputs['probabilities']" in out and "shape: (-1, 10)" in out
  assert "signature_def['labels']" in out


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("saved_model_cli") is None, reason="saved_model_cli not on PATH")
def test_saved_model_cli_runs_the_classifier(export_dir):
  symbols = np.ones((1, 8, 8, 8), np.int32).tolist()
  out = subprocess.run(
      ["saved_model_cli", "run", "--dir", export_dir, "--tag_set", "serve", "--signature_def",
       "serving_default", "--input_exprs", f"symbols={symbols}".replace(" ", "")],
      capture_output=True, text=True, check=True, timeout=120).stdout
  assert "Result for output key probabilities" in out


def test_fit_latent_shrinks_to_the_training_view_and_never_grows():
  symbols = np.arange(47 * 63 * 2).reshape(47, 63, 2)
  fitted = serving.fit_latent(symbols, 32)
  assert fitted.shape == (32, 43, 2)
  assert set(fitted.ravel()) <= set(symbols.ravel())
  small = symbols[:20, :30]
  assert serving.fit_latent(small, 32) is small


def _classify(*args):
  with flagsaver.flagsaver():
    argv = flags.FLAGS(["classify", *map(str, args)])
    return classify.main(argv)


def _never(*args, **kwargs):
  raise AssertionError("the decoder must never be built, loaded or run")


def test_classify_prints_top5_from_tfci_files_without_the_decoder(export_dir, tiny_codec,
                                                                  tiny_codec_path, tmp_path,
                                                                  monkeypatch, capsys):
  paths, _, _ = images_lib.list_images(IMAGENETTE, "val")
  view_file = tmp_path / "view.tfci"  # compressed at the classifier's scale
  view_file.write_bytes(serving.compress_for_classification(
      tiny_codec, images_lib.decode_rgb(paths[0]).numpy(), size=SIZE))
  photo = os.path.join(SAMPLES, "n01440764_tench.JPEG")
  photo_file = tmp_path / "photo.tfci"  # a full-size photo, compressed as it is
  photo_file.write_bytes(coding.compress_image(tiny_codec, imageio.load_rgb(photo)[0]))

  monkeypatch.setattr(model_lib, "build_decoder", _never)
  monkeypatch.setattr(model_lib.Autoencoder, "decode", _never)
  monkeypatch.setattr(pretrained, "load_codec", _never)
  assert _classify(f"--model={export_dir}", view_file, photo_file) == 0
  out = capsys.readouterr().out.splitlines()[1:]  # after the label set (see its own test)
  assert out[0] == f"{view_file}: 64x64 image, latent 8x8x8, central 7x7"
  h, w = -(-375 // 8), -(-500 // 8)
  assert out[6] == f"{photo_file}: 500x375 image, latent {h}x{w}x8 -> 8x11, central 7x7"
  loaded = serving.LatentClassifier(export_dir)
  for block, path in ((out[1:6], view_file), (out[7:12], photo_file)):
    ranks = [line.split()[0] for line in block]
    probs = [float(line.split()[1]) for line in block]
    assert ranks == ["1.", "2.", "3.", "4.", "5."] and probs == sorted(probs, reverse=True)
    _, symbols = serving.read_for_classification(path.read_bytes(), loaded)
    wnid, name, prob = loaded.top_k(symbols)[0]
    assert block[0] == f"  1. {prob:.4f}  {wnid}  {name}"
    assert 0.0 < sum(probs) <= 1.0 + 1e-3

  # The tables can come from the codec's bundle too: its metadata and table, not its weights.
  assert _classify(f"--model={export_dir}", f"--codec={tiny_codec_path}", "--top_k=2",
                   "--latent_policy=crop", view_file) == 0
  assert len(capsys.readouterr().out.splitlines()) == 1 + 3


def test_classify_says_which_classes_the_classifier_knows(export_dir, tiny_codec, tmp_path,
                                                         capsys):
  # The shipped classifiers know Imagenette's 10 classes only: a photo of a house comes back as
  # one of them, and the user must be told so before reading "gas pump 81%".
  good = tmp_path / "good.tfci"
  good.write_bytes(coding.compress_image(tiny_codec, _image(64, 64)))
  assert _classify(f"--model={export_dir}", good, good) == 0
  out = capsys.readouterr().out.splitlines()
  names = serving.LatentClassifier(export_dir).names
  assert len(names) == 10
  assert out[0] == (f"classifier {export_dir}: scores 10 classes only ({', '.join(names)}); "
                    "anything else comes back as the nearest of these")
  assert sum(line.startswith("classifier ") for line in out) == 1  # once, not per file


def test_classify_refuses_what_it_cannot_read_with_one_line_each(export_dir, tiny_codec,
                                                                 other_codecs, tmp_path, capsys):
  good = tmp_path / "good.tfci"
  good.write_bytes(coding.compress_image(tiny_codec, _image(64, 64)))
  other = tmp_path / "other.tfci"
  other.write_bytes(coding.compress_image(pretrained.load_codec(path=other_codecs["other"]),
                                          _image(64, 64)))
  wide = tmp_path / "wide.tfci"
  wide.write_bytes(coding.compress_image(pretrained.load_codec(path=other_codecs["wide"]),
                                         _image(64, 64)))
  small = tmp_path / "small.tfci"
  small.write_bytes(coding.compress_image(tiny_codec, _image(40, 48)))
  junk = tmp_path / "junk.tfci"
  junk.write_bytes(b"not a file")

  status = _classify(f"--model={export_dir}", good, other, wide, small, junk,
                     tmp_path / "missing.tfci")
  captured = capsys.readouterr()
  assert status == 1
  assert captured.out.splitlines()[1].startswith(f"{good}: ")  # the good file still runs
  errors = captured.err.splitlines()
  assert len(errors) == 5
  assert errors[0].startswith(f"error: {other}: the file was made by codec 'other'")
  assert errors[1] == (f"error: {wide}: the file holds a 32-channel latent; this classifier "
                       "reads 8-channel latents of codec 'tiny'")
  assert errors[2] == (f"error: {small}: the latent is 5x6; this classifier needs at least 7x7 "
                       "(an image of at least 56 pixels per side)")
  assert errors[3].startswith(f"error: {junk}: not a .tfci file")
  # In the words of the other binaries, not the OS's "No such file or directory".
  assert errors[4] == f"error: {tmp_path / 'missing.tfci'}: no such file or folder"

  assert _classify(f"--model={export_dir}", f"--codec={other_codecs['wide']}", good) == 1
  assert capsys.readouterr().err == (
      "error: codec 'wide' makes 32-channel latents; the classifier reads 8-channel latents "
      "of codec 'tiny'\n")
  assert _classify(f"--model={export_dir}", f"--codec={other_codecs['other']}", good) == 1
  assert capsys.readouterr().err.startswith("error: --codec is codec 'other'")
  assert _classify(f"--model={tmp_path}", good) == 1
  assert capsys.readouterr().err == f"error: {tmp_path} is not a SavedModel directory\n"
  assert _classify() == 1
  assert capsys.readouterr().err.startswith("error: give at least one .tfci file")
  # Without --model, a file whose codec has no shipped classifier is refused by name.
  assert _classify(good) == 1
  assert capsys.readouterr().err.startswith(
      f"error: {good}: no shipped classifier reads latents of codec 'tiny'")


def test_classify_without_model_takes_the_shipped_classifier_of_the_files_codec(
    export_dir, tiny_codec, other_codecs, tmp_path, monkeypatch, capsys):
  shipped = tmp_path / "shipped"
  shutil.copytree(export_dir, shipped / "cresnet39_tiny")
  monkeypatch.setattr(serving, "SHIPPED_CLASSIFIERS_DIR", str(shipped))
  assert [info["net"] for _, info in serving.shipped_classifiers()] == ["cresnet39"]
  good = tmp_path / "good.tfci"
  good.write_bytes(coding.compress_image(tiny_codec, _image(64, 64)))
  other = tmp_path / "other.tfci"
  other.write_bytes(coding.compress_image(pretrained.load_codec(path=other_codecs["other"]),
                                          _image(64, 64)))
  assert _classify(good, other) == 1
  captured = capsys.readouterr()
  with_model = serving.LatentClassifier(export_dir)
  _, symbols = serving.read_for_classification(good.read_bytes(), with_model)
  wnid, name, prob = with_model.top_k(symbols)[0]
  assert captured.out.splitlines()[0].startswith("classifier ")  # the shipped one's label set
  assert captured.out.splitlines()[2] == f"  1. {prob:.4f}  {wnid}  {name}"
  assert captured.err == (f"error: {other}: no shipped classifier reads latents of codec 'other' "
                          f"({pretrained.read_metadata(other_codecs['other'])['fingerprint']}); "
                          "shipped: cresnet39 for codec 'tiny'. Give --model=EXPORT_DIR\n")


def _export(*args):
  with flagsaver.flagsaver():
    argv = flags.FLAGS(["export", *map(str, args)])
    return export.main(argv)


def test_export_binary(tiny_codec_path, workdir, tmp_path, capsys):
  target = tmp_path / "encoder"
  assert _export("--what=encoder", f"--codec={tiny_codec_path}", f"--export_dir={target}") == 0
  assert "signature 'encode'" in capsys.readouterr().out
  assert tf.saved_model.contains_saved_model(str(target))
  assert _export("--what=encoder", f"--codec={tiny_codec_path}", f"--export_dir={target}") == 1
  assert "exists and is not empty" in capsys.readouterr().err
  assert _export("--what=classifier", f"--export_dir={tmp_path / 'c'}") == 1
  assert capsys.readouterr().err == "error: --what=classifier needs --workdir\n"
  assert _export("--what=classifier", f"--workdir={tmp_path}", f"--export_dir={tmp_path / 'c'}",
                 ) == 1
  assert "no results.json" in capsys.readouterr().err
