"""Joint fine-tuning (Eq. 2) and its control arms at the tiny preset, on a fake ImageFolder."""

import os

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest
from PIL import Image
import tensorflow as tf

from experiments import train_joint
from tfcdi.codec import pretrained
from tfcdi.data import latent_store
from tfcdi.train import classifier
from tfcdi.train import joint


def _write_folder(root, split_sizes, seed=0):
  rng = np.random.default_rng(seed)
  for split, per_class in split_sizes.items():
    for name in ("n01", "n02"):
      folder = os.path.join(root, split, name)
      os.makedirs(folder)
      for i in range(per_class):
        pixels = rng.integers(0, 256, (40 + 8 * i, 56, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"{i}.png"))


@pytest.fixture(scope="module", name="data_dir")
def fixture_data_dir(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("folder"))
  _write_folder(root, {"train": 4, "val": 2})
  return root


@pytest.fixture(scope="module", name="kodak_dir")
def fixture_kodak_dir(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("kodak"))
  rng = np.random.default_rng(1)
  for i in range(2):
    Image.fromarray(rng.integers(0, 256, (168, 176, 3), dtype=np.uint8)).save(
        os.path.join(root, f"k{i}.png"))
  return root


def _train_baseline(codec, data_dir, workdir):
  """A tiny cResNet-51 on a latent store of `codec`: the 'baseline' the arms start from."""
  store_dir = os.path.join(workdir, "store")
  for split in ("train", "val"):
    source = latent_store.ImageFolderSource(data_dir, split)
    latent_store.encode_split(source, codec, store_dir, split, image_size=64, shard_size=4,
                              batch_size=8, progress=False)
  cls_dir = os.path.join(workdir, "cls")
  classifier.train("cresnet51", "latent", classifier.get_config("tiny"), workdir=cls_dir,
                   store_dir=store_dir, log=lambda _: None)
  return cls_dir


@pytest.fixture(scope="module", name="baseline_dir")
def fixture_baseline_dir(tmp_path_factory, tiny_codec, data_dir):
  return _train_baseline(tiny_codec, data_dir, str(tmp_path_factory.mktemp("baseline")))


def _weights(model):
  return [w.numpy().copy() for w in model.weights]


def _changed(before, after):
  return sum(not np.array_equal(a, b) for a, b in zip(before, after))


class _Killed(Exception):
  pass


def test_joint_arm_trains_codec_and_classifier_and_writes_both(
    tiny_codec, tiny_codec_path, data_dir, kodak_dir, baseline_dir, tmp_path):
  workdir = str(tmp_path / "joint")
  results = joint.train("joint", joint.get_config("tiny"), workdir=workdir, data_dir=data_dir,
                        codec_path=tiny_codec_path, classifier_dir=baseline_dir,
                        kodak_dir=kodak_dir, preset_name="tiny", command=["x"],
                        log=lambda _: None)
  assert results["complete"] and [e["epoch"] for e in results["epochs"]] == [1, 2]
  for key in ("start", "final"):
    assert results[key]["examples"] == 4
    assert 0.0 <= results[key]["top1"] <= results[key]["top5"] <= 1.0
    for metric in ("top1", "top5"):  # a count of the 4 examples, over them
      assert 4 * results[key][metric] == pytest.approx(round(4 * results[key][metric]), abs=1e-9)
    assert results[key]["psnr"] > 0 and results[key]["entropy_bits"] >= 0

  # The fine-tuned codec is a new, loadable bundle that differs from the one it started from.
  tuned = pretrained.load_codec(path=results["bundle"]["path"])
  assert tuned.fingerprint != tiny_codec.fingerprint
  assert tuned.name == "tiny-jointft"
  assert _changed(_weights(tiny_codec.model), _weights(tuned.model)) > 0
  assert set(results["kodak"]) == {"start", "final"}
  assert results["kodak"]["final"]["num_images"] == 2

  # The fine-tuned classifier is a train_classifier workdir naming the new codec.
  model, summary = classifier.restore_model(results["classifier_workdir"])
  base_model, _ = classifier.restore_model(baseline_dir)
  assert _changed(_weights(base_model), _weights(model)) > 0
  assert summary["codec"]["fingerprint"] == tuned.fingerprint.hex()
  assert summary["final"]["top1"] == results["final"]["top1"]


