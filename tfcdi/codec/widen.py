"""A trained autoencoder widened to more filters, computing the same function.

Training the paper's full-width codec from scratch costs over 3x a half-width step on this CPU
(BUILD_NOTES.md). Widening a trained half-width codec instead starts the wide one where the
narrow one ended (Net2WiderNet, Chen et al. 2016), so its steps go to what the extra filters can
add rather than to relearning what the narrow codec already knows.

Every hidden channel of the wide model is a copy of one of the narrow model's: new channel k
copies old channel k mod F_old, so the first F_old channels are the originals, in order. A layer
reading a widened tensor sees each old channel r times, so the weights leaving the copies of one
channel are split into fractions that sum to one for each output: the sum is the old weight, the
function is unchanged. The fractions differ between copies and between outputs. Equal halves
would keep the copies identical forever (equal incoming weights get equal gradients), and
fractions that differed only per copy would not help under Adam, whose updates ignore a
gradient's scale; fractions that vary with the output make the copies' gradients point in
different directions, so one step sets them apart (tests/test_widen.py).

The latent channels C, the quantizer's centers and so the symbols a file holds are untouched:
the wide codec writes the same files as the narrow one until it trains.
"""

from __future__ import annotations

import keras
import numpy as np

from tfcdi.codec import model as model_lib

def _split_fractions(rng, old: int, new: int, outputs: int, spread: float) -> np.ndarray:
  """[new, outputs] weights on the copies of each of `old` channels; for each old channel and
  output, its copies' fractions sum to one. All are positive for spread < 1."""
  copies = new // old
  fractions = (1.0 + rng.uniform(-spread, spread, size=(new, outputs))) / copies
  totals = np.zeros((old, outputs))
  np.add.at(totals, np.arange(new) % old, fractions)
  return fractions / totals[np.arange(new) % old]


def can_widen(old_filters, new_filters) -> bool:
  """Whether each of `new_filters` is a multiple of the old one (itself included)."""
  return len(old_filters) == len(new_filters) == 2 and all(
      new >= old and new % old == 0 for new, old in zip(new_filters, old_filters))


def widen(source: model_lib.Autoencoder, filters, seed: int = 0,
          spread: float = 0.5) -> model_lib.Autoencoder:
  """A model with `filters` (each a multiple of the source's, at least as large) that computes
  what `source` computes. Raises ValueError for filters it cannot widen to."""
  filters = tuple(int(f) for f in filters)
  if not can_widen(source.filters, filters):
    raise ValueError(f"cannot widen a codec with filters {list(source.filters)} to "
                     f"{list(filters)}: each must be a multiple of the old one, at least as large")
  if not 0.0 <= spread < 1.0:
    raise ValueError(f"spread must be in [0, 1), got {spread}")
  target = model_lib.Autoencoder(source.channels, source.num_centers, source.sigma, filters,
                                 name=source.name).build_weights()
  rng = np.random.default_rng(seed)
  # The layers and their sizes come from the two models themselves (model.py is the one
  # description of the architecture): an axis that grew is a widened tensor.
  for part in ("encoder", "decoder"):
    for new_layer in getattr(target, part).layers:
      if not new_layer.weights:
        continue
      kernel, bias = (np.asarray(w.numpy(), np.float64)
                      for w in getattr(source, part).get_layer(new_layer.name).weights)
      # Conv2D kernels are [kh, kw, in, out], Conv2DTranspose ones [kh, kw, out, in].
      transposed = isinstance(new_layer, keras.layers.Conv2DTranspose)
      in_axis, out_axis = (3, 2) if transposed else (2, 3)
      new_shape = new_layer.weights[0].shape
      inputs = np.arange(new_shape[in_axis]) % kernel.shape[in_axis]
      outputs = np.arange(new_shape[out_axis]) % kernel.shape[out_axis]
      fractions = _split_fractions(rng, kernel.shape[in_axis], new_shape[in_axis],
                                   new_shape[out_axis], spread)
      wide = np.take(np.take(kernel, inputs, axis=in_axis), outputs, axis=out_axis)
      wide = wide * (fractions.T if transposed else fractions)
      new_layer.weights[0].assign(wide.astype(np.float32))
      new_layer.weights[1].assign(bias[outputs].astype(np.float32))
  target.quantizer.centers.assign(source.quantizer.centers)
  return target
