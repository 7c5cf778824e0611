"""Pins the quantizer (exact forward, soft gradient), the entropy estimate and Eq. 1."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfcdi.codec import quantizer as q

CENTERS = tf.constant([-1.0, 0.0, 0.5, 2.0])


def test_forward_is_exactly_the_nearest_center():
  z = tf.constant([[-3.0, -0.6, -0.4, 0.2, 0.3, 1.2, 1.3, 9.0]])
  hard = q.quantize(z, CENTERS, sigma=1.0)
  np.testing.assert_array_equal(hard.numpy(), [[-1.0, -1.0, 0.0, 0.0, 0.5, 0.5, 2.0, 2.0]])
  np.testing.assert_array_equal(q.symbols_of(z, CENTERS).numpy(), [[0, 0, 1, 1, 2, 2, 3, 3]])


def test_forward_values_are_centers_for_random_input():
  z = tf.random.normal([3, 5, 7, 2], stddev=2.0, seed=1)
  hard = q.quantize(z, CENTERS).numpy()
  assert set(np.unique(hard)) <= set(CENTERS.numpy())
  # Each value is at least as close as any other center.
  dist = np.abs(z.numpy()[..., None] - CENTERS.numpy())
  np.testing.assert_allclose(np.abs(z.numpy() - hard), dist.min(-1), rtol=0, atol=1e-7)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 4.0])
def test_backward_is_the_soft_assignment_gradient(sigma):
  z = tf.random.normal([4, 6], seed=2)
  centers = tf.Variable(CENTERS)
  upstream = tf.random.normal([4, 6], seed=3)
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(z)
    hard = q.quantize(z, centers, sigma)
    soft = q.soft_quantize(z, centers, sigma)
    hard_obj = tf.reduce_sum(hard * upstream)
    soft_obj = tf.reduce_sum(soft * upstream)
  for h, s in zip(tape.gradient(hard_obj, [z, centers]), tape.gradient(soft_obj, [z, centers])):
    np.testing.assert_allclose(h.numpy(), s.numpy(), rtol=1e-5, atol=1e-6)
  # The gradient is not the identity (straight-through) and not zero (argmin).
  gz = tape.gradient(hard_obj, z).numpy()
  assert not np.allclose(gz, upstream.numpy())
  assert np.abs(gz).sum() > 0


# (z, sigma) -> soft value and d soft / dz, worked out by hand for CENTERS: the weights are
# exp(-sigma (z - c)^2) normalised, soft = sum w c, and d soft / dz = sum w c a - soft sum w a
# with a = -2 sigma (z - c). Pinning numbers (not soft_quantize against itself) catches a
# soft path that is self-consistent but wrong, e.g. a scaled sigma.
SOFT_BY_HAND = [
    (0.3, 1.0, 0.192465, 0.537809),
    (0.3, 4.0, 0.273975, 0.504518),
    (1.2, 1.0, 0.977063, 1.369596),
    (-0.6, 2.0, -0.523639, 1.202706),
]


@pytest.mark.parametrize("z, sigma, value, slope", SOFT_BY_HAND)
def test_soft_quantize_and_its_slope_match_hand_computed_values(z, sigma, value, slope):
  zt = tf.constant([z])
  with tf.GradientTape() as tape:
    tape.watch(zt)
    soft = q.soft_quantize(zt, CENTERS, sigma)
  assert float(soft[0]) == pytest.approx(value, abs=1e-5)
  assert float(tape.gradient(soft, zt)[0]) == pytest.approx(slope, abs=1e-5)
  # The hard quantizer hands the same slope to the encoder.
  with tf.GradientTape() as tape:
    tape.watch(zt)
    hard = q.quantize(zt, CENTERS, sigma)
  assert float(tape.gradient(hard, zt)[0]) == pytest.approx(slope, abs=1e-5)


def test_soft_quantize_works_entrywise_on_batched_input():
  # The softmax runs over the centers (the last axis) whatever z's rank: a [2, 2] z gives the
  # hand-computed values of its entries (SOFT_BY_HAND, sigma = 1).
  z = tf.constant([[0.3, 1.2], [1.2, 0.3]])
  np.testing.assert_allclose(q.soft_quantize(z, CENTERS, 1.0).numpy(),
                             [[0.192465, 0.977063], [0.977063, 0.192465]], atol=1e-5)


def test_default_sigma_is_one():
  # The paper's sigma = 1 (Appendix A.1): without one, quantize hands back the slope worked out
  # by hand for sigma = 1 (SOFT_BY_HAND's first row).
  zt = tf.constant([0.3])
  with tf.GradientTape() as tape:
    tape.watch(zt)
    hard = q.quantize(zt, CENTERS)
  assert float(tape.gradient(hard, zt)[0]) == pytest.approx(0.537809, abs=1e-5)


def test_soft_gradient_matches_finite_differences():
  z = tf.constant([0.1, 0.7, -0.8], tf.float64)
  centers = tf.constant([-1.0, 0.0, 0.5, 2.0], tf.float64)
  with tf.GradientTape() as tape:
    tape.watch(z)
    total = tf.reduce_sum(q.quantize(z, centers, 2.0))
  grad = tape.gradient(total, z).numpy()
  eps = 1e-6
  for i in range(3):
    dz = np.zeros(3)
    dz[i] = eps
    plus = tf.reduce_sum(q.soft_quantize(z + dz, centers, 2.0))
    minus = tf.reduce_sum(q.soft_quantize(z - dz, centers, 2.0))
    assert grad[i] == pytest.approx(float(plus - minus) / (2 * eps), rel=1e-5)


def test_quantize_inside_tf_function():
  f = tf.function(lambda z: q.quantize(z, CENTERS))
  np.testing.assert_array_equal(f(tf.constant([0.26])).numpy(), [0.5])


def test_entropy_of_known_distributions():
  assert float(q.entropy_bits([0.25, 0.25, 0.25, 0.25])) == pytest.approx(2.0)
  assert float(q.entropy_bits([1.0, 0.0, 0.0])) == pytest.approx(0.0)
  assert float(q.entropy_bits([0.5, 0.5, 0.0])) == pytest.approx(1.0)
  p = np.array([0.7, 0.2, 0.1])
  assert float(q.entropy_bits(p)) == pytest.approx(-(p * np.log2(p)).sum(), rel=1e-6)


def test_hard_histogram_counts_symbols():
  hist = q.hard_histogram(tf.constant([[0, 0, 1], [3, 3, 3]]), 4).numpy()
  np.testing.assert_allclose(hist, [2 / 6, 1 / 6, 0, 3 / 6])
  # One symbol is all of the distribution; no symbol is none of it (zeros, not NaN).
  np.testing.assert_allclose(q.hard_histogram(tf.constant([2]), 4).numpy(), [0, 0, 1, 0])
  np.testing.assert_array_equal(q.hard_histogram(tf.zeros([0], tf.int32), 4).numpy(), [0] * 4)


def test_soft_histogram_is_a_distribution_close_to_hard_for_large_sigma():
  z = tf.random.normal([1000], seed=4)
  soft = q.soft_histogram(z, CENTERS, 50.0).numpy()
  hard = q.hard_histogram(q.symbols_of(z, CENTERS), 4).numpy()
  assert soft.sum() == pytest.approx(1.0, abs=1e-5)
  np.testing.assert_allclose(soft, hard, atol=0.02)


def test_bpp_is_channels_times_entropy_over_64():
  # The paper's points: 0.635 bpp with C=32 needs H = 1.27 bits; 0.0983 with C=8, 0.7864.
  assert float(q.bits_per_pixel(1.27, 32)) == pytest.approx(0.635)
  assert float(q.bits_per_pixel(0.7864, 8)) == pytest.approx(0.0983)
  # log2(6) bits is the most 6 centers can cost.
  assert float(q.bits_per_pixel(math.log2(6), 16)) == pytest.approx(16 * math.log2(6) / 64)


def test_rate_term_is_a_hinge_at_the_target():
  assert float(q.rate_distortion_loss(10.0, 1.0, 100.0, 1.2)) == pytest.approx(10.0)
  assert float(q.rate_distortion_loss(10.0, 1.5, 100.0, 1.2)) == pytest.approx(40.0)
