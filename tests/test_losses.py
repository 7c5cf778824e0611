"""The training losses, on values computed by hand and through one optimizer step: each term's
value, and the direction it moves what it is charged on.

Kept apart from the training tests (which build nets and read data) so that they run in
seconds: tools/mutation_score.py runs this file once per mutant of the losses.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcdi.codec import quantizer as q
from tfcdi.train import classifier as classifier_train
from tfcdi.train import codec as codec_train
from tfcdi.train import hyperprior as hyperprior_train
from tfcdi.train import segmenter as segmenter_train


def _entropy(p):
  return -sum(x * math.log2(x) for x in p if x > 0)


def test_rate_entropy_is_the_hard_entropy_with_the_soft_gradient():
  soft_logits = tf.Variable([0.3, -0.2, 0.5])
  with tf.GradientTape(persistent=True) as tape:
    soft = q.entropy_bits(tf.nn.softmax(soft_logits))
    rate = codec_train.rate_entropy({"soft_entropy": soft, "entropy": tf.constant(1.25)})
  assert float(rate) == pytest.approx(1.25)
  np.testing.assert_allclose(tape.gradient(rate, soft_logits).numpy(),
                             tape.gradient(soft, soft_logits).numpy(), rtol=1e-6)
  assert np.abs(tape.gradient(rate, soft_logits).numpy()).max() > 1e-3


class _ToyCodec:
  """A codec reduced to two scalars: `gain` scales the reconstruction (distortion) and
  `spread` sets the soft symbol distribution (rate), so each loss term moves one of them."""

  def __init__(self, hard_entropy: float):
    self.gain = tf.Variable(0.5)
    self.spread = tf.Variable(0.3)
    self.hard_entropy = hard_entropy
    self.trainable_variables = [self.gain, self.spread]
    self.called_training = None

  def __call__(self, images, training=False):
    self.called_training = training  # batch norm and the like: a step trains in training mode
    # Four symbols: spread 0 is uniform (2 bits, where the gradient vanishes); the larger the
    # spread, the more mass on the first and the lower the entropy.
    probs = tf.nn.softmax(tf.stack([self.spread, -self.spread, -self.spread, -self.spread]))
    return {"reconstruction": self.gain * images,
            "soft_entropy": q.entropy_bits(probs),
            "entropy": tf.constant(self.hard_entropy)}


@pytest.mark.parametrize("target, charged", [(1.5, True), (2.5, False)])
def test_codec_step_charges_the_rate_and_pushes_entropy_down_only_above_the_target(target,
                                                                                   charged):
  # H = 2 bits. Above the target (Ht = 1.5) the loss is MSE + beta (H - Ht) and the step moves
  # the soft distribution towards lower entropy; under it (Ht = 2.5) the loss is the MSE and
  # the rate variable does not move. The distortion term pulls the reconstruction's gain
  # towards 1 either way. A swapped hinge (Ht - H), a wrong sign or a dropped term fails.
  model = _ToyCodec(hard_entropy=2.0)
  images = tf.constant([[1.0, 2.0], [3.0, 4.0]])
  p = np.exp([0.3, -0.3, -0.3, -0.3]) / np.exp([0.3, -0.3, -0.3, -0.3]).sum()
  soft_before = _entropy(p)
  beta = 3.0
  step = codec_train.make_train_step(model, keras.optimizers.SGD(0.01), tf.constant(beta),
                                     tf.constant(target))
  out = {k: float(v) for k, v in step(images).items()}
  mse = np.mean((0.5 * images.numpy() - images.numpy()) ** 2)
  assert out["mse"] == pytest.approx(mse)
  assert out["loss"] == pytest.approx(mse + (beta * (2.0 - target) if charged else 0.0))
  assert out["entropy"] == 2.0 and out["soft_entropy"] == pytest.approx(soft_before)
  assert model.called_training is True
  assert float(model.gain) > 0.5  # towards the images: the MSE goes down
  soft_after = float(model(images)["soft_entropy"])
  if charged:
    assert soft_after < soft_before - 1e-4
  else:
    assert float(model.spread) == pytest.approx(0.3, abs=1e-7)


def test_hyperprior_loss_is_lambda_times_the_mse_plus_the_bpp():
  images = tf.constant([[[[10.0, 20.0, 30.0]]]])
  outputs = {"reconstruction": images + tf.constant([[[[1.0, -2.0, 3.0]]]]),
             "bpp": tf.constant(0.75)}
  loss, term, mse = hyperprior_train.rate_distortion_loss(outputs, images, 0.01)
  assert float(mse) == pytest.approx((1 + 4 + 9) / 3) and float(term) == float(mse)
  assert float(loss) == pytest.approx(0.01 * 14 / 3 + 0.75)


def test_segmentation_loss_is_the_mean_cross_entropy_of_the_labelled_pixels_only():
  # One logit vector for the whole 8 x 8 block, so the upsampled logits are that vector at
  # every pixel: the per-pixel loss is -log softmax(logits)[label], by hand.
  logits = tf.constant([[[[2.0, 0.0, -1.0]]]])
  log_softmax = np.array([2.0, 0.0, -1.0]) - np.log(np.exp([2.0, 0.0, -1.0]).sum())
  labels = np.full((1, 8, 8), 11, np.int32)  # all ignored: 0, not NaN
  assert float(segmenter_train.segmentation_loss(logits, labels, 11)) == 0.0
  labels[0, 5, 5] = 0  # one labelled pixel: its loss, not a fraction of it
  assert float(segmenter_train.segmentation_loss(logits, labels, 11)) == pytest.approx(
      -log_softmax[0], rel=1e-6)
  labels[0, 5, 5] = 11
  labels[0, :2] = 1  # 16 pixels of class 1, 8 of class 2, the other 40 ignored
  labels[0, 2] = 2
  expected = -(16 * log_softmax[1] + 8 * log_softmax[2]) / 24
  assert float(segmenter_train.segmentation_loss(logits, labels, 11)) == pytest.approx(
      expected, rel=1e-6)
  labels[0, 3:] = 0  # every pixel labelled now
  expected = -(16 * log_softmax[1] + 8 * log_softmax[2] + 40 * log_softmax[0]) / 64
  assert float(segmenter_train.segmentation_loss(logits, labels, 11)) == pytest.approx(
      expected, rel=1e-6)


def test_segmentation_loss_reads_each_blocks_own_logits():
  logits = tf.random.normal([1, 2, 2, 3], seed=1)
  labels = np.full((1, 16, 16), 11, np.int32)
  labels[0, :8, :8] = 2
  from tfcdi.nets import deeplab  # pylint: disable=g-import-not-at-top
  upsampled = deeplab.upsample_logits(logits, (16, 16))[0, :8, :8]
  expected = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      tf.fill([8, 8], 2), upsampled))
  assert float(segmenter_train.segmentation_loss(logits, labels, 11)) == pytest.approx(
      float(expected), rel=1e-5)


def test_validation_loss_is_the_mean_cross_entropy_and_stays_finite_for_large_logits():
  labels = np.array([0, 2])
  logits = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
  by_hand = -(math.log(math.e / (math.e + 2)) + math.log(math.e ** 3 / (2 + math.e ** 3))) / 2
  assert classifier_train._softmax_cross_entropy(labels, logits) == pytest.approx(by_hand)
  # Shifted by 1000, exp overflows unless the maximum is taken out first; the loss is the same.
  assert classifier_train._softmax_cross_entropy(labels, logits + 1000.0) == pytest.approx(
      by_hand)


def test_the_codec_step_is_one_graph_that_batches_of_other_sizes_reuse():
  # Training feeds crops in batches whose size may change (the last batch of an epoch, another
  # preset): the step is a tf.function whose trace relaxes to any batch size instead of tracing
  # once per size.
  step = codec_train.make_train_step(_ToyCodec(hard_entropy=2.0), keras.optimizers.SGD(0.01),
                                     tf.constant(1.0), tf.constant(1.5))
  for batch in (2, 3, 4, 5):
    step(tf.ones((batch, 2)))
  assert step.experimental_get_tracing_count() <= 2


def test_hyperprior_ms_ssim_loss_is_lambda_times_one_minus_ms_ssim_plus_the_bpp():
  # The follow-up's distortion, against tfcdi.metrics' MS-SSIM (tf.image.ssim_multiscale, the
  # evaluation's metric) on 176-px images, where all five scales fit.
  from tfcdi import metrics  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(3)
  images = np.kron(rng.uniform(0, 255, (1, 23, 23, 3)), np.ones((1, 8, 8, 1)))[:, :176, :176]
  noisy = np.clip(images + rng.normal(0, 12, images.shape), 0, 255)
  outputs = {"reconstruction": tf.constant(noisy, tf.float32), "bpp": tf.constant(0.5)}
  loss, term, mse = hyperprior_train.rate_distortion_loss(
      outputs, tf.constant(images, tf.float32), 8.73, "ms-ssim")
  expected = 1.0 - float(metrics.ms_ssim(images[0], noisy[0]))
  assert float(term) == pytest.approx(expected, abs=2e-4)
  assert float(mse) == pytest.approx(np.mean((noisy - images) ** 2), rel=1e-4)
  assert float(term) != pytest.approx(float(mse))
  assert float(loss) == pytest.approx(8.73 * float(term) + 0.5, rel=1e-6)
