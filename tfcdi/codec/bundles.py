"""The bundle file every codec family writes: one .npz of metadata, weights and integer tables.

A bundle holds `meta` (JSON as uint8 bytes: at least "format", "name", "fingerprint",
"weight_paths", and "family" for every family but the autoencoder, whose bundles predate
families), the weights as w0, w1, ... (float16) and the family's integer arrays under names of its
own. What a family stores and how it fingerprints it is in its module (autoencoder.py,
hyperprior_codec.py); this module is what they share, and it knows no family.

Shipped bundles live in tfcdi/pretrained/.
"""

from __future__ import annotations

import json
import os

import numpy as np

from tfcdi.codec.interface import CodecError

PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "pretrained")
# Frequencies are scaled to sum to this; constriction's range coder works at 24-bit precision,
# so 2^16 leaves room and every table entry is an exactly representable float.
FREQUENCY_TOTAL = 1 << 16


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


def round_weights_to_float16(model) -> None:
  """Rounds the model's weights to float16 values in place, as a bundle will store them.

  Tables estimated from the model must be estimated on the rounded one, so that the shipped
  codec's symbols follow the shipped tables.
  """
  for var in model.weights:
    var.assign(np.asarray(var.numpy(), np.float16).astype(np.float32))


def write(path: str, meta: dict, weights, **arrays) -> None:
  """Writes a bundle atomically: `meta`, the weights as w0, w1, ..., and named arrays."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp.npz"
  np.savez_compressed(tmp, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays,
                      **{f"w{i}": a for i, a in enumerate(weights)})
  os.replace(tmp, path)  # a half-written bundle must never be found under its real name


def read(path: str, array_prefixes: tuple = ()) -> tuple[dict, list, dict]:
  """(metadata, weights, {name: array} of the arrays whose names start with a prefix).

  Raises:
    CodecError: not a readable bundle.
  """
  try:
    with np.load(path, allow_pickle=False) as data:
      meta = json.loads(bytes(data["meta"]).decode())
      weights = [data[f"w{i}"] for i in range(len(meta["weight_paths"]))]
      arrays = {k: np.asarray(data[k]) for k in data.files
                if array_prefixes and k.startswith(array_prefixes)}
  except (OSError, KeyError, ValueError, TypeError) as e:
    raise CodecError(f"{path} is not a readable tfcdi codec bundle ({e})") from None
  return meta, weights, arrays


def read_tables_file(path: str) -> dict:
  """{name: array} of a coding-tables file (what a serving export writes beside its model).

  Raises:
    CodecError: the file is missing or unreadable.
  """
  try:
    with np.load(path, allow_pickle=False) as npz:
      return {k: np.asarray(npz[k]) for k in npz.files}
  except (OSError, ValueError) as e:
    raise CodecError(f"cannot read the coding tables {path} ({e})") from None


def read_metadata(path: str) -> dict:
  """The bundle's metadata (name, family, its selection, fingerprint, training steps, ...)."""
  try:
    with np.load(path, allow_pickle=False) as data:
      return json.loads(bytes(data["meta"]).decode())
  except (OSError, KeyError, ValueError) as e:
    raise CodecError(f"{path} is not a readable tfcdi codec bundle ({e})") from None


def assign_weights(model, weights, path: str) -> None:
  """Loads a bundle's weights into a freshly built model, refusing any mismatch."""
  if len(model.weights) != len(weights):
    raise CodecError(f"{path} holds {len(weights)} weights; the model has {len(model.weights)}")
  for var, arr in zip(model.weights, weights):
    if tuple(var.shape) != arr.shape:
      raise CodecError(f"{path}: weight {var.path} has shape {arr.shape}, expected {var.shape}")
    var.assign(arr.astype(np.float32))
