"""Compact codec bundles: float16 weights + integer coding tables + identity, in one .npz.

A bundle is everything a .tfci file needs besides itself: the autoencoder's weights, the
operating point it was trained for, and the frequency table the range coder uses. The table is
integers (it is never recomputed from floats at coding time), so a file encodes and decodes the
same way on any machine.

The codec's identity is its name plus a fingerprint: the first 8 bytes of the SHA-256 of the
stored weights and table. A .tfci header carries both, and decoding with any other bundle is
refused, even one trained for the same operating point.

Shipped bundles live in tfcdi/pretrained/codec_<operating point>.npz.

The hyperprior family (hyperprior.py) bundles the same way, under its own metadata ("family":
"hyperprior", the quality, N and M): float16 weights plus its integer tables (the z tables, the
y tables of the scale table, the integer hyper-synthesis); its fingerprint covers all of them.
`load_codec` reads a bundle of any family through the registry (registry.load) and returns that
family's codec (autoencoder.AutoencoderCodec, hyperprior_codec.HyperpriorCodec, ...). Shipped
hyperprior bundles are tfcdi/pretrained/hyperprior_q<quality>.npz.

The codec classes live in their family modules; `pretrained.Codec` and
`pretrained.HyperpriorCodec` are the same classes, under the names callers have always used.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from tfcdi.codec import bitstream
from tfcdi.codec import hyperprior as hyperprior_lib
from tfcdi.codec import model as model_lib
from tfcdi.codec import operating_points
from tfcdi.codec import qualities
from tfcdi.codec.interface import CodecError  # noqa: F401  (where callers have caught it)

PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "pretrained")
# Frequencies are scaled to sum to this; constriction's range coder works at 24-bit precision,
# so 2^16 leaves room and every table entry is an exactly representable float.
FREQUENCY_TOTAL = 1 << 16
_FORMAT = 1


def __getattr__(name):
  # The codec classes live in their family modules, which import this one; looked up lazily so
  # that either side can be imported first.
  if name == "Codec":
    from tfcdi.codec import autoencoder  # pylint: disable=g-import-not-at-top
    return autoencoder.AutoencoderCodec
  if name == "HyperpriorCodec":
    from tfcdi.codec import hyperprior_codec  # pylint: disable=g-import-not-at-top
    return hyperprior_codec.HyperpriorCodec
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def frequency_table(symbol_counts, total=FREQUENCY_TOTAL) -> np.ndarray:
  """Integer frequencies summing to `total` from observed symbol counts; none is zero.

  Every symbol keeps a frequency of at least 1 so that any image can be coded, even one that
  uses a center never seen in the data the table was estimated on.
  """
  counts = np.asarray(symbol_counts, dtype=np.float64)
  if counts.ndim != 1 or counts.size < 2 or np.any(counts < 0):
    raise ValueError(f"symbol counts must be a 1-D non-negative array, got {counts!r}")
  n = counts.size
  probs = (counts + 0.5) / (counts.sum() + 0.5 * n)  # a little smoothing for unseen symbols
  freqs = np.maximum(1, np.floor(probs * (total - n))).astype(np.int64)
  # Hand the rounding remainder to the most frequent symbol, where it costs the least.
  freqs[np.argmax(freqs)] += total - freqs.sum()
  return freqs


def _weights_digest(arrays, frequencies) -> bytes:
  digest = hashlib.sha256()
  for arr in arrays:
    digest.update(np.ascontiguousarray(arr).tobytes())
  digest.update(np.asarray(frequencies, np.int64).tobytes())
  return digest.digest()[:8]


def round_weights_to_float16(model) -> None:
  """Rounds the model's weights to float16 values in place, as a bundle will store them.

  The frequency table must be estimated on the rounded model, so that the shipped codec's
  symbols follow the shipped table.
  """
  for var in model.weights:
    var.assign(np.asarray(var.numpy(), np.float16).astype(np.float32))


def save_codec(model: model_lib.Autoencoder, op: operating_points.OperatingPoint,
               frequencies, path: str, name: str, extra_metadata=None) -> bytes:
  """Writes a bundle; returns its fingerprint."""
  frequencies = np.asarray(frequencies, np.int64)
  if frequencies.shape != (op.num_centers,) or frequencies.sum() != FREQUENCY_TOTAL:
    raise ValueError("the frequency table must have one entry per center and sum to "
                     f"{FREQUENCY_TOTAL}, got {frequencies}")
  arrays = [np.asarray(v.numpy(), np.float16) for v in model.weights]
  fingerprint = _weights_digest(arrays, frequencies)
  meta = {
      "format": _FORMAT,
      "name": name,
      "operating_point": op.name,
      "channels": op.channels,
      "num_centers": op.num_centers,
      "sigma": op.sigma,
      "filters": list(model.filters),
      "weight_paths": [v.path for v in model.weights],
      "fingerprint": fingerprint.hex(),
      **(extra_metadata or {}),
  }
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp.npz"
  np.savez_compressed(
      tmp, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), frequencies=frequencies,
      **{f"w{i}": a for i, a in enumerate(arrays)})
  os.replace(tmp, path)  # a half-written bundle must never be found under its real name
  return fingerprint


def read_metadata(path: str) -> dict:
  """The bundle's metadata (name, operating point, fingerprint, training steps, ...)."""
  try:
    with np.load(path, allow_pickle=False) as data:
      return json.loads(bytes(data["meta"]).decode())
  except (OSError, KeyError, ValueError) as e:
    raise CodecError(f"{path} is not a readable tfcdi codec bundle ({e})") from None


