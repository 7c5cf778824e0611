"""Segmenter training: results with mIoU, resuming after a kill, the 10x head rate, errors."""

import dataclasses
import functools
import json
import os

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest
import tensorflow as tf

from experiments import train_segmenter
from tfcdi.reporting import figures
from tfcdi.data import segmentation as seg
from tfcdi.nets import deeplab
from tfcdi.train import segmenter as segmenter_train

CAMVID = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "camvid")
needs_camvid = pytest.mark.skipif(not os.path.isdir(CAMVID),
                                  reason="the shared CamVid is not beside the repo")


class _Killed(Exception):
  pass


def _die_at(text, lines):
  def log(message):
    lines.append(message)
    if text in message:
      raise _Killed(message)
  return log


@needs_camvid
def test_tiny_runs_write_results_resume_after_a_kill_and_dump_masks_for_the_figure(
    tmp_path, tiny_codec_path, saved_figures):
  workdir = str(tmp_path / "run")
  config = segmenter_train.get_config("tiny", num_steps=3, checkpoint_every=2, eval_every=2)
  kwargs = dict(codec_path=tiny_codec_path, preset_name="tiny", command="pytest")
  lines = []
  # Killed while logging step 3, i.e. after the checkpoint and evaluation of step 2.
  with pytest.raises(_Killed):
    segmenter_train.train("cresnet39", "latent", config, CAMVID, workdir,
                          log=_die_at("step 3/3", lines), **kwargs)
  with open(os.path.join(workdir, "results.json")) as f:
    partial = json.load(f)
  assert partial["steps"] == 2 and 0.0 <= partial["miou"] <= 1.0

  lines = []
  results = segmenter_train.train("cresnet39", "latent", config, CAMVID, workdir,
                                  log=lines.append, **kwargs)
  assert "resuming from step 2" in lines[0]
  # The stores and the mean were made once, by the first run.
  assert not any("latent store" in line or "mean" in line for line in lines)
  with open(os.path.join(workdir, "results.json")) as f:
    on_disk = json.load(f)
  for written in (results, on_disk):
    assert written["steps"] == 3 and [h["step"] for h in written["history"]] == [2, 3]
    assert 0.0 <= written["miou"] <= 1.0
    assert set(written["per_class_iou"]) == set(seg.CAMVID.class_names)
    assert written["net"] == "cresnet39-d" and written["input"] == "latent"
    assert written["command"] == "pytest" and written["config"]["num_steps"] == 3
    assert written["latent_store"]["tfci_bytes"] > 0
  assert np.asarray(on_disk["confusion_matrix"]).shape == (11, 11)
  # The mIoU is the confusion matrix's, by hand: TP / (TP + FP + FN) over the classes present.
  confusion = np.asarray(on_disk["confusion_matrix"], np.float64)
  union = confusion.sum(0) + confusion.sum(1) - np.diag(confusion)
  assert confusion.sum() > 0 and np.any(union > 0)
  by_hand = np.diag(confusion)[union > 0] / union[union > 0]
  assert on_disk["miou"] == pytest.approx(np.mean(by_hand))

  predictions = segmenter_train.read_predictions(os.path.join(workdir, "predictions.npz"))
  assert predictions["meta"]["input"] == "latent" and len(predictions["items"]) == 2
  item = predictions["items"][0]
  assert item["image"].shape == (360, 480, 3)
  assert item["label"].shape == item["prediction"].shape == (360, 480)
  assert item["prediction"].max() < 11

  # A finished run only says so.
  lines = []
  segmenter_train.train("cresnet39", "latent", config, CAMVID, workdir, log=lines.append,
                        **kwargs)
  assert lines == ["[segmenter] already trained for 3 steps and evaluated"]

  # The decoded arm, through the binary; its predictions beside the latent arm's make the
  # figure, drawn from the files alone.
  decoded_dir = str(tmp_path / "decoded")
  args = ["--net=resnet50", "--input=decoded", f"--codec={tiny_codec_path}", "--preset=tiny",
          "--set=num_steps=1", "--set=eval_limit=1", f"--data_dir={CAMVID}", f"--workdir={decoded_dir}"]
  with flagsaver.flagsaver():
    train_segmenter.main(flags.FLAGS(["train_segmenter", *args]))
  with open(os.path.join(decoded_dir, "results.json")) as f:
    results = json.load(f)
  assert results["net"] == "resnet50-d" and results["input"] == "decoded"
  command = results["command"].split()
  assert command[0] == "tfcdi-train-segmenter" and sorted(command[1:]) == sorted(args)
  decoded_npz = os.path.join(decoded_dir, "predictions.npz")
  item = segmenter_train.read_predictions(decoded_npz)["items"][0]
  assert item["decoded"].shape == item["image"].shape == (360, 480, 3)
  png = figures.segmentation_comparison(
      [("tiny codec", decoded_npz, os.path.join(workdir, "predictions.npz"))],
      str(tmp_path / "fig.png"))
  assert os.path.getsize(png) > 1000
  # One row (the decoded arm evaluated one image): the image, its decoding, both arms' masks
  # and the ground truth, in the dataset's palette, under a legend of its classes.
  decoded = segmenter_train.read_predictions(decoded_npz)
  latent_item = segmenter_train.read_predictions(os.path.join(workdir, "predictions.npz"))
  latent_item = latent_item["items"][0]
  meta, item = decoded["meta"], decoded["items"][0]
  assert latent_item["name"] == item["name"]
  figure = saved_figures[png]
  cells = [ax for ax in figure.axes if ax.images]
  assert [ax.get_title() for ax in cells] == list(figures.COMPARISON_COLUMNS)
  colour = functools.partial(figures.colorize, palette=meta["palette"],
                             ignore_label=meta["ignore_label"])
  for ax, expected in zip(cells, (item["image"], item["decoded"], colour(item["prediction"]),
                                  colour(latent_item["prediction"]), colour(item["label"]))):
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), expected)
  (legend,) = figure.legends
  assert [t.get_text() for t in legend.get_texts()] == list(meta["class_names"])
  saved_figures.assert_drawn(png)


