"""The .tfci container and its range coding: pure NumPy, no TensorFlow."""

import struct
import zlib

import numpy as np
import pytest

from tfcdi.codec import bitstream
from tfcdi.codec.bitstream import BitstreamError

FINGERPRINT = bytes(range(1, 9))


def _skewed_table():
  table = np.array([40000, 15000, 6000, 3000, 1500, 36], np.int64)
  table[0] += 65536 - table.sum()
  return table


def _symbols(shape, table=None, seed=0):
  table = _skewed_table() if table is None else table
  rng = np.random.default_rng(seed)
  return rng.choice(table.size, size=shape, p=table / table.sum()).astype(np.int32)


def _encode(symbols, table=None, name="ae-0.635-cpu", image_size=None):
  if image_size is None:
    image_size = (8 * symbols.shape[0] - 3, 8 * symbols.shape[1] - 5)
  return bitstream.encode(symbols, _skewed_table() if table is None else table,
                          codec_name=name, fingerprint=FINGERPRINT, image_size=image_size)


def _reseal(data):
  """Recomputes the checksum of an edited file, to forge headers that pass it."""
  crc_at = 34 + data[6]  # see the byte table in bitstream.py
  crc = zlib.crc32(data[crc_at + 4:], zlib.crc32(data[:crc_at]))
  return data[:crc_at] + struct.pack(">I", crc) + data[crc_at + 4:]


@pytest.fixture(name="small_file")
def fixture_small_file():
  return _encode(_symbols((2, 3, 4)))


def test_header_round_trip():
  symbols = _symbols((3, 5, 8))
  header = bitstream.parse_header(_encode(symbols, name="ae-0.0983-cpu", image_size=(17, 33)))
  assert header.version == 1
  assert header.codec_family == bitstream.FAMILY_AUTOENCODER
  assert header.codec_name == "ae-0.0983-cpu"
  assert header.fingerprint == FINGERPRINT
  assert header.image_size == (17, 33)
  assert header.latent_shape == (3, 5, 8)
  assert header.num_centers == 6
  assert header.num_symbols == 3 * 5 * 8
  assert header.payload_offset == 38 + len("ae-0.0983-cpu")


def test_layout_matches_the_documented_byte_table():
  data = _encode(_symbols((3, 5, 8)), name="abc", image_size=(17, 33))
  assert data[:4] == b"TFCI" and data[4:7] == bytes([1, 0, 3]) and data[7:10] == b"abc"
  assert data[10:18] == FINGERPRINT
  assert struct.unpack(">IIHHHBI", data[18:37]) == (17, 33, 3, 5, 8, 6, len(data) - 41)
  assert struct.unpack(">I", data[37:41])[0] == zlib.crc32(data[:37] + data[41:])


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 8), (7, 2, 32)])
def test_symbols_round_trip_exactly(shape):
  symbols = _symbols(shape, seed=sum(shape))
  header, decoded = bitstream.decode(_encode(symbols), _skewed_table())
  assert decoded.dtype == np.int32 and decoded.shape == shape
  np.testing.assert_array_equal(decoded, symbols)
  assert header.latent_shape == shape


def test_rare_symbols_round_trip():
  # Every symbol, including the one with frequency 36 / 65536, in long runs.
  symbols = np.repeat(np.arange(6, dtype=np.int64), 50).reshape(10, 5, 6)
  _, decoded = bitstream.decode(_encode(symbols), _skewed_table())
  np.testing.assert_array_equal(decoded, symbols)


def test_real_bits_at_least_estimate_and_within_one_percent():
  symbols = _symbols((64, 64, 32), seed=3)
  header = bitstream.parse_header(_encode(symbols))
  real_bits = 8 * header.payload_length
  estimate = bitstream.information_content_bits(symbols, _skewed_table())
  assert real_bits >= estimate - 1.0
  assert real_bits <= 1.01 * estimate


def test_information_content_of_a_uniform_table_is_one_bit_per_binary_symbol():
  table = np.array([32768, 32768])
  assert bitstream.information_content_bits(np.zeros((4, 4, 2), int), table) == 32.0


def test_encoding_is_deterministic():
  symbols = _symbols((6, 7, 8), seed=5)
  assert _encode(symbols) == _encode(symbols.astype(np.int64).copy())


def test_refuses_empty_file():
  with pytest.raises(BitstreamError, match="empty"):
    bitstream.parse_header(b"")


