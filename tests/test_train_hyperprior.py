"""Training a hyperprior quality for MS-SSIM: exact resume, the bundle that records it, recipes."""

import json
import os

from absl import app
from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest
import tensorflow as tf

from tfcdi.codec import pretrained
from tfcdi.codec import qualities
from tfcdi.train import hyperprior as hp_train

HERE = os.path.dirname(__file__)
IMAGENETTE = os.path.join(HERE, "..", "..", "shared", "data", "imagenette2_224")
KODAK = os.path.join(HERE, "..", "..", "shared", "data", "kodak")

pytestmark = pytest.mark.skipif(not os.path.isdir(IMAGENETTE),
                                reason="the shared Imagenette is not beside the repo")

MS_SSIM_TINY = hp_train.get_config("tiny", distortion="ms-ssim")


def _eval_loss(model, images, distortion="ms-ssim"):
  # Rounding instead of noise: the loss is a function of the weights alone.
  out = model(images, training=False)
  lmbda = qualities.get_quality(4).lambda_for(distortion)
  return float(hp_train.rate_distortion_loss(out, images, lmbda, distortion)[0])


def test_a_killed_ms_ssim_run_resumes_with_the_same_loss_and_optimizer_state(tmp_path):
  workdir = str(tmp_path)
  images = tf.random.stateless_uniform((2, 64, 64, 3), (1, 2), 0, 255)
  model, optimizer, checkpointing = hp_train.build(4, MS_SSIM_TINY, workdir)
  step = hp_train.make_train_step(model, optimizer, 16.64, "ms-ssim", 2 * 64 * 64)
  for _ in range(3):
    step(images)
  checkpointing.save(3)
  saved_loss = _eval_loss(model, images)
  saved_slots = [v.numpy() for v in optimizer.variables]
  step(images)  # what happens after the checkpoint dies with the process
  assert _eval_loss(model, images) != saved_loss

  # The "new process": everything rebuilt from the workdir.
  model2, optimizer2, checkpointing2 = hp_train.build(4, MS_SSIM_TINY, workdir)
  assert checkpointing2.restore() == 3
  assert _eval_loss(model2, images) == saved_loss
  assert len(optimizer2.variables) == len(saved_slots)
  for restored, saved in zip(optimizer2.variables, saved_slots):
    np.testing.assert_array_equal(restored.numpy(), saved)


def test_ms_ssim_training_resumes_and_ships_a_bundle_that_records_its_distortion(tmp_path):
  workdir = str(tmp_path)
  first = hp_train.get_config("tiny", distortion="ms-ssim", num_steps=3, checkpoint_every=3)
  lines = []
  hp_train.train(4, first, IMAGENETTE, workdir, log=lines.append)
  assert "ms-ssim over 3 of 5 scales, lambda=16.64" in lines[0]  # 64-px crops: 3 scales
  assert "ms-ssim 0." in lines[-1]
  lines.clear()
  longer = hp_train.get_config("tiny", distortion="ms-ssim", num_steps=5, checkpoint_every=3)
  hp_train.train(4, longer, IMAGENETTE, workdir, log=lines.append)
  assert "resuming from step 3" in lines[0] and "step 5/5" in lines[-1]

  path = hp_train.finalize(4, longer, IMAGENETTE, workdir, "tiny", log=lambda m: None)
  assert os.path.basename(path) == "hyperprior_q4_msssim.npz"
  meta = pretrained.read_metadata(path)
  assert (meta["name"], meta["distortion"], meta["lambda"]) == ("hp-q4-msssim-tiny", "ms-ssim",
                                                               16.64)
  codec = pretrained.load_codec(path=path)
  assert codec.distortion == "ms-ssim" and codec.label == "hyperprior q4 msssim"
  assert codec.result_identity()["distortion"] == "ms-ssim"
  # Stores and exports carry the distortion in the codec identity they record.
  assert codec.tables().to_json()["distortion"] == "ms-ssim"
  with open(os.path.join(workdir, "train_summary.json")) as f:
    summary = json.load(f)
  assert summary["distortion"] == "ms-ssim" and summary["lambda"] == 16.64

  # The workdir trains MS-SSIM: resuming it with the MSE loss is refused.
  with pytest.raises(ValueError, match="distortion 'ms-ssim', not 'mse'"):
    hp_train.train(4, hp_train.get_config("tiny", num_steps=7), IMAGENETTE, workdir,
                   log=lambda m: None)


