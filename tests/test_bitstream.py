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
