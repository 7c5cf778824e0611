"""Tests for tfcdi.metrics: image quality, rate, top-k accuracy and mean IoU."""

import math

import numpy as np
import pytest

from tfcdi import metrics


def _random_image(size=(176, 176), seed=0):
  # Smooth-ish content (a blurred random field) so SSIM behaves as on photographs, not noise.
  rng = np.random.default_rng(seed)
  coarse = rng.uniform(0, 255, (size[0] // 8 + 1, size[1] // 8 + 1, 3))
  image = np.kron(coarse, np.ones((8, 8, 1)))[:size[0], :size[1]]
  return image.astype(np.uint8)


class TestPsnr:

  def test_known_mse(self):
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 10, np.uint8)  # MSE = 100
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))

  def test_identical_is_inf(self):
    a = _random_image((8, 8))
    assert metrics.psnr(a, a) == float("inf")

  def test_batch_gives_one_value_per_image(self):
    a = np.zeros((2, 4, 4, 3), np.uint8)
    b = a.copy()
    b[1] += 10
    values = metrics.psnr(a, b)
    assert values.shape == (2,)
    assert values[0] == float("inf")
    assert values[1] == pytest.approx(10 * math.log10(255**2 / 100))

  def test_shape_mismatch_raises(self):
    with pytest.raises(ValueError, match="same shape"):
      metrics.psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))


class TestSsim:

  def test_identical_images_score_one(self):
    a = _random_image()
    assert metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-5)
    assert metrics.ms_ssim(a, a) == pytest.approx(1.0, abs=1e-5)

  def test_ms_ssim_decreases_with_noise(self):
    a = _random_image()
    rng = np.random.default_rng(1)
    scores = []
    for sigma in (2, 10, 40):
      noisy = np.clip(a + rng.normal(0, sigma, a.shape), 0, 255).astype(np.uint8)
      scores.append(metrics.ms_ssim(a, noisy))
    assert scores[0] > scores[1] > scores[2]
    assert scores[0] < 1.0

  def test_ms_ssim_too_small_raises_clearly(self):
    a = _random_image((100, 300))
    with pytest.raises(ValueError, match="at least 161 pixels.*at most 4 scales"):
      metrics.ms_ssim(a, a)

  def test_ms_ssim_fewer_scales_on_small_images(self):
    a = _random_image((100, 100))
    assert metrics.ms_ssim(a, a, num_scales=4) == pytest.approx(1.0, abs=1e-5)

  def test_min_size_matches_scales(self):
    assert metrics.ms_ssim_min_size(5) == 161
    assert metrics.max_ms_ssim_scales(161, 200) == 5
    assert metrics.max_ms_ssim_scales(160, 200) == 4
    assert metrics.max_ms_ssim_scales(10, 10) == 0


def test_bpp_from_bytes():
  assert metrics.bpp_from_bytes(1000, 100, 80) == pytest.approx(1.0)
  assert metrics.bpp_from_bytes(49152, 512, 768) == pytest.approx(1.0)
  with pytest.raises(ValueError):
    metrics.bpp_from_bytes(10, 0, 8)


class TestTopK:

  def test_hand_example(self):
    scores = np.array([
        [0.1, 0.5, 0.2, 0.2],  # order 1, 2, 3, 0
        [0.7, 0.1, 0.15, 0.05],  # order 0, 2, 1, 3
        [0.3, 0.3, 0.4, 0.0],  # order 2, 0, 1 (tie broken towards the lower index), 3
    ])
    labels = np.array([1, 1, 1])
    assert metrics.top_k_accuracy(labels, scores, k=1) == pytest.approx(1 / 3)
    assert metrics.top_k_accuracy(labels, scores, k=2) == pytest.approx(1 / 3)
    assert metrics.top_k_accuracy(labels, scores, k=3) == pytest.approx(1.0)
    assert metrics.top_k_accuracy(labels, scores, k=10) == pytest.approx(1.0)

  def test_every_class_index_from_zero_to_the_last_counts(self):
    # Labels at both ends of [0, num_classes): 0 is a class like any other. k defaults to 1.
    scores = np.array([[0.9, 0.05, 0.05], [0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])
    labels = np.array([0, 2, 2])
    assert metrics.top_k_accuracy(labels, scores) == pytest.approx(2 / 3)
    assert metrics.top_k_accuracy(labels, scores, k=2) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="Labels must be in"):
      metrics.top_k_accuracy(np.array([-1, 0, 2]), scores)

  def test_bad_input_raises(self):
    with pytest.raises(ValueError):
      metrics.top_k_accuracy(np.array([0, 1]), np.zeros((3, 4)), k=1)
    with pytest.raises(ValueError):
      metrics.top_k_accuracy(np.array([0]), np.zeros((1, 4)), k=0)
    with pytest.raises(ValueError):
      metrics.top_k_accuracy(np.array([4]), np.zeros((1, 4)), k=1)


