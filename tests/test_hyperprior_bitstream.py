"""The hyperprior (family 1) .tfci container: pure NumPy + constriction, no model needed."""

import struct
import zlib

import numpy as np
import pytest

from tfcdi.codec import bitstream
from tfcdi.codec.bitstream import BitstreamError

FINGERPRINT = bytes(range(11, 19))
NAME = "hp-q4-cpu"
NUM_Y_TABLES = 8


def _gaussian_tables(scales):
  """Quantized Gaussians, as hyperprior.y_tables makes them, without TensorFlow."""
  from math import erfc, sqrt  # pylint: disable=g-import-not-at-top
  freqs, lengths, offsets = [], [], []
  for scale in scales:
    r = max(1, int(np.ceil(5 * scale)))
    values = np.arange(-r, r + 2)  # the last one stands for the escape
    cdf = np.array([0.5 * erfc(-(v - 0.5) / (sqrt(2) * scale)) for v in values])
    probs = np.append(np.diff(cdf), cdf[0] + 1 - cdf[-1])
    freqs.append(bitstream.quantize_pmf(probs))
    lengths.append(2 * r + 2)
    offsets.append(-r)
  return bitstream.make_tables(np.concatenate(freqs), lengths, offsets)


Y_SCALES = np.geomspace(0.2, 30.0, NUM_Y_TABLES)
Y_TABLES = _gaussian_tables(Y_SCALES)
# z: one table per channel, shifted so that offsets are not all alike.
Z_TABLES = bitstream.make_tables(
    np.concatenate([Y_TABLES.table(5), Y_TABLES.table(6), Y_TABLES.table(7)]),
    Y_TABLES.lengths[5:], Y_TABLES.offsets[5:] + np.array([0, 3, -2]))


def _sample(shape, tables, table_of, rng):
  """Values drawn from each element's table (escapes drawn as far-away values)."""
  values = np.empty(table_of.size, np.int64)
  flat = table_of.reshape(-1)
  for t in range(tables.num_tables):
    where = np.flatnonzero(flat == t)
    freqs = tables.table(t)
    symbols = rng.choice(freqs.size, size=where.size, p=freqs / freqs.sum())
    escape = freqs.size - 1
    values[where] = np.where(symbols == escape, 10_000, symbols + tables.offsets[t])
  return values.reshape(shape)