def test_refuses_wrong_magic():
  with pytest.raises(BitstreamError, match="not a .tfci file"):
    bitstream.parse_header(b"\x89PNG\r\n\x1a\n" + bytes(100))


def test_every_truncation_is_refused(small_file):
  for length in range(len(small_file)):
    with pytest.raises(BitstreamError):
      bitstream.decode(small_file[:length], _skewed_table())


def test_trailing_bytes_are_refused(small_file):
  with pytest.raises(BitstreamError, match="unexpected bytes"):
    bitstream.parse_header(small_file + b"\0")


def test_flipped_payload_byte_is_refused(small_file):
  header = bitstream.parse_header(small_file)
  for offset in range(header.payload_offset, len(small_file)):
    corrupted = bytearray(small_file)
    corrupted[offset] ^= 0x10
    with pytest.raises(BitstreamError, match="corrupted"):
      bitstream.decode(bytes(corrupted), _skewed_table())


def test_flipped_header_byte_is_refused(small_file):
  header = bitstream.parse_header(small_file)
  for offset in range(header.payload_offset):
    corrupted = bytearray(small_file)
    corrupted[offset] ^= 0x01
    with pytest.raises(BitstreamError):
      bitstream.decode(bytes(corrupted), _skewed_table())


def test_unknown_version_is_refused(small_file):
  with pytest.raises(BitstreamError, match="version 3 .*reads versions 1, 2"):
    bitstream.parse_header(small_file[:4] + b"\x03" + small_file[5:])


def test_unknown_family_is_refused(small_file):
  forged = _reseal(small_file[:5] + bytes([9]) + small_file[6:])
  with pytest.raises(BitstreamError, match="family 9"):
    bitstream.parse_header(forged)


def test_file_relabelled_as_hyperprior_is_refused(small_file):
  # Family 1 has its own header layout (test_hyperprior_bitstream.py); this one does not fit it.
  forged = _reseal(small_file[:5] + bytes([bitstream.FAMILY_HYPERPRIOR]) + small_file[6:])
  with pytest.raises(BitstreamError):
    bitstream.parse_header(forged)


def test_absurd_sizes_are_refused(small_file):
  fixed_at = 7 + small_file[6] + bitstream.FINGERPRINT_BYTES
  huge_image = _reseal(small_file[:fixed_at] + struct.pack(">II", 70000, 70000)
                       + small_file[fixed_at + 8:])
  with pytest.raises(BitstreamError, match="image size"):
    bitstream.parse_header(huge_image)
  huge_latent = _reseal(small_file[:fixed_at + 8] + struct.pack(">HHH", 65535, 65535, 65535)
                        + small_file[fixed_at + 14:])
  with pytest.raises(BitstreamError, match="latent shape"):
    bitstream.parse_header(huge_latent)
  many_symbols = _reseal(small_file[:fixed_at + 8] + struct.pack(">HHH", 2, 3, 4000)
                         + small_file[fixed_at + 14:])
  header = bitstream.parse_header(many_symbols)  # a plausible header, but no payload for it
  with pytest.raises(BitstreamError, match="cannot hold"):
    bitstream.decode_symbols(many_symbols, header, _skewed_table())


def test_symbol_count_mismatch_is_refused():
  # A header that announces more symbols than were coded, with a valid checksum.
  data = _encode(_symbols((4, 4, 8)), image_size=(32, 32))
  fixed_at = 7 + data[6] + bitstream.FINGERPRINT_BYTES
  forged = _reseal(data[:fixed_at + 8] + struct.pack(">HHH", 4, 4, 9) + data[fixed_at + 14:])
  with pytest.raises(BitstreamError):
    bitstream.decode(forged, _skewed_table())


def test_another_frequency_table_is_refused():
  data = _encode(_symbols((16, 16, 8), seed=7))
  other = np.array([50000, 10000, 3000, 1500, 1000, 36])
  with pytest.raises(BitstreamError, match="frequency table"):
    bitstream.decode(data, other)
  with pytest.raises(BitstreamError, match="6 centers"):
    bitstream.decode(data, np.array([30000, 30000, 5536]))


