"""Interleaved rANS: the payload of .tfci format version 2, a layout that decodes in lockstep.

Version 1 payloads are one range-coder stream (constriction), decoded symbol after symbol: no
vector op can help, so a reader needs a native entropy coder. Version 2 codes the same symbols
with K interleaved rANS coders ("lanes"): symbol i (in the stream's order) belongs to lane
i mod K, and step t of the decoder decodes symbols tK .. tK + K - 1, one per lane, with the same
few integer operations on a K-vector. That is what a `tf.while_loop` of stock TensorFlow ops can
run (tfcdi/codec/graph_decode.py), and what `decode_stream` below runs with NumPy (the reference
the graph decoder is tested against).

The coder is rANS with byte-wise renormalisation and a 32-bit state (Duda 2013; the variant of
Giesen's ryg_rans "rans_byte"): the state x of every lane stays in [LOWER, 2^31), LOWER = 2^23;
tables have a precision of P <= 23 bits (their frequencies sum to 2^P: 16 for the autoencoder,
20 for the hyperprior, so the codecs' integer tables are used exactly as they are). Decoding a
symbol: slot = x mod 2^P; s is the table entry with cum[s] <= slot < cum[s] + f[s];
x = f[s] * (x >> P) + slot - cum[s]; then, while x < LOWER, x = (x << 8) | next byte (at most
three bytes). All of it is integer arithmetic, so files are identical on every machine.

A stream (one per latent: the autoencoder's symbols; the hyperprior's z, then y) is, byte for
byte (integers big-endian):

  | size | field                                                                            |
  | ---- | -------------------------------------------------------------------------------- |
  | 1    | K, the number of lanes, 1 <= K <= min(255, number of symbols)                    |
  | 4    | E, the number of escaped values (only in streams with escapes: the hyperprior's) |
  | 4K   | the K lanes' initial states (the encoder's final ones), uint32 each              |
  | 4E   | the escaped values, int32 each, in stream order (only with escapes)              |
  | rest | the renormalisation bytes of all lanes, in the order the decoder reads them:     |
  |      | step by step, within a step lane by lane, within a lane the most significant     |
  |      | byte first                                                                       |

Tables with escapes (the hyperprior's) cover the values offset .. offset + length - 2; a value
outside is coded as the last entry (the escape) and its value goes, whole, to the escape list
(a real image has a handful at most; 32 bits each is simpler than any variable-length code and
lets the graph decoder look them up with one gather).

A decoder accepts a stream only if every check holds: K and E in range, initial states in
[LOWER, 2^31), the bytes exactly used up, every lane back at LOWER at the end (the encoder's
initial state), exactly E escapes, each outside its table's range. Then the stream is exactly
what encoding its symbols gives (each decoder step inverts an encoder step), so no re-encoding
is needed to refuse a forged file.

The lane count is the encoder's choice (the decoder reads it): every lane costs its 4-byte final
state, and every lane shortens the decoder's loop. `choose_lanes` spends about
BYTES_PER_LANE of payload per lane (0.5% of the stream for the flushes).
"""

from __future__ import annotations

import dataclasses

import numpy as np

STATE_BITS = 31
LOWER_BITS = 23
LOWER = 1 << LOWER_BITS  # the lanes' states stay in [LOWER, 2^31)
MAX_PRECISION = LOWER_BITS  # LOWER must be a multiple of the tables' total
MAX_LANES = 255  # a uint8
# The lane rule: one lane per this many bytes of expected payload (choose_lanes).
BYTES_PER_LANE = 800
# Bytes a lane may read after one symbol: a state x' >= 2^(LOWER_BITS - P) * 1 needs at most
# three bytes to reach LOWER again for P <= 23 (and 2^(23-P) >= 1).
MAX_RENORM_BYTES = 3


class RansError(ValueError):
  """A version-2 stream is malformed, or symbols and tables do not fit each other."""


