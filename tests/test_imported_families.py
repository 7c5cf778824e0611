"""The families CompressAI checkpoints import into beside the hyperprior: factorized (family 2,
bmshj2018-factorized) and meanscale (family 3, mbt2018-mean). Parity with CompressAI's own outputs
on the committed fixtures (tests/fixtures/compressai/, made by tools/compressai_fixtures.py), no
torch; files, refusals, the Reader, the latent store and the binaries."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfcdi.codec import bitstream
from tfcdi.codec import coding
from tfcdi.codec import factorized_bitstream
from tfcdi.codec import hyperprior as hp
from tfcdi.codec import interface
from tfcdi.codec import registry
from tfcdi.codec.importers import compressai as importer
from tfcdi.codec.importers import synthetic

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "compressai")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGENETTE = os.path.join(ROOT, "..", "shared", "data", "imagenette2_224")
FACTORIZED = "bmshj2018-factorized"
MEAN_SCALE = "mbt2018-mean"
# Float32 parity: y within 1e-4 of CompressAI's, x_hat (on [0, 1]) within 3e-4 (0.08 of a grey
# level): oneDNN picks its convolution kernels by the CPU's vector ISA, and on an AVX-512 / AMX
# CPU their summation order moves the synthesis's output by up to 1.4e-4 (measured; 5e-5 on AVX2,
# and under TF_ENABLE_ONEDNN_OPTS=0).
TOLERANCE = 1e-4
X_HAT_TOLERANCE = 3e-4


def _fixture(arch, quality):
  """(CompressAI's outputs and the recipe, the state dict) of a committed parity fixture."""
  return synthetic.read_fixture(os.path.join(FIXTURES, f"{arch}_q{quality}.npz"))


def _psnr(a, b):
  mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
  return np.inf if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def _import(arch, quality, folder):
  fixture, state = _fixture(arch, quality)
  path = str(folder / f"{arch}_q{quality}.npz")
  importer.import_state_dict(state, arch, quality, path)
  return fixture, registry.load(path), path


@pytest.fixture(scope="module", name="imports")
def fixture_imports(tmp_path_factory):
  """imports(arch, quality) -> (fixture arrays, the loaded codec, its bundle path), each made
  once per module (building a full-size model takes seconds)."""
  folder, made = tmp_path_factory.mktemp("imported"), {}

  def get(arch, quality):
    if (arch, quality) not in made:
      made[arch, quality] = _import(arch, quality, folder)
    return made[arch, quality]
  return get


# --- factorized ------------------------------------------------------------------------------


@pytest.fixture(name="factorized", params=[3, 6], ids=["q3-N128-M192", "q6-N192-M320"])
def fixture_factorized(request, imports):
  """An imported bmshj2018-factorized at each size (the parity tests)."""
  return imports(FACTORIZED, request.param)


@pytest.fixture(name="factorized_q3")
def fixture_factorized_q3(imports):
  """The imported bmshj2018-factorized at quality 3 (what the parity tests leave to one size)."""
  return imports(FACTORIZED, 3)


def test_imported_factorized_reproduces_compressais_y_likelihoods_and_x_hat(factorized):
  fixture, codec, _ = factorized
  assert codec.family == "factorized" and codec.bitstream_family == 2
  image = fixture["image"].astype(np.float32)[None]
  y = codec.model.analysis(image).numpy()
  np.testing.assert_allclose(y, fixture["y"], rtol=0, atol=TOLERANCE)
  out = codec.model(image, training=False)
  # Quantized around the exact medians, as CompressAI does at inference: the same y_hat.
  np.testing.assert_array_equal(out["y_tilde"].numpy(), fixture["y_hat"])
  np.testing.assert_allclose(out["y_likelihoods"].numpy(), fixture["y_likelihoods"], rtol=1e-3,
                             atol=1e-6)
  np.testing.assert_allclose(float(out["bpp"]), float(fixture["bpp"]), rtol=1e-4)
  x_hat = codec.model.synthesis(fixture["y_hat"]).numpy() / 255.0
  np.testing.assert_allclose(x_hat, fixture["x_hat"], rtol=0, atol=X_HAT_TOLERANCE)


def test_imported_factorized_files_decode_to_compressais_reconstruction_at_its_rate(factorized):
  fixture, codec, _ = factorized
  data = codec.compress(fixture["image"])
  assert registry.parse_header(data).codec_family == bitstream.FAMILY_FACTORIZED
  reference = np.clip(np.rint(fixture["x_hat"][0] * 255.0), 0, 255)
  assert _psnr(codec.decompress(data), reference) >= 50.0
  pixels = fixture["image"].shape[0] * fixture["image"].shape[1]
  # The ideal code length under the integer tables is CompressAI's estimate; the file adds its
  # header (about 70 bytes, 3% of this 64x64 crop's file) and the coder's flush.
  _, bits = codec.information_bits(data)
  assert abs(bits / pixels / float(fixture["bpp"]) - 1) < 0.005
  assert abs(len(data) * 8 / pixels / float(fixture["bpp"]) - 1) < 0.05
  latents = codec.read_latents(data)
  assert list(latents) == ["y_hat"]
  np.testing.assert_array_equal(latents["y_hat"], fixture["y_hat"][0])


def test_a_factorized_reader_without_its_model_reads_what_the_codec_gives(factorized_q3,
                                                                         tmp_path):
  fixture, codec, path = factorized_q3
  image = fixture["image"][:32, :48]
  data = codec.compress(image)
  tables = registry.read_tables(path)
  assert not isinstance(tables, interface.Codec) and tables.same_codec(codec)
  from_images = codec.latents(tf.constant(image[None], tf.float32))["y_hat"].numpy()[0]
  np.testing.assert_array_equal(tables.read_latents(data)["y_hat"], from_images)
  assert from_images.shape == (2, 3, codec.channels)
  tables.save_beside(str(tmp_path))
  again = registry.tables_from_json(json.loads(json.dumps(tables.to_json())), str(tmp_path))
  np.testing.assert_array_equal(again.read_latents(data)["y_hat"], from_images)
  served = registry.get("factorized").tables_from_serving(tables.to_json(),
                                                          tables.serving_arrays())
  assert served.same_codec(codec)


def test_damaged_or_foreign_factorized_files_are_refused_in_one_line(factorized_q3, imports):
  fixture, codec, _ = factorized_q3
  data = bytearray(codec.compress(fixture["image"][:16, :16]))
  flipped = bytes(data[:-3]) + bytes([data[-3] ^ 1]) + bytes(data[-2:])
  with pytest.raises(bitstream.BitstreamError, match="checksum"):
    codec.decompress(flipped)
  with pytest.raises(bitstream.BitstreamError, match="truncated"):
    codec.decompress(bytes(data[:30]))
  # Another codec of the family (other weights: another fingerprint) does not read it.
  _, other, _ = imports(FACTORIZED, 6)
  with pytest.raises(interface.CodecError, match="made by codec 'compressai-bmshj2018-fact"):
    other.decompress(bytes(data))
  # The built-in parser names the family it does not parse.
  with pytest.raises(bitstream.BitstreamError, match="a factorized file"):
    bitstream.parse_header(bytes(data))
  # A forged file of implausible symbols (well-formed otherwise) is refused, not synthesized.
  huge = np.full((1, 1, codec.channels), 1 << 17, np.int32)
  forged = factorized_bitstream.encode(huge, codec.y_tables, codec_name=codec.name,
                                       fingerprint=codec.fingerprint, image_size=(16, 16))
  with pytest.raises(bitstream.BitstreamError, match="implausible latent values"):
    codec.decompress(forged)


def test_a_factorized_checkpoint_of_another_quality_or_architecture_is_refused_by_name(tmp_path):
  out = str(tmp_path / "b.npz")
  state = _fixture(FACTORIZED, 3)[1]
  with pytest.raises(importer.ImportError_, match=r"'g_a\.0\.weight' has shape \(128, 3, 5, 5\);"
                     r" bmshj2018-factorized quality 7 \(N=192, M=320\) expects"):
    importer.import_state_dict(state, FACTORIZED, 7, out)
  hyperprior = _fixture("bmshj2018-hyperprior", 3)[1]
  # Its bottleneck codes z (N channels), the factorized one y (M channels).
  with pytest.raises(importer.ImportError_, match=r"'entropy_bottleneck\.matrices\.0' has shape "
                     r"\(128, 3, 1\); bmshj2018-factorized quality 3 \(N=128, M=192\) expects "
                     r"\(192, 3, 1\)"):
    importer.import_state_dict(hyperprior, FACTORIZED, 3, out)
  extra = dict(state, **{"h_a.0.weight": np.zeros([1], np.float32)})
  with pytest.raises(importer.ImportError_, match=r"tensor 'h_a\.0\.weight' \(1 unexpected in "
                     r"all\), which bmshj2018-factorized quality 3"):
    importer.import_state_dict(extra, FACTORIZED, 3, out)
  with pytest.raises(importer.ImportError_, match="has no tensor 'entropy_bottleneck.quantiles'"):
    importer.import_state_dict({k: v for k, v in state.items() if "quantiles" not in k},
                               FACTORIZED, 3, out)
  assert not os.path.exists(out)


@pytest.mark.skipif(not os.path.isdir(IMAGENETTE), reason="the shared Imagenette is not beside "
                    "the repo")
def test_factorized_files_go_into_a_latent_store_and_read_back_as_the_codecs_latents(
    factorized_q3, tmp_path):
  # pylint: disable=g-import-not-at-top  (TF-heavy module only this test needs)
  from tfcdi.data import latent_store
  _, codec, _ = factorized_q3
  source = latent_store.ImageFolderSource(IMAGENETTE, "val", limit=2)
  store_dir = str(tmp_path / "store")
  latent_store.encode_split(source, codec, store_dir, "val", image_size=32, shard_size=2,
                            batch_size=2, progress=False)
  meta = latent_store.read_metadata(store_dir)
  assert meta["codec"]["family"] == "factorized" and meta["latent_shape"] == [2, 2, codec.channels]
  records = list(latent_store.latent_dataset(store_dir, "val").as_numpy_iterator())
  assert [label for _, label in records] == source.labels
  for (y_hat, _), path in zip(records, source.paths):
    view = latent_store.square_view(latent_store.images_lib.decode_rgb(path), 32)
    expected = codec.latents(tf.cast(view, tf.float32)[None])["y_hat"].numpy()[0]
    np.testing.assert_array_equal(y_hat, expected)
  latent_store.build_latent_cache(store_dir, "val", progress=False)
  cached = list(latent_store.latent_dataset(store_dir, "val", cached=True).as_numpy_iterator())
  assert all(np.array_equal(a[0], b[0]) for a, b in zip(cached, records))


# --- mean-scale hyperprior -------------------------------------------------------------------


@pytest.fixture(name="meanscale", params=[3, 5], ids=["q3-N128-M192", "q5-N192-M320"])
def fixture_meanscale(request, imports):
  """An imported mbt2018-mean at each size (the parity tests)."""
  return imports(MEAN_SCALE, request.param)


@pytest.fixture(name="meanscale_q3")
def fixture_meanscale_q3(imports):
  return imports(MEAN_SCALE, 3)


def test_imported_meanscale_reproduces_compressais_y_z_scales_means_and_x_hat(meanscale):
  fixture, codec, _ = meanscale
  assert codec.family == "meanscale" and codec.bitstream_family == 3
  model = codec.model
  image = fixture["image"].astype(np.float32)[None]
  y = model.analysis(image).numpy()
  np.testing.assert_allclose(y, fixture["y"], rtol=0, atol=TOLERANCE)
  np.testing.assert_allclose(model.hyper_analysis(y).numpy(), fixture["z"], rtol=0,
                             atol=TOLERANCE)
  out = model(image, training=False)
  # z is quantized around CompressAI's medians, held to 2^-16.
  np.testing.assert_allclose(out["z_tilde"].numpy(), fixture["z_hat"], rtol=0, atol=2.0 ** -16)
  np.testing.assert_allclose(out["means"].numpy(), fixture["means"], rtol=0, atol=TOLERANCE)
  # CompressAI bounds the scales below at 0.11 inside its likelihood, tfcdi in sigma.
  np.testing.assert_allclose(out["sigma"].numpy(), np.maximum(fixture["scales"], 0.11), rtol=0,
                             atol=TOLERANCE)
  np.testing.assert_allclose(out["y_tilde"].numpy(), fixture["y_hat"], rtol=0, atol=TOLERANCE)
  for name in ("y", "z"):
    np.testing.assert_allclose(out[f"{name}_likelihoods"].numpy(),
                               fixture[f"{name}_likelihoods"], rtol=1e-3, atol=1e-6)
  np.testing.assert_allclose(float(out["bpp"]), float(fixture["bpp"]), rtol=1e-4)
  x_hat = model.synthesis(fixture["y_hat"]).numpy() / 255.0
  np.testing.assert_allclose(x_hat, fixture["x_hat"], rtol=0, atol=X_HAT_TOLERANCE)


def test_the_integer_hyper_synthesis_gives_compressais_means_and_scale_tables(meanscale):
  fixture, codec, _ = meanscale
  data = codec.compress(fixture["image"])
  header, r, z, indices, means = codec.tables().read_streams(data)
  assert header.codec_family == bitstream.FAMILY_MEANSCALE
  # Integer LeakyReLU layers and 16-bit weights and activations: the means within 1e-4.
  np.testing.assert_allclose(means / 2.0 ** 16, fixture["means"][0], rtol=0, atol=TOLERANCE)
  table = hp.scale_table()
  expected = np.searchsorted(table[:-1], np.maximum(fixture["scales"][0], 0.11), side="left")
  assert np.mean(indices == expected) > 0.99
  # The residuals are CompressAI's round(y - mean), bar a y - mean within the integer means'
  # error of a half-integer (none in these fixtures).
  compressai_r = np.rint(fixture["y"][0] - fixture["means"][0])
  near_tie = np.abs(np.abs(fixture["y"][0] - fixture["means"][0]) % 1 - 0.5) < 1e-4
  assert np.array_equal(r[~near_tie], compressai_r[~near_tie])
  # The same batched as alone: batch_compressor writes each image's file.
  pair = np.stack([fixture["image"], fixture["image"][::-1]]).astype(np.float32)
  files = codec.batch_compressor(None)(pair, (64, 64))
  assert files[0] == data and files[1] == codec.compress(fixture["image"][::-1])


def test_imported_meanscale_files_decode_to_compressais_reconstruction_at_its_rate(meanscale):
  fixture, codec, _ = meanscale
  data = codec.compress(fixture["image"])
  latents = codec.read_latents(data)
  assert list(latents) == ["y_hat", "sigma_hat"]
  # A y - mean within a few 1e-6 of a half-integer rounds either way under another CPU's float
  # summation order (q3 holds one, 0.50000215): only such a tie may give another symbol, and
  # the file then decodes to that symbol's reconstruction rather than CompressAI's.
  differs = np.abs(latents["y_hat"] - fixture["y_hat"][0]) > 0.5
  residual = fixture["y"][0] - fixture["means"][0]
  at_tie = np.abs(np.abs(residual) % 1 - 0.5) < 1e-4
  assert not np.any(differs & ~at_tie) and np.mean(differs) < 0.01
  np.testing.assert_allclose(latents["y_hat"][~differs], fixture["y_hat"][0][~differs], rtol=0,
                             atol=TOLERANCE)
  reference = fixture["x_hat"][0] if not differs.any() else (
      codec.model.synthesis(latents["y_hat"][None]).numpy()[0] / 255.0)
  reference = np.clip(np.rint(reference * 255.0), 0, 255)
  assert _psnr(codec.decompress(data), reference) >= 50.0
  # The file against CompressAI's estimate: these random weights' scales all fall below the
  # table's first (0.11), where CompressAI bounds unlikely symbols at 1e-9 (30 bits) and tfcdi
  # codes them as escapes, a little cheaper; a few percent apart.
  pixels = fixture["image"].shape[0] * fixture["image"].shape[1]
  assert abs(len(data) * 8 / pixels / float(fixture["bpp"]) - 1) < 0.05


def test_a_meanscale_reader_without_its_model_reads_what_the_codec_gives(meanscale_q3, tmp_path):
  fixture, codec, path = meanscale_q3
  image = fixture["image"][:48, :32]
  data = codec.compress(image)
  tables = registry.read_tables(path)
  assert not isinstance(tables, interface.Codec) and tables.same_codec(codec)
  from_images = codec.latents(tf.constant(image[None], tf.float32))
  read = tables.read_latents(data)
  for name in ("y_hat", "sigma_hat"):
    assert read[name].shape == (3, 2, codec.channels)
    np.testing.assert_array_equal(read[name], from_images[name].numpy()[0])
  tables.save_beside(str(tmp_path))
  again = registry.tables_from_json(json.loads(json.dumps(tables.to_json())), str(tmp_path))
  np.testing.assert_array_equal(again.read_latents(data)["y_hat"], read["y_hat"])
  served = registry.get("meanscale").tables_from_serving(tables.to_json(),
                                                         tables.serving_arrays())
  assert served.same_codec(codec)


def test_a_hyperprior_codec_refuses_a_meanscale_file_by_its_family_byte(meanscale_q3,
                                                                        tiny_hyperprior):
  # Family 3 shares family 1's layout: only the byte tells them apart. A file written under the
  # hyperprior codec's own name and fingerprint, but as family 3, is still refused.
  fixture, codec, _ = meanscale_q3
  hyperprior = tiny_hyperprior
  r, indices, _, z = codec.symbols_of(fixture["image"].astype(np.float32)[None])
  data = bitstream.encode_hyperprior(r[0], indices[0], codec.y_tables, z[0], codec.z_tables,
                                     codec_name=hyperprior.name,
                                     fingerprint=hyperprior.fingerprint, image_size=(64, 64),
                                     codec_family=bitstream.FAMILY_MEANSCALE)
  with pytest.raises(interface.CodecError, match="the file is a meanscale file; codec "
                     "'hp-tiny' is a hyperprior codec"):
    hyperprior.decompress(data)



def test_forged_meanscale_files_are_refused_before_any_synthesis(meanscale_q3):
  # Hyper-latents no image gives would drive the integer hyper-synthesis past its exact range,
  # or the means past what y_hat_fixed holds: one-line refusals either way.
  fixture, codec, _ = meanscale_q3
  r, indices, _, z = codec.symbols_of(fixture["image"].astype(np.float32)[None])
  for value in (1 << 19, -(1 << 19)):
    forged = bitstream.encode_hyperprior(
        r[0], indices[0], codec.y_tables, np.full_like(z[0], value), codec.z_tables,
        codec_name=codec.name, fingerprint=codec.fingerprint, image_size=(64, 64),
        codec_family=bitstream.FAMILY_MEANSCALE)
    with pytest.raises(bitstream.BitstreamError, match="implausible"):
      codec.decompress(forged)
    with pytest.raises(bitstream.BitstreamError, match="implausible"):
      codec.tables().read_latents(forged)


def test_a_meanscale_checkpoint_of_another_quality_or_architecture_is_refused_by_name(tmp_path):
  out = str(tmp_path / "b.npz")
  state = _fixture(MEAN_SCALE, 3)[1]
  # mbt2018-mean has N=192, M=320 from quality 5 (the hyperprior from 6).
  with pytest.raises(importer.ImportError_, match=r"'g_a\.0\.weight' has shape \(128, 3, 5, 5\);"
                     r" mbt2018-mean quality 5 \(N=192, M=320\) expects"):
    importer.import_state_dict(state, MEAN_SCALE, 5, out)
  hyperprior = _fixture("bmshj2018-hyperprior", 3)[1]
  with pytest.raises(importer.ImportError_, match=r"'h_s\.0\.weight' has shape \(128, 128, 5, "
                     r"5\); mbt2018-mean quality 3 \(N=128, M=192\) expects \(128, 192, 5, 5\)"):
    importer.import_state_dict(hyperprior, MEAN_SCALE, 3, out)
  with pytest.raises(importer.ImportError_, match="no tensor 'h_a.0.weight'"):
    importer.import_state_dict(_fixture(FACTORIZED, 3)[1], MEAN_SCALE, 3, out)
  bad_bound = dict(state, **{"gaussian_conditional.scale_bound": np.asarray([0.2], np.float32)})
  with pytest.raises(importer.ImportError_, match="scale_bound is 0.2"):
    importer.import_state_dict(bad_bound, MEAN_SCALE, 3, out)
  assert not os.path.exists(out)


@pytest.mark.skipif(not os.path.isdir(IMAGENETTE), reason="the shared Imagenette is not beside "
                    "the repo")
def test_meanscale_files_go_into_a_latent_store_and_read_back_as_pairs(meanscale_q3, tmp_path):
  # pylint: disable=g-import-not-at-top  (TF-heavy module only this test needs)
  from tfcdi.data import latent_store
  _, codec, _ = meanscale_q3
  source = latent_store.ImageFolderSource(IMAGENETTE, "val", limit=2)
  store_dir = str(tmp_path / "store")
  latent_store.encode_split(source, codec, store_dir, "val", image_size=32, shard_size=2,
                            batch_size=2, progress=False)
  meta = latent_store.read_metadata(store_dir)
  assert meta["codec"]["family"] == "meanscale" and meta["latent_shape"] == [2, 2, codec.channels]
  # The two-branch cResNet's reader takes it as it takes a hyperprior store.
  records = list(latent_store.hyperprior_latent_dataset(store_dir, "val").as_numpy_iterator())
  assert [label for *_, label in records] == source.labels
  for (y_hat, sigma_hat, _), path in zip(records, source.paths):
    view = latent_store.square_view(latent_store.images_lib.decode_rgb(path), 32)
    expected = codec.latents(tf.cast(view, tf.float32)[None])
    np.testing.assert_array_equal(y_hat, expected["y_hat"].numpy()[0])
    np.testing.assert_array_equal(sigma_hat, expected["sigma_hat"].numpy()[0])
  latent_store.build_latent_cache(store_dir, "val", progress=False)
  cached = list(latent_store.latent_dataset(store_dir, "val", cached=True).as_numpy_iterator())
  assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
             for a, b in zip(cached, records))


