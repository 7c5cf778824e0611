"""Format version 2: interleaved rANS lanes (rans.py), and their decoder in graph ops
(graph_decode.py), checked against the NumPy decoder and against version 1's symbols."""

import hashlib
import os
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfcdi.codec import bitstream
from tfcdi.codec import graph_decode
from tfcdi.codec import rans

KODAK = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "kodak")
AE_TABLE = rans.single_table([1, 71, 11669, 50801, 2961, 33], 16)
ESCAPE_TABLES = rans.escape_tables(
    [100, (1 << 20) - 300, 150, 50, 1000, (1 << 20) - 3000, 1000, 1000], [4, 4], [-1, -1], 20)


def _ae_symbols(n, seed=0):
  rng = np.random.default_rng(seed)
  p = AE_TABLE.frequencies / AE_TABLE.frequencies.sum()
  return rng.choice(6, size=n, p=p)


def _escape_values(n, seed=0):
  rng = np.random.default_rng(seed)
  values = rng.integers(-1, 2, size=n)
  values[rng.integers(0, n, size=n // 50)] = rng.integers(-300, 300, size=n // 50)
  return values, rng.integers(0, 2, size=n)


@pytest.mark.parametrize("lanes", [1, 2, 7, 64, None])
def test_streams_round_trip_at_any_lane_count(lanes):
  values = _ae_symbols(1000)
  table_of = np.zeros_like(values)
  data = rans.encode_stream(values, table_of, AE_TABLE, lanes)
  np.testing.assert_array_equal(rans.decode_stream(data, table_of, AE_TABLE), values)
  values, table_of = _escape_values(1001)
  data = rans.encode_stream(values, table_of, ESCAPE_TABLES, lanes)
  np.testing.assert_array_equal(rans.decode_stream(data, table_of, ESCAPE_TABLES), values)


def test_a_fixed_input_encodes_to_fixed_bytes():
  # Integer arithmetic only: these bytes are the same on every machine, today and later.
  values, table_of = _escape_values(500, seed=1)
  data = rans.encode_stream(values, table_of, ESCAPE_TABLES, 5)
  # Recorded from the first encoding; a change here changes every version-2 file.
  assert len(data) == 560
  assert hashlib.sha256(data).hexdigest()[:16] == "9c51e60901dc4262"


def test_the_stream_costs_its_information_plus_four_bytes_a_lane():
  values = _ae_symbols(20000)
  table_of = np.zeros_like(values)
  ideal = rans.information_bits(values, table_of, AE_TABLE) / 8
  for lanes in (1, 8):
    size = len(rans.encode_stream(values, table_of, AE_TABLE, lanes))
    assert ideal < size <= ideal + 1 + 4 * lanes + 2


def test_damaged_streams_are_refused_or_decode_to_what_encodes_them():
  values, table_of = _escape_values(800)
  data = rans.encode_stream(values, table_of, ESCAPE_TABLES, 4)
  rng = np.random.default_rng(0)
  refused = 0
  for _ in range(200):
    damaged = bytearray(data)
    damaged[rng.integers(len(damaged))] ^= 1 << int(rng.integers(8))
    try:
      decoded = rans.decode_stream(bytes(damaged), table_of, ESCAPE_TABLES)
    except rans.RansError:
      refused += 1
      continue
    # Accepted: then it is exactly the encoding of what it decodes to (no second reading).
    assert rans.encode_stream(decoded, table_of, ESCAPE_TABLES, 4) == bytes(damaged)
  assert refused > 150
  with pytest.raises(rans.RansError):
    rans.decode_stream(data[:-1], table_of, ESCAPE_TABLES)
  with pytest.raises(rans.RansError):
    rans.decode_stream(data, table_of[:-1], ESCAPE_TABLES)


@pytest.mark.parametrize("length", [4, 5, 63, 64, 65, 1000])
def test_graph_crc32_is_zlibs(length):
  data = np.random.default_rng(length).integers(0, 256, length)
  assert int(graph_decode.crc32(data)) == zlib.crc32(data.astype(np.uint8).tobytes())


@pytest.mark.parametrize("escape", [False, True])
def test_graph_stream_decoder_matches_numpy_and_refuses_what_it_refuses(escape):
  if escape:
    values, table_of = _escape_values(300, seed=2)
    tables = ESCAPE_TABLES
  else:
    values = _ae_symbols(300, seed=2)
    table_of = np.zeros_like(values)
    tables = AE_TABLE
  graph_tables = graph_decode._Tables(tables)  # pylint: disable=protected-access
  decode = tf.function(lambda s, t: graph_decode.decode_stream(s, t, graph_tables))
  data = rans.encode_stream(values, table_of, tables, 3)
  got, ok = decode(np.frombuffer(data, np.uint8).astype(np.int64), table_of)
  assert bool(ok)
  np.testing.assert_array_equal(got.numpy(), values)
  rng = np.random.default_rng(1)
  for _ in range(20):
    damaged = bytearray(data)
    damaged[rng.integers(len(damaged))] ^= 1 << int(rng.integers(8))
    try:
      expected = rans.decode_stream(bytes(damaged), table_of, tables)
    except rans.RansError:
      expected = None
    got, ok = decode(np.frombuffer(bytes(damaged), np.uint8).astype(np.int64), table_of)
    assert bool(ok) == (expected is not None)
    if expected is not None:
      np.testing.assert_array_equal(got.numpy(), expected)


def _kodak_crop(size=64):
  return np.asarray(Image.open(os.path.join(KODAK, "kodim23.png")).convert("RGB"))[
      200:200 + size, 300:300 + size]


@pytest.mark.skipif(not os.path.isdir(KODAK), reason="the shared data is not beside the repo")
@pytest.mark.parametrize("family", ["autoencoder", "hyperprior"])
def test_version_2_files_hold_version_1s_symbols_and_the_graph_reads_them(
    family, tiny_codec, tiny_hyperprior):
  codec = tiny_codec if family == "autoencoder" else tiny_hyperprior
  tables = codec.tables()
  image = _kodak_crop()
  v1, v2 = (codec.compress(image, format_version=v) for v in (1, 2))
  assert bitstream.parse_header(v2).version == 2 and bitstream.parse_header(v1).version == 1
  (_, constriction_symbols), (_, numpy_symbols) = tables.read_symbols(v1), tables.read_symbols(v2)
  read = tf.function(graph_decode.GraphReader(tables).read)
  graph_symbols, image_size, status = read(tf.constant(v2))
  assert int(status) == graph_decode.OK
  np.testing.assert_array_equal(image_size.numpy(), image.shape[:2])
  for name in tables.symbol_names:
    np.testing.assert_array_equal(numpy_symbols[name], constriction_symbols[name])
    np.testing.assert_array_equal(graph_symbols[name].numpy(), numpy_symbols[name])


def _recrc(data: bytes, crc_at: int) -> bytes:
  """The file with its checksum recomputed: a forgery the CRC does not catch."""
  body = data[:crc_at] + data[crc_at + 4:]
  return data[:crc_at] + zlib.crc32(body).to_bytes(4, "big") + data[crc_at + 4:]


@pytest.mark.skipif(not os.path.isdir(KODAK), reason="the shared data is not beside the repo")
def test_graph_reader_gives_each_bad_file_its_status(tiny_codec):
  tables = tiny_codec.tables()
  good = tiny_codec.compress(_kodak_crop(), format_version=2)
  header = bitstream.parse_header(good)
  crc_at = header.payload_offset - 4
  forged = bytearray(good)
  forged[header.payload_offset] = 255  # 255 lanes for a stream that has fewer
  forged = _recrc(bytes(forged), crc_at)
  with pytest.raises(bitstream.BitstreamError, match="undecodable"):
    tables.read_symbols(forged)
  wrong_size = bytearray(good)
  wrong_size[crc_at - 12] ^= 1  # the latent height no longer fits the image size
  cases = {
      graph_decode.UNDECODABLE: forged,
      graph_decode.BAD_HEADER: _recrc(bytes(wrong_size), crc_at),
      graph_decode.CORRUPTED: good + b"\0",
      graph_decode.TRUNCATED: good[:10],
      graph_decode.UNSUPPORTED: good[:4] + b"\x07" + good[5:],
      graph_decode.OTHER_CODEC: good[:8] + b"X" + good[9:],
      graph_decode.OK: good,
  }
  read = tf.function(graph_decode.GraphReader(tables).read)
  for expected, data in cases.items():
    assert int(read(tf.constant(data))[2]) == expected, graph_decode.STATUS_MESSAGES[expected]
