"""Widening a trained autoencoder (codec/widen.py): same function, copies that train apart."""

import numpy as np
import pytest
import tensorflow as tf

from tfcdi.codec import model as model_lib
from tfcdi.codec import operating_points
from tfcdi.codec import widen
from tfcdi.train import codec as codec_train


def _narrow():
  op = operating_points.get_operating_point("0.0983")
  model = model_lib.from_operating_point(op, filters=(4, 8))
  # Training moves the centers off their initial grid; the wide model must copy them too.
  model.quantizer.centers.assign([-1.7, -0.9, -0.2, 0.4, 1.1, 2.3])
  return model


@pytest.mark.parametrize("filters", [(8, 16), (4, 24), (12, 8)])
def test_a_widened_codec_computes_what_the_narrow_one_did(filters):
  narrow = _narrow()
  wide = widen.widen(narrow, filters, seed=1)
  assert wide.filters == filters
  images = tf.random.uniform([2, 32, 24, 3], 0, 255, seed=5)
  before, after = narrow(images), wide(images)
  np.testing.assert_allclose(after["y"], before["y"], atol=1e-4)
  np.testing.assert_array_equal(after["symbols"], before["symbols"])
  np.testing.assert_allclose(after["reconstruction"], before["reconstruction"], atol=1e-3)
  # Weights are split, not all copied: the wide model is not the narrow one repeated.
  assert wide.count_params() > narrow.count_params()


def test_one_training_step_sets_the_copies_of_a_channel_apart():
  wide = widen.widen(_narrow(), (8, 16), seed=1)
  # down1 reads the image (not widened), so the weights into f1 channel k and into its copy
  # k + 4 start equal; only the step can tell them apart.
  kernel = wide.encoder.get_layer("down1").weights[0]  # [5, 5, 3, 8]
  np.testing.assert_array_equal(kernel.numpy()[..., :4], kernel.numpy()[..., 4:])
  optimizer = tf.keras.optimizers.Adam(1e-3)
  step = codec_train.make_train_step(wide, optimizer, tf.constant(1.0), tf.constant(0.0))
  step(tf.random.uniform([2, 32, 32, 3], 0, 255, seed=7))
  moved_apart = np.abs(kernel.numpy()[..., :4] - kernel.numpy()[..., 4:]).max(axis=(0, 1, 2))
  assert (moved_apart > 1e-5).all(), moved_apart


@pytest.mark.parametrize("filters", [(6, 16), (8, 12), (2, 8), (8,)])
def test_widening_refuses_filters_that_are_not_multiples_of_the_old_ones(filters):
  with pytest.raises(ValueError, match="cannot widen a codec with filters \\[4, 8\\]"):
    widen.widen(_narrow(), filters)
