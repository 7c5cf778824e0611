"""Codec training: the loss goes down, checkpoints resume, the bundle is made."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfcdi.codec import pretrained
from tfcdi.train import codec as codec_train

IMAGENETTE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                          "imagenette2_224")

pytestmark = pytest.mark.skipif(not os.path.isdir(IMAGENETTE),
                                reason="the shared Imagenette is not beside the repo")


def test_interrupted_training_resumes_from_its_checkpoint(tmp_path):
  workdir = str(tmp_path)
  first = codec_train.get_config("tiny", num_steps=3, checkpoint_every=3)
  codec_train.train("0.0983", first, IMAGENETTE, workdir, log=lambda m: None)
  # A second run with more steps (as after a kill) starts at step 3, not 0.
  lines = []
  longer = codec_train.get_config("tiny", num_steps=5, checkpoint_every=3)
  codec_train.train("0.0983", longer, IMAGENETTE, workdir, log=lines.append)
  assert "resuming from step 3, computing in float32" in lines[0]
  assert "step 5/5" in lines[-1]
  _, _, checkpointing = codec_train.build(
      codec_train.operating_points.get_operating_point("0.0983"), longer, workdir)
  assert checkpointing.restore() == 5
  # A finished run does nothing but say so.
  lines.clear()
  codec_train.train("0.0983", longer, IMAGENETTE, workdir, log=lines.append)
  assert lines == ["[codec 0.0983] already trained for 5 steps"]

  path = codec_train.finalize("0.0983", longer, IMAGENETTE, workdir, "tiny",
                              log=lambda m: None)
  codec = pretrained.load_codec(path=path)
  assert codec.name == "ae-0.0983-tiny"
  with open(os.path.join(workdir, "train_summary.json")) as f:
    summary = json.load(f)
  assert summary["steps"] == 5 and sum(summary["symbol_counts"]) > 0
  np.testing.assert_array_equal(summary["frequencies"], codec.frequencies)


def test_restore_gives_the_same_weights_as_before_the_interruption(tmp_path):
  config = codec_train.get_config("tiny", num_steps=2, checkpoint_every=2)
  codec_train.train("0.635", config, IMAGENETTE, str(tmp_path), log=lambda m: None)
  op = codec_train.operating_points.get_operating_point("0.635")
  a, opt_a, ck_a = codec_train.build(op, config, str(tmp_path))
  ck_a.restore()
  b, _, ck_b = codec_train.build(op, config, str(tmp_path))
  ck_b.restore()
  for va, vb in zip(a.weights, b.weights):
    np.testing.assert_array_equal(va.numpy(), vb.numpy())
  # The optimizer's moments came back too (Adam's iteration count is the step).
  assert int(opt_a.iterations.numpy()) == 2


def test_a_seed_sets_the_initial_weights_and_a_workdir_keeps_the_seed_it_started_with(
    tmp_path):
  op = codec_train.operating_points.get_operating_point("0.0983")

  def weights_after_one_step(seed, name):
    config = codec_train.get_config("tiny", num_steps=1, checkpoint_every=1, seed=seed)
    codec_train.train(op.name, config, IMAGENETTE, str(tmp_path / name), log=lambda m: None)
    model, _, checkpointing = codec_train.build(op, config, str(tmp_path / name))
    checkpointing.restore()
    return [w.numpy() for w in model.weights]

  first, again, other = (weights_after_one_step(1, "a"), weights_after_one_step(1, "b"),
                         weights_after_one_step(2, "c"))
  # One seed, one initialisation: Adam's first step moves a weight by about the learning rate
  # (1e-3) whatever its gradient's size, so where float rounding flips a tiny gradient's sign
  # the two runs are 2e-3 apart; another seed's initial weights differ by far more.
  for a, b in zip(first, again):
    np.testing.assert_allclose(a, b, atol=2.5e-3)
  assert not np.allclose(first[0], other[0], atol=1e-2)
  # Resuming a run with another seed would make a codec of neither: refused, the run untouched.
  with pytest.raises(ValueError, match=r"holds a codec run with seed 1, not 2"):
    codec_train.train(op.name, codec_train.get_config("tiny", num_steps=2, seed=2), IMAGENETTE,
                      str(tmp_path / "a"), log=lambda m: None)
  with pytest.raises(ValueError, match=r"operating_point '0.0983', not '0.635'"):
    codec_train.train("0.635", codec_train.get_config("tiny", num_steps=2, seed=1), IMAGENETTE,
                      str(tmp_path / "a"), log=lambda m: None)
  _, _, checkpointing = codec_train.build(op, codec_train.get_config("tiny"), str(tmp_path / "a"))
  assert checkpointing.restore() == 1


def test_finalize_refuses_an_unfinished_run(tmp_path):
  config = codec_train.get_config("tiny", num_steps=2, checkpoint_every=2)
  codec_train.train("0.635", config, IMAGENETTE, str(tmp_path), log=lambda m: None)
  with pytest.raises(ValueError, match="trained for 2 of 4 steps"):
    codec_train.finalize("0.635", codec_train.get_config("tiny", num_steps=4), IMAGENETTE,
                         str(tmp_path), "tiny", log=lambda m: None)


def test_unknown_preset_is_refused():
  with pytest.raises(ValueError, match="unknown codec preset"):
    codec_train.get_config("huge")


def test_bfloat16_training_resumes_a_float32_checkpoint_and_ships_float32(tmp_path):
  # The variables are float32 under both policies: a run may switch precision between resumes,
  # and the bundle it ships is the same kind of file.
  workdir = str(tmp_path)
  first = codec_train.get_config("tiny", num_steps=2, checkpoint_every=2)
  codec_train.train("0.330", first, IMAGENETTE, workdir, log=lambda m: None)
  lines = []
  mixed = codec_train.get_config("tiny", num_steps=4, checkpoint_every=2,
                                 precision="mixed_bfloat16")
  codec_train.train("0.330", mixed, IMAGENETTE, workdir, log=lines.append)
  assert "resuming from step 2, computing in mixed_bfloat16" in lines[0]
  assert "step 4/4" in lines[-1] and "nan" not in lines[-1]
  op = codec_train.operating_points.get_operating_point("0.330")
  model, _, checkpointing = codec_train.build(op, mixed, workdir, "mixed_bfloat16")
  assert checkpointing.restore() == 4
  assert {v.dtype for v in model.weights} == {"float32"}
  out = model(tf.zeros([1, 32, 32, 3]), training=False)
  assert out["y"].dtype == tf.float32 and out["reconstruction"].dtype == tf.float32
  path = codec_train.finalize("0.330", mixed, IMAGENETTE, workdir, "tiny", log=lambda m: None)
  assert pretrained.load_codec(path=path).model.conv_dtype is None


def test_extending_a_decayed_run_keeps_the_decayed_rate(tmp_path):
  # A longer num_steps moves the decay boundary past the current step; the rate must not jump
  # back to the full one (that wrecked a codec, see DecayOnce).
  workdir = str(tmp_path)
  op = codec_train.operating_points.get_operating_point("0.0983")
  first = codec_train.get_config("tiny", num_steps=4, checkpoint_every=2, decay_at=0.5)
  codec_train.train("0.0983", first, IMAGENETTE, workdir, log=lambda m: None)
  longer = codec_train.get_config("tiny", num_steps=40, checkpoint_every=2, decay_at=0.5)
  _, optimizer, checkpointing = codec_train.build(op, longer, workdir)
  assert checkpointing.restore() == 4
  assert int(checkpointing.ckpt.decayed_at.numpy()) == 2
  assert float(optimizer.learning_rate) == pytest.approx(1e-4)
  # A fresh run of the same length is at the full rate.
  _, fresh, _ = codec_train.build(op, longer, str(tmp_path / "fresh"))
  assert float(fresh.learning_rate) == pytest.approx(1e-3)


def test_init_from_a_bundle_continues_its_step_count_with_a_new_optimizer(tmp_path):
  source = str(tmp_path / "source")
  config = codec_train.get_config("tiny", num_steps=3, checkpoint_every=3)
  codec_train.train("0.0983", config, IMAGENETTE, source, log=lambda m: None)
  bundle = codec_train.finalize("0.0983", config, IMAGENETTE, source, "tiny", log=lambda m: None)
  lines = []
  resumed = codec_train.get_config("tiny", num_steps=5, checkpoint_every=5, init_from=bundle,
                                   learning_rate=1e-4)
  codec_train.train("0.0983", resumed, IMAGENETTE, str(tmp_path / "next"), log=lines.append)
  assert "initialized from" in lines[0] and "3 steps" in lines[0]
  assert "step 5/5" in lines[-1]
  with pytest.raises(ValueError, match="is a 0.0983 codec"):
    codec_train.train("0.635", codec_train.get_config("tiny", num_steps=5, init_from=bundle),
                      IMAGENETTE, str(tmp_path / "wrong"), log=lambda m: None)
  # A run with twice the filters goes on from the narrow bundle, widened; one with filters the
  # bundle's do not divide is refused.
  lines.clear()
  wide = codec_train.get_config("tiny", num_steps=4, checkpoint_every=4, init_from=bundle,
                                filters=(16, 32), learning_rate=1e-4)
  codec_train.train("0.0983", wide, IMAGENETTE, str(tmp_path / "wide"), log=lines.append)
  assert "widened from filters [8, 16]" in lines[0] and "step 4/4" in lines[-1]
  with pytest.raises(ValueError, match="with filters \\[8, 16\\]; this run trains 0.0983 with"):
    codec_train.train("0.0983", codec_train.get_config("tiny", num_steps=5, init_from=bundle,
                                                       filters=(12, 16)),
                      IMAGENETTE, str(tmp_path / "odd"), log=lambda m: None)


@pytest.mark.parametrize("target, active", [(0.0, True), (50.0, False)])
def test_training_step_charges_the_rate_only_above_the_target_entropy(tmp_path, target, active):
  # The step that train() runs, on a fixed batch: above Ht the loss is MSE + beta (H - Ht) with
  # H the symbols' real entropy; below Ht it is the MSE alone. H and Ht swapped in the hinge
  # would charge nothing at Ht = 0 and beta * (50 - H) at Ht = 50.
  op = codec_train.operating_points.get_operating_point("0.0983")
  config = codec_train.get_config("tiny")
  model, optimizer, _ = codec_train.build(op, config, str(tmp_path))
  images = tf.random.uniform([2, 32, 32, 3], 0, 255, seed=4)
  beta = 7.0
  step = codec_train.make_train_step(model, optimizer, tf.constant(beta), tf.constant(target))
  out = {k: float(v) for k, v in step(images).items()}
  assert out["entropy"] > 0
  expected = out["mse"] + (beta * (out["entropy"] - target) if active else 0.0)
  assert out["loss"] == pytest.approx(expected, rel=1e-5)


KODAK = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "kodak")


@pytest.fixture(name="two_kodak_images")
def fixture_two_kodak_images(tmp_path):
  folder = tmp_path / "kodak2"
  folder.mkdir()
  for name in ("kodim05.png", "kodim23.png"):
    os.symlink(os.path.abspath(os.path.join(KODAK, name)), folder / name)
  return str(folder)


def test_a_recipe_trains_from_scratch_and_records_its_history_at_each_milestone(
    tmp_path, two_kodak_images):
  recipe = codec_train.get_recipe("ae-0.0983-tiny")
  workdir = str(tmp_path / "run")
  bundle = codec_train.train_recipe(recipe, IMAGENETTE, two_kodak_images, workdir,
                                    log=lambda m: None)
  history = codec_train.read_history(workdir)
  assert history["recipe"] == "ae-0.0983-tiny"
  assert [m["step"] for m in history["milestones"]] == list(recipe.milestones) == [2, 4]
  for m in history["milestones"]:
    assert m["num_images"] == 2 and m["bpp"] > 0 and 0 < m["ms_ssim"] <= 1
  meta = pretrained.read_metadata(bundle)
  assert meta["recipe"] == recipe.name == meta["name"]
  assert meta["trained_steps"] == 4
  # The last milestone measured the very weights and table that ship.
  with open(os.path.join(workdir, "kodak_eval.json")) as f:
    final = json.load(f)
  assert history["milestones"][-1]["fingerprint"] == final["fingerprint"]
  assert history["milestones"][-1]["bpp"] == pytest.approx(final["bpp"])


def test_a_recipe_killed_while_measuring_a_milestone_measures_it_on_resume(
    tmp_path, two_kodak_images, monkeypatch):
  recipe = codec_train.get_recipe("ae-0.0983-tiny")
  workdir = str(tmp_path / "run")
  measure = codec_train.measure_milestone

  def killed_at_first_milestone(*args, **kwargs):
    raise KeyboardInterrupt

  monkeypatch.setattr(codec_train, "measure_milestone", killed_at_first_milestone)
  with pytest.raises(KeyboardInterrupt):
    codec_train.train_recipe(recipe, IMAGENETTE, two_kodak_images, workdir, log=lambda m: None)
  assert codec_train.read_history(workdir) is None
  monkeypatch.setattr(codec_train, "measure_milestone", measure)
  lines = []
  codec_train.train_recipe(recipe, IMAGENETTE, two_kodak_images, workdir, log=lines.append)
  assert any("resuming from step 2" in line for line in lines)
  assert [m["step"] for m in codec_train.read_history(workdir)["milestones"]] == [2, 4]


def test_a_recipe_with_a_start_trains_the_start_first_widens_it_and_names_its_bundle(
    tmp_path, two_kodak_images):
  recipe = codec_train.get_recipe("ae-0.0983-tiny-wide")
  workdir = str(tmp_path / "run")
  bundle = codec_train.train_recipe(recipe, IMAGENETTE, two_kodak_images, workdir,
                                    log=lambda m: None)
  start = pretrained.read_metadata(os.path.join(workdir, "start", "codec_0.0983.npz"))
  assert (start["name"], start["trained_steps"], start["filters"]) == ("ae-0.0983-tiny", 4,
                                                                       [8, 16])
  meta = pretrained.read_metadata(bundle)
  assert meta["name"] == meta["recipe"] == "ae-0.0983-tiny-wide"
  assert (meta["trained_steps"], meta["filters"]) == (6, [16, 32])
  history = codec_train.read_history(workdir)
  assert history["start"] == "ae-0.0983-tiny"
  assert [m["step"] for m in history["milestones"]] == [6]
  # A run with checkpoints of its own no longer needs its start: resumed, or extended, it goes
  # on from them and does not train the start again.
  shutil.rmtree(os.path.join(workdir, "start"))
  os.remove(bundle)
  codec_train.train_recipe(recipe, IMAGENETTE, two_kodak_images, workdir, log=lambda m: None)
  assert not os.path.exists(os.path.join(workdir, "start"))
  assert pretrained.read_metadata(bundle)["fingerprint"] == meta["fingerprint"]


def test_long_recipes_clip_the_gradient_norm_and_the_shipped_short_one_is_unchanged(tmp_path):
  ops = codec_train.operating_points
  for name, lr, clip in (("ae-0.635-cpu", 5e-4, 10_000.0), ("ae-0.330-cpu", 5e-4, 10_000.0),
                         ("ae-0.635-cpu-full", 5e-4, 10_000.0), ("ae-0.0983-cpu", 1e-3, None)):
    recipe = codec_train.get_recipe(name)
    config = recipe.config()
    _, optimizer, _ = codec_train.build(ops.get_operating_point(recipe.operating_point), config,
                                        str(tmp_path / name))
    assert optimizer.global_clipnorm == clip, name
    assert float(optimizer.learning_rate) == pytest.approx(lr), name


def test_unknown_recipe_names_the_known_ones():
  with pytest.raises(ValueError, match="ae-0.635-cpu"):
    codec_train.get_recipe("ae-0.5-cpu")


def _train_codec_cli(*args):
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl.testing import flagsaver  # pylint: disable=g-import-not-at-top
  from experiments import train_codec  # pylint: disable=g-import-not-at-top
  with flagsaver.flagsaver():
    argv = flags.FLAGS(["train_codec", *map(str, args)])
    return train_codec.main(argv)


def test_the_binary_trains_a_recipe_and_refuses_settings_the_recipe_fixes(tmp_path,
                                                                           two_kodak_images):
  from absl import app  # pylint: disable=g-import-not-at-top
  common = (f"--data_dir={IMAGENETTE}", f"--workdir={tmp_path / 'run'}")
  with pytest.raises(app.UsageError, match="--recipe fixes the training settings; drop "
                                           "--set"):
    _train_codec_cli("--recipe=ae-0.0983-tiny", "--set=num_steps=9", "--set=precision=float32",
                     f"--kodak_dir={two_kodak_images}", *common)
  with pytest.raises(app.UsageError, match="--kodak_dir is required"):
    _train_codec_cli("--recipe=ae-0.0983-tiny", *common)
  with pytest.raises(app.UsageError, match="unknown codec recipe 'ae-9-cpu'"):
    _train_codec_cli("--recipe=ae-9-cpu", f"--kodak_dir={two_kodak_images}", *common)
  _train_codec_cli("--recipe=ae-0.0983-tiny", f"--kodak_dir={two_kodak_images}", *common)
  history = codec_train.read_history(str(tmp_path / "run"))
  assert [m["step"] for m in history["milestones"]] == [2, 4]
  assert history["config"]["seed"] == 0
  assert os.path.exists(tmp_path / "run" / "codec_0.0983.npz")
  # A replicate of the recipe is another seed in its own workdir; its history says which.
  with pytest.raises(app.UsageError, match="holds a codec run with seed 0, not 1"):
    _train_codec_cli("--recipe=ae-0.0983-tiny", "--seed=1", f"--kodak_dir={two_kodak_images}",
                     *common)
  _train_codec_cli("--recipe=ae-0.0983-tiny", "--seed=1", f"--kodak_dir={two_kodak_images}",
                   f"--data_dir={IMAGENETTE}", f"--workdir={tmp_path / 'seed1'}")
  replicate = codec_train.read_history(str(tmp_path / "seed1"))
  assert (replicate["recipe"], replicate["config"]["seed"]) == ("ae-0.0983-tiny", 1)
  assert replicate["milestones"][-1]["fingerprint"] != history["milestones"][-1]["fingerprint"]


def test_the_binary_refuses_a_start_bundle_it_cannot_widen_in_one_line(tmp_path):
  from absl import app  # pylint: disable=g-import-not-at-top
  source = str(tmp_path / "source")
  config = codec_train.get_config("tiny", num_steps=2, checkpoint_every=2)
  codec_train.train("0.0983", config, IMAGENETTE, source, log=lambda m: None)
  bundle = codec_train.finalize("0.0983", config, IMAGENETTE, source, "tiny", log=lambda m: None)
  with pytest.raises(app.UsageError, match="with filters \\[8, 16\\]; this run trains 0.0983 "
                                           "with \\[12, 16\\]"):
    _train_codec_cli("--operating_point=0.0983", "--preset=tiny", "--set=filters=12,16",
                     f"--init_from_bundle={bundle}", f"--data_dir={IMAGENETTE}",
                     f"--workdir={tmp_path / 'odd'}")
