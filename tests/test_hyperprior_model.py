"""The hyperprior codec's layers and model: GDN, the entropy models, shapes, the integer h_s."""

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


# --- entropy models ----------------------------------------------------------------------------


def test_factorized_likelihoods_sum_to_one_over_the_integers():
  density = hp.FactorizedDensity(3)
  rng = np.random.default_rng(6)
  for var in density.biases:  # move the densities off their initial place
    var.assign(rng.normal(size=var.shape).astype(np.float32))
  values = np.arange(-300, 301, dtype=np.float32)
  z = np.broadcast_to(values[None, :, None, None], (1, values.size, 1, 3))
  p = density(z).numpy()[0, :, 0, :]
  np.testing.assert_allclose(p.sum(axis=0), 1.0, atol=1e-4)
  assert np.all(p > 0)


def test_factorized_cumulative_is_increasing():
  density = hp.FactorizedDensity(2)
  x = tf.constant(np.broadcast_to(np.linspace(-50, 50, 1001), (2, 1, 1001)), tf.float32)
  assert np.all(np.diff(density.cdf_logits(x).numpy(), axis=-1) > 0)


def test_gaussian_likelihoods_sum_to_one_over_the_integers():
  values = np.arange(-200, 201, dtype=np.float32)
  for sigma in (0.11, 0.7, 3.0, 25.0):
    p = hp.gaussian_likelihood(values, tf.fill(values.shape, sigma)).numpy()
    assert abs(p.sum() - 1.0) < 1e-4, sigma
    assert p.argmax() == 200  # the mode is 0


def test_y_tables_follow_the_gaussians_of_the_scale_table():
  tables = hp.y_tables()
  assert tables.num_tables == hp.NUM_SCALES
  for k in (0, 20, 63):
    scale = hp.scale_table()[k]
    table = tables.table(k)
    offset = tables.offsets[k]
    assert offset == -(tables.lengths[k] - 2) // 2  # symmetric around 0
    values = np.arange(offset, offset + tables.lengths[k] - 1, dtype=np.float32)
    ideal = hp.gaussian_likelihood(values, tf.fill(values.shape, scale)).numpy()
    coded = table[:-1] / table.sum()
    # Cross-entropy of the table against the Gaussian it quantizes: within 0.5% of its entropy.
    cross = -(ideal * np.log2(coded)).sum()
    entropy = -(ideal * np.log2(np.maximum(ideal, 1e-30))).sum()
    assert cross <= entropy * 1.005 + 1e-3, k


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def test_the_initial_factorized_density_is_a_logistic_of_spread_init_scale():
  # With the biases at zero (the factors start at zero, so tanh adds nothing), each layer's
  # initial matrix shrinks the spread by init_scale^(1/K): the K layers together map x to
  # x / init_scale, a logistic density of scale init_scale, in every channel.
  for filters, init_scale in (((3, 3, 3), 10.0), ((2,), 4.0)):
    density = hp.FactorizedDensity(2, filters=filters, init_scale=init_scale)
    assert [m.shape for m in density.matrices] == [
        (2, b, a) for a, b in zip((1, *filters), (*filters, 1))]
    assert len(density.factors) == len(filters)
    for bias in density.biases:
      bias.assign(tf.zeros_like(bias))
    x = np.linspace(-30.0, 30.0, 7)
    logits = density.cdf_logits(tf.constant(np.broadcast_to(x, (2, 1, 7)), tf.float32))
    np.testing.assert_allclose(logits.numpy()[:, 0], np.stack([x, x]) / init_scale, rtol=1e-5,
                               atol=1e-6)


def _numpy_density(density, z):
  """The factorized density's likelihoods by the formula of its docstring, float64."""
  mats = [np.log1p(np.exp(m.numpy().astype(np.float64))) for m in density.matrices]
  biases = [b.numpy().astype(np.float64) for b in density.biases]
  factors = [np.tanh(f.numpy().astype(np.float64)) for f in density.factors]

  def cdf(x):  # x [C, 1, n]
    for k, (m, b) in enumerate(zip(mats, biases)):
      x = m @ x + b
      if k < len(factors):
        x = x + factors[k] * np.tanh(x)
    return _sigmoid(x)

  x = np.transpose(z, (3, 0, 1, 2)).reshape(density.channels, 1, -1).astype(np.float64)
  p = cdf(x + 0.5) - cdf(x - 0.5)
  return np.transpose(p.reshape(density.channels, *z.shape[:3]), (1, 2, 3, 0))


def test_factorized_likelihoods_match_an_independent_computation():
  density = hp.FactorizedDensity(3)
  rng = np.random.default_rng(11)
  for var in density.variables:
    var.assign(rng.normal(scale=0.7, size=var.shape).astype(np.float32))
  z = rng.integers(-4, 5, size=(2, 3, 2, 3)).astype(np.float32)
  z[0, 0, 0] += rng.uniform(-0.5, 0.5, 3)  # training's noisy values too
  expected = np.maximum(_numpy_density(density, z), hp.LIKELIHOOD_MIN)
  np.testing.assert_allclose(density(z).numpy(), expected, rtol=2e-4, atol=1e-7)