def _train_export_and_classify(codec, size, tmp_path, capsys):
  """Files of `codec` (views of `size` pixels) -> a store -> cResNet-39 (tiny, one epoch) ->
  an export -> tfcdi-classify on one more file; returns (training results, export dir, the
  file, the lines classify printed after its label set)."""
  # pylint: disable=g-import-not-at-top  (TF-heavy modules only the slow tests need)
  from absl import flags
  from absl.testing import flagsaver
  from experiments import classify
  from tfcdi import serving
  from tfcdi.data import latent_store
  from tfcdi.train import classifier
  store_dir = str(tmp_path / "store")
  for split, limit in (("train", 4), ("val", 2)):
    source = latent_store.ImageFolderSource(IMAGENETTE, split, limit=limit)
    latent_store.encode_split(source, codec, store_dir, split, image_size=size, shard_size=4,
                              batch_size=4, progress=False)
  workdir = str(tmp_path / "cls")
  results = classifier.train("cresnet39", "latent", classifier.get_config("tiny", epochs=1),
                             workdir=workdir, store_dir=store_dir, preset_name="tiny",
                             log=lambda line: None)
  assert results["complete"] and results["codec"]["name"] == codec.name
  export_dir = serving.export_latent_classifier(workdir, str(tmp_path / "export"))
  assert serving.read_info(export_dir)["family"] == codec.family
  paths, _, _ = latent_store.images_lib.list_images(IMAGENETTE, "val")
  tfci = tmp_path / "view.tfci"
  tfci.write_bytes(serving.compress_for_classification(
      codec, latent_store.images_lib.decode_rgb(paths[0]).numpy(), size=size))
  with flagsaver.flagsaver():
    assert classify.main(flags.FLAGS(["classify", f"--model={export_dir}", "--top_k=3",
                                      str(tfci)])) == 0
  lines = capsys.readouterr().out.splitlines()[1:]  # after the label set
  assert len(lines) == 4
  return results, export_dir, tfci, lines


