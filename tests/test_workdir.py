"""The training loops' shared workdir: runs checkpointed before it existed resume under it, and
results JSON are written whole or not at all."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcdi.train import classifier as classifier_train
from tfcdi.train import codec as codec_train
from tfcdi.train import joint as joint_train
from tfcdi.train import segmenter as segmenter_train
from tfcdi.train import workdir


def _model(seed: int) -> keras.Model:
  keras.utils.set_random_seed(seed)
  inputs = keras.Input((4,))
  return keras.Model(inputs, keras.layers.Dense(3)(inputs))


def _optimizer(model) -> keras.optimizers.Optimizer:
  optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
  optimizer.build(model.trainable_variables)
  return optimizer


def _train_one_step(model, optimizer) -> None:
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(model(tf.ones((2, 4))) ** 2)
  optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                model.trainable_variables))


# How each loop wrote its checkpoints before tfcdi/train/workdir.py: the checkpoint's entries
# (its objects' names and its counters') and whether files were numbered by the step. Spelled
# out here as they were, not taken from the module, so a rename there fails this test.
OLD_LAYOUTS = {
    "classifier": ({"epoch": 3, "step_in_epoch": 7}, ("model", "optimizer"), False),
    "joint": ({"epoch": 2, "step": 5}, ("codec", "optimizer", "classifier"), False),
    "codec": ({"step": 40}, ("model", "optimizer"), True),
    "segmenter": ({"step": 12}, ("model", "backbone_optimizer", "head_optimizer"), True),
}


def test_the_loops_checkpoint_their_counters_under_the_old_names():
  modules = {"classifier": classifier_train, "joint": joint_train, "codec": codec_train,
             "segmenter": segmenter_train}
  for loop, (counters, _, _) in OLD_LAYOUTS.items():
    assert modules[loop].CHECKPOINT_COUNTERS == tuple(counters), loop


@pytest.mark.parametrize("loop", sorted(OLD_LAYOUTS))
def test_a_run_checkpointed_by_the_old_loops_resumes_with_its_counters_and_weights(loop,
                                                                                  tmp_path):
  counters, names, numbered = OLD_LAYOUTS[loop]
  directory = str(tmp_path / "checkpoints")
  old_model = _model(0)
  old_objects = {n: old_model if n in ("model", "codec") else _model(1) for n in names
                 if "optimizer" not in n}
  old_objects.update({n: _optimizer(old_model) for n in names if "optimizer" in n})
  for n in names:
    if "optimizer" in n:
      _train_one_step(old_model, old_objects[n])
  old_counters = {k: tf.Variable(v, dtype=tf.int64) for k, v in counters.items()}
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(**old_objects, **old_counters),
                                       directory, max_to_keep=2)
  manager.save(checkpoint_number=counters["step"] if numbered else None)

  new_model = _model(2)  # other initial weights: the restore must overwrite them
  new_objects = {n: new_model if n in ("model", "codec") else _model(3) for n in names
                 if "optimizer" not in n}
  new_objects.update({n: _optimizer(new_model) for n in names if "optimizer" in n})
  checkpointing = workdir.Checkpointing(directory, tuple(counters),
                                        number_by="step" if numbered else None, **new_objects)
  assert checkpointing.restore() == tuple(counters.values())
  for old, new in zip(old_model.weights, new_model.weights):
    np.testing.assert_array_equal(old.numpy(), new.numpy())
  for n in names:
    if "optimizer" in n:
      assert int(new_objects[n].iterations.numpy()) == 1
  # Saving goes on in the same folder, numbered as before.
  path = checkpointing.save(*[v + 1 for v in counters.values()])
  expected = counters["step"] + 1 if numbered else 2
  assert os.path.basename(path) == f"ckpt-{expected}"


def test_the_codec_loops_checkpointing_restores_the_decay_flag_and_the_step(tmp_path):
  model = _model(0)
  decayed_at = tf.Variable(0, dtype=tf.int64)
  checkpointing = codec_train.StepCheckpointing(model, _optimizer(model), str(tmp_path),
                                                decayed_at)
  decayed_at.assign(30)
  checkpointing.save(40)
  again = tf.Variable(0, dtype=tf.int64)
  restored = codec_train.StepCheckpointing(_model(1), _optimizer(model), str(tmp_path), again)
  assert restored.restore() == 40 and int(again.numpy()) == 30


def test_restoring_a_finished_runs_model_takes_the_weights_and_refuses_an_empty_workdir(
    tmp_path):
  model = _model(0)
  workdir.Checkpointing(workdir.checkpoint_dir(str(tmp_path)), ("epoch",), model=model,
                        optimizer=_optimizer(model)).save(4)
  fresh = _model(1)
  workdir.restore_latest(str(tmp_path), model=fresh)  # the optimizer is left out
  np.testing.assert_array_equal(fresh.weights[0].numpy(), model.weights[0].numpy())

  class NoRun(ValueError):
    pass

  with pytest.raises(NoRun, match="no checkpoint in .*empty"):
    workdir.restore_latest(str(tmp_path / "empty"), NoRun, model=fresh)


def test_results_are_replaced_whole_and_read_back(tmp_path):
  run = str(tmp_path / "run")
  assert workdir.read_results(run) is None  # before the first write
  path = workdir.write_results(run, {"epochs": [1], "complete": False})
  assert path == os.path.join(run, workdir.RESULTS_FILE)
  with pytest.raises(TypeError):  # not JSON: the previous results stay as they were
    workdir.write_results(run, {"epochs": [1, 2], "model": object()})
  assert workdir.read_results(run) == {"epochs": [1], "complete": False}
  assert os.listdir(run) == [workdir.RESULTS_FILE]  # no temporary file left behind
  with open(path) as f:
    assert json.load(f)["epochs"] == [1]