def shipped_path(operating_point) -> str:
  op = operating_points.get_operating_point(operating_point)
  return os.path.join(PRETRAINED_DIR, f"codec_{op.name}.npz")


def load_codec(operating_point=None, path: str | None = None):
  """Loads a bundle: the shipped one of an operating point, or one from `path`.

  A bundle at `path` loads as a codec of the family its metadata names (registry.load): a
  hyperprior bundle as a HyperpriorCodec. An operating point and a bundle of a family without
  operating points are refused together.
  """
  from tfcdi.codec import registry  # pylint: disable=g-import-not-at-top  (it imports us)
  if path is None and operating_point is None:
    raise CodecError("give an operating point or a codec bundle path")
  if path is None:
    return registry.get("autoencoder").load(None, operating_point)
  return registry.load(path, operating_point=operating_point)


def load_autoencoder_bundle(operating_point=None, path: str | None = None):
  """An autoencoder bundle: the shipped one of an operating point, or the one at `path`."""
  from tfcdi.codec import autoencoder  # pylint: disable=g-import-not-at-top  (it imports us)
  if path is None:
    if operating_point is None:
      raise CodecError("give an operating point or a codec bundle path")
    path = shipped_path(operating_point)
    if not os.path.exists(path):
      raise CodecError(
          f"no pretrained codec is shipped for operating point {operating_point} ({path}); "
          "train one with tfcdi-train-codec and pass its bundle with --codec")
  try:
    with np.load(path, allow_pickle=False) as data:
      meta = json.loads(bytes(data["meta"]).decode())
      frequencies = np.asarray(data["frequencies"], np.int64)
      arrays = [data[f"w{i}"] for i in range(len(meta["weight_paths"]))]
  except (OSError, KeyError, ValueError) as e:
    raise CodecError(f"{path} is not a readable tfcdi codec bundle ({e})") from None
  if meta.get("format") != _FORMAT:
    raise CodecError(f"{path}: unsupported codec bundle format {meta.get('format')}")
  op = operating_points.get_operating_point(meta["operating_point"])
  if operating_point is not None and op.name != operating_points.get_operating_point(
      operating_point).name:
    raise CodecError(f"{path} is a codec for operating point {op.name}, not {operating_point}")
  if _weights_digest(arrays, frequencies).hex() != meta["fingerprint"]:
    raise CodecError(f"{path} is corrupt: its weights do not match its fingerprint")
  model = model_lib.from_operating_point(op, tuple(meta["filters"]))
  if len(model.weights) != len(arrays):
    raise CodecError(f"{path} holds {len(arrays)} weights; the model has {len(model.weights)}")
  for var, arr in zip(model.weights, arrays):
    if tuple(var.shape) != arr.shape:
      raise CodecError(f"{path}: weight {var.path} has shape {arr.shape}, expected {var.shape}")
    var.assign(arr.astype(np.float32))
  return autoencoder.AutoencoderCodec(
      model=model, operating_point=op, frequencies=frequencies, name=meta["name"],
      fingerprint=bytes.fromhex(meta["fingerprint"]), filters=tuple(meta["filters"]))


# --- the hyperprior family ---------------------------------------------------------------------

_HYPERPRIOR_FORMAT = 1


def _table_arrays(prefix: str, tables: bitstream.Tables) -> dict:
  # Stored as int32 (every entry is below 2^20); the fingerprint reads them as int64.
  return {f"{prefix}_frequencies": tables.frequencies.astype(np.int32),
          f"{prefix}_lengths": tables.lengths.astype(np.int32),
          f"{prefix}_offsets": tables.offsets.astype(np.int32)}


def _tables_from(prefix: str, data) -> bitstream.Tables:
  return bitstream.make_tables(data[f"{prefix}_frequencies"], data[f"{prefix}_lengths"],
                               data[f"{prefix}_offsets"])