class TestMeanIou:

  def test_confusion_matrix_with_ignore_label(self):
    labels = np.array([[0, 0, 1, 1], [2, 2, 9, 9]])
    predictions = np.array([[0, 1, 1, 1], [2, 0, 7, 0]])  # anything goes under label 9
    confusion = metrics.confusion_matrix(labels, predictions, num_classes=3, ignore_label=9)
    np.testing.assert_array_equal(confusion, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])

  def test_mean_iou_by_hand(self):
    # rows: ground truth, columns: prediction; class 3 never occurs in either.
    confusion = np.array([
        [3, 1, 0, 0],
        [2, 4, 0, 0],
        [0, 0, 0, 0],  # class 2 absent from ground truth, predicted once (below)
        [0, 0, 0, 0],
    ])
    confusion[1, 2] = 1
    # class 0: TP 3, union 3 + 1 + 2 = 6 -> 0.5
    # class 1: TP 4, union (2 + 4 + 1) + (1 + 4) - 4 = 8 -> 0.5
    # class 2: TP 0, union 1 -> 0
    # class 3: union 0 -> NaN, left out of the mean
    iou = metrics.iou_per_class(confusion)
    np.testing.assert_allclose(iou[:3], [0.5, 0.5, 0.0])
    assert math.isnan(iou[3])
    assert metrics.mean_iou(confusion) == pytest.approx(1 / 3)

  def test_end_to_end_with_ignore_label(self):
    labels = np.array([0, 0, 1, 1, 11, 11])
    predictions = np.array([0, 1, 1, 1, 0, 5])
    confusion = metrics.confusion_matrix(labels, predictions, num_classes=11, ignore_label=11)
    # class 0: TP 1, union 2 -> 0.5; class 1: TP 2, union 3 -> 2/3; others absent.
    assert metrics.mean_iou(confusion) == pytest.approx((0.5 + 2 / 3) / 2)

  def test_empty_is_nan(self):
    assert math.isnan(metrics.mean_iou(np.zeros((3, 3))))

  def test_shape_mismatch_raises(self):
    with pytest.raises(ValueError, match="same shape"):
      metrics.confusion_matrix(np.zeros((2, 2)), np.zeros(4), num_classes=2)

  def test_label_out_of_range_raises(self):
    with pytest.raises(ValueError, match="label 5"):
      metrics.confusion_matrix(np.array([0, 5]), np.array([0, 1]), num_classes=3,
                               ignore_label=255)

  def test_prediction_out_of_range_raises(self):
    with pytest.raises(ValueError, match="prediction 3"):
      metrics.confusion_matrix(np.array([0, 1]), np.array([0, 3]), num_classes=3)
    with pytest.raises(ValueError, match="prediction -1"):
      metrics.confusion_matrix(np.array([0, 1]), np.array([-1, 1]), num_classes=3)



# An independent SSIM / MS-SSIM in float64 NumPy + SciPy, written from Wang et al. (2004, 2003)
# rather than from tf.image: an 11 x 11 Gaussian window (sigma 1.5) over the valid region,
# K1 = 0.01, K2 = 0.03, L = 255; MS-SSIM halves the image by 2 x 2 averaging between scales and
# multiplies the four finer scales' contrast-structure terms and the coarsest scale's SSIM, each
# to its weight, per channel, then averages the channels.
def _reference_ssim_terms(x, y):
  from scipy import signal  # pylint: disable=g-import-not-at-top
  offsets = np.arange(11) - 5.0
  window = np.exp(-offsets**2 / (2 * 1.5**2))
  window = np.outer(window, window) / np.sum(window) ** 2
  blur = lambda image: signal.convolve2d(image, window, mode="valid")
  c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
  mu_x, mu_y = blur(x), blur(y)
  var_x, var_y = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2
  cov = blur(x * y) - mu_x * mu_y
  luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
  contrast_structure = (2 * cov + c2) / (var_x + var_y + c2)
  return np.mean(luminance * contrast_structure), np.mean(contrast_structure)


def _reference_ssim(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.mean([_reference_ssim_terms(a[..., c], b[..., c])[0] for c in range(a.shape[-1])])


# Wang, Simoncelli & Bovik (2003), finest scale first.
_PAPER_MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _reference_ms_ssim(a, b, weights=_PAPER_MS_SSIM_WEIGHTS):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  halve = lambda x: 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])
  per_channel = []
  for c in range(a.shape[-1]):
    x, y, value = a[..., c], b[..., c], 1.0
    for scale, weight in enumerate(weights):
      if scale:
        x, y = halve(x), halve(y)
      ssim_value, cs_value = _reference_ssim_terms(x, y)
      last = scale == len(weights) - 1
      value *= max(ssim_value if last else cs_value, 0.0) ** weight
    per_channel.append(value)
  return np.mean(per_channel)