@pytest.mark.slow  # builds and trains a two-branch cResNet-39 on M=192 channels, exports it
@pytest.mark.skipif(not os.path.isdir(IMAGENETTE), reason="the shared Imagenette is not beside "
                    "the repo")
def test_meanscale_files_train_export_and_classify_through_a_two_branch_cresnet(
    meanscale_q3, tmp_path, capsys):
  from tfcdi import serving  # pylint: disable=g-import-not-at-top
  _, codec, _ = meanscale_q3
  results, export_dir, tfci, lines = _train_export_and_classify(codec, 64, tmp_path, capsys)
  assert results["latent_inputs"] == "y_hat+sigma_hat"
  assert lines[0].startswith(f"{tfci}: 64x64 image, y_hat and sigma_hat 4x4x192")
  # What classify printed is the export's classify signature on what the file holds.
  loaded = serving.load_classifier(export_dir)
  _, (y_fixed, indices) = serving.read_for_classification(tfci.read_bytes(), loaded)
  wnid, _, prob = loaded.top_k(y_fixed, indices)[0]
  assert lines[1].split()[1:3] == [f"{prob:.4f}", wnid]


@pytest.mark.slow  # builds and trains a cResNet-39 on M=192 channels, exports it
@pytest.mark.skipif(not os.path.isdir(IMAGENETTE), reason="the shared Imagenette is not beside "
                    "the repo")
