"""Classifier training on the three inputs at the tiny preset: a few steps each, then resume."""

import json
import os

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest
import tensorflow as tf

from experiments import train_classifier
from tfcdi.data import classification_input
from tfcdi.data import latent_store
from tfcdi.data import rgb_arms
from tfcdi.nets import classifier as classifier_net
from tfcdi.train import classifier

IMAGENETTE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                          "imagenette2_224")

pytestmark = pytest.mark.skipif(not os.path.isdir(IMAGENETTE),
                                reason="the shared Imagenette is not beside the repo")


@pytest.fixture(scope="module", name="store_dir")
def fixture_store_dir(tmp_path_factory, tiny_codec):
  store_dir = str(tmp_path_factory.mktemp("store"))
  # Two tiny-preset batches of training examples; the evaluation takes what there is.
  for split, limit in (("train", 8), ("val", 4)):
    source = latent_store.ImageFolderSource(IMAGENETTE, split, limit=limit)
    latent_store.encode_split(source, tiny_codec, store_dir, split, image_size=64, shard_size=4,
                              batch_size=8, progress=False)
  return store_dir


class _Killed(Exception):
  pass


def _kill_at(line_start):
  """A log function that records lines and 'kills' the run at the first one starting so."""
  lines = []

  def log(line):
    lines.append(line)
    if line.startswith(line_start):
      raise _Killed(line)
  return log, lines


def test_latent_arm_resumes_after_an_interruption_mid_epoch(store_dir, tmp_path):
  workdir = str(tmp_path)
  config = classifier.get_config("tiny", epochs=2)
  log, lines = _kill_at("[cresnet39 latent] epoch 2/2 step 1/2")
  with pytest.raises(_Killed):
    classifier.train("cresnet39", "latent", config, workdir=workdir, store_dir=store_dir,
                     preset_name="tiny", command=["first"], log=log)
  first = classifier.read_results(workdir)
  assert len(first["epochs"]) == 1 and not first["complete"]
  assert set(first["epochs"][0]) >= {"val_top1", "val_top5", "train_loss", "learning_rate"}

  lines.clear()
  results = classifier.train("cresnet39", "latent", config, workdir=workdir,
                             store_dir=store_dir, preset_name="tiny", command=["second"],
                             log=lines.append)
  # The checkpoint taken after step 1 of epoch 2 is where it picks up.
  assert lines[0] == "[cresnet39 latent] resuming at epoch 2, step 1"
  assert lines[1].startswith("[cresnet39 latent] epoch 2/2 step 2/2")
  assert [e["epoch"] for e in results["epochs"]] == [1, 2]
  assert results["epochs"][0] == first["epochs"][0]
  assert results["epochs"][1]["train_steps_measured"] == 1
  assert results["complete"] and results["final"]["epoch"] == 2
  assert 0.0 <= results["final"]["top1"] <= results["final"]["top5"] <= 1.0
  # The final accuracies are the last epoch's evaluation: counts of its examples, over them.
  last = results["epochs"][-1]
  assert (results["final"]["top1"], results["final"]["top5"]) == (last["val_top1"],
                                                                  last["val_top5"])
  assert 0 < last["val_examples"] <= config.final_eval_examples
  for key in ("top1", "top5"):
    hits = results["final"][key] * last["val_examples"]
    assert hits == pytest.approx(round(hits), abs=1e-9)
  with open(os.path.join(workdir, classifier.RESULTS_FILE)) as f:
    on_disk = json.load(f)
  assert on_disk["command"] == ["second"] and on_disk["config"]["epochs"] == 2
  assert on_disk["input_shape"] == [7, 7, 8] and on_disk["operating_point"] == "0.0983"
  assert on_disk["codec"]["name"] == "tiny" and len(on_disk["channel_mean"]) == 8

  # The mean lives in the model, so the restored model carries it.
  model, _ = classifier.restore_model(workdir)
  np.testing.assert_allclose(model.get_layer("channel_mean").mean.numpy(),
                             on_disk["channel_mean"], rtol=1e-6)
  lines.clear()
  classifier.train("cresnet39", "latent", config, workdir=workdir, store_dir=store_dir,
                   log=lines.append)
  assert lines == ["[cresnet39 latent] already trained for 2 epochs"]