@pytest.mark.parametrize("kwargs, match", [
    ({"symbols": np.full((2, 2, 2), 6)}, "symbols must lie"),
    ({"symbols": np.full((2, 2, 2), -1)}, "symbols must lie"),
    ({"symbols": np.zeros((2, 2))}, r"\[h, w, C\]"),
    ({"symbols": np.zeros((2, 0, 2), int)}, "out of range"),
    ({"codec_name": "caf\u00e9"}, "ASCII"),
    ({"codec_name": ""}, "1..255"),
    ({"fingerprint": b"short"}, "8 bytes"),
    ({"image_size": (0, 5)}, "out of range"),
    ({"codec_family": 1}, "family"),
])
def test_encode_refuses_bad_arguments(kwargs, match):
  args = {"symbols": np.zeros((2, 2, 2), int), "codec_name": "x", "fingerprint": FINGERPRINT,
          "image_size": (16, 16), "codec_family": 0, **kwargs}
  with pytest.raises(BitstreamError, match=match):
    bitstream.encode(args.pop("symbols"), _skewed_table(), **args)


# A file written by format version 1, committed as bytes: files already on disk must keep
# decoding, so any change to the layout, the end marker, the coding order or the tables' use
# fails here (bump FORMAT_VERSION instead).
VERSION_1_FILE = bytes.fromhex(
    "5446434901000d61652d302e303938332d63707501020304050607080000000d0000001300020003000406"
    "000000087e343ad7ab4711a728fffc76")
VERSION_1_SYMBOLS = [[[1, 0, 0, 0], [1, 2, 0, 1], [0, 3, 1, 0]],
                     [[2, 0, 1, 0], [2, 0, 0, 0], [0, 0, 1, 1]]]


def test_a_version_1_file_decodes_and_encodes_to_the_same_bytes():
  header, symbols = bitstream.decode(VERSION_1_FILE, _skewed_table())
  assert symbols.tolist() == VERSION_1_SYMBOLS
  assert (header.codec_name, header.image_size) == ("ae-0.0983-cpu", (13, 19))
  assert header.fingerprint == FINGERPRINT
  again = _encode(np.array(VERSION_1_SYMBOLS, np.int32), name="ae-0.0983-cpu",
                  image_size=(13, 19))
  assert again == VERSION_1_FILE


def test_information_content_bits_edges():
  table = _skewed_table()
  assert bitstream.information_content_bits(np.zeros((0,), int), table) == 0.0
  with pytest.raises(BitstreamError, match="symbols must lie in"):
    bitstream.information_content_bits(np.array([0, -1]), table)
  with pytest.raises(BitstreamError, match="symbols must lie in"):
    bitstream.information_content_bits(np.array([table.size]), table)


@pytest.mark.parametrize("table", [np.array([5, 0, 7]), np.array([9]),
                                   np.ones(bitstream.MAX_CENTERS + 1, int)])
def test_a_table_with_an_empty_entry_or_a_wrong_size_is_refused(table):
  # Either condition alone refuses the table.
  with pytest.raises(BitstreamError, match="entries, all >= 1"):
    bitstream.information_content_bits(np.zeros(2, int), table)


def test_a_codec_name_may_hold_any_printable_ascii_from_the_space_on():
  symbols = _symbols((1, 1, 2))
  for name in ("a b", "~x~", "n" * 255):
    assert bitstream.parse_header(_encode(symbols, name=name, image_size=(8, 8))).codec_name \
        == name


def test_a_one_pixel_wide_image_round_trips():
  symbols = _symbols((1, 1, 3))
  for size in ((1, 1), (7, 1), (1, 7)):
    header, back = bitstream.decode(_encode(symbols, image_size=size), _skewed_table())
    assert header.image_size == size
    np.testing.assert_array_equal(back, symbols)


@pytest.mark.parametrize("length", [0, 6, 7])
def test_a_payload_that_is_not_whole_32_bit_words_is_refused_by_the_header(small_file, length):
  # Forged consistently: the announced length, that many payload bytes, a valid checksum.
  at = 30 + small_file[6]  # the payload length field (see the byte table in bitstream.py)
  crc_at = at + 4
  forged = (small_file[:at] + struct.pack(">I", length) + small_file[crc_at:crc_at + 4] +
            bytes(range(length)))
  with pytest.raises(BitstreamError, match="whole number of 32-bit words"):
    bitstream.parse_header(_reseal(forged))


def _forged_header(image, latent, centers=6, payload=b"\0\0\0\1"):
  """A whole autoencoder file built field by field, with a valid checksum: what parse_header
  sees of any header, plausible or not (the payload is not decoded here)."""
  name = b"ae"
  head = (b"TFCI" + bytes([1, 0, len(name)]) + name + bitstream._FIXED.pack(
      FINGERPRINT, *image, *latent, centers, len(payload)))
  return head + struct.pack(">I", zlib.crc32(payload, zlib.crc32(head))) + payload


