"""Classifiers on a hyperprior store: the two-branch net, the net on y_hat alone, decoded RGB.

A tiny random hyperprior (N = M = 8) on 64-pixel views (4 x 4 latents, resized to 8, cropped to
7 at the tiny preset) and tiny nets keep each run to a few seconds.
"""

import json
import os
import re

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest

from experiments import train_classifier
from tfcdi.data import classification_input
from tfcdi.data import latent_pairs
from tfcdi.data import latent_store
from tfcdi.nets import classifier as classifier_net
from tfcdi.train import classifier

IMAGENETTE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                          "imagenette2_224")

pytestmark = pytest.mark.skipif(not os.path.isdir(IMAGENETTE),
                                reason="the shared Imagenette is not beside the repo")


@pytest.fixture(scope="module", name="store_dir")
def fixture_store_dir(tmp_path_factory, tiny_hyperprior):
  store_dir = str(tmp_path_factory.mktemp("hp_store"))
  for split, limit in (("train", 8), ("val", 4)):
    source = latent_store.ImageFolderSource(IMAGENETTE, split, limit=limit)
    latent_store.encode_split(source, tiny_hyperprior, store_dir, split, image_size=64,
                              shard_size=8, batch_size=8, progress=False)
  return store_dir


def _cli(*args):
  with flagsaver.flagsaver():
    argv = flags.FLAGS(["train_classifier", *map(str, args)])
    return train_classifier.main(argv)


def test_two_branch_net_trains_resumes_and_records_its_inputs(store_dir, tmp_path):
  workdir = str(tmp_path)
  config = classifier.get_config("tiny", epochs=1)
  lines = []
  results = classifier.train("cresnet39", "latent", config, workdir=workdir, store_dir=store_dir,
                             preset_name="tiny", log=lines.append)
  # The store is entropy-decoded once into its latent cache, then read from there.
  assert lines[:2] == [f"entropy-decoding the '{split}' split of {store_dir} once, for the "
                       "latent arms" for split in ("train", "val")]
  assert lines[2].startswith("[cresnet39 latent y_hat+sigma_hat] channel mean over 8 ")
  assert "y_hat: [" in lines[2] and "sigma_hat: [" in lines[2]
  assert results["complete"] and [e["epoch"] for e in results["epochs"]] == [1]
  assert results["latent_inputs"] == "y_hat+sigma_hat"
  assert results["codec_family"] == "hyperprior" and results["operating_point"] == "q4"
  assert results["codec"]["name"] == "hp-tiny" and results["codec"]["quality"] == 4
  assert results["input_shape"] == [7, 7, 8] and results["view_size"] == 8
  means = results["channel_mean"]
  assert set(means) == {"y_hat", "sigma_hat"} and len(means["sigma_hat"]) == 8
  assert min(means["sigma_hat"]) >= 0.11  # scales are at least the table's smallest
  with open(os.path.join(workdir, classifier.RESULTS_FILE)) as f:
    assert json.load(f)["latent_inputs"] == "y_hat+sigma_hat"

  model, _ = classifier.restore_model(workdir)
  assert sorted(t.name for t in model.inputs) == ["sigma_hat", "y_hat"]
  for name in ("y_hat", "sigma_hat"):
    np.testing.assert_allclose(model.get_layer(f"channel_mean_{name}").mean.numpy(),
                               means[name], rtol=1e-6)
  logits = model({"y_hat": np.zeros([2, 7, 7, 8], np.float32),
                  "sigma_hat": np.ones([2, 7, 7, 8], np.float32)})
  assert logits.shape == (2, 10)
  lines.clear()
  classifier.train("cresnet39", "latent", config, workdir=workdir, store_dir=store_dir,
                   log=lines.append)
  assert lines == ["[cresnet39 latent y_hat+sigma_hat] already trained for 1 epochs"]
  # The same workdir does not take the ablation.
  with pytest.raises(classifier.TrainingError, match="y_hat\\+sigma_hat inputs, not y_hat"):
    classifier.train("cresnet39", "latent", config, workdir=workdir, store_dir=store_dir,
                     latent_inputs="y_hat", log=lines.append)