def test_original_arm_trains_and_writes_results(tmp_path):
  config = classifier.get_config("tiny", epochs=1)
  results = classifier.train("resnet50", "original", config, workdir=str(tmp_path),
                             data_dir=IMAGENETTE, preset_name="tiny", log=lambda m: None)
  assert results["complete"] and results["input_shape"] == [56, 56, 3]
  assert results["operating_point"] == "original" and results["num_classes"] == 10
  assert results["epochs"][0]["val_examples"] == 8
  assert 0.0 < min(results["channel_mean"]) and max(results["channel_mean"]) < 255.0


def _cli(*args):
  with flagsaver.flagsaver():
    argv = flags.FLAGS(["train_classifier", *map(str, args)])
    return train_classifier.main(argv)


def test_binary_trains_the_decoded_arm_from_the_same_store(store_dir, tiny_codec_path, tmp_path,
                                                           capsys):
  status = _cli("--net=resnet50", "--input=decoded", "--preset=tiny", "--set=epochs=1",
                f"--store_dir={store_dir}", f"--codec={tiny_codec_path}",
                f"--workdir={tmp_path}")
  out = capsys.readouterr().out
  assert status == 0, out
  assert "decoding the 'train' split" in out and "final: top-1 " in out
  results = classifier.read_results(str(tmp_path))
  assert results["input"] == "decoded" and results["input_shape"] == [56, 56, 3]
  assert results["codec"]["name"] == "tiny" and isinstance(results["command"], list)
  assert len(list(rgb_arms.decoded_dataset(store_dir, "val"))) == 4


def test_mismatched_inputs_are_refused_with_one_line(store_dir, tmp_path, capsys):
  assert _cli("--net=cresnet39", "--input=original", f"--data_dir={IMAGENETTE}",
              f"--workdir={tmp_path}") == 1
  assert capsys.readouterr().err == (
      "error: cresnet39 reads the compressed representation; use --input=latent, not "
      "original\n")
  assert _cli("--net=cresnet51", "--input=latent", f"--store_dir={store_dir}",
              "--operating_point=0.635", f"--workdir={tmp_path}") == 1
  assert "holds operating point 0.0983, not 0.635" in capsys.readouterr().err
  assert _cli("--net=resnet50", "--input=latent", f"--store_dir={store_dir}",
              f"--workdir={tmp_path}") == 1
  assert "resnet50 reads RGB images" in capsys.readouterr().err
  assert _cli("--net=cresnet39", "--input=latent", f"--store_dir={tmp_path}/none",
              f"--workdir={tmp_path}") == 1
  assert "no latent store" in capsys.readouterr().err
  assert _cli("--net=cresnet39", "--input=latent") == 1
  assert capsys.readouterr().err == "error: --workdir is required\n"
  # A workdir holding another run is not resumed with a different net.
  (tmp_path / classifier.RESULTS_FILE).write_text(json.dumps({"net": "cresnet51",
                                                              "input": "latent"}))
  assert _cli("--net=cresnet39", "--input=latent", f"--store_dir={store_dir}",
              f"--workdir={tmp_path}") == 1
  assert capsys.readouterr().err == (  # the cpu preset's crops need the paper's 32 x 32 latents
      "error: a 28x28 crop does not fit the 8x8 latent examples\n")
  assert _cli("--net=cresnet39", "--input=latent", "--preset=tiny", f"--store_dir={store_dir}",
              f"--workdir={tmp_path}") == 1
  assert "holds a cresnet51 run on latent inputs" in capsys.readouterr().err
  with pytest.raises(classifier.TrainingError, match="unknown classifier preset"):
    classifier.get_config("huge")