M = bitstream.MAX_IMAGE_SIDE


@pytest.mark.parametrize("image, latent, centers", [
    ((M, M), (1, 1, 1), 2),  # the largest image, the fewest centers
    ((1, 1), (1, 1, 1), bitstream.MAX_CENTERS),  # the smallest image, the most centers
    ((5, 7), (5, 7, 3), 6),  # a latent as large as its image
    ((4096, 1024), (4096, 1024, 64), 6),  # exactly MAX_SYMBOLS symbols
])
def test_headers_at_each_bound_are_accepted(image, latent, centers):
  header = bitstream.parse_header(_forged_header(image, latent, centers))
  assert (header.image_size, header.latent_shape, header.num_centers) == (image, latent, centers)
  assert header.num_symbols == np.prod(latent)


@pytest.mark.parametrize("image, latent, centers, match", [
    ((M + 1, 8), (1, 1, 1), 6, "image size"),
    ((8, M + 1), (1, 1, 1), 6, "image size"),
    ((0, 8), (1, 1, 1), 6, "image size"),
    ((8, 0), (1, 1, 1), 6, "image size"),
    ((5, 7), (6, 7, 3), 6, "latent shape"),  # one row more than the image
    ((5, 7), (5, 8, 3), 6, "latent shape"),
    ((5, 7), (0, 7, 3), 6, "latent shape"),
    ((5, 7), (5, 0, 3), 6, "latent shape"),
    ((5, 7), (5, 7, 0), 6, "latent shape"),
    ((4096, 1024), (4096, 1024, 65), 6, "latent shape"),  # MAX_SYMBOLS + 4096 x 1024
    ((5, 7), (1, 1, 1), 1, "centers"),
])
def test_headers_one_past_each_bound_are_refused(image, latent, centers, match):
  with pytest.raises(BitstreamError, match=match):
    bitstream.parse_header(_forged_header(image, latent, centers))


def test_encode_accepts_exactly_max_symbols_and_checks_the_values_next():
  # 2^28 symbols as a broadcast view (no memory): the shape passes, the out-of-range value is
  # what refuses it; one more channel row and the shape itself is refused.
  table = _skewed_table()
  args = {"codec_name": "x", "fingerprint": FINGERPRINT, "image_size": (8, 8)}
  at_limit = np.broadcast_to(np.int8(table.size), (4096, 1024, 64))
  with pytest.raises(BitstreamError, match="symbols must lie"):
    bitstream.encode(at_limit, table, **args)
  with pytest.raises(BitstreamError, match="out of range"):
    bitstream.encode(np.broadcast_to(np.int8(0), (4096, 1024, 65)), table, **args)
  with pytest.raises(BitstreamError, match="out of range"):
    bitstream.encode(np.broadcast_to(np.int8(0), (1, M + 1, 1)), table, **args)
  side = np.zeros((1, M, 1), np.int8)  # the longest latent side a header can hold
  assert bitstream.parse_header(bitstream.encode(side, table, codec_name="x",
                                                 fingerprint=FINGERPRINT,
                                                 image_size=(8, M))).latent_shape == (1, M, 1)


@pytest.mark.parametrize("size", [(M, 1), (1, M)])
def test_encode_accepts_the_largest_image_side(size):
  data = _encode(_symbols((1, 1, 2)), image_size=size)
  assert bitstream.parse_header(data).image_size == size


@pytest.mark.parametrize("size", [(M + 1, 1), (1, M + 1), (1, 0)])
def test_encode_refuses_an_image_side_past_the_bounds(size):
  with pytest.raises(BitstreamError, match="image size"):
    _encode(_symbols((1, 1, 2)), image_size=size)


def test_a_table_of_two_or_of_255_entries_is_accepted():
  # 255: the most centers the header's uint8 holds.
  for size in (2, 255):
    table = np.ones(size, np.int64)
    assert bitstream.information_content_bits(np.array([0, size - 1]), table) == \
        pytest.approx(2 * np.log2(size))


def test_a_codec_name_of_256_characters_is_refused():
  with pytest.raises(BitstreamError, match="1..255"):
    _encode(_symbols((1, 1, 2)), name="n" * 256, image_size=(8, 8))


