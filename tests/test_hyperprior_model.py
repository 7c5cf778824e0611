"""The hyperprior codec's layers and model: GDN, shapes, the integer h_s (its entropy models are
in test_entropy_models.py)."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcdi.codec import gdn
from tfcdi.codec import hyperprior as hp
from tfcdi.codec import qualities


def _gdn(channels=4, inverse=False, seed=0):
  layer = gdn.GDN(inverse=inverse)
  layer.build((None, None, None, channels))
  rng = np.random.default_rng(seed)
  layer.beta_raw.assign(rng.uniform(0.8, 1.5, channels).astype(np.float32))
  layer.gamma_raw.assign(rng.uniform(0.0, 0.4, (channels, channels)).astype(np.float32))
  return layer


# --- GDN ---------------------------------------------------------------------------------------


def test_gdn_computes_the_divisive_normalization():
  layer = _gdn()
  x = np.random.default_rng(1).normal(size=(2, 3, 5, 4)).astype(np.float32)
  beta, gamma = layer.beta.numpy(), layer.gamma.numpy()
  norm = beta + np.einsum("bhwj,ij->bhwi", x ** 2, gamma)
  np.testing.assert_allclose(layer(x).numpy(), x / np.sqrt(norm), rtol=1e-5)
  inverse = _gdn(inverse=True)
  np.testing.assert_allclose(inverse(x).numpy(), x * np.sqrt(norm), rtol=1e-5)


def test_igdn_undoes_gdn_for_small_activations():
  forward, inverse = _gdn(), _gdn(inverse=True)
  x = np.random.default_rng(2).uniform(-0.05, 0.05, (1, 8, 8, 4)).astype(np.float32)
  # Exact up to the change of the norm between x and GDN(x), which is O(gamma x^2).
  np.testing.assert_allclose(inverse(forward(x)).numpy(), x, rtol=1e-3, atol=1e-6)


def test_gdn_parameters_stay_in_range_whatever_the_variables_hold():
  layer = _gdn()
  layer.beta_raw.assign(-np.ones(4, np.float32))
  layer.gamma_raw.assign(-np.ones((4, 4), np.float32))
  assert np.all(layer.beta.numpy() >= layer.beta_min * (1 - 1e-6))
  assert np.all(layer.gamma.numpy() >= 0.0)
  x = np.random.default_rng(3).normal(size=(1, 4, 4, 4)).astype(np.float32) * 100
  assert np.all(np.isfinite(layer(x).numpy()))


def test_gdn_parameters_stay_non_negative_under_training():
  layer = _gdn()
  optimizer = keras.optimizers.SGD(1.0)
  x = tf.constant(np.random.default_rng(4).normal(size=(2, 4, 4, 4)), tf.float32)
  for _ in range(20):
    with tf.GradientTape() as tape:
      # Rewards a small norm: pushes beta and gamma down, against their bounds.
      loss = -tf.reduce_sum(tf.abs(layer(x)))
    grads = tape.gradient(loss, layer.trainable_variables)
    optimizer.apply_gradients(zip(grads, layer.trainable_variables))
  assert np.all(layer.gamma.numpy() >= 0.0)
  assert np.all(layer.beta.numpy() >= layer.beta_min * (1 - 1e-6))


def test_lower_bound_lets_a_variable_climb_back_from_below_its_bound():
  x = tf.Variable([-1.0, 2.0])
  with tf.GradientTape(persistent=True) as tape:
    up = tf.reduce_sum(-gdn.lower_bound(x, 0.0))  # descent wants x larger: flows everywhere
    down = tf.reduce_sum(gdn.lower_bound(x, 0.0))  # descent wants x smaller: not below the bound
  np.testing.assert_array_equal(tape.gradient(up, x).numpy(), [-1.0, -1.0])
  np.testing.assert_array_equal(tape.gradient(down, x).numpy(), [0.0, 1.0])


def test_gdn_round_trips_through_keras_serialization(tmp_path):
  inputs = keras.Input((None, None, 3))
  outputs = gdn.GDN(inverse=True, beta_min=1e-5, name="igdn")(
      gdn.GDN(name="gdn")(keras.layers.Conv2D(3, 1)(inputs)))
  model = keras.Model(inputs, outputs)
  model.get_layer("gdn").gamma_raw.assign(np.full((3, 3), 0.2, np.float32))
  path = str(tmp_path / "gdn.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  x = np.random.default_rng(5).normal(size=(1, 4, 4, 3)).astype(np.float32)
  np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6)
  config = loaded.get_layer("igdn").get_config()
  assert config["inverse"] and config["beta_min"] == 1e-5


# --- the model ---------------------------------------------------------------------------------


def test_shapes_of_every_output():
  model = hp.Hyperprior(8, 12).build_weights()
  images = tf.random.uniform([2, 80, 112, 3], 0, 255)
  out = model(images, training=True)
  assert out["reconstruction"].shape == (2, 80, 112, 3)
  assert out["y"].shape == out["sigma"].shape == out["y_likelihoods"].shape == (2, 5, 7, 12)
  assert out["z"].shape == out["z_likelihoods"].shape == (2, 2, 2, 8)  # ceil(5/4), ceil(7/4)
  assert out["bpp"].shape == ()
  y, z = model.encode(images)
  assert y.dtype == z.dtype == tf.int32 and y.shape == (2, 5, 7, 12) and z.shape == (2, 2, 2, 8)
  assert model.decode(y).shape == (2, 80, 112, 3)
  for differentiable in (False, True):
    y_hat, sigma_hat = model.latents(images, differentiable=differentiable)
    assert y_hat.shape == sigma_hat.shape == (2, 5, 7, 12)
    assert np.all(sigma_hat.numpy() >= hp.SCALE_MIN * (1 - 1e-6))


def test_rate_is_the_likelihoods_information():
  model = hp.Hyperprior(8, 8).build_weights()
  images = tf.random.uniform([1, 64, 64, 3], 0, 255, seed=1)
  out = model(images, training=False)
  y_bits = -np.log2(out["y_likelihoods"].numpy()).sum()
  assert float(out["y_bits"]) == pytest.approx(y_bits, rel=1e-4)
  total = float(out["y_bits"] + out["z_bits"])
  assert float(out["bpp"]) == pytest.approx(total / (64 * 64), rel=1e-5)


def test_latents_are_what_the_symbols_give():
  model = hp.Hyperprior(8, 8).build_weights()
  images = tf.random.uniform([1, 64, 64, 3], 0, 255, seed=2)
  y_hat, sigma_hat = model.latents(images)
  y, z = model.encode(images)
  np.testing.assert_array_equal(y_hat.numpy(), y.numpy())
  indices = model.scale_indices(z.numpy(), y.shape)
  np.testing.assert_array_equal(sigma_hat.numpy(), hp.scale_table()[indices].astype(np.float32))


def test_gradients_reach_every_trainable_weight():
  model = hp.Hyperprior(8, 8).build_weights()
  images = tf.random.uniform([1, 64, 64, 3], 0, 255, seed=3)
  with tf.GradientTape() as tape:
    out = model(images, training=True)
    loss = 0.01 * tf.reduce_mean(tf.square(out["reconstruction"] - images)) + out["bpp"]
  grads = tape.gradient(loss, model.trainable_variables)
  missing = [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
  assert not missing


def test_qualities_are_one_table():
  assert [qualities.get_quality(q).lmbda for q in qualities.TRAINED_QUALITIES] == [
      0.0018, 0.0130, 0.1800]
  assert qualities.channels(4, "paper") == (128, 192)
  assert qualities.channels("q8", "paper") == (192, 320)
  assert qualities.channels(1, "tiny") == qualities.TINY_CHANNELS
  with pytest.raises(ValueError, match="choose one of"):
    qualities.get_quality(9)
  model = hp.from_quality(4, "tiny")
  assert (model.num_filters, model.latent_channels) == qualities.TINY_CHANNELS


# --- the integer hyper-synthesis ---------------------------------------------------------------


def _model_with_active_hyper_synthesis(seed=0):
  keras.utils.set_random_seed(seed)
  model = hp.Hyperprior(8, 6).build_weights()
  rng = np.random.default_rng(seed)
  for name in ("deconv1", "deconv2", "deconv3"):  # positive biases: sigma > 0 somewhere
    layer = model.hyper_synthesis.get_layer(name)
    layer.bias.assign(rng.uniform(0.2, 2.0, layer.bias.shape).astype(np.float32))
  return model


def _transposed_conv_int64(x, kernel, stride):
  """Reference: SAME transposed convolution in int64 NumPy (TF's output-padding convention)."""
  batch, height, width, _ = x.shape
  k = kernel.shape[0]
  out_h, out_w = height * stride, width * stride
  pad = max((height - 1) * stride + k - out_h, 0) // 2, max((width - 1) * stride + k - out_w,
                                                             0) // 2
  out = np.zeros((batch, out_h, out_w, kernel.shape[2]), np.int64)
  for i in range(height):
    for j in range(width):
      for a in range(k):
        for b in range(k):
          oi, oj = i * stride + a - pad[0], j * stride + b - pad[1]
          if 0 <= oi < out_h and 0 <= oj < out_w:
            out[:, oi, oj, :] += x[:, i, j, :] @ kernel[a, b].T
  return out