def _hyperprior_digest(weights, integer_arrays: dict) -> bytes:
  digest = hashlib.sha256()
  for arr in weights:
    digest.update(np.ascontiguousarray(arr).tobytes())
  for key in sorted(integer_arrays):
    digest.update(key.encode())
    digest.update(np.ascontiguousarray(integer_arrays[key], np.int64).tobytes())
  return digest.digest()[:8]


def hyperprior_shipped_path(quality) -> str:
  q = qualities.get_quality(quality)
  return os.path.join(PRETRAINED_DIR, f"hyperprior_{q.name}.npz")


def save_hyperprior_codec(model: hyperprior_lib.Hyperprior, quality, path: str, name: str,
                          extra_metadata=None, weight_dtype=np.float16,
                          distortion: str = qualities.MSE) -> bytes:
  """Writes a hyperprior bundle; returns its fingerprint.

  Rounds the model's weights to float16 in place first (what the bundle stores), then derives
  the integer tables from the rounded model, so that the shipped weights and tables agree.
  weight_dtype=np.float32 keeps them as they are: imported codecs, whose parity with the
  library that trained them float16 would break (5e-4 relative on every weight).
  """
  q = qualities.get_quality(quality)
  if np.dtype(weight_dtype) == np.float16:
    round_weights_to_float16(model)
  weights = [np.asarray(v.numpy(), weight_dtype) for v in model.weights]
  hyper_synthesis = hyperprior_lib.IntegerHyperSynthesis.from_model(model)
  offsets = None if model.z_offsets is None else model.z_offset_values().numpy()
  integer_arrays = {**_table_arrays("y", hyperprior_lib.y_tables()),
                    **_table_arrays("z", hyperprior_lib.z_tables(model.density, offsets)),
                    **hyper_synthesis.to_arrays()}
  fingerprint = _hyperprior_digest(weights, integer_arrays)
  meta = {
      "format": _HYPERPRIOR_FORMAT,
      "family": "hyperprior",
      "name": name,
      "quality": q.quality,
      # What the codec was trained for, and that distortion's lambda (qualities.py). Bundles
      # from before this field were MSE codecs; the loader reads them as such.
      "distortion": qualities.check_distortion(distortion),
      "lambda": q.lambda_for(distortion),
      "num_filters": model.num_filters,
      "latent_channels": model.latent_channels,
      # Imported models' conventions (hyperprior.PADDINGS, their density's depth).
      "padding": model.padding,
      "density_filters": list(model.density_filters),
      "weight_paths": [v.path for v in model.weights],
      "fingerprint": fingerprint.hex(),
      **(extra_metadata or {}),
  }
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp.npz"
  np.savez_compressed(
      tmp, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
      scales=hyperprior_lib.scale_table(), **integer_arrays,
      **{f"w{i}": a for i, a in enumerate(weights)})
  os.replace(tmp, path)
  model.shipped_hyper_synthesis = hyper_synthesis
  return fingerprint


def _bundle_distortion(meta: dict, path: str) -> str:
  """A bundle's distortion; bundles from before the field are MSE codecs."""
  distortion = meta.get("distortion", qualities.MSE)
  if distortion not in qualities.DISTORTIONS:
    raise CodecError(f"{path}: unknown distortion {distortion!r} in its metadata")
  return distortion


