"""The codecs shipped with the package: they load, work from the command line on every Kodak
image, and their committed Kodak metrics describe exactly these weights."""

import dataclasses
import glob
import json
import os

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest
from PIL import Image

from experiments import compress
from experiments import decompress

from tfcdi import baselines
from tfcdi import metrics
from tfcdi.codec import bitstream
from tfcdi.codec import coding
from tfcdi.codec import model as model_lib
from tfcdi.codec import operating_points
from tfcdi.codec import pretrained
from tfcdi.codec import qualities
from tfcdi.codec import registry

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KODAK = os.path.join(REPO, "..", "shared", "data", "kodak")


def _cli(module, *args) -> int:
  """A binary's main in-process, its flags parsed as from a command line (a process per call
  would cost seconds of TensorFlow import; test_compress_cli runs the real entry point)."""
  with flagsaver.flagsaver():
    return module.main(flags.FLAGS([module.__name__, *map(str, args)])) or 0

# Two Kodak images recompressed to check a shipped codec's committed per-image numbers (both
# landscape, so one trace of each graph; portrait images take the command-line test).
RECHECKED_IMAGES = ("kodim01.png", "kodim02.png")


def _recomputed_matches_committed(codec, result):
  """Compresses RECHECKED_IMAGES with `codec` and compares with the committed evaluation."""
  if not os.path.isdir(KODAK):  # after the identity checks, which need no Kodak
    pytest.skip("the shared Kodak is not beside the repo")
  committed = {row["image"]: row for row in result["images"]}
  for name in RECHECKED_IMAGES:
    original = np.asarray(Image.open(os.path.join(KODAK, name)).convert("RGB"))
    data = codec.compress(original)
    row = committed[name]
    assert (row["height"], row["width"]) == original.shape[:2]
    assert len(data) == row["bytes"], name
    assert metrics.bpp_from_bytes(len(data), *original.shape[:2]) == pytest.approx(row["bpp"])
    back = codec.decompress(data)
    assert back.shape == original.shape and back.dtype == np.uint8
    # PSNR straight from the definition, not through tfcdi.metrics.
    mse = np.mean((original.astype(np.float64) - back.astype(np.float64)) ** 2)
    assert 10 * np.log10(255.0 ** 2 / mse) == pytest.approx(row["psnr"], abs=1e-3), name
    assert metrics.ms_ssim(original, back) == pytest.approx(row["ms_ssim"], abs=1e-4), name


@pytest.mark.parametrize("op", list(operating_points.OPERATING_POINTS))
def test_shipped_codec_loads_and_matches_its_kodak_metrics(op):
  codec = pretrained.load_codec(op)
  assert codec.name == f"ae-{op}-cpu"
  with open(os.path.join(pretrained.PRETRAINED_DIR, f"kodak_eval_{op}.json")) as f:
    result = json.load(f)
  assert result["fingerprint"] == codec.fingerprint.hex()
  assert result["num_images"] == 24
  _recomputed_matches_committed(codec, result)


SHIPPED_HISTORIES = sorted(glob.glob(os.path.join(pretrained.PRETRAINED_DIR, "history_*.json")))


def test_the_codecs_that_name_a_recipe_ship_its_history():
  named = [op for op in operating_points.OPERATING_POINTS
           if pretrained.read_metadata(pretrained.shipped_path(op)).get("recipe")]
  assert named  # at least the recipe codecs of 0.330 and 0.635
  assert sorted(os.path.basename(p) for p in SHIPPED_HISTORIES) == sorted(
      f"history_{op}.json" for op in named)