def test_cross_entropy_reaches_the_encoder_through_the_quantizer(
    tiny_codec, tiny_codec_path, data_dir, baseline_dir, tmp_path):
  # With gamma = 0 the codec's only gradient is the classifier's, through the custom-gradient
  # quantizer's soft backward pass; the encoder must still move, the decoder must not.
  config = joint.get_config("tiny", gamma=0.0, epochs=1)
  results = joint.train("joint", config, workdir=str(tmp_path), data_dir=data_dir,
                        codec_path=tiny_codec_path, classifier_dir=baseline_dir,
                        log=lambda _: None)
  tuned = pretrained.load_codec(path=results["bundle"]["path"])
  encoder = tiny_codec.model.encoder
  assert _changed(_weights(encoder), _weights(tuned.model.encoder)) > 0
  # float16 rounding is the only change the decoder may see.
  for before, after in zip(_weights(tiny_codec.model.decoder), _weights(tuned.model.decoder)):
    np.testing.assert_array_equal(before.astype(np.float16), after)


def test_codec_arm_leaves_the_classifier_and_classifier_arm_the_codec(
    tiny_codec, tiny_codec_path, data_dir, baseline_dir, tmp_path):
  config = joint.get_config("tiny", epochs=1)
  # gamma 1 so that the codec arm's small tiny run visibly moves the codec.
  codec_results = joint.train("codec", joint.get_config("tiny", epochs=1, gamma=1.0),
                              workdir=str(tmp_path / "codec"), data_dir=data_dir,
                              codec_path=tiny_codec_path, classifier_dir=baseline_dir,
                              log=lambda _: None)
  assert "classifier_workdir" not in codec_results
  assert "top1" in codec_results["final"]  # the fixed baseline, evaluated on the new codec
  tuned = pretrained.load_codec(path=codec_results["bundle"]["path"])
  assert _changed(_weights(tiny_codec.model), _weights(tuned.model)) > 0

  cls_results = joint.train("classifier", config, workdir=str(tmp_path / "cls"),
                            data_dir=data_dir, codec_path=tiny_codec_path,
                            classifier_dir=baseline_dir, log=lambda _: None)
  assert "bundle" not in cls_results
  # The codec stayed as it was: the codec metrics before and after are the same numbers.
  assert cls_results["final"]["psnr"] == pytest.approx(cls_results["start"]["psnr"], abs=1e-9)
  assert cls_results["final"]["entropy_bits"] == cls_results["start"]["entropy_bits"]
  model, _ = classifier.restore_model(cls_results["classifier_workdir"])
  base_model, _ = classifier.restore_model(baseline_dir)
  assert _changed(_weights(base_model), _weights(model)) > 0


def test_a_killed_run_resumes_where_it_stopped(tiny_codec_path, data_dir, baseline_dir,
                                               tmp_path):
  workdir = str(tmp_path)
  config = joint.get_config("tiny")
  lines = []

  def log(line):
    lines.append(line)
    if line.startswith("[joint joint 0.0983] epoch 2/2 step 1/2"):
      raise _Killed(line)

  with pytest.raises(_Killed):
    joint.train("joint", config, workdir=workdir, data_dir=data_dir, codec_path=tiny_codec_path,
                classifier_dir=baseline_dir, log=log)
  first = joint.read_results(workdir)
  assert len(first["epochs"]) == 1 and not first["complete"]
  lines.clear()
  results = joint.train("joint", config, workdir=workdir, data_dir=data_dir,
                        codec_path=tiny_codec_path, classifier_dir=baseline_dir,
                        log=lines.append)
  assert lines[0] == "[joint joint 0.0983] resuming at epoch 2, step 1"
  assert lines[1].startswith("[joint joint 0.0983] epoch 2/2 step 2/2")
  assert results["complete"] and results["start"] == first["start"]
  assert results["epochs"][0] == first["epochs"][0]