def test_factorized_files_train_export_and_classify_through_a_cresnet(factorized_q3, tmp_path,
                                                                      capsys):
  from tfcdi import serving  # pylint: disable=g-import-not-at-top
  _, codec, _ = factorized_q3
  # One latent at 1/16: 128-pixel views give the 8 x 8 y_hat the tiny preset crops to 7 x 7.
  results, export_dir, tfci, lines = _train_export_and_classify(codec, 128, tmp_path, capsys)
  assert results["input_shape"][-1] == 192
  assert lines[0] == f"{tfci}: 128x128 image, latent 8x8x192, central 7x7"
  loaded = serving.load_classifier(export_dir)
  _, y = serving.read_for_classification(tfci.read_bytes(), loaded)
  wnid, _, prob = loaded.top_k(y)[0]
  assert lines[1].split()[1:3] == [f"{prob:.4f}", wnid]


# --- the binaries ----------------------------------------------------------------------------


def test_naming_an_imported_family_without_a_bundle_says_how_to_get_one():
  from experiments import _cli  # pylint: disable=g-import-not-at-top
  for family, words in (("factorized", "factorized"), ("meanscale", "mean-scale")):
    with pytest.raises(ValueError, match=f"no {family} codec is shipped; import one with "
                       "tfcdi-import-codec and give its bundle with --codec_path"):
      _cli.resolve_codec_flag(family)
    assert registry.get(family).name == family  # what the binaries list is what is registered
    with pytest.raises(interface.CodecError, match=f"no {words} codec is shipped"):
      registry.load(family=family, quality=3)