def _distorted(image, seed=3):
  # A known distortion: a brightness shift on one channel, a contrast change and some noise.
  rng = np.random.default_rng(seed)
  out = image.astype(np.float64) * 0.8 + 20 + rng.normal(0, 12, image.shape)
  out[..., 1] += 15
  return np.clip(np.rint(out), 0, 255).astype(np.uint8)


class TestAgainstReference:

  def test_psnr_of_a_per_channel_constant_error(self):
    a = np.full((5, 7, 3), 100, np.uint8)
    b = a + np.array([3, 4, 0], np.uint8)  # MSE = (9 + 16 + 0) / 3
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 * 3 / 25), abs=1e-12)

  def test_ssim_of_a_known_distortion_matches_an_independent_computation(self):
    a = _random_image((48, 64))
    b = _distorted(a)
    expected = _reference_ssim(a, b)
    assert 0.2 < expected < 0.9  # far from the trivial ends, so the match means something
    assert metrics.ssim(a, b) == pytest.approx(expected, abs=1e-5)
    # A batch gives each image's own value.
    batch = metrics.ssim(np.stack([a, a]), np.stack([b, a]))
    np.testing.assert_allclose(batch, [expected, 1.0], atol=1e-5)

  def test_ms_ssim_of_a_known_distortion_matches_an_independent_computation(self):
    a = _random_image()  # 176 x 176: 88, 44, 22 and 11 pixels at the coarser scales
    b = _distorted(a)
    expected = _reference_ms_ssim(a, b)
    assert 0.5 < expected < 0.99
    assert metrics.ms_ssim(a, b) == pytest.approx(expected, abs=1e-5)
    assert metrics.ms_ssim(a, a) == pytest.approx(1.0, abs=1e-6)

  def test_ms_ssim_with_fewer_scales_renormalises_the_standard_weights(self):
    a = _random_image((96, 96))
    b = _distorted(a)
    weights = np.array(_PAPER_MS_SSIM_WEIGHTS[:3]) / sum(_PAPER_MS_SSIM_WEIGHTS[:3])
    expected = _reference_ms_ssim(a, b, weights)
    assert metrics.ms_ssim(a, b, num_scales=3) == pytest.approx(expected, abs=1e-5)

  def test_image_quality_gathers_the_three_metrics(self):
    a = _random_image()
    b = _distorted(a)
    quality = metrics.image_quality(a, b)
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    assert quality["psnr"] == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-9)
    assert quality["ssim"] == pytest.approx(_reference_ssim(a, b), abs=1e-5)
    assert quality["ms_ssim"] == pytest.approx(_reference_ms_ssim(a, b), abs=1e-5)


# --- bounds and edges, each pinned where a mutant of tfcdi/metrics.py survived ----------------


def test_psnr_of_an_mse_below_one_is_finite():
  # One pixel of 64 x 64 x 3 samples off by one grey level: MSE = 1 / 12288, well below 1.
  a = np.zeros((64, 64, 3), np.uint8)
  b = a.copy()
  b[5, 7, 1] = 1
  assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255.0**2 * 64 * 64 * 3))


def test_ms_ssim_and_ssim_return_a_float_for_an_image_and_an_array_for_a_batch():
  a, b = _random_image(seed=1), _random_image(seed=2)
  for fn in (metrics.ssim, metrics.ms_ssim):
    single = fn(a, b)
    batch = fn(np.stack([a, a]), np.stack([b, a]))
    assert isinstance(single, float)
    assert batch.shape == (2,) and batch[0] == pytest.approx(single) and batch[1] == 1.0


def test_ssim_accepts_an_image_exactly_the_window_size():
  a = _random_image((11, 11), seed=3)
  assert metrics.ssim(a, a) == pytest.approx(1.0)
  with pytest.raises(ValueError, match="at least 11 x 11"):
    metrics.ssim(a[:10], a[:10])


def test_ms_ssim_takes_one_to_five_scales():
  a = _random_image((176, 176), seed=4)
  with pytest.raises(ValueError, match="num_scales must be in"):
    metrics.ms_ssim(a, a, num_scales=0)
  with pytest.raises(ValueError, match="num_scales must be in"):
    metrics.ms_ssim(a, a, num_scales=6)
  assert metrics.ms_ssim(a, a, num_scales=1) == pytest.approx(1.0)


def test_no_ms_ssim_scale_fits_an_image_smaller_than_the_window():
  assert metrics.max_ms_ssim_scales(5, 5) == 0
  assert metrics.max_ms_ssim_scales(10, 300) == 0
  assert metrics.max_ms_ssim_scales(11, 11) == 1


