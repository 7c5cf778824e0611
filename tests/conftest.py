"""Shared pytest fixtures: tiny codecs, small enough that building and running one takes ms."""

import contextlib
import os

import numpy as np
import pytest

# CI sets TFCDI_STRICT_SKIPS=1: there a skipped test means a missing data folder or tool, i.e.
# coverage silently lost, so it fails instead. A skip that is right on every machine (a GPU-only
# check on a CPU machine) says so with this prefix in its reason.
EXPECTED_SKIP = "expected:"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # pylint: disable=unused-argument
  outcome = yield
  report = outcome.get_result()
  if not report.skipped or os.environ.get("TFCDI_STRICT_SKIPS") != "1":
    return
  reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
  if reason.startswith("Skipped: "):
    reason = reason[len("Skipped: "):]
  if not reason.startswith(EXPECTED_SKIP):
    report.outcome = "failed"
    report.longrepr = f"unexpected skip (TFCDI_STRICT_SKIPS=1): {reason}"

TINY_FILTERS = (8, 16)
# The smallest representation (C = 8) keeps tiny codecs fast.
TINY_OPERATING_POINT = "0.0983"


def _make_tiny_codec(path, name="tiny", counts=None, operating_point=TINY_OPERATING_POINT):
  """Saves a randomly initialized codec bundle at `path`; returns its fingerprint."""
  from tfcdi.codec import model, operating_points, pretrained  # pylint: disable=g-import-not-at-top
  op = operating_points.get_operating_point(operating_point)
  autoencoder = model.from_operating_point(op, filters=TINY_FILTERS)
  counts = np.ones(op.num_centers) if counts is None else counts
  return pretrained.save_codec(autoencoder, op, pretrained.frequency_table(counts), str(path),
                               name=name)


@pytest.fixture(scope="session")
def make_tiny_codec():
  """make_tiny_codec(path, name="tiny", counts=None, operating_point="0.0983") -> fingerprint.

  Saves a randomly initialized tiny codec bundle; `counts` (one per center) sets its frequency
  table, uniform by default.
  """
  return _make_tiny_codec


@pytest.fixture(scope="session")
def tiny_codec_path(tmp_path_factory):
  """Path of a random tiny codec bundle named "tiny"."""
  path = tmp_path_factory.mktemp("codecs") / "tiny.npz"
  _make_tiny_codec(path)
  return str(path)


@pytest.fixture(scope="session")
def tiny_codec(tiny_codec_path):
  from tfcdi.codec import pretrained  # pylint: disable=g-import-not-at-top
  return pretrained.load_codec(path=tiny_codec_path)


def _make_tiny_hyperprior(path, name="hp-tiny", seed=0, quality=4, distortion="mse"):
  """Saves a random tiny hyperprior bundle (N = M = 8) at `path`; returns its fingerprint.

  Its analysis output is scaled up and its hyper-synthesis biased so that y and the scales span
  many tables, as a trained codec's do.
  """
  import keras  # pylint: disable=g-import-not-at-top
  from tfcdi.codec import hyperprior, pretrained  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(seed)
  model = hyperprior.Hyperprior(8, 8).build_weights()
  kernel = model.analysis.get_layer("conv4").kernel
  kernel.assign(kernel * 10.0)
  rng = np.random.default_rng(seed)
  for layer_name in ("deconv1", "deconv2", "deconv3"):
    layer = model.hyper_synthesis.get_layer(layer_name)
    layer.bias.assign(rng.uniform(0.5, 3.0, layer.bias.shape).astype(np.float32))
  return pretrained.save_hyperprior_codec(model, quality, str(path), name, distortion=distortion)


@pytest.fixture(scope="session")
def make_tiny_hyperprior():
  """make_tiny_hyperprior(path, name="hp-tiny", seed=0, quality=4, distortion="mse")
  -> fingerprint."""
  return _make_tiny_hyperprior


@pytest.fixture(scope="session")
def tiny_hyperprior_path(tmp_path_factory):
  """Path of a random tiny hyperprior bundle named "hp-tiny" (quality 4, N = M = 8)."""
  path = tmp_path_factory.mktemp("hyperprior_codecs") / "hp_tiny.npz"
  _make_tiny_hyperprior(path)
  return str(path)


@pytest.fixture(scope="session")
def tiny_hyperprior(tiny_hyperprior_path):
  from tfcdi.codec import pretrained  # pylint: disable=g-import-not-at-top
  return pretrained.load_codec(path=tiny_hyperprior_path)


class SavedFigures:
  """The matplotlib figures saved during a test, by the path they were saved to.

  Figure tests check what was drawn (axes, titles, series and their data) on the Figure object
  and that the PNG written is a real picture (not blank, the series' colours in it).
  """

  def __init__(self):
    self.by_path = {}

  def __getitem__(self, path):
    return self.by_path[os.path.abspath(str(path))]

  @staticmethod
  def series(ax) -> dict:
    """{label: (x data, y data)} of an axes' labelled lines (the legend's entries)."""
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
            for line in ax.get_lines() if not line.get_label().startswith("_")}

  @staticmethod
  def pixels(path) -> np.ndarray:
    from PIL import Image  # pylint: disable=g-import-not-at-top
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int32)

  def assert_drawn(self, path, colours=(), min_pixels=10, tolerance=40):
    """The PNG at `path` is not blank and holds at least `min_pixels` pixels of each colour."""
    from matplotlib import colors as mcolors  # pylint: disable=g-import-not-at-top
    pixels = self.pixels(path)
    flat = pixels.reshape(-1, 3)
    background = np.all(flat >= 250, axis=1)
    assert np.mean(~background) > 0.01, f"{path} is (almost) blank"
    assert len(np.unique(flat, axis=0)) > 16, f"{path} has hardly any colours"
    for colour in colours:
      rgb = np.array(mcolors.to_rgb(colour)) * 255
      close = np.sum(np.max(np.abs(flat - rgb), axis=1) <= tolerance)
      assert close >= min_pixels, f"{colour} is not drawn in {path} ({close} pixels)"


@contextlib.contextmanager
def recording_figures():
  """Within it, every Figure.savefig (plt.savefig goes through it too) is recorded."""
  from matplotlib import figure as mfigure  # pylint: disable=g-import-not-at-top
  recorder = SavedFigures()
  original = mfigure.Figure.savefig

  def savefig(self, fname, *args, **kwargs):
    recorder.by_path[os.path.abspath(str(fname))] = self
    return original(self, fname, *args, **kwargs)

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(mfigure.Figure, "savefig", savefig)
    yield recorder


@pytest.fixture(name="saved_figures")
def fixture_saved_figures():
  """The figures the test saves (a SavedFigures)."""
  with recording_figures() as recorder:
    yield recorder


@pytest.fixture(name="figure_recorder", scope="session")
def fixture_figure_recorder():
  """recording_figures, for module-scoped fixtures (which cannot use saved_figures)."""
  return recording_figures