def _streams(hy=16, wy=24, m=6, seed=0):
  rng = np.random.default_rng(seed)
  indices = rng.integers(0, NUM_Y_TABLES, (hy, wy, m))
  y = _sample(indices.shape, Y_TABLES, indices, rng)
  hz, wz = -(-hy // 4), -(-wy // 4)
  z_table_of = np.broadcast_to(np.arange(3), (hz, wz, 3))
  z = _sample(z_table_of.shape, Z_TABLES, z_table_of, rng)
  return y, indices, z


def _encode(y, indices, z, image_size=None, name=NAME):
  if image_size is None:
    image_size = (16 * y.shape[0] - 5, 16 * y.shape[1] - 9)
  return bitstream.encode_hyperprior(y, indices, Y_TABLES, z, Z_TABLES, codec_name=name,
                                     fingerprint=FINGERPRINT, image_size=image_size)


def _decode(data, indices):
  header = bitstream.parse_header(data)
  z = bitstream.decode_hyperprior_z(data, header, Z_TABLES)
  return header, z, bitstream.decode_hyperprior_y(data, header, Y_TABLES, indices)


def _reseal(data):
  """Recomputes the checksum of an edited hyperprior file (see the byte table)."""
  crc_at = 43 + data[6]
  crc = zlib.crc32(data[crc_at + 4:], zlib.crc32(data[:crc_at]))
  return data[:crc_at] + struct.pack(">I", crc) + data[crc_at + 4:]


@pytest.fixture(scope="module", name="small")
def fixture_small():
  y, indices, z = _streams()
  return _encode(y, indices, z), y, indices, z


def test_both_streams_round_trip_exactly(small):
  data, y, indices, z = small
  header, z_back, y_back = _decode(data, indices)
  np.testing.assert_array_equal(z_back, z)
  np.testing.assert_array_equal(y_back, y)
  assert z_back.dtype == y_back.dtype == np.int32
  assert header.codec_family == bitstream.FAMILY_HYPERPRIOR
  assert (header.codec_name, header.fingerprint) == (NAME, FINGERPRINT)
  assert header.y_shape == y.shape and header.z_shape == z.shape
  assert header.image_size == (16 * 16 - 5, 16 * 24 - 9)


def test_header_layout_is_the_documented_one(small):
  data = small[0]
  n = data[6]
  assert data[:7] == b"TFCI" + bytes([1, 1, n])
  assert data[7:7 + n] == NAME.encode() and data[7 + n:15 + n] == FINGERPRINT
  height, width, hy, wy, m, hz, wz, nz, pz, py = struct.unpack(">IIHHHHHHII",
                                                              data[15 + n:43 + n])
  assert (height, width, hy, wy, m, hz, wz, nz) == (251, 375, 16, 24, 6, 4, 6, 3)
  assert len(data) == 47 + n + pz + py and pz % 4 == py % 4 == 0
  (crc,) = struct.unpack(">I", data[43 + n:47 + n])
  assert crc == zlib.crc32(data[47 + n:], zlib.crc32(data[:43 + n]))


def test_values_far_outside_the_tables_round_trip_through_escapes():
  y, indices, z = _streams(seed=1)
  y[0, 0, :] = [-300_000, 300_000, 0, 1, -1, 5000]
  z[0, 0, 0] = -77
  data = _encode(y, indices, z)
  _, z_back, y_back = _decode(data, indices)
  np.testing.assert_array_equal(y_back, y)
  np.testing.assert_array_equal(z_back, z)


def test_a_value_beyond_the_escape_code_is_refused():
  y, indices, z = _streams(seed=2)
  y[1, 1, 1] = 1 << 30
  with pytest.raises(BitstreamError, match="too far outside"):
    _encode(y, indices, z)


def test_real_bits_are_within_one_percent_of_the_information_content():
  # Many symbols (64 x 64 x 16 for y): the fixed costs (markers, flushes) become negligible.
  y, indices, z = _streams(hy=64, wy=64, m=16, seed=3)
  data = _encode(y, indices, z)
  header = bitstream.parse_header(data)
  z_info = bitstream.stream_information_bits(z, np.broadcast_to(np.arange(3), z.shape),
                                             Z_TABLES)
  y_info = bitstream.stream_information_bits(y, indices, Y_TABLES)
  assert 8 * header.y_length >= y_info
  assert 8 * header.y_length <= 1.01 * y_info
  assert 8 * header.z_length <= z_info + 96  # a handful of symbols: marker + flush dominate


def test_quantize_pmf_keeps_every_entry_and_the_total():
  freqs = bitstream.quantize_pmf([0.5, 0.0, 1e-12, 0.25, 0.25])
  assert freqs.sum() == bitstream.TABLE_TOTAL and freqs.min() >= 1
  assert freqs[0] == pytest.approx(bitstream.TABLE_TOTAL / 2, rel=1e-5)


@pytest.mark.parametrize("bad, match", [
    (dict(frequencies=np.array([1, 2, 3])), "lengths add up"),
    (dict(lengths=np.array([1])), "2\\.\\."),
    (dict(frequencies=np.array([0, bitstream.TABLE_TOTAL])), "zero"),
    (dict(frequencies=np.array([1, 2])), "sum to"),
])
def test_malformed_tables_are_refused(bad, match):
  args = dict(frequencies=np.array([1, bitstream.TABLE_TOTAL - 1]), lengths=np.array([2]),
              offsets=np.array([0]))
  args.update(bad)
  with pytest.raises(BitstreamError, match=match):
    bitstream.make_tables(**args)


# --- bad files -------------------------------------------------------------------------------


def test_every_truncation_is_refused(small):
  data, _, indices, _ = small
  for length in range(len(data)):
    with pytest.raises(BitstreamError):
      _decode(data[:length], indices)


def test_every_flipped_byte_is_refused(small):
  data, _, indices, _ = small
  for position in range(len(data)):
    for flip in (0x01, 0x80):
      damaged = bytearray(data)
      damaged[position] ^= flip
      with pytest.raises(BitstreamError):
        _decode(bytes(damaged), indices)


def test_extra_bytes_are_refused(small):
  with pytest.raises(BitstreamError, match="unexpected bytes"):
    bitstream.parse_header(small[0] + b"\0\0\0\0")


def test_a_resealed_payload_edit_is_refused(small):
  # The checksum is right, but the payload is not what the symbols encode to.
  data, _, indices, _ = small
  n = data[6]
  pz = struct.unpack(">I", data[35 + n:39 + n])[0]
  for position in (47 + n + 1, 47 + n + pz + 2, len(data) - 3):
    forged = bytearray(data)
    forged[position] ^= 0x5A
    with pytest.raises(BitstreamError):
      _decode(_reseal(bytes(forged)), indices)


def test_decoding_with_other_tables_is_refused(small):
  data, _, indices, _ = small
  header = bitstream.parse_header(data)
  # Other frequencies (the channels' tables in another order); tables that differ only in
  # their offsets decode to shifted values, which only the codec's fingerprint tells apart.
  order = [2, 0, 1]
  other_z = bitstream.make_tables(np.concatenate([Z_TABLES.table(t) for t in order]),
                                  Z_TABLES.lengths[order], Z_TABLES.offsets[order])
  with pytest.raises(BitstreamError):
    bitstream.decode_hyperprior_z(data, header, other_z)
  with pytest.raises(BitstreamError):  # other scale indices: other tables for the y symbols
    bitstream.decode_hyperprior_y(data, header, Y_TABLES, (indices + 1) % NUM_Y_TABLES)


def test_an_autoencoder_file_relabelled_as_hyperprior_is_refused():
  table = np.array([30000, 20000, 15536], np.int64)
  ae_file = bitstream.encode(np.zeros((4, 4, 8), np.int32), table, codec_name="ae-0.635-cpu",
                             fingerprint=FINGERPRINT, image_size=(32, 32))
  relabelled = ae_file[:5] + bytes([bitstream.FAMILY_HYPERPRIOR]) + ae_file[6:]
  with pytest.raises(BitstreamError):
    bitstream.parse_header(relabelled)


def test_a_hyperprior_file_relabelled_as_autoencoder_is_refused(small):
  data = small[0]
  with pytest.raises(BitstreamError):
    bitstream.parse_header(data[:5] + bytes([bitstream.FAMILY_AUTOENCODER]) + data[6:])


def test_an_unknown_family_is_refused_by_number(small):
  data = small[0]
  with pytest.raises(BitstreamError, match="unsupported codec family 9"):
    bitstream.parse_header(data[:5] + bytes([9]) + data[6:])


def test_each_family_reader_refuses_the_other_familys_file(small):
  data, _, indices, _ = small
  header = bitstream.parse_header(data)
  with pytest.raises(BitstreamError, match="hyperprior file has no autoencoder symbols"):
    bitstream.decode_symbols(data, header, np.array([1, bitstream.TABLE_TOTAL - 1]))
  ae_file = bitstream.encode(np.zeros((4, 4, 8), np.int32), np.array([40000, 25536]),
                             codec_name="ae", fingerprint=FINGERPRINT, image_size=(32, 32))
  with pytest.raises(BitstreamError, match="autoencoder file has no hyperprior streams"):
    bitstream.decode_hyperprior_z(ae_file, bitstream.parse_header(ae_file), Z_TABLES)


@pytest.mark.parametrize("edit, match", [
    ((23, struct.pack(">H", 300)), "implausible latent shape"),  # hy > image height
    ((29, struct.pack(">H", 17)), "implausible hyper-latent shape"),  # hz > hy
    ((33, struct.pack(">H", 0)), "implausible hyper-latent shape"),  # N = 0
])
def test_resealed_implausible_shapes_are_refused(small, edit, match):
  data = small[0]
  n = data[6]
  at, value = edit
  forged = _reseal(data[:at + n] + value + data[at + n + len(value):])
  with pytest.raises(BitstreamError, match=match):
    bitstream.parse_header(forged)


def test_encode_refuses_inconsistent_inputs():
  y, indices, z = _streams(seed=4)
  with pytest.raises(BitstreamError, match="table indices"):
    bitstream.encode_hyperprior(y, indices[:-1], Y_TABLES, z, Z_TABLES, codec_name=NAME,
                                fingerprint=FINGERPRINT, image_size=(250, 380))
  with pytest.raises(BitstreamError, match="z tables"):
    bitstream.encode_hyperprior(y, indices, Y_TABLES, z[..., :2], Z_TABLES, codec_name=NAME,
                                fingerprint=FINGERPRINT, image_size=(250, 380))
  with pytest.raises(BitstreamError, match="implausible latent"):
    bitstream.encode_hyperprior(y, indices, Y_TABLES, z, Z_TABLES, codec_name=NAME,
                                fingerprint=FINGERPRINT, image_size=(8, 8))
  with pytest.raises(BitstreamError, match="encode_hyperprior"):
    bitstream.encode(np.zeros((1, 1, 1), np.int32), np.array([1, 65535]), codec_name="x",
                     fingerprint=FINGERPRINT, image_size=(8, 8),
                     codec_family=bitstream.FAMILY_HYPERPRIOR)


def test_quantize_pmf_shares_the_leftover_units_by_largest_remainder():
  # total 12, 3 entries: 9 units to share. raw = 0.45, 1.8, 6.75 -> floors 0, 1, 6 (7 units);
  # the 2 left go to the largest remainders (0.8, 0.75), not to the smallest values; + 1 each.
  np.testing.assert_array_equal(bitstream.quantize_pmf([0.05, 0.2, 0.75], total=12), [1, 3, 8])
  # Unnormalised probabilities are the same distribution.
  np.testing.assert_array_equal(bitstream.quantize_pmf([1.0, 4.0, 15.0], total=12), [1, 3, 8])


def test_stream_information_bits_by_hand_with_escapes():
  # One table over [0, 1] plus its escape (index 2), frequencies 1/2, 1/4, 1/4 of the total.
  total = bitstream.TABLE_TOTAL
  tables = bitstream.make_tables(np.array([total // 2, total // 4, total // 4]), [3], [0])
  # 0: 1 bit, 1: 2 bits. 5 is 3 above the range: x = 4, k = 2; -3 is 2 below: x = 3, k = 1.
  # An escape costs its symbol (2 bits), the direction bit, log2(ESCAPE_BITS) for k, k bits.
  escape = 2 + 1 + np.log2(bitstream.ESCAPE_BITS)
  expected = 1 + 2 + (escape + 2) + (escape + 1)
  values = np.array([0, 1, 5, -3])
  assert bitstream.stream_information_bits(values, np.zeros(4, int), tables) == pytest.approx(
      expected)
  # And these values are what the payload codes.
  words = bitstream._encode_stream(values, np.zeros(4, np.int64), tables)
  np.testing.assert_array_equal(
      bitstream._decode_stream(words, np.zeros(4, np.int64), tables), values)


@pytest.mark.parametrize("probabilities", [[0.0, 0.0, 0.0], [0.5, -0.1, 0.6], [0.5, np.nan],
                                           [1.0]])
def test_quantize_pmf_refuses_probabilities_that_are_no_distribution(probabilities):
  with pytest.raises(ValueError):
    bitstream.quantize_pmf(probabilities)


@pytest.mark.parametrize("bad", [-1, NUM_Y_TABLES])
def test_a_scale_index_outside_the_tables_is_refused(bad):
  y, indices, z = _streams(hy=2, wy=3, m=2)
  indices = indices.copy()
  indices[1, 2, 1] = bad
  with pytest.raises(BitstreamError):
    _encode(y, indices, z)


def test_the_smallest_hyperprior_file_round_trips():
  # One y row, column and channel (one z position) of a 1 x 1 image: every lower bound is 1.
  y, indices, z = _streams(hy=1, wy=1, m=1)
  data = _encode(y, indices, z, image_size=(1, 1))
  header, _, y_back = _decode(data, indices)
  assert header.image_size == (1, 1)
  np.testing.assert_array_equal(y_back, y)


def test_tables_are_immutable():
  import dataclasses  # pylint: disable=g-import-not-at-top
  with pytest.raises(dataclasses.FrozenInstanceError):
    Y_TABLES.offsets = np.zeros(NUM_Y_TABLES, np.int64)


def _forged_header(image, y_shape, z_shape, family=bitstream.FAMILY_HYPERPRIOR):
  """A whole hyperprior file built field by field, with a valid checksum and one-word
  payloads: what parse_header sees of any header, plausible or not."""
  name, z_payload, y_payload = b"hp", b"\0\0\0\1", b"\0\0\0\2"
  head = (b"TFCI" + bytes([1, family, len(name)]) + name + bitstream._HYPER_FIXED.pack(
      FINGERPRINT, *image, *y_shape, *z_shape, len(z_payload), len(y_payload)))
  crc = zlib.crc32(y_payload, zlib.crc32(z_payload, zlib.crc32(head)))
  return head + struct.pack(">I", crc) + z_payload + y_payload


M = bitstream.MAX_IMAGE_SIDE
L = bitstream.MAX_LATENT_SIDE


@pytest.mark.parametrize("image, y_shape, z_shape", [
    ((M, M), (1, 1, 1), (1, 1, 1)),
    ((5, 7), (5, 7, 2), (5, 7, 2)),  # y as large as the image, z as large as y
    ((1, 1), (1, 1, L), (1, 1, L)),  # the most channels a header holds
    ((4096, 1024), (4096, 1024, 64), (4096, 1024, 64)),  # exactly MAX_SYMBOLS in each
])
def test_hyperprior_headers_at_each_bound_are_accepted(image, y_shape, z_shape):
  for family in (1, 3):  # the format's family bytes: hyperprior, mean-scale hyperprior
    header = bitstream.parse_header(_forged_header(image, y_shape, z_shape, family))
    assert (header.image_size, header.y_shape, header.z_shape) == (image, y_shape, z_shape)
    assert (header.z_length, header.y_length, header.payload_length) == (4, 4, 8)
    assert header.y_offset == header.z_offset + 4 and header.codec_family == family


@pytest.mark.parametrize("image, y_shape, z_shape, match", [
    ((M + 1, 8), (1, 1, 1), (1, 1, 1), "image size"),
    ((8, M + 1), (1, 1, 1), (1, 1, 1), "image size"),
    ((0, 8), (1, 1, 1), (1, 1, 1), "image size"),
    ((8, 0), (1, 1, 1), (1, 1, 1), "image size"),
    ((5, 7), (6, 7, 2), (1, 1, 1), "implausible latent"),
    ((5, 7), (5, 8, 2), (1, 1, 1), "implausible latent"),
    ((5, 7), (0, 7, 2), (1, 1, 1), "implausible latent"),
    ((5, 7), (5, 0, 2), (1, 1, 1), "implausible latent"),
    ((5, 7), (5, 7, 0), (1, 1, 1), "implausible latent"),
    ((4096, 1024), (4096, 1024, 65), (1, 1, 1), "implausible latent"),
    ((5, 7), (5, 7, 2), (6, 7, 2), "implausible hyper-latent"),
    ((5, 7), (5, 7, 2), (5, 8, 2), "implausible hyper-latent"),
    ((5, 7), (5, 7, 2), (0, 7, 2), "implausible hyper-latent"),
    ((5, 7), (5, 7, 2), (5, 0, 2), "implausible hyper-latent"),
    ((5, 7), (5, 7, 2), (5, 7, 0), "implausible hyper-latent"),
    ((4096, 1024), (4096, 1024, 64), (4096, 1024, 65), "implausible hyper-latent"),
])
def test_hyperprior_headers_one_past_each_bound_are_refused(image, y_shape, z_shape, match):
  with pytest.raises(BitstreamError, match=match):
    bitstream.parse_header(_forged_header(image, y_shape, z_shape))


def test_values_one_past_either_end_of_a_table_round_trip_through_the_shortest_escape():
  # One table over [0, 1] plus its escape: -1 and 2 are one past its ends (excess 0, so
  # x = 1 and k = 0: the escape codes its direction and k only, no further bits).
  total = bitstream.TABLE_TOTAL
  tables = bitstream.make_tables(np.array([total // 2, total // 4, total // 4]), [3], [0])
  values = np.array([-1, 2, 0, 1, -2, 3])
  table_of = np.zeros(values.size, np.int64)
  words = bitstream._encode_stream(values, table_of, tables)
  np.testing.assert_array_equal(bitstream._decode_stream(words, table_of, tables), values)
  assert bitstream._escape_parts(-1, 0, 1) == (1, 0, 0)
  assert bitstream._escape_parts(2, 0, 1) == (0, 0, 0)
  assert bitstream._escape_parts(-3, 0, 1) == (1, 1, 1)  # excess 2: x = 3 = 0b11


# A hyperprior file written by format version 1, committed as bytes, with integer tables
# written out here (no floating point): any change to the layout, the grouping order, the
# escape code (ESCAPE_BITS, its direction bit and length), the end marker or TABLE_TOTAL fails
# here. Three of its y values are escapes (40, 5, -300), with 5, 2 and 8 extra bits.
_T = bitstream.TABLE_TOTAL
COMMITTED_Y_TABLES = bitstream.make_tables(
    np.array([_T // 4, _T // 2, _T // 4 - 100, 100, _T // 2, _T // 2 - 50, 50]), [4, 3], [-1, 0])
COMMITTED_Z_TABLES = bitstream.make_tables(np.array([_T // 8, _T * 3 // 4, _T // 8 - 7, 7]), [4],
                                           [-1])
COMMITTED_Y = [[[0, 1], [-1, 40]], [[5, 0], [-300, 1]]]
COMMITTED_INDICES = [[[0, 1], [0, 0]], [[1, 1], [0, 1]]]
COMMITTED_FILE = bytes.fromhex(
    "5446434901010268700b0c0d0e0f1011120000001e00000014000200020002000100010001000000040000000c"
    "f7ae2bddf1b642ebbfffff5f3fb33afd98874078")


def test_a_committed_version_1_hyperprior_file_decodes_and_encodes_to_the_same_bytes():
  header = bitstream.parse_header(COMMITTED_FILE)
  assert (header.image_size, header.y_shape, header.z_shape) == ((30, 20), (2, 2, 2), (1, 1, 1))
  assert header.latent_shape == header.y_shape
  z = bitstream.decode_hyperprior_z(COMMITTED_FILE, header, COMMITTED_Z_TABLES)
  y = bitstream.decode_hyperprior_y(COMMITTED_FILE, header, COMMITTED_Y_TABLES,
                                    np.array(COMMITTED_INDICES))
  assert z.tolist() == [[[1]]] and y.tolist() == COMMITTED_Y
  again = bitstream.encode_hyperprior(np.array(COMMITTED_Y), np.array(COMMITTED_INDICES),
                                      COMMITTED_Y_TABLES, np.array([[[1]]]), COMMITTED_Z_TABLES,
                                      codec_name="hp", fingerprint=FINGERPRINT,
                                      image_size=(30, 20))
  assert again == COMMITTED_FILE


def test_an_escape_needs_at_most_escape_bits_minus_one_extra_bits():
  # x = excess + 1 has k + 1 bits; k = ESCAPE_BITS - 1 is the longest escape, k = ESCAPE_BITS
  # is refused (it could not be coded under Uniform(ESCAPE_BITS)).
  total = bitstream.TABLE_TOTAL
  tables = bitstream.make_tables(np.array([total // 2, total // 4, total // 4]), [3], [0])
  longest = 1 + (1 << bitstream.ESCAPE_BITS) - 1  # high 1, excess 2^20 - 2: x = 2^20 - 1
  assert bitstream._escape_parts(longest, 0, 1)[1] == bitstream.ESCAPE_BITS - 1
  values = np.array([longest, 1 - longest])  # 1 - longest: low 0, excess 2^20 - 2 as well
  words = bitstream._encode_stream(values, np.zeros(2, np.int64), tables)
  np.testing.assert_array_equal(bitstream._decode_stream(words, np.zeros(2, np.int64), tables),
                                values)
  with pytest.raises(BitstreamError, match="too far outside"):
    bitstream._escape_parts(longest + 1, 0, 1)


def test_stream_information_bits_charges_one_past_either_end_as_an_escape():
  total = bitstream.TABLE_TOTAL
  tables = bitstream.make_tables(np.array([total // 2, total // 4, total // 4]), [3], [0])
  # -1 and 2, one past either end: the escape symbol (2 bits), its direction bit,
  # log2(ESCAPE_BITS) for k = 0, no further bits.
  for value in (-1, 2):
    assert bitstream.stream_information_bits(np.array([value]), np.zeros(1, int), tables) == \
        pytest.approx(2 + 1 + np.log2(bitstream.ESCAPE_BITS))


def test_z_channel_mismatches_name_both_counts(small):
  data, y, indices, z = small
  header = bitstream.parse_header(data)  # z is 4 x 6 x 3
  two = bitstream.make_tables(np.concatenate([Z_TABLES.table(0), Z_TABLES.table(1)]),
                              Z_TABLES.lengths[:2], Z_TABLES.offsets[:2])
  with pytest.raises(BitstreamError, match="the file has 3 z channels; the codec has 2 z tables"):
    bitstream.decode_hyperprior_z(data, header, two)
  with pytest.raises(BitstreamError, match="3 z tables for 2 z channels"):
    bitstream.encode_hyperprior(y, indices, Y_TABLES, z[..., :2], Z_TABLES, codec_name=NAME,
                                fingerprint=FINGERPRINT, image_size=(250, 380))


def test_a_version_2_hyperprior_file_round_trips(small):
  _, y, indices, z = small
  data = bitstream.encode_hyperprior(y, indices, Y_TABLES, z, Z_TABLES, codec_name=NAME,
                                     fingerprint=FINGERPRINT, image_size=(250, 380),
                                     format_version=2)
  header, z_back, y_back = _decode(data, indices)
  assert header.version == 2
  np.testing.assert_array_equal(z_back, z)
  np.testing.assert_array_equal(y_back, y)


def test_an_undecodable_z_stream_is_a_bitstream_error():
  # Two all-ones words make constriction's range decoder fail inside the z stream.
  forged = _forged_header((5, 7), (1, 1, 1), (1, 1, 1))
  n = forged[6]
  forged = forged[:35 + n] + struct.pack(">II", 8, 4) + forged[43 + n:47 + n] + b"\xff" * 8 \
      + b"\0\0\0\2"
  forged = _reseal(forged)
  header = bitstream.parse_header(forged)
  with pytest.raises(BitstreamError, match="undecodable .tfci payload"):
    bitstream.decode_hyperprior_z(forged, header, bitstream.make_tables(
        np.array([bitstream.TABLE_TOTAL // 2, bitstream.TABLE_TOTAL // 2]), [2], [0]))


@pytest.mark.parametrize("version, z_length, accepted", [
    (1, 4, True), (1, 6, False), (1, 0, False), (2, 6, True), (2, 1, True), (2, 0, False)])
def test_a_version_1_stream_is_whole_words_and_no_stream_is_empty(version, z_length, accepted):
  # Version 1's range coder writes 32-bit words; version 2's rANS lanes any number of bytes.
  data = _forged_header((5, 7), (1, 1, 1), (1, 1, 1))
  n = data[6]
  forged = (data[:4] + bytes([version]) + data[5:35 + n] + struct.pack(">II", z_length, 4)
            + data[43 + n:47 + n] + bytes(range(1, z_length + 1)) + b"\0\0\0\2")
  forged = _reseal(forged)
  if accepted:
    assert bitstream.parse_header(forged).z_length == z_length
  else:
    with pytest.raises(BitstreamError, match="z payload of"):
      bitstream.parse_header(forged)
  # The y stream is checked the same way.
  bad_y = _reseal(data[:4] + bytes([1]) + data[5:35 + n] + struct.pack(">II", 4, 2)
                  + data[43 + n:47 + n] + b"\0\0\0\1" + b"\0\2")
  with pytest.raises(BitstreamError, match="y payload of 2 bytes"):
    bitstream.parse_header(bad_y)


def test_a_z_stream_with_words_after_its_marker_is_refused_as_not_exhausted(small):
  # Two words appended to z (one the range decoder may take for its own padding): every
  # symbol and the marker decode right, but the decoder is not exhausted.
  data = small[0]
  header = bitstream.parse_header(data)
  n = data[6]
  z_end = header.z_offset + header.z_length
  forged = _reseal(data[:35 + n] + struct.pack(">II", header.z_length + 8, header.y_length)
                   + data[43 + n:z_end] + bytes(range(1, 9)) + data[z_end:])
  with pytest.raises(BitstreamError, match="does not decode to the announced 72 symbols"):
    bitstream.decode_hyperprior_z(forged, bitstream.parse_header(forged), Z_TABLES)


def test_streams_must_be_integer_arrays_of_rank_3():
  y, indices, z = _streams(hy=2, wy=3, m=2)
  for bad_y, bad_z in ((y.astype(float), z), (y, z[0]), (y[0], z)):
    with pytest.raises(BitstreamError, match="must be a 3-D integer array"):
      bitstream.encode_hyperprior(bad_y, indices, Y_TABLES, bad_z, Z_TABLES, codec_name=NAME,
                                  fingerprint=FINGERPRINT, image_size=(32, 48))


def test_encode_hyperprior_takes_the_codec_identity_by_keyword_only():
  y, indices, z = _streams(hy=2, wy=3, m=2)
  with pytest.raises(TypeError):
    bitstream.encode_hyperprior(y, indices, Y_TABLES, z, Z_TABLES, NAME, FINGERPRINT, (32, 48))