def _run(module, *args):
  return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=600, check=False)


@pytest.mark.slow  # four runs of binaries, each importing TensorFlow
@pytest.mark.parametrize("arch", [FACTORIZED, MEAN_SCALE])
def test_binaries_import_compress_and_decompress_with_an_imported_codec(arch, tmp_path):
  fixture, state = _fixture(arch, 3)
  checkpoint = tmp_path / "state.npz"
  np.savez(checkpoint, **state)
  bundle = tmp_path / "bundle.npz"
  done = _run("experiments.import_codec", f"--architecture={arch}", "--quality=3",
              f"--checkpoint={checkpoint}", f"--output={bundle}")
  assert done.returncode == 0, done.stderr
  family = importer.architecture(arch).family
  assert f"({family} family, N=128, M=192" in done.stdout
  from tfcdi import imageio  # pylint: disable=g-import-not-at-top
  imageio.save_image(str(tmp_path / "crop.png"), fixture["image"])
  done = _run("experiments.compress", f"--codec_path={bundle}", str(tmp_path / "crop.png"),
              str(tmp_path / "crop.tfci"))
  assert done.returncode == 0, done.stderr
  done = _run("experiments.decompress", f"--codec_path={bundle}", str(tmp_path / "crop.tfci"),
              str(tmp_path / "back.png"))
  assert done.returncode == 0, done.stderr
  decoded, _ = imageio.load_rgb(str(tmp_path / "back.png"))
  assert _psnr(decoded, np.clip(np.rint(fixture["x_hat"][0] * 255.0), 0, 255)) >= 50.0
  data = (tmp_path / "crop.tfci").read_bytes()
  assert np.array_equal(coding.decompress_bytes(data, registry.load(str(bundle))), decoded)
  # A wrong quality is one line naming the tensor.
  refused = _run("experiments.import_codec", f"--architecture={arch}", "--quality=6",
                 f"--checkpoint={checkpoint}", f"--output={tmp_path / 'other.npz'}")
  assert refused.returncode == 1 and refused.stderr.strip().count("\n") == 0
  assert "expects (192, 3, 5, 5)" in refused.stderr