def test_a_hyperprior_workdir_keeps_its_seed_and_one_from_before_seeds_were_recorded_ran_0(
    tmp_path):
  workdir = str(tmp_path)
  hp_train.train(1, hp_train.get_config("tiny", num_steps=1, seed=2), IMAGENETTE, workdir,
                 log=lambda m: None)
  with pytest.raises(ValueError, match="holds a hyperprior run with seed 2, not 3"):
    hp_train.train(1, hp_train.get_config("tiny", num_steps=2, seed=3), IMAGENETTE, workdir,
                   log=lambda m: None)
  run_file = os.path.join(workdir, "run.json")
  with open(run_file) as f:
    recorded = json.load(f)
  del recorded["seed"]  # as run.json was written before it recorded the seed
  with open(run_file, "w") as f:
    json.dump(recorded, f)
  with pytest.raises(ValueError, match="seed 0, not 3"):
    hp_train.train(1, hp_train.get_config("tiny", num_steps=2, seed=3), IMAGENETTE, workdir,
                   log=lambda m: None)


def test_an_earlier_mse_bundle_loads_as_an_mse_codec(tiny_hyperprior_path):
  # Bundles from before the distortion field (the shipped q1 / q4 / q8) are MSE codecs.
  codec = pretrained.load_codec(path=tiny_hyperprior_path)
  assert codec.distortion == "mse" and codec.result_identity()["lambda"] == 0.0130
  assert codec.tables().to_json()["distortion"] == "mse"


def test_the_paper_preset_trains_for_ms_ssim_and_the_cpu_preset_for_mse():
  assert hp_train.get_config("paper").distortion == "ms-ssim"
  assert hp_train.get_config("paper").crop >= 161  # all five scales fit its crops
  assert hp_train.get_config("cpu").distortion == "mse"
  for quality in qualities.TRAINED_QUALITIES:
    recipe = hp_train.RECIPES[f"hp-q{quality}-msssim-cpu"]
    config = recipe.config()
    assert config.distortion == "ms-ssim" and config.crop >= 161
    # About the MSE recipe's pixels per step: the two differ in the distortion, not the work.
    mse = hp_train.RECIPES[f"hp-q{quality}-cpu"].config()
    ratio = config.batch_size * config.crop**2 / (mse.batch_size * mse.crop**2)
    assert 1.0 <= ratio <= 1.25 and config.num_steps == mse.num_steps


def _train_codec_cli(*args):
  from experiments import train_codec  # pylint: disable=g-import-not-at-top
  with flagsaver.flagsaver():
    argv = flags.FLAGS(["train_codec", *map(str, args)])
    return train_codec.main(argv)


@pytest.mark.slow  # a whole recipe: train, bundle, Kodak (about 50 s on a loaded machine)
@pytest.mark.skipif(not os.path.isdir(KODAK), reason="the shared Kodak is not beside the repo")
def test_the_binary_trains_the_ms_ssim_recipe_and_refuses_misplaced_flags(tmp_path):
  kodak = tmp_path / "kodak1"
  kodak.mkdir()
  os.symlink(os.path.abspath(os.path.join(KODAK, "kodim23.png")), kodak / "kodim23.png")
  common = (f"--data_dir={IMAGENETTE}", f"--workdir={tmp_path / 'run'}")
  with pytest.raises(app.UsageError, match="--distortion is for --codec=hyperprior"):
    _train_codec_cli("--distortion=ms-ssim", "--preset=tiny", *common)
  with pytest.raises(app.UsageError, match="drop --distortion"):
    _train_codec_cli("--recipe=hp-q4-msssim-tiny", "--distortion=mse", f"--kodak_dir={kodak}",
                     *common)
  with pytest.raises(app.UsageError, match="hp-q4-msssim-cpu"):
    _train_codec_cli("--recipe=hp-q3-msssim-cpu", f"--kodak_dir={kodak}", *common)
  _train_codec_cli("--recipe=hp-q4-msssim-tiny", f"--kodak_dir={kodak}", *common)
  with open(tmp_path / "run" / "kodak_eval.json") as f:
    result = json.load(f)
  assert (result["codec"], result["distortion"], result["num_images"]) == (
      "hp-q4-msssim-tiny", "ms-ssim", 1)
  assert pretrained.read_metadata(str(tmp_path / "run" / "hyperprior_q4_msssim.npz"))[
      "recipe"] == "hp-q4-msssim-tiny"
  # The same workdir asked to train MSE: one line, no traceback.
  with pytest.raises(app.UsageError, match="distortion 'ms-ssim', not 'mse'"):
    _train_codec_cli("--codec=hyperprior", "--quality=4", "--preset=tiny", "--set=num_steps=6",
                     *common)
