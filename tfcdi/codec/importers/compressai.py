"""CompressAI checkpoints -> tfcdi codec bundles (parameters mapped; no code of CompressAI's).

Architectures (CompressAI's zoo names), each into a tfcdi family:

  bmshj2018-hyperprior  -> hyperprior  (hyperprior_codec.py, byte 1)  the scale hyperprior
  bmshj2018-factorized  -> factorized  (factorized_codec.py, byte 2)  g_a, g_s, a factorized
                                       density on y
  mbt2018-mean          -> meanscale   (meanscale_codec.py, byte 3)   the mean-scale hyperprior

N / M per quality are CompressAI's (`WIDTHS` below): N=128, M=192 at low qualities, N=192,
M=320 from quality 6 (mbt2018-mean: from quality 5).

How each parameter maps (PyTorch NCHW / OIHW -> Keras NHWC / HWIO):
  - Conv2d weight [out, in, kh, kw] -> Conv2D kernel [kh, kw, in, out]; ConvTranspose2d weight
    [in, out, kh, kw] -> Conv2DTranspose kernel [kh, kw, out, in]: both transpose(2, 3, 1, 0).
  - A stride-1 Conv2d in h_s (CompressAI's last hyper-synthesis layer) -> tfcdi's stride-1
    Conv2DTranspose with the kernel flipped in both spatial axes (a correlation is a transposed
    correlation with the flipped kernel): transpose(2, 3, 0, 1)[::-1, ::-1].
  - Padding: PyTorch pads k//2 on every side, and crops its transposed convolutions k//2 rows
    at the start (output_padding = stride - 1 at the end); Keras' "same" is one pixel off at
    stride 2, so imported models use hyperprior.PADDINGS' "symmetric" convention (explicit
    padding and cropping layers, and the same crops in the integer hyper-synthesis).
  - GDN / IGDN: CompressAI stores beta and gamma reparametrized exactly as tfcdi's gdn.GDN does
    (sqrt of the value plus the pedestal 2^-36, bounded below at sqrt(beta_min + pedestal) and
    sqrt(pedestal)); the stored variables are copied as they are, once the checkpoint's
    pedestal and bounds are checked to be those (anything else is refused, not re-derived).
  - EntropyBottleneck: matrices.k / biases.k / factors.k (older checkpoints: _matrix{k},
    _bias{k}, _factor{k}) are FactorizedDensity's matrix/bias/factor k, same layout; its depth
    is read from the checkpoint. The medians (quantiles[:, 0, 1]) become the per-channel
    offsets z is quantized around, at hyperprior.OFFSET_BITS fractional bits (mbt2018-mean:
    meanscale_codec.PRECISION_BITS), so that the integer hyper-synthesis takes z_hat exactly;
    bmshj2018-factorized's y keeps them as the float32 values they are (no integer network
    reads y_hat, and a median moved off its value would flip round(y - m) near half-integers).
  - mbt2018-mean's LeakyReLU (PyTorch's default slope 0.01) has no weights; its h_s' last
    layer (a stride-1 Conv2d of 2M channels) maps as the hyperprior's, and its first M output
    channels are the scales, the other M the means (CompressAI's chunk(2, 1)).
  - GaussianConditional: its scale bound must be hyperprior.SCALE_MIN, and a stored scale table
    must be hyperprior.scale_table() (CompressAI's default; both are checked).
  - CompressAI's own range-coder tables (_quantized_cdf, _offset, _cdf_length) are not used:
    the bundle's integer tables and integer hyper-synthesis are derived from the imported
    weights exactly as for tfcdi's own codecs, so files decode identically on every machine.
    tfcdi's files are therefore not CompressAI's bitstreams, but code the same symbols.

A checkpoint whose tensors do not match the architecture and quality asked for is refused with a
one-line ImportError_ naming the first tensor that differs; nothing is reshaped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re

import numpy as np

from tfcdi.codec import gdn as gdn_lib
from tfcdi.codec import hyperprior as hyperprior_lib
from tfcdi.codec.importers import torch_checkpoint


class ImportError_(ValueError):  # noqa: N801  (ImportError is Python's)
  """A checkpoint does not fit the architecture / quality asked for, or cannot be read."""


@dataclasses.dataclass(frozen=True)
class Architecture:
  name: str  # CompressAI's zoo name
  family: str  # the tfcdi family it becomes
  high_from: int  # the first quality with N=192, M=320

  def widths(self, quality: int) -> tuple:
    if quality not in range(1, 9):
      raise ImportError_(f"{self.name} has qualities 1 to 8, not {quality}")
    return (192, 320) if quality >= self.high_from else (128, 192)


ARCHITECTURES = {a.name: a for a in (
    Architecture("bmshj2018-factorized", "factorized", 6),
    Architecture("bmshj2018-hyperprior", "hyperprior", 6),
    Architecture("mbt2018-mean", "meanscale", 5),
)}
WIDTHS = {name: {q: a.widths(q) for q in range(1, 9)} for name, a in ARCHITECTURES.items()}

# CompressAI's buffers that tfcdi does not use (its own range-coder state), or checks only.
_IGNORED = re.compile(r"(^|\.)(_offset|_quantized_cdf|_cdf_length|target|scale_table|"
                      r"scale_bound|likelihood_lower_bound\.bound|lower_bound_scale\.bound|"
                      r"beta_reparam\.pedestal|beta_reparam\.lower_bound\.bound|"
                      r"gamma_reparam\.pedestal|gamma_reparam\.lower_bound\.bound|quantiles)$")


def architecture(name: str) -> Architecture:
  if name not in ARCHITECTURES:
    raise ImportError_(f"unknown CompressAI architecture {name!r}; this tfcdi imports "
                       f"{', '.join(ARCHITECTURES)}")
  return ARCHITECTURES[name]


# --- tensor conversions ----------------------------------------------------------------------


def _conv(w):  # [out, in, kh, kw] -> [kh, kw, in, out]; also ConvTranspose [in, out, ..]
  return np.transpose(w, (2, 3, 1, 0))


def _conv_as_transposed(w):  # a stride-1 Conv2d -> the equivalent stride-1 Conv2DTranspose
  return np.ascontiguousarray(np.transpose(w, (2, 3, 0, 1))[::-1, ::-1])


def _same(w):
  return w


# The torch-side shape of a Keras variable of shape s, for each conversion.
_TORCH_SHAPE = {
    _conv: lambda s: (s[3], s[2], s[0], s[1]),
    _conv_as_transposed: lambda s: (s[2], s[3], s[0], s[1]),
    _same: tuple,
}


class _Mapper:
  """Fills Keras variables from a state dict, checking every shape against the architecture."""

  def __init__(self, state: dict, what: str):
    self.state, self.what, self.used = state, what, set()

  def get(self, key: str, shape=None) -> np.ndarray:
    if key not in self.state:
      raise ImportError_(f"the checkpoint has no tensor {key!r}, which {self.what} has (another "
                         "architecture's checkpoint?)")
    value = np.asarray(self.state[key])
    if shape is not None and tuple(value.shape) != tuple(shape):
      raise ImportError_(f"tensor {key!r} has shape {tuple(value.shape)}; {self.what} expects "
                         f"{tuple(shape)} (wrong --quality or --architecture?)")
    self.used.add(key)
    return value

  def assign(self, variable, key: str, convert=_same) -> None:
    shape = tuple(variable.shape)
    value = convert(self.get(key, _TORCH_SHAPE[convert](shape)))
    variable.assign(np.asarray(value, np.float32))

  def layer(self, layer, prefix: str, convert=_conv) -> None:
    self.assign(layer.kernel, f"{prefix}.weight", convert)
    self.assign(layer.bias, f"{prefix}.bias")

  def gdn(self, layer, prefix: str) -> None:
    for name, bound in (("beta", math.sqrt(layer.beta_min + gdn_lib.PEDESTAL)),
                        ("gamma", math.sqrt(gdn_lib.PEDESTAL))):
      for buffer, expected in ((f"{name}_reparam.pedestal", gdn_lib.PEDESTAL),
                               (f"{name}_reparam.lower_bound.bound", bound)):
        key = f"{prefix}.{buffer}"
        if key in self.state and not np.allclose(self.state[key], expected, rtol=1e-5, atol=0):
          raise ImportError_(f"{key} is {float(np.ravel(self.state[key])[0]):.6g}, tfcdi's GDN "
                             f"uses {expected:.6g}: a GDN parametrization tfcdi does not map")
    self.assign(layer.beta_raw, f"{prefix}.beta")
    self.assign(layer.gamma_raw, f"{prefix}.gamma")

  def density(self, density, prefix: str) -> np.ndarray:
    """Fills a FactorizedDensity; returns the medians, float64 [C]."""
    for k, matrix in enumerate(density.matrices):
      self.assign(matrix, self._density_key(prefix, "matrix", k))
      self.assign(density.biases[k], self._density_key(prefix, "bias", k))
      if k < len(density.factors):
        self.assign(density.factors[k], self._density_key(prefix, "factor", k))
    quantiles = self.get(f"{prefix}.quantiles", (density.channels, 1, 3))
    return np.asarray(quantiles[:, 0, 1], np.float64)

  def _density_key(self, prefix: str, kind: str, k: int) -> str:
    plural = {"matrix": "matrices", "bias": "biases", "factor": "factors"}[kind]
    new = f"{prefix}.{plural}.{k}"
    return new if new in self.state else f"{prefix}._{kind}{k}"

  def check_unused(self) -> None:
    extra = sorted(k for k in self.state if k not in self.used and not _IGNORED.search(k))
    if extra:
      raise ImportError_(f"the checkpoint has tensor {extra[0]!r} ({len(extra)} unexpected in "
                         f"all), which {self.what} does not (another architecture's "
                         "checkpoint?)")


def density_filters(state: dict, prefix: str) -> tuple:
  """The hidden widths of a checkpoint's entropy bottleneck (CompressAI's default: 3, 3, 3, 3)."""
  shapes = []
  for k in range(64):
    key = next((key for key in (f"{prefix}.matrices.{k}", f"{prefix}._matrix{k}")
                if key in state), None)
    if key is None:
      break
    shapes.append(np.shape(state[key]))
  if len(shapes) < 2 or any(len(s) != 3 for s in shapes):
    raise ImportError_(f"the checkpoint has no entropy bottleneck {prefix!r} (matrices.0, "
                       "matrices.1, ...): another architecture's checkpoint?")
  return tuple(int(s[1]) for s in shapes[:-1])


def offsets_of(medians: np.ndarray) -> np.ndarray:
  """Medians -> int64 at hyperprior.OFFSET_BITS fractional bits (what the codecs hold)."""
  return np.rint(np.asarray(medians, np.float64) * 2.0 ** hyperprior_lib.OFFSET_BITS).astype(
      np.int64)


def check_gaussian_conditional(state: dict, prefix: str = "gaussian_conditional") -> None:
  bound = state.get(f"{prefix}.scale_bound")
  if bound is not None and np.size(bound) and not np.isclose(
      float(np.ravel(bound)[0]), hyperprior_lib.SCALE_MIN, rtol=1e-5):
    raise ImportError_(f"{prefix}.scale_bound is {float(np.ravel(bound)[0]):.6g}; tfcdi's "
                       f"scale table starts at {hyperprior_lib.SCALE_MIN}")
  table = state.get(f"{prefix}.scale_table")
  if table is not None and np.size(table):
    ours = hyperprior_lib.scale_table()
    if np.shape(table) != ours.shape or not np.allclose(table, ours, rtol=1e-5):
      raise ImportError_(f"{prefix}.scale_table ({np.size(table)} scales) is not CompressAI's "
                         f"default table of {ours.size} scales from {hyperprior_lib.SCALE_MIN} "
                         f"to {hyperprior_lib.SCALE_MAX}, which tfcdi's tables are made for")


# --- the architectures -----------------------------------------------------------------------


def _map_transforms(m: _Mapper, model) -> None:
  """g_a and g_s, shared by the three architectures."""
  for i in range(4):
    m.layer(model.analysis.get_layer(f"conv{i + 1}"), f"g_a.{2 * i}")
    m.layer(model.synthesis.get_layer(f"deconv{i + 1}"), f"g_s.{2 * i}")
    if i < 3:
      m.gdn(model.analysis.get_layer(f"gdn{i + 1}"), f"g_a.{2 * i + 1}")
      m.gdn(model.synthesis.get_layer(f"igdn{i + 1}"), f"g_s.{2 * i + 1}")


def _map_hyper(m: _Mapper, model) -> np.ndarray:
  """h_a, h_s (the last h_s layer a stride-1 conv) and the z density; returns the medians."""
  for i in range(3):
    m.layer(model.hyper_analysis.get_layer(f"conv{i + 1}"), f"h_a.{2 * i}")
    m.layer(model.hyper_synthesis.get_layer(f"deconv{i + 1}"), f"h_s.{2 * i}",
            _conv if i < 2 else _conv_as_transposed)
  return m.density(model.density, "entropy_bottleneck")


def build_model(arch: Architecture, quality: int, state: dict):
  """The tfcdi model of an architecture and quality, its weights from `state` (checked)."""
  n, m = arch.widths(quality)
  what = f"{arch.name} quality {quality} (N={n}, M={m})"
  mapper = _Mapper(state, what)
  filters = density_filters(state, "entropy_bottleneck")
  if arch.family == "hyperprior":
    model = hyperprior_lib.Hyperprior(n, m, padding="symmetric", density_filters=filters,
                                      name=f"compressai_hyperprior_q{quality}").build_weights()
    _map_transforms(mapper, model)
    model.z_offsets = offsets_of(_map_hyper(mapper, model))
    check_gaussian_conditional(state)
  elif arch.family == "factorized":
    from tfcdi.codec import factorized_codec  # pylint: disable=g-import-not-at-top
    model = factorized_codec.FactorizedPrior(
        n, m, padding="symmetric", density_filters=filters,
        name=f"compressai_factorized_q{quality}").build_weights()
    _map_transforms(mapper, model)
    # y itself is quantized around the bottleneck's medians (there is no z).
    model.medians = mapper.density(model.density, "entropy_bottleneck").astype(np.float32)
  elif arch.family == "meanscale":
    from tfcdi.codec import meanscale_codec  # pylint: disable=g-import-not-at-top
    model = meanscale_codec.MeanScaleHyperprior(
        n, m, padding="symmetric", density_filters=filters,
        name=f"compressai_meanscale_q{quality}").build_weights()
    _map_transforms(mapper, model)
    model.z_offsets = meanscale_codec.offsets_of(_map_hyper(mapper, model))
    check_gaussian_conditional(state)
  else:
    raise ImportError_(f"no mapping into the {arch.family} family")
  mapper.check_unused()
  return model


def codec_name(arch: Architecture, quality: int) -> str:
  return f"compressai-{arch.name}-q{quality}"


def import_state_dict(state: dict, architecture_name: str, quality: int, output: str,
                      source: str = "") -> bytes:
  """Writes the tfcdi bundle of a CompressAI state dict ({name: array}); returns its
  fingerprint. Raises ImportError_ on a mismatch."""
  from tfcdi.codec import pretrained  # pylint: disable=g-import-not-at-top
  arch = architecture(architecture_name)
  model = build_model(arch, int(quality), state)
  meta = {"imported_from": "compressai", "architecture": arch.name, "source": source}
  name = codec_name(arch, int(quality))
  if arch.family == "hyperprior":
    return pretrained.save_hyperprior_codec(model, int(quality), output, name, meta,
                                            weight_dtype=np.float32)
  if arch.family == "factorized":
    from tfcdi.codec import factorized_codec  # pylint: disable=g-import-not-at-top
    return factorized_codec.save_codec(model, int(quality), output, name, meta)
  if arch.family == "meanscale":
    from tfcdi.codec import meanscale_codec  # pylint: disable=g-import-not-at-top
    return meanscale_codec.save_codec(model, int(quality), output, name, meta)
  raise ImportError_(f"no bundle writer for the {arch.family} family")


def import_checkpoint(checkpoint: str, architecture_name: str, quality: int,
                      output: str) -> bytes:
  """Reads a CompressAI checkpoint (torch.save'd state dict, or .npz) and writes its bundle."""
  try:
    state = torch_checkpoint.load_state_dict(checkpoint)
  except torch_checkpoint.CheckpointError as e:
    raise ImportError_(str(e)) from None
  digest = hashlib.sha256()
  with open(checkpoint, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return import_state_dict(state, architecture_name, quality, output,
                           source=f"sha256:{digest.hexdigest()[:16]}")