def test_integer_hyper_synthesis_is_exact_integer_arithmetic():
  model = _model_with_active_hyper_synthesis()
  ihs = hp.IntegerHyperSynthesis.from_model(model)
  z = np.random.default_rng(7).integers(-20, 21, (2, 2, 3, 8)).astype(np.int64)
  x = z
  for i, (kernel, bias, stride) in enumerate(zip(ihs.kernels, ihs.biases, ihs.strides)):
    acc = np.maximum(_transposed_conv_int64(x, kernel, stride) + bias, 0)
    if i < len(ihs.shifts):
      shift = ihs.shifts[i]
      x = (acc + (1 << (shift - 1))) >> shift if shift > 0 else acc << -shift
  np.testing.assert_array_equal(ihs.accumulate(z), acc.astype(np.float64))
  np.testing.assert_array_equal(ihs(z), np.searchsorted(ihs.thresholds, acc, side="left"))


def test_integer_hyper_synthesis_tracks_the_float_one():
  model = _model_with_active_hyper_synthesis()
  ihs = model.integer_hyper_synthesis()
  z = np.random.default_rng(8).integers(-10, 11, (2, 3, 3, 8))
  sigma_float = model.hyper_synthesis(tf.constant(z, tf.float32)).numpy()
  sigma_int = ihs.sigma(z)
  large = sigma_float > 0.5
  assert large.mean() > 0.3
  np.testing.assert_allclose(sigma_int[large], sigma_float[large], rtol=1e-2)
  # The scale index is the first scale at or above sigma, for all but a sliver at bin edges.
  reference = np.searchsorted(hp.scale_table()[:-1], sigma_float, side="left")
  assert (ihs(z) == reference).mean() > 0.97


def test_integer_hyper_synthesis_refuses_values_that_could_overflow():
  ihs = _model_with_active_hyper_synthesis().integer_hyper_synthesis()
  z = np.zeros((1, 1, 1, 8), np.int64)
  z[..., 0] = 1 << 30
  with pytest.raises(hp.bitstream.BitstreamError, match="implausible"):
    ihs(z)


def test_integer_hyper_synthesis_survives_a_round_trip_through_arrays():
  ihs = _model_with_active_hyper_synthesis().integer_hyper_synthesis()
  back = hp.IntegerHyperSynthesis.from_arrays(ihs.to_arrays())
  z = np.random.default_rng(9).integers(-5, 6, (1, 2, 2, 8))
  np.testing.assert_array_equal(back(z), ihs(z))
  assert back.output_bits == ihs.output_bits and math.isfinite(back.output_bits)
