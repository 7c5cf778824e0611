"""Hyperprior bundles, images <-> .tfci files, the two binaries, and training that resumes.

A tiny random codec (N = M = 8) stands in for a trained one: its analysis output is scaled up
and its hyper-synthesis biased so that y and the scales span many tables, as a trained codec's do.
"""

import json
import os

from absl import flags
from absl.testing import flagsaver
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from experiments import compress
from experiments import decompress
from tfcdi.codec import bitstream
from tfcdi.codec import bundles
from tfcdi.codec import coding
from tfcdi.codec import evaluation
from tfcdi.codec import hyperprior as hp
from tfcdi.codec import hyperprior_codec
from tfcdi.codec import pretrained
from tfcdi.train import hyperprior as hp_train

IMAGENETTE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                          "imagenette2_224")


def _image(height, width, seed=0):
  # Smooth content: random colours upsampled, like a photograph's low frequencies.
  rng = np.random.default_rng(seed)
  small = rng.integers(0, 256, (max(1, height // 16), max(1, width // 16), 3))
  big = tf.image.resize(tf.constant(small[None], tf.float32), (height, width))[0]
  return np.asarray(big.numpy(), np.uint8)


@pytest.fixture(scope="module", name="bundle_path")
def fixture_bundle_path(tiny_hyperprior_path):
  return tiny_hyperprior_path


@pytest.fixture(scope="module", name="codec")
def fixture_codec(bundle_path):
  return pretrained.load_codec(path=bundle_path)


def _cli(module, *args):
  """Runs a binary's main in-process, with its flags parsed as from a command line."""
  with flagsaver.flagsaver():
    argv = flags.FLAGS([module.__name__, *map(str, args)])
    return module.main(argv)


# --- bundles -----------------------------------------------------------------------------------


def test_load_codec_dispatches_on_the_bundles_family(codec, bundle_path):
  assert isinstance(codec, pretrained.HyperpriorCodec)
  assert codec.family == "hyperprior" and codec.quality.quality == 4
  assert (codec.num_filters, codec.channels) == (8, 8)
  assert codec.name == "hp-tiny" and len(codec.fingerprint) == 8
  assert pretrained.read_metadata(bundle_path)["fingerprint"] == codec.fingerprint.hex()
  assert codec.y_tables.num_tables == hp.NUM_SCALES and codec.z_tables.num_tables == 8
  with pytest.raises(pretrained.CodecError, match="hyperprior codec, not an autoencoder"):
    pretrained.load_codec("0.635", path=bundle_path)
  with pytest.raises(pretrained.CodecError, match="quality 4, not 8"):
    pretrained.load_hyperprior_codec(8, path=bundle_path)


def test_bundle_stores_float16_weights_and_the_integer_tables_it_was_made_with(codec,
                                                                               bundle_path):
  for var in codec.model.weights:
    value = var.numpy()
    np.testing.assert_array_equal(value, value.astype(np.float16).astype(np.float32))
  # The stored integer hyper-synthesis is the one the stored weights give.
  derived = hp.IntegerHyperSynthesis.from_model(codec.model)
  shipped = codec.model.integer_hyper_synthesis()
  for a, b in zip(derived.kernels + derived.biases, shipped.kernels + shipped.biases):
    np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(derived.thresholds, shipped.thresholds)
  # Compact: float16 weights plus tables, compressed.
  assert os.path.getsize(bundle_path) < 200_000


def test_same_weights_give_the_same_fingerprint_and_other_weights_another(
    tmp_path, make_tiny_hyperprior):
  a = make_tiny_hyperprior(tmp_path / "a.npz", seed=1)
  b = make_tiny_hyperprior(tmp_path / "b.npz", seed=1)
  c = make_tiny_hyperprior(tmp_path / "c.npz", seed=2)
  assert a == b != c


def test_a_tampered_bundle_is_refused(tmp_path, bundle_path):
  with np.load(bundle_path) as data:
    arrays = dict(data)
  arrays["y_frequencies"] = arrays["y_frequencies"].copy()
  arrays["y_frequencies"][:2] += [1, -1]  # still a valid table, but not the fingerprinted one
  path = str(tmp_path / "tampered.npz")
  np.savez(path, **arrays)
  with pytest.raises(pretrained.CodecError, match="fingerprint"):
    pretrained.load_codec(path=path)


def test_a_missing_shipped_quality_names_the_command_that_trains_it(tmp_path, monkeypatch):
  monkeypatch.setattr(bundles, "PRETRAINED_DIR", str(tmp_path))
  with pytest.raises(pretrained.CodecError, match="tfcdi-train-codec --codec=hyperprior "
                     "--quality=4") as error:
    pretrained.load_hyperprior_codec(4)
  assert "--codec_path=" in str(error.value) and "\n" not in str(error.value)


# --- images <-> files --------------------------------------------------------------------------


@pytest.mark.parametrize("height, width", [(17, 33), (1, 1), (64, 64), (70, 130)])
def test_decompress_gives_the_models_reconstruction_at_the_original_size(codec, height, width):
  image = _image(height, width, seed=height)
  data = coding.compress_image(codec, image)
  assert bitstream.parse_header(data).codec_family == bitstream.FAMILY_HYPERPRIOR
  decoded = coding.decompress_bytes(data, codec)
  padded, _ = hp.pad_to_multiple(tf.constant(image[None], tf.float32))
  y, z = codec.model.encode(padded)
  expected = codec.model.decode(y)[0, :height, :width].numpy()
  assert decoded.shape == (height, width, 3) and decoded.dtype == np.uint8
  np.testing.assert_array_equal(decoded, np.rint(expected).astype(np.uint8))
  header, y_read, z_read, indices = coding.read_hyperprior_symbols(data, codec)
  np.testing.assert_array_equal(y_read, y[0].numpy())
  np.testing.assert_array_equal(z_read, z[0].numpy())
  assert header.image_size == (height, width)
  # What a classifier reads from the file is what latents() gives for the image.
  y_hat, sigma_hat = codec.model.latents(padded)
  file_y_hat, file_sigma_hat = codec.model.latent(y_read[None], z_read[None])
  np.testing.assert_array_equal(file_y_hat.numpy(), y_hat.numpy())
  np.testing.assert_array_equal(file_sigma_hat.numpy(), sigma_hat.numpy())


def test_file_bits_are_within_one_percent_of_the_information_content(codec):
  image = _image(256, 512, seed=1)
  data = coding.compress_image(codec, image)
  header, y, z, indices = coding.read_hyperprior_symbols(data, codec)
  info = (bitstream.stream_information_bits(y, indices, codec.y_tables)
          + bitstream.stream_information_bits(z, np.broadcast_to(np.arange(8), z.shape),
                                              codec.z_tables))
  assert info > 10_000  # enough symbols for the fixed costs not to matter
  assert info <= 8 * header.payload_length <= 1.01 * info
  # And near the model's own estimate (scale binning and table quantization cost little).
  out = codec.model(tf.constant(image[None], tf.float32))
  estimate = float(out["y_bits"] + out["z_bits"])
  assert abs(8 * header.payload_length / estimate - 1) < 0.1


def test_another_codecs_file_is_refused(codec, tmp_path, tiny_codec, make_tiny_hyperprior):
  make_tiny_hyperprior(tmp_path / "other.npz", name="hp-tiny", seed=5)
  other = pretrained.load_codec(path=str(tmp_path / "other.npz"))
  data = coding.compress_image(codec, _image(32, 32))
  with pytest.raises(pretrained.CodecError, match="made by codec 'hp-tiny'"):
    coding.decompress_bytes(data, other)
  # Across families, both ways.
  with pytest.raises(pretrained.CodecError):
    coding.decompress_bytes(data, tiny_codec)
  with pytest.raises(pretrained.CodecError):
    coding.decompress_bytes(coding.compress_image(tiny_codec, _image(32, 32)), codec)
  with pytest.raises(pretrained.CodecError, match="two streams"):
    coding.read_symbols(data, codec)


def test_a_header_that_does_not_fit_the_codec_is_refused(codec):
  y = np.zeros((3, 3, 8), np.int32)
  data = bitstream.encode_hyperprior(y, np.zeros_like(y), codec.y_tables,
                                     np.zeros((1, 1, 8), np.int32), codec.z_tables,
                                     codec_name=codec.name, fingerprint=codec.fingerprint,
                                     image_size=(64, 64))
  with pytest.raises(bitstream.BitstreamError, match="latents"):
    coding.decompress_bytes(data, codec)


def _forged_with_y(codec, value, image_size=(32, 32)):
  """A well-formed file of the codec whose first y element is `value` (no encoder makes it)."""
  padded, _ = hp.pad_to_multiple(tf.convert_to_tensor(_image(*image_size)[None], tf.float32))
  y, z = codec.model.encode(padded)
  y, z = y.numpy(), z.numpy()
  y[0, 0, 0, 0] = value
  indices = codec.scale_indices(z, y.shape)
  # The format codes any value (escapes): a forger needs no more than the bitstream writer.
  return bitstream.encode_hyperprior(y[0], indices[0], codec.y_tables, z[0], codec.z_tables,
                                     codec_name=codec.name, fingerprint=codec.fingerprint,
                                     image_size=image_size)


@pytest.mark.parametrize("value", [100_000, -100_000, hyperprior_codec.MAX_Y_MAGNITUDE + 1])
def test_forged_y_beyond_the_range_is_refused_not_decoded(codec, value, monkeypatch):
  # |y| >= 1e5 drove the synthesis to NaN, which became black pixels with exit status 0; y now
  # has a range check on reading, as z has its overflow check.
  data = _forged_with_y(codec, value)
  with pytest.raises(bitstream.BitstreamError, match="implausible latent values"):
    coding.decompress_bytes(data, codec)
  with pytest.raises(bitstream.BitstreamError, match="implausible latent values"):
    coding.read_hyperprior_symbols(data, codec)  # the classifiers' path too
  # The edge of the range is still read, and the writer refuses what the reader would.
  edge = hyperprior_codec.MAX_Y_MAGNITUDE
  _, y, _, _ = coding.read_hyperprior_symbols(_forged_with_y(codec, edge), codec)
  assert y[0, 0, 0] == hyperprior_codec.MAX_Y_MAGNITUDE
  analyse = codec.analyse  # the analysis transform, run tile by tile

  def analyse_beyond(transform, image):
    y = analyse(transform, image)
    return y + value - y[0, 0, 0]

  monkeypatch.setattr(codec, "analyse", analyse_beyond)
  with pytest.raises(bitstream.BitstreamError, match="implausible latent values"):
    coding.compress_image(codec, _image(32, 32))


def test_a_decoder_output_that_is_not_finite_is_an_error_not_black_pixels(codec, monkeypatch):
  # The range checks' backstop: a y within range can still overflow some synthesis.
  data = coding.compress_image(codec, _image(32, 32))
  monkeypatch.setattr(codec, "reconstruct",
                      lambda symbols: tf.fill((1, 32, 32, 3), float("nan")))
  with pytest.raises(bitstream.BitstreamError, match="non-finite pixels"):
    coding.decompress_bytes(data, codec)


def test_decompress_binary_refuses_a_forged_y_with_one_line(codec, bundle_path, tmp_path,
                                                            capsys, recwarn):
  (tmp_path / "forged.tfci").write_bytes(_forged_with_y(codec, 100_000))
  assert _cli(decompress, f"--codec_path={bundle_path}", tmp_path / "forged.tfci",
              tmp_path / "forged.png") == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "implausible latent values" in err
  assert not (tmp_path / "forged.png").exists()
  assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_the_codec_a_file_names_is_found_among_bundles(codec, bundle_path):
  header = bitstream.parse_header(coding.compress_image(codec, _image(16, 16)))
  found = coding.find_codec(header, search_dir=os.path.dirname(bundle_path))
  assert found.fingerprint == codec.fingerprint and found.family == "hyperprior"


def test_evaluation_measures_real_files(codec, tmp_path):
  paths = []
  for i in range(2):
    paths.append(str(tmp_path / f"{i}.png"))
    Image.fromarray(_image(176, 192, seed=i)).save(paths[-1])
  result = evaluation.evaluate_codec_on_images(codec, paths, log=lambda m: None)
  assert result["codec_family"] == "hyperprior" and result["quality"] == 4
  assert result["num_images"] == 2 and result["bpp"] > 0
  assert 0 <= result["payload_overhead_vs_information"] < 0.2


# --- the binaries ------------------------------------------------------------------------------


def test_compress_and_decompress_binaries_round_trip(tmp_path, bundle_path, codec, capsys):
  image = _image(40, 56, seed=3)
  Image.fromarray(image).save(tmp_path / "in.png")
  assert _cli(compress, f"--codec_path={bundle_path}", "--quality=4", tmp_path / "in.png",
              tmp_path / "out.tfci") == 0
  assert _cli(decompress, f"--codec_path={bundle_path}", tmp_path / "out.tfci",
              tmp_path / "back.png") == 0
  back = np.asarray(Image.open(tmp_path / "back.png"))
  np.testing.assert_array_equal(back, coding.decompress_bytes(
      (tmp_path / "out.tfci").read_bytes(), codec))
  # --codec=hyperprior with a bundle; --codec=<bundle> (the older spelling) decodes too.
  assert _cli(compress, "--codec=hyperprior", f"--codec_path={bundle_path}",
              tmp_path / "in.png", tmp_path / "out2.tfci") == 0
  assert _cli(decompress, f"--codec={bundle_path}", tmp_path / "out2.tfci",
              tmp_path / "back2.png") == 0
  out = capsys.readouterr().out
  assert "out.tfci" in out and "bpp" in out


def test_compress_without_a_trained_quality_says_how_to_train_one(tmp_path, monkeypatch, capsys):
  monkeypatch.setattr(bundles, "PRETRAINED_DIR", str(tmp_path))
  Image.fromarray(_image(16, 16)).save(tmp_path / "in.png")
  assert _cli(compress, "--codec=hyperprior", "--quality=4", tmp_path / "in.png",
              tmp_path / "out.tfci") == 1
  err = capsys.readouterr().err.strip()
  assert err.count("\n") == 0 and err.startswith("error: ")
  assert "tfcdi-train-codec --codec=hyperprior --quality=4" in err
  assert not (tmp_path / "out.tfci").exists()


def test_binaries_refuse_mismatched_families(tmp_path, bundle_path, tiny_codec_path, capsys):
  Image.fromarray(_image(16, 16)).save(tmp_path / "in.png")
  assert _cli(compress, "--codec=autoencoder", f"--codec_path={bundle_path}",
              tmp_path / "in.png", tmp_path / "a.tfci") == 1
  assert "of the hyperprior family, not of the autoencoder family" in capsys.readouterr().err
  assert _cli(compress, "--codec=hyperprior", "--operating_point=0.635", tmp_path / "in.png",
              tmp_path / "b.tfci") == 1
  assert "--operating_point is for the autoencoder codec" in capsys.readouterr().err
  assert _cli(compress, f"--codec_path={tiny_codec_path}", tmp_path / "in.png",
              tmp_path / "ae.tfci") == 0
  assert _cli(decompress, "--codec=hyperprior", tmp_path / "ae.tfci", tmp_path / "ae.png") == 1
  assert "file is of the autoencoder family, not of the hyperprior" in capsys.readouterr().err


# --- training ----------------------------------------------------------------------------------


@pytest.mark.skipif(not os.path.isdir(IMAGENETTE), reason="the shared Imagenette is not beside "
                    "the repo")
def test_interrupted_training_resumes_and_finishes_as_a_bundle(tmp_path):
  workdir = str(tmp_path)
  first = hp_train.get_config("tiny", num_steps=3, checkpoint_every=3)
  hp_train.train(4, first, IMAGENETTE, workdir, log=lambda m: None)
  # A second run with more steps (as after a kill) starts at step 3, not 0.
  lines = []
  longer = hp_train.get_config("tiny", num_steps=5, checkpoint_every=3)
  hp_train.train(4, longer, IMAGENETTE, workdir, log=lines.append)
  assert "resuming from step 3" in lines[0]
  assert "step 5/5" in lines[-1]
  _, optimizer, checkpointing = hp_train.build(4, longer, workdir)
  assert checkpointing.restore() == 5 and int(optimizer.iterations.numpy()) == 5
  lines.clear()
  hp_train.train(4, longer, IMAGENETTE, workdir, log=lines.append)
  assert lines == ["[hyperprior q4] already trained for 5 steps"]

  path = hp_train.finalize(4, longer, IMAGENETTE, workdir, "tiny", log=lambda m: None)
  assert os.path.basename(path) == "hyperprior_q4.npz"
  codec = pretrained.load_codec(path=path)
  assert codec.name == "hp-q4-tiny" and codec.family == "hyperprior"
  with open(os.path.join(workdir, "train_summary.json")) as f:
    summary = json.load(f)
  assert summary["steps"] == 5 and summary["fingerprint"] == codec.fingerprint.hex()
  check = summary["training_image_check"]
  assert check["images"] == 2 and 0 <= check["payload_over_information"] < 0.5


def test_compress_and_decompress_trace_each_transform_once_for_every_size(codec):
  # Eager Keras calls cost a fifth of an encode in Python dispatch (BUILD_NOTES.md, Side by side
  # with CompressAI): each transform is one tf.function, whatever the image's size.
  for height, width in ((32, 32), (48, 80), (80, 48)):
    data = coding.compress_image(codec, _image(height, width))
    assert coding.decompress_bytes(data, codec).shape == (height, width, 3)
  traced = codec.__dict__["_traced"]
  assert {name for name, _, _ in traced} == {"analysis", "hyper_analysis", "decode"}
  assert all(function.experimental_get_tracing_count() == 1 for function in traced.values())