@pytest.mark.parametrize("path", SHIPPED_HISTORIES, ids=os.path.basename)
def test_a_shipped_history_is_its_recipes_run_and_ends_at_the_shipped_weights(path):
  # The history is what a user reruns (tfcdi-train-codec --recipe=...): it must be the named
  # recipe's schedule to its last step, and its last milestone the shipped codec's evaluation.
  from tfcdi.train import codec as codec_train  # pylint: disable=g-import-not-at-top
  op = os.path.basename(path)[len("history_"):-len(".json")]
  with open(path) as f:
    history = json.load(f)
  meta = pretrained.read_metadata(pretrained.shipped_path(op))
  recipe = codec_train.get_recipe(history["recipe"])
  assert meta["recipe"] == recipe.name and recipe.operating_point == op
  assert history["config"] == json.loads(json.dumps(dataclasses.asdict(recipe.config())))
  assert [m["step"] for m in history["milestones"]][-1] == recipe.config().num_steps
  last = history["milestones"][-1]
  with open(os.path.join(pretrained.PRETRAINED_DIR, f"kodak_eval_{op}.json")) as f:
    shipped = json.load(f)
  assert last["fingerprint"] == meta["fingerprint"] == shipped["fingerprint"]
  assert (last["bpp"], last["ms_ssim"]) == pytest.approx((shipped["bpp"], shipped["ms_ssim"]))


@pytest.mark.skipif(not os.path.isdir(KODAK), reason="the shared Kodak is not beside the repo")
def test_every_kodak_image_round_trips_through_the_command_line(tmp_path):
  compressed, restored = tmp_path / "tfci", tmp_path / "png"
  assert _cli(compress, "--operating_point=0.0983", KODAK, compressed) == 0
  assert _cli(decompress, compressed, restored) == 0
  originals = sorted(glob.glob(os.path.join(KODAK, "*.png")))
  assert len(originals) == 24
  codec = pretrained.load_codec("0.0983")
  for path in originals:
    stem = os.path.splitext(os.path.basename(path))[0]
    original = np.asarray(Image.open(path).convert("RGB"))
    back = np.asarray(Image.open(restored / f"{stem}.png"))
    assert back.shape == original.shape  # portrait images too (512x768)
    data = (compressed / f"{stem}.tfci").read_bytes()
    assert back.shape[:2] == bitstream.parse_header(data).image_size
  # The file holds exactly the symbols the encoder produces (checked on one image).
  image = np.asarray(Image.open(originals[0]).convert("RGB"))
  _, symbols = coding.read_symbols((compressed / "kodim01.tfci").read_bytes(), codec)
  padded, _ = model_lib.pad_to_multiple(image[None].astype(np.float32))
  np.testing.assert_array_equal(symbols, codec.model.encode(padded).numpy()[0])


SHIPPED_HYPERPRIOR = sorted(glob.glob(os.path.join(pretrained.PRETRAINED_DIR, "hyperprior_q*.npz")))


@pytest.mark.parametrize("path", SHIPPED_HYPERPRIOR, ids=os.path.basename)
def test_shipped_hyperprior_quality_loads_and_matches_its_kodak_metrics(path):
  # hyperprior_q4.npz (MSE, picked by --quality) or hyperprior_q4_msssim.npz (MS-SSIM, by path).
  stem = os.path.basename(path)[len("hyperprior_q"):-len(".npz")]
  quality, _, tag = stem.partition("_")
  codec = (registry.load(path) if tag else pretrained.load_hyperprior_codec(quality=quality))
  assert codec.name == f"hp-q{quality}{'-' + tag if tag else ''}-cpu"
  assert codec.distortion == ("ms-ssim" if tag == "msssim" else "mse")
  with open(os.path.join(pretrained.PRETRAINED_DIR, f"kodak_eval_hyperprior_q{stem}.json")) as f:
    result = json.load(f)
  assert result["fingerprint"] == codec.fingerprint.hex()
  assert result["num_images"] == 24 and result["quality"] == int(quality)
  assert result.get("distortion", "mse") == codec.distortion  # older evaluations: MSE codecs
  _recomputed_matches_committed(codec, result)