def load_hyperprior_codec(quality=None, path: str | None = None):
  """Loads a hyperprior bundle: the shipped one of a quality, or the one at `path`."""
  if path is None:
    if quality is None:
      raise CodecError("give a hyperprior quality or a codec bundle path")
    q = qualities.get_quality(quality)
    path = hyperprior_shipped_path(q.quality)
    if not os.path.exists(path):
      raise CodecError(
          f"no trained hyperprior codec is shipped for quality {q.quality}; train one with "
          f"`tfcdi-train-codec --codec=hyperprior --quality={q.quality} --preset=cpu "
          f"--data_dir=DATA --workdir=runs/hyperprior_{q.name}` and pass "
          f"--codec_path=runs/hyperprior_{q.name}/hyperprior_{q.name}.npz")
  try:
    with np.load(path, allow_pickle=False) as data:
      meta = json.loads(bytes(data["meta"]).decode())
      weights = [data[f"w{i}"] for i in range(len(meta["weight_paths"]))]
      integer_arrays = {k: np.asarray(data[k]) for k in data.files
                        if k.startswith(("y_", "z_", "hs_"))}
  except (OSError, KeyError, ValueError, TypeError) as e:
    raise CodecError(f"{path} is not a readable tfcdi codec bundle ({e})") from None
  if meta.get("family") != "hyperprior":
    raise CodecError(f"{path} is not a hyperprior codec bundle")
  if meta.get("format") != _HYPERPRIOR_FORMAT:
    raise CodecError(f"{path}: unsupported hyperprior bundle format {meta.get('format')}")
  q = qualities.get_quality(meta["quality"])
  if quality is not None and qualities.get_quality(quality).quality != q.quality:
    raise CodecError(f"{path} is a hyperprior codec of quality {q.quality}, not {quality}")
  if _hyperprior_digest(weights, integer_arrays).hex() != meta["fingerprint"]:
    raise CodecError(f"{path} is corrupt: its weights and tables do not match its fingerprint")
  try:
    model = hyperprior_lib.Hyperprior(
        meta["num_filters"], meta["latent_channels"], padding=meta.get("padding", "same"),
        density_filters=meta.get("density_filters", (3, 3, 3)),
        name=f"hyperprior_{q.name}").build_weights()
  except (ValueError, TypeError) as e:
    raise CodecError(f"{path}: unsupported hyperprior model ({e})") from None
  if len(model.weights) != len(weights):
    raise CodecError(f"{path} holds {len(weights)} weights; the model has {len(model.weights)}")
  for var, arr in zip(model.weights, weights):
    if tuple(var.shape) != arr.shape:
      raise CodecError(f"{path}: weight {var.path} has shape {arr.shape}, expected {var.shape}")
    var.assign(arr.astype(np.float32))
  try:
    y_tables = _tables_from("y", integer_arrays)
    z_tables = _tables_from("z", integer_arrays)
    model.shipped_hyper_synthesis = hyperprior_lib.IntegerHyperSynthesis.from_arrays(
        integer_arrays)
    model.z_offsets = model.shipped_hyper_synthesis.input_offsets
  except (KeyError, ValueError) as e:  # BitstreamError is a ValueError
    raise CodecError(f"{path}: malformed coding tables ({e})") from None
  if (y_tables.num_tables != hyperprior_lib.NUM_SCALES
      or z_tables.num_tables != model.num_filters):
    raise CodecError(f"{path}: {y_tables.num_tables} y tables and {z_tables.num_tables} z "
                     f"tables, expected {hyperprior_lib.NUM_SCALES} and {model.num_filters}")
  from tfcdi.codec import hyperprior_codec  # pylint: disable=g-import-not-at-top  (imports us)
  return hyperprior_codec.HyperpriorCodec(
      model=model, quality=q, y_tables=y_tables, z_tables=z_tables, name=meta["name"],
      fingerprint=bytes.fromhex(meta["fingerprint"]),
      distortion=_bundle_distortion(meta, path))


def hyperprior_integer_arrays(codec) -> dict:
  """The integer arrays of a hyperprior codec's coding path, named as in its bundle.

  The y tables, the z tables and the integer hyper-synthesis: everything a reader of its files
  needs to get the symbols and the scales, and nothing of the transforms.
  """
  return {**_table_arrays("y", codec.y_tables), **_table_arrays("z", codec.z_tables),
          **codec.model.integer_hyper_synthesis().to_arrays()}


def hyperprior_coding_tables(arrays: dict) -> tuple:
  """(y tables, z tables, integer hyper-synthesis) from the named integer arrays.

  Raises:
    CodecError: arrays missing or malformed.
  """
  try:
    return (_tables_from("y", arrays), _tables_from("z", arrays),
            hyperprior_lib.IntegerHyperSynthesis.from_arrays(arrays))
  except (KeyError, IndexError, ValueError) as e:  # BitstreamError is a ValueError
    raise CodecError(f"malformed hyperprior coding tables ({e!r})") from None


def read_hyperprior_tables(path: str) -> tuple[dict, dict]:
  """A hyperprior bundle's metadata and integer arrays, checked, without building its model.

  The fingerprint covers the weights too, so they are read (as bytes) to check it; no Keras
  model is made.

  Raises:
    CodecError: not a readable hyperprior bundle, or one whose content does not match its
      fingerprint.
  """
  try:
    with np.load(path, allow_pickle=False) as data:
      meta = json.loads(bytes(data["meta"]).decode())
      if meta.get("family") != "hyperprior":
        raise CodecError(f"{path} is not a hyperprior codec bundle")
      weights = [data[f"w{i}"] for i in range(len(meta["weight_paths"]))]
      arrays = {k: np.asarray(data[k]) for k in data.files if k.startswith(("y_", "z_", "hs_"))}
  except (OSError, KeyError, ValueError, TypeError) as e:
    if isinstance(e, CodecError):
      raise
    raise CodecError(f"{path} is not a readable tfcdi codec bundle ({e})") from None
  if _hyperprior_digest(weights, arrays).hex() != meta["fingerprint"]:
    raise CodecError(f"{path} is corrupt: its weights and tables do not match its fingerprint")
  return meta, arrays