def test_bpp_of_the_smallest_image_and_of_an_empty_file():
  assert metrics.bpp_from_bytes(10, 1, 1) == 80.0
  assert metrics.bpp_from_bytes(0, 4, 4) == 0.0
  for bad in ((-1, 4, 4), (10, 0, 4), (10, 4, 0), (10, -1, 4)):
    with pytest.raises(ValueError):
      metrics.bpp_from_bytes(*bad)


def test_empty_evaluations_are_nan_without_a_numpy_warning():
  import warnings  # pylint: disable=g-import-not-at-top
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    assert math.isnan(metrics.top_k_accuracy(np.zeros(0, int), np.zeros((0, 3))))
    # A class absent from the ground truth and the predictions: NaN, and no 0 / 0 computed.
    with np.errstate(all="raise"):
      iou = metrics.iou_per_class(np.array([[3, 1, 0], [2, 4, 0], [0, 0, 0]]))
    np.testing.assert_allclose(iou[:2], [3 / 6, 4 / 7])
    assert math.isnan(iou[2])


def test_the_tensorflow_metrics_run_as_graphs():
  # Graph mode is what makes a rate-distortion sweep minutes, not a quarter of an hour.
  assert hasattr(metrics._tf_ssim, "get_concrete_function")
  assert hasattr(metrics._tf_ms_ssim, "get_concrete_function")


def test_top_k_counts_classes_by_the_scores_columns_and_scores_one_example():
  # 2 examples, 4 classes: label 3 is valid although there are only 2 rows.
  scores = np.array([[0.1, 0.2, 0.3, 0.4], [0.9, 0.0, 0.05, 0.05]])
  assert metrics.top_k_accuracy(np.array([3, 0]), scores) == 1.0
  assert metrics.top_k_accuracy(np.array([2]), scores[:1]) == 0.0
  assert metrics.top_k_accuracy(np.array([3]), scores[:1]) == 1.0


def test_confusion_matrix_needs_a_class_and_names_the_first_bad_value():
  with pytest.raises(ValueError, match="num_classes must be positive"):
    metrics.confusion_matrix(np.zeros(2, int), np.zeros(2, int), num_classes=0)
  assert metrics.confusion_matrix(np.zeros(2, int), np.zeros(2, int), num_classes=1).tolist() \
      == [[2]]
  with pytest.raises(ValueError, match="Found label 7 outside"):
    metrics.confusion_matrix(np.array([0, 7, 9]), np.zeros(3, int), num_classes=3)


def test_a_confusion_matrix_that_is_not_square_is_refused_as_such():
  # Not any ValueError: (2, 3) would also fail later, when its row and column sums meet.
  with pytest.raises(ValueError, match="square"):
    metrics.iou_per_class(np.ones((2, 3)))


def test_bpp_is_not_rounded_to_whole_bits():
  assert metrics.bpp_from_bytes(1, 3, 1) == pytest.approx(8 / 3)


def test_ms_ssim_fits_five_scales_at_most_and_accepts_exactly_its_smallest_image():
  assert metrics.max_ms_ssim_scales(4000, 4000) == 5
  a = _random_image((161, 161), seed=5)
  assert metrics.ms_ssim(a, a) == pytest.approx(1.0)
  assert metrics.ms_ssim(a, a, num_scales=5) == pytest.approx(1.0)


def test_the_narrow_side_decides_whether_an_image_is_large_enough():
  # Wider than tall and taller than wide: each side is checked, not the height twice.
  tall = _random_image((176, 176), seed=6)[:, :10]
  with pytest.raises(ValueError, match="at least 11 x 11"):
    metrics.ssim(tall, tall)
  tall = _random_image((176, 176), seed=6)[:, :160]
  with pytest.raises(ValueError, match="at least 161 pixels, got 176 x 160"):
    metrics.ms_ssim(tall, tall)


def test_top_k_refuses_labels_that_do_not_match_the_scores_rows():
  with pytest.raises(ValueError, match=r"Expected labels \[N\]"):
    metrics.top_k_accuracy(np.array([0, 1, 2]), np.zeros((2, 4)))


def test_a_bad_label_names_ignore_label_only_when_one_is_set():
  with pytest.raises(ValueError, match=r"outside \[0, 3\) \(ignore_label is 11\)\.$"):
    metrics.confusion_matrix(np.array([11, 7]), np.zeros(2, int), num_classes=3, ignore_label=11)
  with pytest.raises(ValueError, match=r"outside \[0, 3\)\.$"):
    metrics.confusion_matrix(np.array([7]), np.zeros(1, int), num_classes=3)