@pytest.mark.parametrize("quality", qualities.TRAINED_QUALITIES)
def test_each_trained_quality_selects_a_shipped_codec_above_jpeg_on_ms_ssim(quality):
  # --quality picks the MSE codec, or the MS-SSIM one where no MSE codec ships (q8: its MSE
  # codec lost to JPEG on every metric). Whichever it picks beats JPEG on MS-SSIM at its own
  # Kodak rate (JPEG's curve interpolated, as the codec claims do).
  codec = pretrained.load_hyperprior_codec(quality=quality)
  tag = "" if codec.distortion == "mse" else "_msssim"
  with open(os.path.join(pretrained.PRETRAINED_DIR,
                         f"kodak_eval_hyperprior_q{quality}{tag}.json")) as f:
    result = json.load(f)
  assert result["fingerprint"] == codec.fingerprint.hex()
  with open(os.path.join(REPO, "reports", "codec", "rd_curve.json")) as f:
    jpeg = json.load(f)["curves"]["jpeg"]["points"]
  at_rate = baselines.interpolate_at_bpp([p["bpp"] for p in jpeg], [p["ms_ssim"] for p in jpeg],
                                         result["bpp"])
  assert at_rate.in_range and result["ms_ssim"] > at_rate.value
  if quality == 8:
    assert codec.distortion == "ms-ssim"
    assert not os.path.exists(os.path.join(pretrained.PRETRAINED_DIR, "hyperprior_q8.npz"))


@pytest.mark.skipif(not SHIPPED_HYPERPRIOR or not os.path.isdir(KODAK),
                    reason="no hyperprior quality shipped, or the shared Kodak is missing")
def test_shipped_hyperprior_round_trips_a_kodak_image_at_its_measured_rate(tmp_path):
  quality = os.path.basename(SHIPPED_HYPERPRIOR[0])[len("hyperprior_q"):-len(".npz")]
  source = os.path.join(KODAK, "kodim23.png")
  compressed, restored = tmp_path / "a.tfci", tmp_path / "a.png"
  assert _cli(compress, "--codec=hyperprior", f"--quality={quality}", source, compressed) == 0
  assert _cli(decompress, compressed, restored) == 0
  with open(os.path.join(pretrained.PRETRAINED_DIR, f"kodak_eval_hyperprior_q{quality}.json")) as f:
    measured = {e["image"]: e for e in json.load(f)["images"]}["kodim23.png"]
  # The same bytes the committed evaluation counted, and the same reconstruction.
  assert compressed.stat().st_size == measured["bytes"]
  original = np.asarray(Image.open(source).convert("RGB"), np.float64)
  back = np.asarray(Image.open(restored), np.float64)
  psnr = 10 * np.log10(255.0 ** 2 / np.mean((original - back) ** 2))
  assert psnr == pytest.approx(measured["psnr"], abs=0.05)


SHIPPED_CLASSIFIERS = sorted(glob.glob(os.path.join(pretrained.PRETRAINED_DIR, "classifiers", "*")))


@pytest.mark.parametrize("export_dir", SHIPPED_CLASSIFIERS, ids=os.path.basename)
def test_shipped_classifiers_load_through_the_codec_interface_and_read_their_codecs_files(
    export_dir):
  # These exports predate the codec identity kept whole (serving._tables_of reads their
  # separate variables); they must keep loading and classifying.
  from tfcdi import serving  # pylint: disable=g-import-not-at-top
  classifier = serving.load_classifier(export_dir)
  info = serving.read_info(export_dir)
  codec = pretrained.load_codec(info["codec"]["operating_point"])
  assert classifier.tables.same_codec(codec) and classifier.family == codec.family
  np.testing.assert_array_equal(classifier.tables.centers,
                                codec.model.quantizer.centers.numpy())
  image = np.random.default_rng(0).integers(0, 256, (300, 260, 3), dtype=np.uint8)
  data = serving.compress_for_classification(codec, image)
  header, symbols = serving.read_for_classification(data, classifier)
  assert symbols.shape == (32, 32, codec.channels)
  top = classifier.top_k(symbols)
  assert len(top) == 5 and all(wnid in info["classes"] for wnid, _, _ in top)