def test_factorized_likelihoods_far_in_the_upper_tail_do_not_cancel_to_zero():
  # A logistic of scale 1 (biases at zero, init_scale 1): at z = 12 both sigmoids are within
  # 1e-5 of 1, and their float32 difference would be 0 or a multiple of 6e-8; the density
  # computes it from the lower tail instead. The exact value: sigmoid(12.5) - sigmoid(11.5).
  density = hp.FactorizedDensity(1, init_scale=1.0)
  for bias in density.biases:
    bias.assign(tf.zeros_like(bias))
  for z in (12.0, -12.0):
    p = float(density(np.full((1, 1, 1, 1), z, np.float32)).numpy().reshape(()))
    exact = _sigmoid(abs(z) + 0.5) - _sigmoid(abs(z) - 0.5)
    assert p == pytest.approx(exact, rel=1e-3)
  # Below the bound the likelihood is LIKELIHOOD_MIN, never 0 (a rate of infinitely many bits).
  far = density(np.full((1, 1, 1, 1), 60.0, np.float32)).numpy().reshape(())
  assert far == pytest.approx(hp.LIKELIHOOD_MIN)


@pytest.mark.parametrize("y, sigma", [(0.0, 1.0), (1.0, 1.0), (-2.0, 0.5), (7.0, 3.0),
                                      (3.0, 0.11), (0.4, 2.0)])
def test_gaussian_likelihood_by_hand(y, sigma):
  # P(|y| - 1/2 < Y < |y| + 1/2), Y ~ N(0, sigma^2), with Python's float64 erfc.
  def tail(t):
    return 0.5 * math.erfc(t / (math.sqrt(2.0) * sigma))

  exact = max(tail(abs(y) - 0.5) - tail(abs(y) + 0.5), hp.LIKELIHOOD_MIN)
  got = float(hp.gaussian_likelihood(np.float32(y), np.float32(sigma)).numpy())
  assert got == pytest.approx(exact, rel=1e-4, abs=1e-9)


def test_standard_upper_tail_by_hand():
  np.testing.assert_allclose(hp._standard_upper_tail([0.0, 1.959963984540054, -1.0, 10.0]),
                             [0.5, 0.025, 0.8413447460685429, 7.619853024160527e-24],
                             rtol=1e-9)


def test_the_scale_table_is_log_spaced_from_the_least_to_the_largest_scale():
  scales = hp.scale_table()
  assert scales.dtype == np.float64 and scales.shape == (hp.NUM_SCALES,)
  assert scales[0] == pytest.approx(hp.SCALE_MIN) and scales[-1] == pytest.approx(hp.SCALE_MAX)
  ratios = scales[1:] / scales[:-1]
  np.testing.assert_allclose(ratios, (hp.SCALE_MAX / hp.SCALE_MIN) ** (1 / (hp.NUM_SCALES - 1)))


def test_y_tables_by_hand():
  # Table k spans [-r, r], r the least integer >= 1 with both tails beyond r + 1/2 holding at
  # most 2 * TABLE_TAIL_MASS; its frequencies quantize the Gaussian's integer masses and the
  # escape the two tails. Computed here with the standard library's NormalDist.
  from statistics import NormalDist  # pylint: disable=g-import-not-at-top
  from tfcdi.codec import tables as tables_lib  # pylint: disable=g-import-not-at-top
  t_star = NormalDist().inv_cdf(1.0 - hp.TABLE_TAIL_MASS)
  tables = hp.y_tables()
  for k in (0, 1, 30, 63):
    scale = hp.scale_table()[k]
    r = max(1, math.ceil(scale * t_star - 0.5))
    assert (tables.offsets[k], tables.lengths[k]) == (-r, 2 * r + 2), k
    normal = NormalDist(0.0, scale)
    masses = [normal.cdf(v + 0.5) - normal.cdf(v - 0.5) for v in range(-r, r + 1)]
    expected = tables_lib.quantize_pmf(masses + [2.0 * normal.cdf(-r - 0.5)])
    np.testing.assert_allclose(tables.table(k), expected, atol=2), k


def test_z_tables_of_a_logistic_density_by_hand():
  # Biases at zero: each channel is a logistic of scale init_scale, centred on its offset
  # (a symbol v stands for v + offset). Its table spans the integers v whose mass up to v + 1/2
  # exceeds TABLE_TAIL_MASS and whose mass from v - 1/2 on does, plus an escape for the rest.
  from tfcdi.codec import tables as tables_lib  # pylint: disable=g-import-not-at-top
  scale = 3.0
  density = hp.FactorizedDensity(2, init_scale=scale)
  for bias in density.biases:
    bias.assign(tf.zeros_like(bias))
  shifts = [0.0, 2.3]
  for offsets in (None, shifts):
    tables = hp.z_tables(density, offsets)
    for c in range(2):
      m = 0.0 if offsets is None else shifts[c]
      cdf = lambda v, m=m: _sigmoid((v - 0.5 + m) / scale)  # noqa: E731  c(v - 1/2)
      values = [v for v in range(-hp.Z_TABLE_RANGE, hp.Z_TABLE_RANGE + 1)
                if cdf(v + 1) > hp.TABLE_TAIL_MASS and 1.0 - cdf(v) > hp.TABLE_TAIL_MASS]
      first, last = values[0], values[-1]
      assert (tables.offsets[c], tables.lengths[c]) == (first, last - first + 2), (offsets, c)
      masses = [cdf(v + 1) - cdf(v) for v in values]
      escape = cdf(first) + 1.0 - cdf(last + 1)
      expected = tables_lib.quantize_pmf(masses + [escape])
      np.testing.assert_allclose(tables.table(c), expected, atol=3), (offsets, c)


def test_a_density_narrower_than_one_integer_gets_a_one_value_table():
  density = hp.FactorizedDensity(1, init_scale=0.01)
  for bias in density.biases:
    bias.assign(tf.zeros_like(bias))
  tables = hp.z_tables(density)
  assert (tables.offsets[0], tables.lengths[0]) == (0, 2)  # the value 0, then the escape


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