def test_binary_reports_bad_data_on_one_line(tmp_path, capsys):
  # A data folder without CamVid's layout: one line and status 1, not a traceback.
  args = ["--net=cresnet39", "--input=latent", "--preset=tiny", f"--data_dir={tmp_path}/none",
          f"--workdir={tmp_path}/run"]
  with flagsaver.flagsaver():
    assert train_segmenter.main(flags.FLAGS(["train_segmenter", *args])) == 1
  err = capsys.readouterr().err
  assert err.startswith("error: Folder ") and "does not exist" in err and err.count("\n") == 1


@functools.lru_cache(maxsize=None)
def _tiny_model():
  return deeplab.build_segmenter("cresnet39", 11, (None, None, 8), width_multiplier=0.0625)


def test_head_learning_rate_is_ten_times_the_backbones():
  config = segmenter_train.get_config("paper")
  trainer = segmenter_train.Trainer(_tiny_model(), config, ignore_label=11)
  backbone_lr = float(trainer.backbone_optimizer.learning_rate)
  assert backbone_lr == pytest.approx(1e-3)
  assert float(trainer.head_optimizer.learning_rate) == pytest.approx(1e-2)
  # The update of one step with unit gradients is the rate itself (momentum starts at 0).
  before = ([v.numpy() for v in trainer.backbone_vars], [v.numpy() for v in trainer.head_vars])
  trainer.apply_gradients([tf.ones_like(v) for v in trainer.backbone_vars],
                          [tf.ones_like(v) for v in trainer.head_vars])
  for old, var in zip(before[0], trainer.backbone_vars):
    np.testing.assert_allclose(old - var.numpy(), 1e-3, rtol=1e-4)
  for old, var in zip(before[1], trainer.head_vars):
    np.testing.assert_allclose(old - var.numpy(), 1e-2, rtol=1e-4)
  # Poly decay: halfway through, both rates are (1/2)^0.9 of their start.
  for optimizer, rate in ((trainer.backbone_optimizer, 1e-3), (trainer.head_optimizer, 1e-2)):
    optimizer.iterations.assign(config.num_steps // 2)
    assert float(optimizer.learning_rate) == pytest.approx(rate * 0.5 ** 0.9, rel=1e-5)


def test_cpu_segmenters_have_the_cpu_classifiers_width_so_they_start_from_them():
  # The paper starts every segmenter from its arm's classifier; the pipeline does so whenever
  # the two widths are equal (tfcdi/reproduce.py), which these two presets must keep.
  from tfcdi.train import classifier as classifier_train  # pylint: disable=g-import-not-at-top
  assert (segmenter_train.get_config("cpu").width_multiplier
          == classifier_train.get_config("cpu").width_multiplier)
  assert segmenter_train.get_config("cpu_scratch").width_multiplier == 0.25


def test_a_label_outside_the_classes_is_a_value_error_not_a_wrong_miou():
  label = np.zeros((1, 16, 24), np.int32)
  label[0, 3, 4] = 12  # neither a class nor the ignore label 11
  dataset = tf.data.Dataset.from_tensors(
      {"name": tf.constant(["x"]), "inputs": tf.zeros([1, 2, 3, 8]), "label": label})
  with pytest.raises(ValueError, match="outside"):
    segmenter_train.evaluate(_tiny_model(), dataset, seg.CAMVID)


def test_a_net_that_cannot_read_the_input_is_refused():
  with pytest.raises(ValueError, match="input=latent"):
    segmenter_train.check_arm("cresnet51", "decoded")
  with pytest.raises(ValueError, match="original or decoded"):
    segmenter_train.check_arm("resnet50", "latent")
  with pytest.raises(ValueError, match="multiple of 8"):
    segmenter_train.get_config("tiny", crop=36)


def test_backbone_initialises_from_a_classifier_workdir_of_the_same_arm(tmp_path):
  from tfcdi.nets import classifier as classifier_net  # pylint: disable=g-import-not-at-top
  from tfcdi.train import classifier as classifier_train  # pylint: disable=g-import-not-at-top
  config = classifier_train.ClassifierTrainConfig(width_multiplier=0.0625)
  classifier = classifier_net.build_model("cresnet39", 8, 5, config)
  rng = np.random.default_rng(0)
  classifier.set_weights([rng.normal(size=w.shape).astype(np.float32)
                          for w in classifier.get_weights()])
  tf.train.CheckpointManager(tf.train.Checkpoint(model=classifier),
                             str(tmp_path / "checkpoints"), max_to_keep=1).save()
  with open(tmp_path / "results.json", "w") as f:
    json.dump({"net": "cresnet39", "input": "latent", "operating_point": "0.0983",
               "config": dataclasses.asdict(config), "input_shape": [7, 7, 8], "num_classes": 5,
               "channel_mean": [0.0] * 8}, f)
  backbone = segmenter_train.load_init_classifier(str(tmp_path), "cresnet39", "latent", 8,
                                                  0.0625, "0.0983")
  model = _tiny_model()
  copied = deeplab.init_backbone_from_classifier(model, backbone)
  np.testing.assert_array_equal(model.get_layer("conv4_3_conv2").get_weights()[0],
                                classifier.get_layer("cresnet39").get_layer("conv4_3_conv2")
                                .get_weights()[0])
  assert len(copied) == len([l for l in backbone.layers if l.weights]) - 1  # all but logits
  with pytest.raises(ValueError, match="--set=width_multiplier=0.0625"):
    segmenter_train.load_init_classifier(str(tmp_path), "cresnet39", "latent", 8, 0.25, "0.0983")
  with pytest.raises(ValueError, match="operating_point"):
    segmenter_train.load_init_classifier(str(tmp_path), "cresnet39", "latent", 8, 0.0625, "0.635")