def test_the_payload_size_bound_refuses_only_counts_no_payload_could_hold():
  # A header may announce at most (8 P + 64) / (0.99 * min_bits) symbols for a P-byte payload
  # (min_bits: the cheapest symbol's information). One count just inside the bound goes on to
  # decoding (which then finds the forgery); one just past it is refused before decoding.
  table = _skewed_table()
  data = _encode(_symbols((2, 3, 4)), image_size=(16, 24))
  payload = bitstream.parse_header(data).payload_length
  min_bits = -np.log2(table.max() / table.sum())
  limit = int((8 * payload + 64) / (0.99 * min_bits))
  fixed_at = 7 + data[6] + bitstream.FINGERPRINT_BYTES
  for count, match in ((limit, "does not decode|undecodable"), (limit + 1, "cannot hold")):
    forged = _reseal(data[:fixed_at + 8] + struct.pack(">HHH", 1, 1, count)
                     + data[fixed_at + 14:])
    with pytest.raises(BitstreamError, match=match):
      bitstream.decode(forged, table)


def _pow2_table():
  table = _skewed_table()  # sums to 65536 = 2^16
  assert table.sum() == 1 << 16
  return table


def test_a_version_2_file_round_trips_and_its_table_must_sum_to_a_power_of_two():
  symbols = _symbols((3, 4, 5), seed=3)
  data = bitstream.encode(symbols, _pow2_table(), codec_name="x", fingerprint=FINGERPRINT,
                          image_size=(24, 32), format_version=2)
  header, back = bitstream.decode(data, _pow2_table())
  assert header.version == 2
  np.testing.assert_array_equal(back, symbols)
  # The largest total rANS takes, 2^MAX_PRECISION, is accepted; one unit off a power of two, or
  # twice the largest, is refused.
  from tfcdi.codec import rans  # pylint: disable=g-import-not-at-top
  largest = np.array([1, (1 << rans.MAX_PRECISION) - 1])
  ok = bitstream.encode(np.zeros((1, 1, 2), int), largest, codec_name="x",
                        fingerprint=FINGERPRINT, image_size=(8, 8), format_version=2)
  np.testing.assert_array_equal(bitstream.decode(ok, largest)[1], np.zeros((1, 1, 2)))
  for bad in (np.array([1, 65534]), np.array([1, (2 << rans.MAX_PRECISION) - 1]),
              np.array([3, 3])):
    with pytest.raises(BitstreamError, match="power of two"):
      bitstream.encode(np.zeros((1, 1, 2), int), bad, codec_name="x", fingerprint=FINGERPRINT,
                       image_size=(8, 8), format_version=2)


def test_a_damaged_version_2_payload_is_refused_as_undecodable():
  data = bitstream.encode(_symbols((3, 4, 5), seed=4), _pow2_table(), codec_name="x",
                          fingerprint=FINGERPRINT, image_size=(24, 32), format_version=2)
  header = bitstream.parse_header(data)
  at = header.payload_offset
  damaged = _reseal(data[:at] + bytes(header.payload_length) + data[at + header.payload_length:])
  with pytest.raises(BitstreamError, match="undecodable .tfci payload"):
    bitstream.decode(damaged, _pow2_table())


def test_a_range_coder_failure_is_a_bitstream_error_and_an_interrupt_is_not():
  # Two all-ones words make constriction's range decoder fail (an AssertionError inside it).
  data = _encode(_symbols((1, 1, 2)), image_size=(8, 8))
  header = bitstream.parse_header(data)
  at = 30 + data[6]  # the payload length field
  forged = _reseal(data[:at] + struct.pack(">I", 8) + data[at + 4:at + 8] + b"\xff" * 8)
  with pytest.raises(BitstreamError, match="undecodable .tfci payload"):
    bitstream.decode(forged, _skewed_table())
  assert header.num_symbols == 2
  assert bitstream._is_coder_failure(AssertionError("x"))
  assert bitstream._is_coder_failure(ValueError("x"))
  for signal in (KeyboardInterrupt(), SystemExit(), GeneratorExit(), MemoryError()):
    assert not bitstream._is_coder_failure(signal)


def test_a_table_that_differs_by_a_few_units_is_refused_even_when_the_marker_decodes():
  # Decoding with a slightly different table reads the same symbols and a valid end marker,
  # but re-encoding them does not give the payload back: refused as another table's file.
  symbols = _symbols((8, 8, 4), seed=9)
  data = _encode(symbols, image_size=(64, 64))
  other = _skewed_table().copy()
  other[0] -= 3
  other[1] += 3
  with pytest.raises(BitstreamError, match="another frequency table"):
    bitstream.decode(data, other)


