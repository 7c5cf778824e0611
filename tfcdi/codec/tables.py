"""The hyperprior's integer probability tables (bitstream.py codes with them; both format versions).

Pure NumPy + constriction (for the version-1 coder's model of a table).
"""

from __future__ import annotations

import dataclasses

import constriction
import numpy as np

from tfcdi.codec.errors import BitstreamError

# Every hyperprior table sums to this. constriction codes at 24-bit precision; 20 bits leave it
# room and keep the cost of a table's rarely used entries (each >= 1) small.
TABLE_PRECISION = 20
TABLE_TOTAL = 1 << TABLE_PRECISION
# Entries per table, escape included.
MAX_TABLE_LENGTH = 1 << 16


@dataclasses.dataclass(frozen=True, eq=False)
class Tables:
  """A set of T integer probability tables over ranges of integers, each with an escape entry.

  Table t holds lengths[t] frequencies, frequencies[starts[t]:starts[t] + lengths[t]]: those of
  the values offsets[t], offsets[t] + 1, ..., offsets[t] + lengths[t] - 2, then the escape's.
  Every table sums to TABLE_TOTAL and has no zero entry. Build with `make_tables`.
  """

  frequencies: np.ndarray  # int64, the T tables concatenated
  lengths: np.ndarray  # int64 [T], each >= 2
  offsets: np.ndarray  # int64 [T]

  @property
  def num_tables(self) -> int:
    return int(self.lengths.size)

  @property
  def starts(self) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

  def table(self, t: int) -> np.ndarray:
    start = int(self.starts[t])
    return self.frequencies[start:start + int(self.lengths[t])]

  def model(self, t: int):
    # Integers, exactly, as floats (see _entropy_model): the same model on every machine.
    return constriction.stream.model.Categorical(self.table(t).astype(np.float64),
                                                 perfect=False)


def make_tables(frequencies, lengths, offsets) -> Tables:
  """Checks and wraps integer tables (see Tables); BitstreamError if they are malformed."""
  freqs = np.asarray(frequencies)
  lengths = np.asarray(lengths)
  offsets = np.asarray(offsets)
  for name, arr in (("frequencies", freqs), ("lengths", lengths), ("offsets", offsets)):
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
      raise BitstreamError(f"table {name} must be a 1-D integer array, got {arr.dtype} "
                           f"{arr.shape}")
  if lengths.size == 0 or lengths.shape != offsets.shape:
    raise BitstreamError(f"{lengths.size} table lengths for {offsets.size} offsets")
  if np.any(lengths < 2) or np.any(lengths > MAX_TABLE_LENGTH):
    raise BitstreamError(f"every table needs 2..{MAX_TABLE_LENGTH} entries")
  if int(lengths.sum()) != freqs.size:
    raise BitstreamError(f"the tables' lengths add up to {int(lengths.sum())}, not to the "
                         f"{freqs.size} frequencies")
  if np.any(freqs < 1):
    raise BitstreamError("a table has a zero (or negative) entry")
  if np.any(np.abs(offsets) > (1 << 30)):
    raise BitstreamError("a table's offset is out of range")
  tables = Tables(freqs.astype(np.int64), lengths.astype(np.int64), offsets.astype(np.int64))
  sums = np.add.reduceat(tables.frequencies, tables.starts)
  if np.any(sums != TABLE_TOTAL):
    raise BitstreamError(f"every table must sum to {TABLE_TOTAL}")
  return tables


def quantize_pmf(probabilities, total: int = TABLE_TOTAL) -> np.ndarray:
  """Integer frequencies summing to `total`, each >= 1, close to the given probabilities.

  Every entry gets 1, and the other total - n units are shared in proportion to the
  probabilities (largest remainders first). Done once, when a codec bundle is made: the
  integers, not this float computation, are what the bundle stores and the coder uses.
  """
  p = np.asarray(probabilities, np.float64)
  n = p.size
  if p.ndim != 1 or n < 2 or n >= total or not np.all(np.isfinite(p)) or np.any(p < 0):
    raise ValueError(f"need 2..{total - 1} finite non-negative probabilities, got {p.shape}")
  if p.sum() <= 0:
    raise ValueError("the probabilities sum to zero")
  free = total - n
  raw = p / p.sum() * free
  freqs = np.floor(raw).astype(np.int64)
  leftover = free - int(freqs.sum())
  freqs[np.argsort(freqs - raw, kind="stable")[:leftover]] += 1
  return freqs + 1