def test_the_seed_fixes_the_run_and_a_workdir_keeps_its_seed(store_dir, tmp_path):
  # A second seed of an arm measures run-to-run spread only if the seed decides the run: the
  # same seed twice gives the same weights, another seed other weights (initialisation included).
  def run(seed, name):
    config = classifier.get_config("tiny", epochs=1, seed=seed)
    classifier.train("cresnet39", "latent", config, workdir=str(tmp_path / name),
                     store_dir=store_dir, preset_name="tiny", log=lambda _: None)
    model, _ = classifier.restore_model(str(tmp_path / name))
    return [w.numpy() for w in model.trainable_weights]

  first, again, other = run(3, "a"), run(3, "b"), run(4, "c")
  for a, b in zip(first, again):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert max(float(np.abs(a - c).max()) for a, c in zip(first, other)) > 1e-3
  assert classifier.read_results(str(tmp_path / "c"))["config"]["seed"] == 4
  with pytest.raises(classifier.TrainingError, match="holds a run with seed 3, not 4"):
    classifier.train("cresnet39", "latent", classifier.get_config("tiny", epochs=2, seed=4),
                     workdir=str(tmp_path / "a"), store_dir=store_dir, log=lambda _: None)


def test_a_damaged_store_shard_is_one_line_not_a_traceback(store_dir, tmp_path, capsys):
  # A copy of the store with one byte of a training shard flipped: TF finds it only while the
  # input pipeline reads the shard, as a DataLossError from deep inside tf.data.
  import shutil  # pylint: disable=g-import-not-at-top
  damaged = str(tmp_path / "store")
  shutil.copytree(store_dir, damaged)
  shard = latent_store.shard_files(damaged, "train")[0]
  with open(shard, "r+b") as f:
    data = bytearray(f.read())
    data[len(data) // 2] ^= 0xFF
    f.seek(0)
    f.write(data)
  assert _cli("--net=cresnet39", "--input=latent", "--preset=tiny", "--set=epochs=1",
              f"--store_dir={damaged}", f"--workdir={tmp_path / 'run'}") == 1
  err = capsys.readouterr().err
  assert err.startswith("error: a data file is damaged") and err.count("\n") == 1, err


def test_bfloat16_training_restores_as_a_float32_model(store_dir, tmp_path):
  # The cpu preset trains in mixed_bfloat16 where the CPU has bfloat16 units; what is restored
  # for export and evaluation must be the same float32 model either way.
  config = classifier.get_config("tiny", epochs=1, precision="mixed_bfloat16")
  results = classifier.train("cresnet39", "latent", config, workdir=str(tmp_path),
                             store_dir=store_dir, preset_name="tiny", log=lambda m: None)
  assert results["complete"] and results["precision"] == "mixed_bfloat16"
  assert np.isfinite(results["epochs"][0]["train_loss"])
  model, restored = classifier.restore_model(str(tmp_path))
  assert restored["precision"] == "mixed_bfloat16"
  assert {w.dtype for w in model.weights} == {"float32"}
  assert model.compute_dtype == "float32"
  assert {layer.compute_dtype for layer in model.get_layer("cresnet39").layers} == {"float32"}
  logits = model(np.zeros([2, 7, 7, 8], np.float32))
  assert logits.dtype == "float32" and logits.shape == (2, 10)


def test_evaluation_scores_top1_and_top5_against_a_reference(monkeypatch):
  # Five classes, three examples whose true class ranks 1st, 3rd and 6th (last of 6) by logit:
  # top-1 = 1/3, top-5 = 2/3. A "top-5" computed as top-1 would give 1/3.
  logits = np.array([[9., 1., 2., 3., 4., 5.],
                     [1., 9., 8., 7., 0., 0.],
                     [9., 8., 7., 6., 5., 0.]], np.float32)
  labels = np.array([0, 3, 5], np.int32)
  batch = tf.data.Dataset.from_tensors((tf.zeros([3, 2]), tf.constant(labels)))
  monkeypatch.setattr(classification_input, "eval_input", lambda *args, **kwargs: batch)
  result = classifier.evaluate(lambda x, y: (tf.constant(logits), y), None, None,
                               tf.distribute.get_strategy())
  assert result["val_top1"] == pytest.approx(1 / 3)
  assert result["val_top5"] == pytest.approx(2 / 3)
  assert result["val_examples"] == 3
  # The loss is the mean softmax cross-entropy of the true classes.
  shifted = logits - logits.max(axis=1, keepdims=True)
  log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
  assert result["val_loss"] == pytest.approx(-log_probs[np.arange(3), labels].mean(), rel=1e-6)


def test_evaluation_view_of_the_classifier_is_the_central_crop():
  x = tf.reshape(tf.range(10 * 10 * 3, dtype=tf.float32), [10, 10, 3])
  view = classification_input._crop_and_flip(x, 6, training=False).numpy()
  np.testing.assert_array_equal(view, x.numpy()[2:8, 2:8])


class _PositionCodedSpec(classification_input.DataSpec):
  """Examples whose every entry encodes its own (row, column, channel): a crop's content says
  where it was taken."""

  def examples(self, split, config, *, shuffle=False, seed=0, skip=0):
    del split, config, shuffle, seed, skip
    side, channels = self.view_size, self.channels
    x = np.arange(side * side * channels, dtype=np.float32).reshape(side, side, channels)
    return tf.data.Dataset.from_tensor_slices(
        (np.stack([x, x + 1e5]), np.array([0, 1], np.int32)))


@pytest.mark.parametrize("input_kind, view, channels, overrides, offset", [
    ("original", 64, 3, {}, 4),  # the RGB arms (original and decoded): 56 from 64
    ("decoded", 64, 3, {}, 4),
    ("latent", 9, 8, {"latent_crop": 5}, 2),  # an autoencoder store's z_hat
])
def test_evaluation_input_is_the_central_crop_of_every_arm(input_kind, view, channels, overrides,
                                                           offset):
  # What the pipeline evaluates on, checked on content: the window starts `offset` (computed by
  # hand) from the top-left corner, for each example of the batch. A crop at offset 0 or a
  # random one fails.
  config = classifier.get_config("tiny", **overrides)
  crop = config.crop_for(input_kind)
  spec = _PositionCodedSpec(input_kind, None, None, ("a", "b"), channels, view)
  (x, labels), = list(classification_input.eval_input(spec, config))
  full = np.arange(view * view * channels, dtype=np.float32).reshape(view, view, channels)
  window = full[offset:offset + crop, offset:offset + crop]
  np.testing.assert_array_equal(x.numpy(), np.stack([window, window + 1e5]))
  np.testing.assert_array_equal(labels.numpy(), [0, 1])


def test_paper_presets_keep_the_papers_batch_norm_momentum_and_cpu_presets_a_faster_one():
  from tfcdi.train import segmenter  # pylint: disable=g-import-not-at-top
  # tf-slim's resnet_arg_scope, the paper's stack: 0.997.
  assert classifier.get_config("paper").batch_norm_momentum == 0.997
  assert segmenter.get_config("paper").batch_norm_momentum == 0.997
  assert classifier.get_config("cpu").batch_norm_momentum == 0.99
  model = classifier_net.build_model("cresnet39", 8, 10, classifier.get_config("paper"))
  momenta = {layer.momentum for layer in _all_layers(model)
             if layer.__class__.__name__ == "BatchNormalization"}
  assert momenta == {0.997}


def _all_layers(model):
  for layer in model.layers:
    yield layer
    if hasattr(layer, "layers"):
      yield from _all_layers(layer)


def test_latent_arm_of_an_autoencoder_store_reads_its_latent_cache_when_it_has_one(
    store_dir, tmp_path, monkeypatch):
  copy = str(tmp_path / "store")
  tf.io.gfile.makedirs(copy)
  for name in tf.io.gfile.listdir(store_dir):
    if not tf.io.gfile.isdir(os.path.join(store_dir, name)):
      tf.io.gfile.copy(os.path.join(store_dir, name), os.path.join(copy, name))
  config = classifier.get_config("tiny")
  spec = classification_input.describe_data("latent", data_dir=None, store_dir=copy,
                                            config=config)
  from_files = [x.numpy() for x, _ in spec.examples("train", config)]
  latent_store.build_latent_cache(copy, "train", progress=False)

  def no_range_decoding(*args):
    raise AssertionError("the files were range-decoded although the cache exists")
  monkeypatch.setattr(latent_store, "symbols_reader", no_range_decoding)
  from_cache = [x.numpy() for x, _ in spec.examples("train", config)]
  assert len(from_cache) == len(from_files) == 8
  assert all(np.array_equal(a, b) for a, b in zip(from_files, from_cache))
  # cache_latents=False keeps reading the files.
  off = classifier.get_config("tiny", cache_latents=False)
  with pytest.raises(AssertionError, match="range-decoded"):
    spec.examples("train", off)
