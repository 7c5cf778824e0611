"""A tf-slim resnet_v1_50 checkpoint, imported into build_resnet(stride_placement="slim"), gives
the logits tf-slim's own graph computes.

tf-slim 1.1's layers (conv2d, batch_norm, max_pool2d) are built on the TF1 layer classes that
TensorFlow now loads lazily from the legacy `tf_keras` package, at `tf_keras.legacy_tf_layers`.
tf_keras 2.21 ships those modules as `tf_keras.src.legacy_tf_layers`, so without an alias every
slim layer fails with "No module named 'tf_keras.legacy_tf_layers'". The fixture below adds the
alias (only when the modules are missing); without tf_keras installed the test is skipped.
"""

import importlib
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfcdi import nets
from tfcdi.nets import slim_import

# tf-slim builds its layers with the deprecated TF1 `layer.apply`.
pytestmark = pytest.mark.filterwarnings("ignore:`layer.apply` is deprecated:UserWarning")

NUM_CLASSES = 5
_LEGACY_LAYERS = "tf_keras.legacy_tf_layers"


@pytest.fixture(scope="module")
def resnet_v1():
  pytest.importorskip("tf_keras", reason="tf-slim's layers need the tf-keras package")
  for suffix in ("", ".base", ".convolutional", ".core", ".normalization", ".pooling"):
    name = _LEGACY_LAYERS + suffix
    try:
      importlib.import_module(name)
    except ImportError:
      sys.modules[name] = importlib.import_module("tf_keras.src.legacy_tf_layers" + suffix)
  tf_slim = pytest.importorskip("tf_slim")
  from tf_slim.nets import resnet_v1 as slim_resnet_v1  # pylint: disable=g-import-not-at-top
  return tf_slim, slim_resnet_v1


@pytest.fixture(scope="module")
def slim_checkpoint(resnet_v1, tmp_path_factory):
  """Saves a randomly initialized slim resnet_v1_50; returns (path, inputs, slim's logits)."""
  tf_slim, slim_resnet_v1 = resnet_v1
  rng = np.random.default_rng(0)
  inputs = [rng.uniform(-1.0, 1.0, size=(2, 64, 64, 3)).astype(np.float32),
            # Odd and unequal sizes: slim's explicit padding and SAME pooling must line up.
            rng.uniform(-1.0, 1.0, size=(1, 57, 71, 3)).astype(np.float32)]
  path = str(tmp_path_factory.mktemp("slim") / "resnet_v1_50.ckpt")
  with tf.Graph().as_default():
    images = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3])
    with tf_slim.arg_scope(slim_resnet_v1.resnet_arg_scope()):
      logits, _ = slim_resnet_v1.resnet_v1_50(images, num_classes=NUM_CLASSES,
                                              is_training=False)
    variables = tf.compat.v1.global_variables()
    # Random BN parameters and statistics, so that a BN mixed up with another, a wrong epsilon or
    # a swapped gamma / beta cannot go unnoticed; conv weights scaled by fan-in keep the
    # activations of 16 units in a sane range. One tiny variance makes epsilon matter.
    values = {}
    for variable in variables:
      shape = variable.shape.as_list()
      name = variable.op.name
      if name.endswith(("gamma", "moving_variance")):
        value = rng.uniform(0.5, 1.5, shape)
      elif name.endswith(("beta", "moving_mean", "biases")):
        value = rng.normal(0.0, 0.2, shape)
      else:
        value = rng.normal(0.0, np.sqrt(1.0 / np.prod(shape[:-1])), shape)
      if name == "resnet_v1_50/conv1/BatchNorm/moving_variance":
        value[0] = 1e-4
      values[name] = value.astype(np.float32)
    feeds = {v.op.name: tf.compat.v1.placeholder(tf.float32, v.shape) for v in variables}
    assign = tf.group(*[v.assign(feeds[v.op.name]) for v in variables])
    with tf.compat.v1.Session() as session:
      session.run(assign, {feeds[name]: values[name] for name in feeds})
      expected = [session.run(logits, {images: x}) for x in inputs]
      tf.compat.v1.train.Saver(variables).save(session, path)
  # slim's head is a 1x1 conv on the pooled features: [B, 1, 1, N].
  expected = [e.reshape(e.shape[0], NUM_CLASSES) for e in expected]
  return path, inputs, expected


def test_imported_checkpoint_gives_slims_logits(slim_checkpoint):
  path, inputs, expected = slim_checkpoint
  model = nets.build_resnet("resnet50", num_classes=NUM_CLASSES, stride_placement="slim")
  loaded = slim_import.load_slim_checkpoint(model, path)
  # Every weight: 53 convs, 53 BNs x 4, logits weights + biases.
  assert len(loaded) == len(model.weights) == 53 + 53 * 4 + 2
  assert slim_import.infer_scope(path) == "resnet_v1_50"
  for x, want in zip(inputs, expected):
    got = model(x, training=False).numpy()
    assert np.abs(want).max() > 1.0  # the test means something only if logits are not ~0
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_paper_placement_is_refused(slim_checkpoint):
  path, _, _ = slim_checkpoint
  model = nets.build_resnet("resnet50", num_classes=NUM_CLASSES, width_multiplier=0.125)
  with pytest.raises(ValueError, match="stride_placement='slim'"):
    slim_import.load_slim_checkpoint(model, path)


def test_mismatches_raise_and_leave_the_model_untouched(slim_checkpoint):
  path, _, _ = slim_checkpoint
  # Another number of classes: the logits do not fit ...
  model = nets.build_resnet("resnet50", num_classes=3, stride_placement="slim",
                            kernel_initializer="zeros")
  with pytest.raises(ValueError, match="logits/weights has shape"):
    slim_import.load_slim_checkpoint(model, path)
  assert not np.any(model.get_layer("conv1").kernel.numpy())
  # ... unless the classifier is left out, as when fine-tuning for another task.
  loaded = slim_import.load_slim_checkpoint(model, path, include_logits=False)
  assert not any("logits" in name for name in loaded)
  assert np.any(model.get_layer("conv1").kernel.numpy())
  # A deeper net has units the checkpoint lacks.
  deeper = nets.build_resnet("resnet71", stride_placement="slim", width_multiplier=0.125)
  with pytest.raises(ValueError, match="not in"):
    slim_import.load_slim_checkpoint(deeper, path)
