"""The hyperprior's entropy models: the factorized density of z, the Gaussian of y, and the
integer tables both are coded with; each against values computed independently (by hand, the
standard library's NormalDist and erfc, a NumPy transcription of the density's formula).

Kept apart from the model's tests so that the mutation score's per-mutant run
(tools/mutation_score.py, module entropy_models) is this file alone: seconds, not the model's."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfcdi.codec import hyperprior as hp


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
  with np.errstate(over="ignore"):  # exp(-x) is inf far in the lower tail: the sigmoid is 0
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


def test_the_default_density_is_balles_and_starts_with_biases_in_a_half_unit():
  density = hp.FactorizedDensity(64)
  assert density.filters == (3, 3, 3) and density.init_scale == 10.0
  biases = np.concatenate([b.numpy().reshape(-1) for b in density.biases])
  assert biases.size == 64 * (3 + 3 + 3 + 1)
  assert -0.5 <= biases.min() and biases.max() <= 0.5


def test_the_initial_density_is_balles_initialisation_layer_by_layer():
  # Each matrix starts at softplus^-1(1 / (scale * its output width)), scale = init_scale^(1/K);
  # the factors have the biases' shapes; the biases are spread over (-0.5, 0.5), not constant.
  import keras  # pylint: disable=g-import-not-at-top
  density = hp.FactorizedDensity(64, filters=(3, 4, 5), init_scale=8.0)
  dims, scale = (1, 3, 4, 5, 1), 8.0 ** (1 / 4)
  for k, matrix in enumerate(density.matrices):
    np.testing.assert_allclose(tf.nn.softplus(matrix).numpy(), 1.0 / (scale * dims[k + 1]),
                               rtol=1e-5)
  assert [f.shape for f in density.factors] == [b.shape for b in density.biases[:-1]]
  assert [b.shape for b in density.biases] == [(64, d, 1) for d in dims[1:]]
  biases = np.concatenate([b.numpy().reshape(-1) for b in density.biases])
  assert biases.min() < -0.4 and biases.max() > 0.4 and abs(biases.mean()) < 0.1
  assert keras.saving.get_registered_name(hp.FactorizedDensity) == "tfcdi>FactorizedDensity"


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


def test_every_y_tables_escape_holds_exactly_the_two_gaussian_tails():
  # The escape's share is about one unit of the 2^20 total, so a wrong tail (one side, or from
  # r + 3/2) moves it by one: checked exactly, in every table.
  from statistics import NormalDist  # pylint: disable=g-import-not-at-top
  from tfcdi.codec import tables as tables_lib  # pylint: disable=g-import-not-at-top
  t_star = NormalDist().inv_cdf(1.0 - hp.TABLE_TAIL_MASS)
  tables = hp.y_tables()
  for k, scale in enumerate(hp.scale_table()):
    r = max(1, math.ceil(scale * t_star - 0.5))
    normal = NormalDist(0.0, scale)
    masses = [normal.cdf(v + 0.5) - normal.cdf(v - 0.5) for v in range(-r, r + 1)]
    expected = tables_lib.quantize_pmf(masses + [2.0 * normal.cdf(-r - 0.5)])
    assert tables.table(k)[-1] == expected[-1], k


def test_z_tables_of_a_logistic_density_by_hand():
  # Biases at zero: each channel is a logistic of scale init_scale, centred on its offset
  # (a symbol v stands for v + offset). Its table spans the integers v whose mass up to v + 1/2
  # exceeds TABLE_TAIL_MASS and whose mass from v - 1/2 on does, plus an escape for the rest.
  for scale in (3.0, 0.305):  # 0.305: its last value holds about 10 of the 2^20 table units
    _check_logistic_z_tables(scale)


def _logistic_density(scale):
  density = hp.FactorizedDensity(2, init_scale=scale)
  for bias in density.biases:
    bias.assign(tf.zeros_like(bias))
  return density


def _expected_logistic_z_table(scale, shift, limit=None):
  """(offset, length, table) of one channel of _logistic_density(scale), computed by hand.

  The table spans the integers v whose mass up to v + 1/2 exceeds TABLE_TAIL_MASS and whose mass
  from v - 1/2 on does; a span longer than `limit` - 1 values keeps the `limit` - 2 values
  around its middle (rounded down), and the escape holds everything else.
  """
  from tfcdi.codec import tables as tables_lib  # pylint: disable=g-import-not-at-top
  cdf = lambda v: _sigmoid((v - 0.5 + shift) / scale)  # noqa: E731  c(v - 1/2)
  values = [v for v in range(-hp.Z_TABLE_RANGE, hp.Z_TABLE_RANGE + 1)
            if cdf(v + 1) > hp.TABLE_TAIL_MASS and 1.0 - cdf(v) > hp.TABLE_TAIL_MASS]
  first, last = values[0], values[-1]
  if limit is not None and last - first + 2 > limit:
    centre, half = (first + last) // 2, (limit - 2) // 2
    first, last = centre - half, centre + half - 1
  masses = [cdf(v + 1) - cdf(v) for v in range(first, last + 1)]
  escape = cdf(first) + 1.0 - cdf(last + 1)
  return first, last - first + 2, tables_lib.quantize_pmf(masses + [escape])


def _check_logistic_z_tables(scale):
  density = _logistic_density(scale)
  shifts = [0.0, 2.3]
  for offsets in (None, shifts):
    tables = hp.z_tables(density, offsets)
    for c in range(2):
      first, length, expected = _expected_logistic_z_table(
          scale, 0.0 if offsets is None else shifts[c])
      assert (tables.offsets[c], tables.lengths[c]) == (first, length), (offsets, c)
      np.testing.assert_allclose(tables.table(c), expected, atol=1), (scale, offsets, c)


def test_a_density_wider_than_the_table_limit_keeps_the_values_around_its_middle(monkeypatch):
  # No trained density comes near MAX_TABLE_LENGTH (a span is at most 2 * Z_TABLE_RANGE + 2
  # entries), so the clamp is checked under smaller limits: the natural length itself (kept
  # whole), one less (clamped), and an even and an odd limit far below it.
  scale, shifts = 3.0, [0.0, 2.3]
  density = _logistic_density(scale)
  natural = _expected_logistic_z_table(scale, shifts[0])[1]
  for limit in (natural, natural - 1, 12, 13):
    monkeypatch.setattr(hp.bitstream, "MAX_TABLE_LENGTH", limit)
    tables = hp.z_tables(density, shifts)
    for c in range(2):
      first, length, expected = _expected_logistic_z_table(scale, shifts[c], limit)
      assert length <= limit
      assert (tables.offsets[c], tables.lengths[c]) == (first, length), (limit, c)
      np.testing.assert_allclose(tables.table(c), expected, atol=1), (limit, c)


def test_a_density_narrower_than_one_integer_gets_a_one_value_table():
  density = hp.FactorizedDensity(1, init_scale=0.01)
  for bias in density.biases:
    bias.assign(tf.zeros_like(bias))
  tables = hp.z_tables(density)
  assert (tables.offsets[0], tables.lengths[0]) == (0, 2)  # the value 0, then the escape