def test_y_hat_arm_sees_the_two_branch_arms_views_without_sigma(store_dir):
  config = classifier.get_config("tiny")
  views = {}
  for inputs in classifier_net.LATENT_INPUTS:
    data = classification_input.describe_data("latent", data_dir=None, store_dir=store_dir,
                                              config=config, latent_inputs=inputs)
    assert data.reads_pairs and data.view_size == 8 and data.channels == 8
    views[inputs] = (list(classification_input.train_input(data, config, epoch=1)),
                     list(classification_input.eval_input(data, config)))
  for (two_x, two_y), (y_x, y_y) in zip(views["y_hat+sigma_hat"][0], views["y_hat"][0]):
    assert two_x["y_hat"].shape == (4, 7, 7, 8) and two_x["sigma_hat"].shape == (4, 7, 7, 8)
    np.testing.assert_array_equal(two_x["y_hat"].numpy(), y_x.numpy())
    np.testing.assert_array_equal(two_y.numpy(), y_y.numpy())
  # Evaluation: the central crop of the resized pair, as latent_pairs.center_pair.
  pairs = list(latent_store.hyperprior_latent_dataset(store_dir, "val"))
  (two_x, _), = views["y_hat+sigma_hat"][1]
  for i, (y_hat, sigma_hat, _) in enumerate(pairs):
    want_y, want_sigma = latent_pairs.center_pair(y_hat, sigma_hat,
                                                  classification_input.pair_geometry(config))
    np.testing.assert_allclose(two_x["y_hat"][i].numpy(), want_y.numpy(), rtol=1e-6)
    np.testing.assert_allclose(two_x["sigma_hat"][i].numpy(), want_sigma.numpy(), rtol=1e-6)


@pytest.mark.slow
def test_binary_trains_the_y_hat_arm_and_the_decoded_arm(store_dir, tiny_hyperprior_path,
                                                         tmp_path, capsys):
  status = _cli("--net=cresnet39", "--input=latent", "--latent_inputs=y_hat", "--preset=tiny",
                "--set=epochs=1", "--quality=4", f"--store_dir={store_dir}",
                f"--workdir={tmp_path / 'y_hat'}")
  captured = capsys.readouterr()
  assert status == 0, captured.err
  assert "[cresnet39 latent y_hat] epoch 1/1" in captured.out and "final: top-1 " in captured.out
  results = classifier.read_results(str(tmp_path / "y_hat"))
  assert results["latent_inputs"] == "y_hat" and len(results["channel_mean"]) == 8
  model, _ = classifier.restore_model(str(tmp_path / "y_hat"))
  assert [t.name for t in model.inputs] == ["inputs"]

  status = _cli("--net=resnet50", "--input=decoded", "--preset=tiny", "--set=epochs=1",
                f"--store_dir={store_dir}", f"--codec_path={tiny_hyperprior_path}",
                f"--workdir={tmp_path / 'decoded'}")
  captured = capsys.readouterr()
  assert status == 0, captured.err
  assert "decoding the 'train' split" in captured.out
  results = classifier.read_results(str(tmp_path / "decoded"))
  assert results["input"] == "decoded" and results["input_shape"] == [56, 56, 3]
  assert results["latent_inputs"] is None and results["codec_family"] == "hyperprior"


def test_mismatched_stores_and_inputs_are_refused_with_one_line(store_dir, tmp_path, tiny_codec,
                                                                capsys):
  ae_store = str(tmp_path / "ae_store")
  latent_store.encode_split(latent_store.ImageFolderSource(IMAGENETTE, "val", limit=1),
                            tiny_codec, ae_store, "val", image_size=64, progress=False)
  base = ("--net=cresnet39", "--input=latent", "--preset=tiny", f"--workdir={tmp_path / 'w'}")
  assert _cli(*base, "--latent_inputs=y_hat", f"--store_dir={ae_store}") == 1
  # The families with a hyper-latent arm are listed by the registry (hyperprior, meanscale).
  err = capsys.readouterr().err
  assert re.fullmatch(
      rf"error: --latent_inputs is for the latent arm of a hyperprior( or \w+)* store; the store "
      rf"at {re.escape(ae_store)} is an autoencoder store read as latent\n", err), err
  assert _cli("--net=resnet50", "--input=decoded", "--preset=tiny", "--latent_inputs=y_hat",
              f"--store_dir={store_dir}", f"--workdir={tmp_path / 'w'}") == 1
  assert "not for --input=decoded" in capsys.readouterr().err
  assert _cli(*base, "--operating_point=0.635", f"--store_dir={store_dir}") == 1
  assert "holds hyperprior quality 4 latents; --operating_point is for autoencoder" in (
      capsys.readouterr().err)
  assert _cli(*base, "--quality=8", f"--store_dir={store_dir}") == 1
  assert "holds hyperprior quality 4, not 8" in capsys.readouterr().err
  assert _cli(*base, "--quality=4", f"--store_dir={ae_store}") == 1
  assert "--quality is for hyperprior stores" in capsys.readouterr().err
  # The cpu preset's crop needs the follow-up's 32 x 32 resize; the tiny store still fits it.
  with pytest.raises(classifier.TrainingError, match="latent_crop|crop"):
    classification_input.describe_data("latent", data_dir=None, store_dir=store_dir,
                                       config=classifier.get_config("tiny", latent_crop=9))