def test_a_payload_with_a_word_after_the_marker_is_refused():
  data = _encode(_symbols((2, 3, 4)), image_size=(16, 24))
  at = 30 + data[6]
  (length,) = struct.unpack(">I", data[at:at + 4])
  forged = _reseal(data[:at] + struct.pack(">I", length + 4) + data[at + 4:] + bytes(4))
  with pytest.raises(BitstreamError, match="does not decode to the announced"):
    bitstream.decode(forged, _skewed_table())


@pytest.mark.parametrize("table, match", [
    (np.ones((2, 3), int), "1-D integer array"),
    (np.ones(3, float), "1-D integer array"),
])
def test_a_table_of_the_wrong_rank_or_type_is_refused_for_that(table, match):
  with pytest.raises(BitstreamError, match=match):
    bitstream.information_content_bits(np.zeros(2, int), table)


@pytest.mark.parametrize("symbols", [np.zeros((2, 2), int), np.zeros((2, 2, 2), float)])
def test_symbols_of_the_wrong_rank_or_type_are_refused_for_that(symbols):
  with pytest.raises(BitstreamError, match=r"integer array \[h, w, C\]"):
    bitstream.encode(symbols, _skewed_table(), codec_name="x", fingerprint=FINGERPRINT,
                     image_size=(8, 8))


@pytest.mark.parametrize("name", ["a\tb", "a\nb", "x\x7f"])
def test_a_codec_name_with_a_control_character_is_refused(name):
  with pytest.raises(BitstreamError, match="printable"):
    _encode(_symbols((1, 1, 2)), name=name, image_size=(8, 8))


def test_encode_takes_the_codec_identity_by_keyword_only():
  # A positional name or fingerprint could land in the wrong field of the header.
  with pytest.raises(TypeError):
    bitstream.encode(_symbols((1, 1, 2)), _skewed_table(), "x", FINGERPRINT, (8, 8))


def test_family_byte_reads_the_family_not_the_version():
  assert bitstream.family_byte(_encode(_symbols((1, 1, 2)), image_size=(8, 8))) == 0
  data = bytearray(_encode(_symbols((1, 1, 2)), image_size=(8, 8)))
  data[5] = 3
  assert bitstream.family_byte(bytes(data)) == 3
  # The 7-byte prefix (magic, version, family, name length) alone is enough to read it.
  assert bitstream.family_byte(bytes(data[:7])) == 3
  with pytest.raises(BitstreamError, match=r"truncated .tfci file \(6 bytes\)"):
    bitstream.family_byte(bytes(data[:6]))


def test_a_factorized_file_is_refused_by_its_family_name():
  data = bytearray(_encode(_symbols((1, 1, 2)), image_size=(8, 8)))
  data[5] = bitstream.FAMILY_FACTORIZED
  assert bitstream.FAMILY_FACTORIZED == 2
  with pytest.raises(BitstreamError, match=r"a factorized file \(family 2\)"):
    bitstream.parse_header(_reseal(bytes(data)))


def test_codec_names_of_one_character_and_of_none():
  assert bitstream.parse_header(_encode(_symbols((1, 1, 2)), name="x",
                                        image_size=(8, 8))).codec_name == "x"
  data = _encode(_symbols((1, 1, 2)), name="x", image_size=(8, 8))
  empty = data[:6] + b"\0" + data[8:]  # name length 0, the name's byte dropped
  with pytest.raises(BitstreamError, match="empty codec name"):
    bitstream.parse_header(empty)


@pytest.mark.parametrize("byte, accepted", [(0x1F, False), (0x20, True), (0x7E, True),
                                            (0x7F, False), (0x80, False)])
def test_a_stored_name_must_be_printable_ascii_byte_by_byte(byte, accepted):
  data = bytearray(_encode(_symbols((1, 1, 2)), name="xyz", image_size=(8, 8)))
  data[8] = byte  # the name's middle character
  forged = _reseal(bytes(data))
  if accepted:
    assert bitstream.parse_header(forged).codec_name == f"x{chr(byte)}z"
  else:
    with pytest.raises(BitstreamError, match="not printable ASCII"):
      bitstream.parse_header(forged)


def test_trailing_bytes_are_counted_in_the_message(small_file):
  with pytest.raises(BitstreamError, match=r"\(3 unexpected bytes after the payload\)"):
    bitstream.parse_header(small_file + b"abc")