@dataclasses.dataclass(frozen=True, eq=False)
class StreamTables:
  """The integer tables one stream is coded with.

  Table t holds lengths[t] frequencies, frequencies[starts[t]:starts[t] + lengths[t]], summing
  to 2^precision, every one >= 1; entry s stands for the value offsets[t] + s. With `escape`,
  the last entry of each table is the escape (module docstring).
  """

  frequencies: np.ndarray  # int64, the tables concatenated
  lengths: np.ndarray  # int64 [T]
  offsets: np.ndarray  # int64 [T]
  precision: int
  escape: bool

  def __post_init__(self):
    freqs, lengths = self.frequencies, self.lengths
    if not 1 <= self.precision <= MAX_PRECISION:
      raise RansError(f"table precision {self.precision} is outside 1..{MAX_PRECISION}")
    if lengths.size == 0 or np.any(lengths < (2 if self.escape else 1)):
      raise RansError("empty coding tables")
    if int(lengths.sum()) != freqs.size or np.any(freqs < 1):
      raise RansError("malformed coding tables")
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    if np.any(np.add.reduceat(freqs, starts) != (1 << self.precision)):
      raise RansError(f"every table must sum to 2^{self.precision}")
    # cum: each entry's start within its table; global_cum: the same, offset by t * 2^P, so
    # one sorted array finds the entry of (table, slot) for all tables at once.
    exclusive = np.cumsum(freqs) - freqs
    cum = exclusive - np.repeat(exclusive[starts], lengths)
    table_of_entry = np.repeat(np.arange(lengths.size, dtype=np.int64), lengths)
    object.__setattr__(self, "starts", starts)
    object.__setattr__(self, "cumulative", cum.astype(np.int64))
    object.__setattr__(self, "global_cumulative",
                       (table_of_entry << self.precision) + cum.astype(np.int64))

  @property
  def num_tables(self) -> int:
    return int(self.lengths.size)


def single_table(frequencies, precision: int) -> StreamTables:
  """One table over the values 0 .. L-1, no escape (the autoencoder's)."""
  freqs = np.asarray(frequencies, np.int64).reshape(-1)
  return StreamTables(freqs, np.asarray([freqs.size], np.int64), np.zeros(1, np.int64),
                      precision, escape=False)


def escape_tables(frequencies, lengths, offsets, precision: int) -> StreamTables:
  """Tables over ranges of integers, each ending with an escape entry (the hyperprior's)."""
  return StreamTables(np.asarray(frequencies, np.int64), np.asarray(lengths, np.int64),
                      np.asarray(offsets, np.int64), precision, escape=True)


def _entries(values: np.ndarray, table_of: np.ndarray, tables: StreamTables):
  """(global entry of every symbol, escaped values in order)."""
  symbols = values - tables.offsets[table_of]
  length = tables.lengths[table_of]
  if tables.escape:
    outside = (symbols < 0) | (symbols >= length - 1)
    escaped = values[outside]
    if escaped.size and (escaped.min() < -(1 << 31) or escaped.max() >= 1 << 31):
      raise RansError("a value too large for the escape code (32 bits)")
    symbols = np.where(outside, length - 1, symbols)
  else:
    escaped = values[:0]
    if np.any((symbols < 0) | (symbols >= length)):
      raise RansError("a symbol outside its table")
  return tables.starts[table_of] + symbols, escaped


def information_bits(values, table_of, tables: StreamTables) -> float:
  """-sum log2(f / 2^P) of the symbols plus 32 bits per escape: the stream's ideal size."""
  entries, escaped = _entries(np.asarray(values, np.int64).reshape(-1),
                              np.asarray(table_of, np.int64).reshape(-1), tables)
  freqs = tables.frequencies[entries].astype(np.float64)
  return float(np.sum(tables.precision - np.log2(freqs))) + 32.0 * escaped.size


def choose_lanes(num_symbols: int, information: float) -> int:
  """The lane count the encoder writes: about one lane per BYTES_PER_LANE of payload."""
  lanes = int(round(information / 8.0 / BYTES_PER_LANE))
  return max(1, min(MAX_LANES, num_symbols, lanes))


