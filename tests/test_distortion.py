"""The differentiable MS-SSIM of the hyperprior's MS-SSIM loss, and the loss through a step."""

import numpy as np
import pytest
import tensorflow as tf
from numpy.lib.stride_tricks import sliding_window_view

from tfcdi import metrics
from tfcdi.codec import hyperprior as hp
from tfcdi.codec import qualities
from tfcdi.train import distortion


def _pair(size, seed=0, noise=25.0, batch=2, width_extra=3):
  rng = np.random.default_rng(seed)
  small = rng.uniform(0, 255, (batch, size // 8 + 1, (size + width_extra) // 8 + 1, 3))
  a = tf.image.resize(small, (size, size + width_extra)).numpy().astype(np.float32)
  b = np.clip(a + rng.normal(0, noise, a.shape), 0, 255).astype(np.float32)
  return a, b


def _hand_ms_ssim(a, b, weights, size=11, sigma=1.5, peak=255.0):
  """MS-SSIM of one image pair [H, W, C] by the definition, in float64 NumPy, window by window."""
  x = np.arange(size) - (size - 1) / 2
  g = np.exp(-x**2 / (2 * sigma**2))
  window = np.outer(g, g) / np.outer(g, g).sum()
  c1, c2 = (0.01 * peak)**2, (0.03 * peak)**2
  a, b = a.astype(np.float64), b.astype(np.float64)
  per_channel = np.ones(a.shape[-1])
  for scale, weight in enumerate(weights):
    if scale:
      # Odd sides repeat their last row / column, then 2 x 2 means.
      a, b = (np.pad(v, ((0, v.shape[0] % 2), (0, v.shape[1] % 2), (0, 0)), mode="symmetric")
              for v in (a, b))
      a, b = ((v[0::2, 0::2] + v[1::2, 0::2] + v[0::2, 1::2] + v[1::2, 1::2]) / 4 for v in (a, b))
    for c in range(a.shape[-1]):
      pa = sliding_window_view(a[..., c], (size, size))
      pb = sliding_window_view(b[..., c], (size, size))
      mu_a, mu_b = (np.einsum("ijkl,kl->ij", p, window) for p in (pa, pb))
      var_a = np.einsum("ijkl,kl->ij", pa**2, window) - mu_a**2
      var_b = np.einsum("ijkl,kl->ij", pb**2, window) - mu_b**2
      cov = np.einsum("ijkl,kl->ij", pa * pb, window) - mu_a * mu_b
      cs = (2 * cov + c2) / (var_a + var_b + c2)
      lum = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
      term = (lum * cs).mean() if scale == len(weights) - 1 else cs.mean()
      per_channel[c] *= max(term, 0.0)**weight
  return per_channel.mean()


@pytest.mark.parametrize("size", [176, 161, 128, 64])
def test_ms_ssim_is_tensorflows_ms_ssim_with_a_gradient(size):
  a, b = _pair(size)
  scales = distortion.scales_for(size)
  assert scales == (5 if size >= 161 else 4 if size >= 81 else 3)
  reference = tf.image.ssim_multiscale(a, b, 255.0, power_factors=distortion.scale_weights(scales))
  np.testing.assert_allclose(distortion.ms_ssim(a, b).numpy(), reference.numpy(), atol=2e-5)


def test_ms_ssim_is_the_definition_computed_by_hand():
  a, b = _pair(161, seed=3, noise=40.0, batch=1, width_extra=6)
  by_hand = _hand_ms_ssim(a[0], b[0], metrics.MS_SSIM_WEIGHTS)
  assert 0.5 < by_hand < 0.99  # a pair the metric distinguishes, not a saturated one
  assert distortion.ms_ssim(a, b).numpy()[0] == pytest.approx(by_hand, abs=2e-5)
  # And what the codecs are evaluated with agrees: training and evaluation measure one thing.
  assert metrics.ms_ssim(a[0], b[0]) == pytest.approx(by_hand, abs=2e-5)


def test_fewer_scales_renormalise_the_standard_weights():
  weights = distortion.scale_weights(4)
  assert sum(weights) == pytest.approx(1.0)
  np.testing.assert_allclose(np.array(weights) / weights[0],
                             np.array(metrics.MS_SSIM_WEIGHTS[:4]) / metrics.MS_SSIM_WEIGHTS[0])
  a, _ = _pair(64)
  np.testing.assert_allclose(distortion.ms_ssim(a, a).numpy(), 1.0, atol=1e-5)
  with pytest.raises(ValueError, match="at least 11 pixels"):
    distortion.scales_for(10)


def test_gradient_is_finite_where_tensorflows_is_not():
  # An inverted image has negative structure terms, which the metric clips to zero:
  # tf.image.ssim_multiscale's gradient there is NaN (tensorflow#50400), ours is finite.
  a, _ = _pair(64)
  b = tf.Variable(255.0 - a)
  with tf.GradientTape(persistent=True) as tape:
    ours = tf.reduce_mean(distortion.ms_ssim(a, b))
    theirs = tf.reduce_mean(tf.image.ssim_multiscale(a, b, 255.0,
                                                     power_factors=distortion.scale_weights(3)))
  assert not np.all(np.isfinite(tape.gradient(theirs, b).numpy()))
  assert np.all(np.isfinite(tape.gradient(ours, b).numpy()))
  assert float(ours) == pytest.approx(float(theirs), abs=0.05)


def test_the_distortion_term_is_mse_or_one_minus_ms_ssim():
  a, b = _pair(64)
  assert float(distortion.distortion("mse", b, a)) == pytest.approx(np.mean((a - b)**2), rel=1e-5)
  assert float(distortion.distortion("ms-ssim", b, a)) == pytest.approx(
      1.0 - float(tf.reduce_mean(distortion.ms_ssim(b, a))), abs=1e-6)
  with pytest.raises(ValueError, match="choose one of mse, ms-ssim"):
    distortion.distortion("ssim", b, a)


def test_each_quality_has_compressais_ms_ssim_lambda():
  # CompressAI's model-zoo documentation (qualities.py): the MS-SSIM row of its lambda table.
  assert [qualities.get_quality(q).lambda_for("ms-ssim") for q in (1, 4, 8)] == [
      2.40, 16.64, 220.00]
  assert qualities.get_quality(4).lambda_for("mse") == 0.0130
  with pytest.raises(ValueError, match="unknown distortion"):
    qualities.get_quality(4).lambda_for("psnr")


def test_ms_ssim_train_steps_raise_ms_ssim():
  # The loss direction through the training step itself: a few steps of the MS-SSIM loss on one
  # batch raise that batch's MS-SSIM (rounded latents, so the measurement has no noise).
  from tfcdi.train import hyperprior as hp_train  # pylint: disable=g-import-not-at-top
  import keras  # pylint: disable=g-import-not-at-top
  images, _ = _pair(64, seed=5, batch=2, width_extra=0)
  images = tf.constant(images)

  def measured(model):
    out = model(images, training=False)
    return float(tf.reduce_mean(distortion.ms_ssim(out["reconstruction"], images)))

  tf.keras.utils.set_random_seed(0)
  model = hp.Hyperprior(8, 8).build_weights()
  before = measured(model)
  # A large lambda: the distortion term dominates the rate at this tiny width.
  step = hp_train.make_train_step(model, keras.optimizers.Adam(1e-3), 1000.0, "ms-ssim",
                                  2 * 64 * 64)
  # Eagerly: tracing the step costs more than these few steps of an 8-channel model.
  tf.config.run_functions_eagerly(True)
  try:
    losses = [float(step(images)["loss"]) for _ in range(12)]
  finally:
    tf.config.run_functions_eagerly(False)
  assert all(np.isfinite(losses))
  assert measured(model) > before + 0.03
  assert np.mean(losses[-3:]) < np.mean(losses[:3])
