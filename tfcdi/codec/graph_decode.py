""".tfci version-2 files -> symbols, in stock TensorFlow ops: what a SavedModel runs to read a file.

`GraphReader(tables)` holds one codec's identity and integer tables as constants; its
`read(file)` takes one file (a scalar tf.string) and returns its symbols and a status code,
computed entirely in the graph, with no Python, no custom op and no exception for any input:

  1. header: magic, version (2; a version-1 file gets its own status, its range-coded payload
     needs constriction), family, codec name and fingerprint (the codec of the tables: another
     codec's file is refused), the sizes (the latent shapes the codec makes of the image size),
     the file length the header announces;
  2. integrity: CRC-32 (zlib's) of everything but the checksum field, computed with no loop
     over bytes: CRC-32 is linear over GF(2), so the CRC of a message is the XOR of every byte's
     table entry carried through "append k zero bytes", a 32 x 32 bit matrix. The bytes are
     folded pairwise, log2(length) rounds, each a [pairs, 32] x [32, 32] matmul (mod 2) with the
     matrix of 2^r zero bytes;
  3. the interleaved rANS lanes (rans.py), decoded in lockstep in a tf.while_loop compiled by
     XLA (jit_compile; about 1 us a step on this CPU, against some 150 us op by op): per step,
     an unrolled binary search in the cumulative tables finds the K symbols, and the
     renormalisation bytes of all lanes are gathered at once (their positions are an exclusive
     cumsum). The loop's shapes follow from K, the latent size and the payload's length padded
     to a power of two, so files of one image size share a few compilations;
  4. for the hyperprior, z first, then the integer hyper-synthesis (float64 convolutions of
     integer values, exact; hyperprior.IntegerHyperSynthesis) gives the scale indices, then y
     under them, escapes looked up by rank.

Every gather is clamped, so damaged or forged bytes can only make the checks fail. The status
is OK (0) or one of STATUS_MESSAGES; a failed file gets zero symbols of the right rank.
The NumPy decoder (rans.decode_stream, bitstream.py) is the reference; tests check that both
give the same symbols, and that a file the one refuses the other refuses too.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfcdi.codec import bitstream
from tfcdi.codec import rans

# Status codes of GraphReader.read (and of the classify_file signature, which adds TOO_SMALL).
OK = 0
NOT_TFCI = 1
TRUNCATED = 2
VERSION_1 = 3
UNSUPPORTED = 4
OTHER_CODEC = 5
CORRUPTED = 6
BAD_HEADER = 7
UNDECODABLE = 8
TOO_LARGE = 9
TOO_SMALL = 10
STATUS_MESSAGES = (
    "ok",
    "not a .tfci file (it does not start with the bytes TFCI)",
    "truncated .tfci file",
    "a version-1 (range-coded) .tfci file: only version 2 decodes inside the graph; "
    "re-compress with --format_version=2, or classify it with tfcdi-classify",
    "unsupported .tfci format version or codec family",
    "the file was made by another codec than the one this model reads",
    "corrupted .tfci file (checksum mismatch, or bytes beyond its payload)",
    "the header's sizes do not fit the codec (a damaged or forged file)",
    "undecodable .tfci payload (a damaged or forged file)",
    "the image the file announces is larger than this model accepts",
    "the latent is smaller than the classifier's input crop (image too small)",
)

# Files of larger images are refused (a header can announce up to 65535 x 65535 pixels); the
# command-line tools' --max_pixels default.
DEFAULT_MAX_PIXELS = 16_000_000
_CRC_ROUNDS = 32  # files up to 4 GiB
# Compile the lanes' loop with XLA (_Tables.lockstep); False runs it op by op.
JIT_COMPILE = True


def _crc_matrices() -> tuple[np.ndarray, np.ndarray]:
  """zlib's CRC-32 byte table (register 0 in), and the matrices of 2^r zero bytes, r < 32.

  Row j of a matrix is the register after the zero bytes, starting from the register 1 << j,
  as 32 bits (the map is linear over GF(2)).
  """
  table = np.zeros(256, np.int64)
  for b in range(256):
    c = b
    for _ in range(8):
      c = (c >> 1) ^ (0xEDB88320 if c & 1 else 0)
    table[b] = c

  def zero_byte(c):
    return table[c & 0xFF] ^ (c >> 8)

  bits = np.arange(32, dtype=np.int64)
  matrices = []
  step = np.array([zero_byte(1 << j) for j in range(32)], np.int64)  # one zero byte
  for _ in range(_CRC_ROUNDS):
    matrices.append((step[:, None] >> bits) & 1)
    # Twice the zero bytes: the map applied to itself, row by row.
    step = np.array([_apply(matrices[-1], int(v)) for v in step], np.int64)
  return table, np.stack(matrices).astype(np.float32)


def _apply(matrix: np.ndarray, value: int) -> int:
  out = 0
  for j in range(32):
    if value >> j & 1:
      out ^= int(sum(int(matrix[j, i]) << i for i in range(32)))
  return out


_CRC_TABLE, _CRC_ZEROS = _crc_matrices()


def crc32(data) -> tf.Tensor:
  """zlib.crc32 of bytes (int64 values 0..255, [n], n >= 4), as an int64 scalar."""
  data = tf.convert_to_tensor(data, tf.int64)
  n = tf.size(data, out_type=tf.int64)
  # zlib starts the register at 0xFFFFFFFF: the same as complementing the first four bytes and
  # starting at 0. Leading zero bytes leave a register of 0 at 0, so padding in front is free.
  data = tf.bitwise.bitwise_xor(data, tf.pad(tf.fill([tf.minimum(n, 4)], tf.constant(0xFF,
                                                                                 tf.int64)),
                                             [[0, n - tf.minimum(n, 4)]]))
  # The least r with 2^r >= n, in integers.
  rounds = tf.reduce_sum(tf.cast(tf.bitwise.left_shift(
      tf.constant(1, tf.int64), tf.range(_CRC_ROUNDS, dtype=tf.int64)) < n, tf.int64))
  width = tf.bitwise.left_shift(tf.constant(1, tf.int64), rounds)
  values = tf.gather(tf.constant(_CRC_TABLE), tf.pad(data, [[width - n, 0]]))
  powers = tf.bitwise.left_shift(tf.constant(1, tf.int64), tf.range(32, dtype=tf.int64))
  zeros = tf.constant(_CRC_ZEROS)

  def fold(r, v):
    pairs = tf.reshape(v, [-1, 2])
    bits = tf.cast(tf.bitwise.bitwise_and(
        tf.bitwise.right_shift(pairs[:, :1], tf.range(32, dtype=tf.int64)), 1), tf.float32)
    carried = tf.cast(tf.matmul(bits, zeros[r]), tf.int64) % 2
    shifted = tf.reduce_sum(carried * powers, axis=1)
    return r + 1, tf.bitwise.bitwise_xor(shifted, pairs[:, 1])

  _, folded = tf.while_loop(lambda r, v: r < rounds, fold, [tf.constant(0, tf.int64), values],
                            shape_invariants=[tf.TensorShape([]), tf.TensorShape([None])])
  return tf.bitwise.bitwise_xor(folded[0], tf.constant(0xFFFFFFFF, tf.int64))


def _big_endian(data, offset, size: int):
  """The unsigned big-endian integer of `size` bytes at `offset` of int64 bytes `data`."""
  value = tf.constant(0, tf.int64)
  for i in range(size):
    value = value * 256 + data[offset + i]
  return value


def _first(cases):
  """The code of the first (condition, code) whose condition holds, else OK (int32 scalar)."""
  status = tf.constant(OK, tf.int32)
  for condition, code in reversed(cases):
    status = tf.where(condition, tf.cast(code, tf.int32), status)
  return status


def _safe_gather(values, indices):
  return tf.gather(values, tf.clip_by_value(indices, 0, tf.size(values, out_type=tf.int64) - 1))


class _Tables:
  """A rans.StreamTables as constants."""

  def __init__(self, tables: rans.StreamTables):
    self.precision = tables.precision
    self.escape = tables.escape
    self.frequencies = tf.constant(tables.frequencies, tf.int64)
    self.cumulative = tf.constant(tables.cumulative, tf.int64)
    self.global_cumulative = tf.constant(tables.global_cumulative[None], tf.int64)
    self.starts = tf.constant(tables.starts, tf.int64)
    self.lengths = tf.constant(tables.lengths, tf.int64)
    self.offsets = tf.constant(tables.offsets, tf.int64)
    # Binary search rounds that find any entry of the longest table.
    self.search_rounds = int(np.ceil(np.log2(int(tables.lengths.max()) + 1)))
    self.lockstep = tf.function(self._lockstep, jit_compile=JIT_COMPILE, autograph=False)

  def _lockstep(self, renorm, renorm_size, table_of, states):
    """The lanes' loop: (symbols int64 [n], final states [K], bytes read, ok).

    Every shape follows from the inputs' (K = the states', n = table_of's), so XLA can compile
    it: it then runs a step in microseconds where the graph executor spends several per op.
    """
    n = tf.size(table_of, out_type=tf.int64)
    lanes = tf.size(states, out_type=tf.int64)
    steps = (n + lanes - 1) // lanes
    p = self.precision
    mask = (1 << p) - 1
    lane = tf.range(lanes)
    last_entry = tf.size(self.frequencies, out_type=tf.int64) - 1
    byte_index = tf.range(rans.MAX_RENORM_BYTES, dtype=tf.int64)

    def step(t, x, ptr, good, out):
      i = t * lanes + lane
      active = i < n
      tb = tf.gather(table_of, tf.clip_by_value(i, 0, n - 1))
      slot = tf.bitwise.bitwise_and(x, mask)
      # The entry g of table tb with cum[g] <= slot < cum[g + 1]: a binary search in
      # [start, start + length), unrolled (XLA has no searchsorted).
      low = tf.gather(self.starts, tb)
      high = low + tf.gather(self.lengths, tb)
      for _ in range(self.search_rounds):
        mid = (low + high) // 2
        go = tf.gather(self.cumulative, tf.minimum(mid, last_entry)) <= slot
        wide = high - low > 1
        low = tf.where(wide & go, mid, low)
        high = tf.where(wide & ~go, mid, high)
      g = low
      symbol = g - tf.gather(self.starts, tb)
      y = (tf.gather(self.frequencies, g) * tf.bitwise.right_shift(x, p) + slot
           - tf.gather(self.cumulative, g))
      y = tf.where(active, y, x)
      nb = tf.where(active, tf.cast(y < rans.LOWER, tf.int64) + tf.cast(y < 1 << 15, tf.int64)
                    + tf.cast(y < 1 << 7, tf.int64), 0)
      pos = ptr + tf.cumsum(nb, exclusive=True)
      # All lanes' bytes in one gather: [K, 3], the first nb of each row are the lane's.
      read = tf.gather(renorm, tf.clip_by_value(pos[:, None] + byte_index, 0,
                                                tf.size(renorm, out_type=tf.int64) - 1))
      wanted = byte_index < nb[:, None]
      # Big-endian value of the nb bytes: byte j weighs 2^(8 (nb - 1 - j)).
      weight = tf.bitwise.left_shift(tf.constant(1, tf.int64),
                                     8 * tf.maximum(nb[:, None] - 1 - byte_index, 0))
      y = tf.bitwise.left_shift(y, 8 * nb) + tf.reduce_sum(
          tf.where(wanted, read * weight, 0), axis=1)
      ptr = ptr + tf.reduce_sum(nb)
      out = out.write(tf.cast(t, tf.int32), symbol)
      return t + 1, y, ptr, good & (ptr <= renorm_size), out

    # All steps run (a failed read stops nothing: XLA wants the output written whole); `good`
    # says whether the bytes held out.
    _, x, ptr, good, out = tf.while_loop(
        lambda t, x, ptr, good, out: t < steps, step,
        [tf.constant(0, tf.int64), states, tf.constant(0, tf.int64), tf.constant(True),
         tf.TensorArray(tf.int64, size=tf.cast(steps, tf.int32), element_shape=[None])])
    return tf.reshape(out.stack(), [-1])[:n], x, ptr, good


def decode_stream(stream, table_of, tables: _Tables):
  """(values int64 [n], ok bool) of one rANS stream (rans.py) in graph ops; table_of: [n]."""
  stream = tf.convert_to_tensor(stream, tf.int64)
  n = tf.size(table_of, out_type=tf.int64)
  size = tf.size(stream, out_type=tf.int64)
  padded = tf.concat([stream, tf.zeros([8], tf.int64)], 0)
  lanes = padded[0]
  at = tf.constant(5 if tables.escape else 1, tf.int64)
  num_escapes = _big_endian(padded, 1, 4) if tables.escape else tf.constant(0, tf.int64)
  ok = (lanes >= 1) & (lanes <= tf.minimum(n, rans.MAX_LANES)) & (num_escapes <= n)
  lanes = tf.clip_by_value(lanes, 1, rans.MAX_LANES)
  num_escapes = tf.clip_by_value(num_escapes, 0, n)
  renorm_at = at + 4 * lanes + 4 * num_escapes
  ok &= size >= renorm_at
  byte_at = at + 4 * tf.range(lanes)[:, None] + tf.range(4, dtype=tf.int64)
  word = _safe_gather(padded, byte_at)
  states = tf.reduce_sum(word * tf.constant([1 << 24, 1 << 16, 1 << 8, 1], tf.int64), axis=1)
  ok &= tf.reduce_all((states >= rans.LOWER) & (states < 1 << rans.STATE_BITS))
  escape_at = at + 4 * lanes + 4 * tf.range(num_escapes)[:, None] + tf.range(4, dtype=tf.int64)
  escaped = tf.reduce_sum(_safe_gather(padded, escape_at)
                          * tf.constant([1 << 24, 1 << 16, 1 << 8, 1], tf.int64), axis=1)
  escaped = tf.where(escaped >= 1 << 31, escaped - (1 << 32), escaped)  # int32, signed
  renorm = tf.concat([stream[tf.minimum(renorm_at, size):], tf.zeros([3], tf.int64)], 0)
  renorm_size = tf.maximum(size - renorm_at, 0)
  # XLA compiles the loop once per input shape: the bytes go in padded to a power of two, so
  # files of one image size share a handful of compilations.
  bucket = tf.bitwise.left_shift(tf.constant(1, tf.int64), tf.reduce_sum(tf.cast(
      tf.bitwise.left_shift(tf.constant(1, tf.int64), tf.range(40, dtype=tf.int64))
      < tf.maximum(tf.size(renorm, out_type=tf.int64), 64), tf.int64)))
  renorm = tf.pad(renorm, [[0, bucket - tf.size(renorm, out_type=tf.int64)]])
  symbols, x, ptr, good = tables.lockstep(renorm, renorm_size, table_of, states)
  ok &= good
  ok &= (ptr == renorm_size) & tf.reduce_all(tf.equal(x, rans.LOWER))
  symbols = tf.where(ok, symbols, 0)
  offsets = tf.gather(tables.offsets, table_of)
  values = symbols + offsets
  if tables.escape:
    length = tf.gather(tables.lengths, table_of)
    is_escape = tf.equal(symbols, length - 1)
    rank = tf.cumsum(tf.cast(is_escape, tf.int64), exclusive=True)
    ok &= tf.reduce_sum(tf.cast(is_escape, tf.int64)) == num_escapes
    escape_value = _safe_gather(tf.concat([escaped, [0]], 0), rank)
    inside = (escape_value >= offsets) & (escape_value <= offsets + length - 2)
    ok &= ~tf.reduce_any(is_escape & inside)
    values = tf.where(is_escape, escape_value, values)
  return values, ok


class GraphReader:
  """Reads one codec's version-2 .tfci files in graph ops (module docstring).

  Attributes:
    symbol_names: the family's symbol arrays (tables.symbol_names), what `read` returns.
  """

  def __init__(self, tables, max_pixels: int = DEFAULT_MAX_PIXELS):
    self.family = tables.bitstream_family
    self.family_info = tables.family_info
    self.symbol_names = tables.symbol_names
    self.channels = int(tables.channels)
    self.max_pixels = int(max_pixels)
    name = tables.name.encode("ascii")
    # Everything up to the fixed fields: one string compare checks magic, family, the name
    # and the fingerprint (the version byte is checked apart, for its own message).
    self._identity = bytes([self.family, len(name)]) + name + bytes(tables.fingerprint)
    self._fixed_at = 7 + len(name) + bitstream.FINGERPRINT_BYTES
    self._downsampling = tables.downsampling
    if self.family == bitstream.FAMILY_AUTOENCODER:
      frequencies = np.asarray(tables.frequencies, np.int64)
      self._num_centers = int(frequencies.size)
      self._tables = _Tables(bitstream._single_table(frequencies))  # pylint: disable=protected-access
      self._fields = (4, 4, 2, 2, 2, 1, 4)  # H, W, h, w, C, L, P
    elif self.family == bitstream.FAMILY_HYPERPRIOR:
      self._num_filters = int(tables.num_filters)
      self._z_tables = _Tables(bitstream.stream_tables(tables.z_tables))
      self._y_tables = _Tables(bitstream.stream_tables(tables.y_tables))
      self._synthesis = tables.hyper_synthesis
      self._fields = (4, 4, 2, 2, 2, 2, 2, 2, 4, 4)  # H, W, hy, wy, M, hz, wz, N, Pz, Py
    else:
      raise ValueError(f"no graph reader for codec family {self.family}")

  def read(self, file):
    """One file (scalar tf.string) -> ({symbol name: int32 [h, w, C]}, image size int64 [2],
    status int32 scalar). A file with status != OK has all-zero symbols of shape [1, 1, C]."""
    file = tf.convert_to_tensor(file, tf.string)
    raw = tf.cast(tf.io.decode_raw(file, tf.uint8), tf.int64)
    size = tf.size(raw, out_type=tf.int64)
    header_bytes = self._fixed_at + sum(self._fields) + 4
    data = tf.concat([raw, tf.zeros([header_bytes], tf.int64)], 0)
    fields, at = [], self._fixed_at
    for width in self._fields:
      fields.append(_big_endian(data, at, width))
      at += width
    crc_at, payload_at = at, at + 4
    payload_lengths = fields[-1:] if len(self._fields) == 7 else fields[-2:]
    end = payload_at + tf.add_n(payload_lengths)
    height, width = fields[0], fields[1]
    expected = self._expected_shapes(height, width)
    shapes_ok = tf.reduce_all(tf.equal(tf.stack(fields[2:2 + len(expected)]),
                                       tf.constant(0, tf.int64) + tf.stack(expected)))
    shapes_ok &= (height >= 1) & (width >= 1)
    if self.family == bitstream.FAMILY_AUTOENCODER:
      shapes_ok &= tf.equal(fields[5], self._num_centers)
    shapes_ok &= tf.reduce_all(tf.stack(payload_lengths) >= 1)
    padded_file = tf.strings.join([file, b"\0" * (len(self._identity) + 5)])
    magic = tf.equal(tf.strings.substr(padded_file, 0, 4), bitstream.MAGIC)
    version = data[4]
    identity = tf.equal(tf.strings.substr(padded_file, 5, len(self._identity)), self._identity)
    status = _first([
        (~magic, NOT_TFCI),
        (size < 7, TRUNCATED),
        (tf.equal(version, bitstream.FORMAT_VERSION), VERSION_1),
        (tf.not_equal(version, bitstream.RANS_VERSION), UNSUPPORTED),
        (~identity & (size >= 5 + len(self._identity)), OTHER_CODEC),
        (size < end, TRUNCATED),
        (size > end, CORRUPTED),
    ])
    # The checksum only of files of the right length (it reads the whole file).
    crc_ok = tf.cond(tf.equal(status, OK), lambda: tf.equal(
        crc32(tf.concat([raw[:crc_at], raw[payload_at:]], 0)),
        _big_endian(data, crc_at, 4)), lambda: tf.constant(False))
    status = _first([(tf.not_equal(status, OK), status), (~crc_ok, CORRUPTED),
                     (~shapes_ok, BAD_HEADER), (height * width > self.max_pixels, TOO_LARGE)])
    payload = raw[payload_at:]

    def decode():
      symbols, ok = self._decode(payload, payload_lengths, fields)
      return symbols, tf.where(ok, tf.constant(OK, tf.int32), UNDECODABLE)

    def nothing():
      return ({name: tf.zeros([1, 1, self.channels], tf.int32) for name in self.symbol_names},
              tf.constant(UNDECODABLE, tf.int32))

    symbols, decoded = tf.cond(tf.equal(status, OK), decode, nothing)
    status = tf.where(tf.equal(status, OK), decoded, status)
    return symbols, tf.stack([height, width]), status

  def _expected_shapes(self, height, width):
    """The latent shape fields the codec makes of an image size (what check_shapes wants)."""
    def up(value, factor):
      return (value + factor - 1) // factor

    if self.family == bitstream.FAMILY_AUTOENCODER:
      return [up(height, self._downsampling), up(width, self._downsampling), self.channels]
    hy, wy = up(height, self._downsampling), up(width, self._downsampling)
    from tfcdi.codec import hyperprior as hyperprior_lib  # pylint: disable=g-import-not-at-top
    factor = hyperprior_lib.HYPER_DOWNSAMPLING
    return [hy, wy, self.channels, up(hy, factor), up(wy, factor), self._num_filters]

  def _decode(self, payload, payload_lengths, fields):
    if self.family == bitstream.FAMILY_AUTOENCODER:
      shape = tf.stack([fields[2], fields[3], self.channels])
      n = tf.reduce_prod(shape)
      values, ok = decode_stream(payload, tf.zeros([n], tf.int64), self._tables)
      return {self.symbol_names[0]: tf.cast(tf.reshape(values, shape), tf.int32)}, ok
    y_shape = tf.stack([fields[2], fields[3], self.channels])
    z_shape = tf.stack([fields[5], fields[6], self._num_filters])
    z_length = payload_lengths[0]
    nz = tf.reduce_prod(z_shape)
    z, ok = decode_stream(payload[:z_length], tf.range(nz) % self._num_filters, self._z_tables)
    z = tf.reshape(z, z_shape)
    accumulators, fits = self._synthesis.graph_accumulate(z[None])
    indices = tf.searchsorted(
        tf.constant(self._synthesis.thresholds[None], tf.int64),
        tf.reshape(tf.cast(accumulators, tf.int64), [1, -1]), side="left", out_type=tf.int64)
    indices = tf.reshape(indices, tf.shape(accumulators, out_type=tf.int64)[1:])
    indices = indices[:fields[2], :fields[3], :]
    ok &= fits

    def read_y():
      return decode_stream(payload[z_length:], tf.reshape(indices, [-1]), self._y_tables)

    y, y_ok = tf.cond(ok, read_y, lambda: (tf.zeros([tf.reduce_prod(y_shape)], tf.int64),
                                           tf.constant(False)))
    from tfcdi.codec import hyperprior_codec  # pylint: disable=g-import-not-at-top
    ok &= y_ok & (tf.reduce_max(tf.abs(y)) <= hyperprior_codec.MAX_Y_MAGNITUDE)
    return {self.symbol_names[0]: tf.cast(tf.reshape(y, y_shape), tf.int32),
            self.symbol_names[1]: tf.cast(indices, tf.int32)}, ok