def encode_stream(values, table_of, tables: StreamTables, lanes: int | None = None) -> bytes:
  """The stream (module docstring) of `values`, value i under table table_of[i].

  Args:
    values: integers, flat, in the stream's order.
    table_of: the table index of each value.
    tables: the StreamTables.
    lanes: K; None picks it with choose_lanes.
  """
  values = np.asarray(values, np.int64).reshape(-1)
  table_of = np.asarray(table_of, np.int64).reshape(-1)
  n = values.size
  if n == 0 or table_of.shape != values.shape:
    raise RansError(f"{n} values for {table_of.size} table indices")
  if table_of.min() < 0 or table_of.max() >= tables.num_tables:
    raise RansError(f"table indices must lie in [0, {tables.num_tables})")
  entries, escaped = _entries(values, table_of, tables)
  if lanes is None:
    freqs = tables.frequencies[entries].astype(np.float64)
    lanes = choose_lanes(n, float(np.sum(tables.precision - np.log2(freqs))))
  if not 1 <= lanes <= min(MAX_LANES, n):
    raise RansError(f"{lanes} lanes for {n} symbols (1..{min(MAX_LANES, n)})")
  p = tables.precision
  freq = tables.frequencies[entries]
  cum = tables.cumulative[entries]
  x = np.full(lanes, LOWER, np.int64)
  shifts = np.array([0, 8, 16], np.int64)
  chunks = []
  # Backwards over the steps, and over the lanes within a step, so that the bytes, reversed at
  # the end, come in the decoder's order.
  for t in range((n + lanes - 1) // lanes - 1, -1, -1):
    begin = t * lanes
    count = min(lanes, n - begin)
    f, c, xt = freq[begin:begin + count], cum[begin:begin + count], x[:count]
    x_max = ((LOWER >> p) << 8) * f
    nb = (xt >= x_max).astype(np.int64) + (xt >= x_max << 8) + (xt >= x_max << 16)
    emitted = (xt[:, None] >> shifts) & 0xFF
    keep = np.arange(MAX_RENORM_BYTES) < nb[:, None]
    chunks.append(emitted[::-1][keep[::-1]])
    xt = xt >> (8 * nb)
    x[:count] = ((xt // f) << p) + xt % f + c
  renorm = np.concatenate(chunks)[::-1].astype(np.uint8) if chunks else np.zeros(0, np.uint8)
  head = bytes([lanes])
  if tables.escape:
    head += int(escaped.size).to_bytes(4, "big")
  return (head + x.astype(">u4").tobytes() + escaped.astype(">i4").tobytes()
          + renorm.tobytes())


def _read_prefix(data: bytes, num_symbols: int, escape: bool) -> tuple:
  """(K, initial states, escaped values, renormalisation bytes) of a stream, checked."""
  data = bytes(data)
  if len(data) < 1:
    raise RansError("empty stream")
  lanes = data[0]
  if not 1 <= lanes <= min(MAX_LANES, num_symbols):
    raise RansError(f"{lanes} lanes for {num_symbols} symbols")
  at = 1
  num_escapes = 0
  if escape:
    if len(data) < 5:
      raise RansError("truncated stream")
    num_escapes = int.from_bytes(data[1:5], "big")
    at = 5
    if num_escapes > num_symbols:
      raise RansError(f"{num_escapes} escapes for {num_symbols} symbols")
  end = at + 4 * lanes + 4 * num_escapes
  if len(data) < end:
    raise RansError("truncated stream")
  states = np.frombuffer(data[at:at + 4 * lanes], ">u4").astype(np.int64)
  escaped = np.frombuffer(data[at + 4 * lanes:end], ">i4").astype(np.int64)
  if np.any(states < LOWER) or np.any(states >= 1 << STATE_BITS):
    raise RansError("a lane's initial state is out of range")
  return lanes, states, escaped, np.frombuffer(data[end:], np.uint8).astype(np.int64)


def decode_stream(data: bytes, table_of, tables: StreamTables) -> np.ndarray:
  """Inverse of encode_stream: the values (int64, flat), every check of the module docstring.

  Raises:
    RansError: the stream is malformed or does not decode to len(table_of) symbols.
  """
  table_of = np.asarray(table_of, np.int64).reshape(-1)
  n = table_of.size
  lanes, x, escaped, renorm = _read_prefix(data, n, tables.escape)
  p = tables.precision
  mask = (1 << p) - 1
  out = np.empty(n, np.int64)
  ptr = 0
  padded = np.concatenate([renorm, np.zeros(MAX_RENORM_BYTES, np.int64)])
  for t in range((n + lanes - 1) // lanes):
    begin = t * lanes
    count = min(lanes, n - begin)
    tb, xt = table_of[begin:begin + count], x[:count]
    slot = xt & mask
    g = np.searchsorted(tables.global_cumulative, (tb << p) + slot, side="right") - 1
    out[begin:begin + count] = g - tables.starts[tb]
    xt = tables.frequencies[g] * (xt >> p) + slot - tables.cumulative[g]
    nb = (xt < LOWER).astype(np.int64) + (xt < 1 << 15) + (xt < 1 << 7)
    pos = ptr + np.cumsum(nb) - nb
    ptr += int(nb.sum())
    if ptr > renorm.size:
      raise RansError("the stream ends before its symbols do")
    for j in range(MAX_RENORM_BYTES):
      take = j < nb
      xt = np.where(take, (xt << 8) | padded[np.minimum(pos + j, padded.size - 1)], xt)
    x[:count] = xt
  if ptr != renorm.size or np.any(x != LOWER):
    raise RansError(f"the stream does not decode to the announced {n} symbols (a damaged or "
                    "forged file, or other tables)")
  values = out + tables.offsets[table_of]
  if tables.escape:
    is_escape = out == tables.lengths[table_of] - 1
    if int(is_escape.sum()) != escaped.size:
      raise RansError(f"{int(is_escape.sum())} escapes decoded, {escaped.size} stored")
    low = tables.offsets[table_of][is_escape]
    high = low + tables.lengths[table_of][is_escape] - 2
    if np.any((escaped >= low) & (escaped <= high)):
      raise RansError("an escaped value lies inside its table's range (a forged file)")
    values[is_escape] = escaped
  return values