def test_mismatches_are_refused_by_name(make_tiny_codec, tiny_codec_path, data_dir,
                                        baseline_dir, tmp_path):
  config = joint.get_config("tiny")
  with pytest.raises(joint.JointError, match="--classifier"):
    joint.train("classifier", config, workdir=str(tmp_path / "a"), data_dir=data_dir,
                codec_path=tiny_codec_path)
  with pytest.raises(joint.JointError, match="unknown arm"):
    joint.train("both", config, workdir=str(tmp_path / "b"), data_dir=data_dir,
                codec_path=tiny_codec_path)
  other = str(tmp_path / "other.npz")
  make_tiny_codec(other, name="other", counts=np.arange(1, 7))
  with pytest.raises(joint.JointError, match="was trained on codec 'tiny'"):
    joint.train("joint", config, workdir=str(tmp_path / "c"), data_dir=data_dir,
                codec_path=other, classifier_dir=baseline_dir)
  # A workdir holds one arm.
  joint.train("classifier", joint.get_config("tiny", epochs=1), workdir=str(tmp_path / "d"),
              data_dir=data_dir, codec_path=tiny_codec_path, classifier_dir=baseline_dir,
              log=lambda _: None)
  with pytest.raises(joint.JointError, match="holds the 'classifier' arm"):
    joint.train("joint", config, workdir=str(tmp_path / "d"), data_dir=data_dir,
                codec_path=tiny_codec_path, classifier_dir=baseline_dir)


def test_schedule_drops_every_few_epochs():
  paper = joint.learning_rate_schedule(joint.get_config("paper"), 100)
  rates = [float(paper(step)) for step in (0, 299, 300, 599, 600, 899)]
  np.testing.assert_allclose(rates, [0.0025, 0.0025, 0.00025, 0.00025, 0.000025, 0.000025])
  cpu = joint.learning_rate_schedule(joint.get_config("cpu"), 150)
  np.testing.assert_allclose([float(cpu(s)) for s in (149, 150, 300)],
                             [0.0025, 0.00025, 0.000025])


def test_training_crops_are_aligned_with_the_latent_grid():
  view = tf.constant(np.arange(64 * 64, dtype=np.int32).reshape(64, 64, 1) *
                     np.ones((1, 1, 3), np.int32))
  for _ in range(20):
    crop = joint.aligned_random_crop(view, 48).numpy()
    top, left = divmod(int(crop[0, 0, 0]), 64)
    assert crop.shape == (48, 48, 3) and top % 8 == 0 and left % 8 == 0


def _cli(*args):
  """Runs train_joint's main in-process, with its flags parsed as from a command line."""
  with flagsaver.flagsaver():
    argv = flags.FLAGS(["train_joint", *map(str, args)])
    return train_joint.main(argv)


def test_binary_names_what_is_missing(capsys):
  assert _cli() == 1
  assert "--arm, --data_dir, --workdir are required" in capsys.readouterr().err
  assert _cli("--arm=joint", "--data_dir=/nonexistent", "--workdir=/tmp/x",
              "--operating_point=0.0983") == 1
  err = capsys.readouterr().err
  assert err.startswith("error: arm 'joint' fine-tunes a classifier") and err.count("\n") == 1
  assert _cli("--arm=joint", "--data_dir=/nonexistent", "--workdir=/tmp/x",
              "--operating_point=0.0983", "--classifier=/nonexistent/cls") == 1
  err = capsys.readouterr().err
  assert err.startswith("error: image folder '/nonexistent/train' does not exist")
  assert _cli("--arm=joint", "--preset=huge", "--data_dir=/x", "--workdir=/tmp/x") == 1
  assert "unknown preset 'huge'; choose one of paper, cpu, tiny" in capsys.readouterr().err
