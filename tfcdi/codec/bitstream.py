"""The .tfci file format: a small self-describing header plus range-coded symbols.

A .tfci file holds the quantized representation of one image, entropy coded with static integer
probability tables that live in the codec bundle, not in the file; the file names the codec
(name + fingerprint) so that a decoder can find it and refuse any other. Two codec families
share the container; the byte at offset 5 says which made the file, and the rest of the header
after the fingerprint is that family's:

- family 0, the autoencoder of Torfason et al.: the L-ary symbols of its quantizer, under one
  categorical frequency table (layout below);
- family 1, the scale hyperprior of Balle et al. 2018 ("bmshj2018"): two streams, the
  hyper-latent z and the latent y, each under tables picked per symbol (layout further below);
- family 2, the factorized prior (bmshj2018-factorized, imported): one stream, y under one table
  per channel (layout in factorized_bitstream.py, which parses and writes it);
- family 3, the mean-scale hyperprior (mbt2018-mean, imported): family 1's layout, byte 3; its
  y stream holds y - mean rounded (the means come, as the scale indices, from the integer
  hyper-synthesis of the decoded z; meanscale_codec.py).

This module is pure NumPy + constriction. It knows nothing of Keras: it turns a symbol array
into bytes and back, and checks that the bytes are a well-formed, uncorrupted file.

Layout of family 0, version 1 (n is the length of the codec name; header integers are big-endian):

  | offset | size | type        | field                                                     |
  | ------ | ---- | ----------- | --------------------------------------------------------- |
  | 0      | 4    | bytes       | magic b"TFCI"                                             |
  | 4      | 1    | uint8       | format version, 1                                         |
  | 5      | 1    | uint8       | codec family: 0 = autoencoder (Torfason et al.);          |
  |        |      |             | 1 = scale hyperprior (layout below)                       |
  | 6      | 1    | uint8       | n, length of the codec name (1..255)                      |
  | 7      | n    | ASCII       | codec name, e.g. "ae-0.635-cpu"                           |
  | 7+n    | 8    | bytes       | codec fingerprint (see pretrained.py)                     |
  | 15+n   | 4    | uint32      | image height, before padding to a multiple of 8           |
  | 19+n   | 4    | uint32      | image width, before padding                               |
  | 23+n   | 2    | uint16      | latent height h                                           |
  | 25+n   | 2    | uint16      | latent width w                                            |
  | 27+n   | 2    | uint16      | latent channels C                                         |
  | 29+n   | 1    | uint8       | number of quantization centers L                          |
  | 30+n   | 4    | uint32      | payload length P in bytes (a positive multiple of 4)      |
  | 34+n   | 4    | uint32      | CRC-32 (zlib.crc32) of bytes [0, 34+n) and the payload    |
  | 38+n   | P    | uint32 LE[] | payload: the range coder's words, each little-endian      |

The file ends exactly after the payload. The payload is constriction's queue RangeEncoder
output for the h*w*C symbols in C order (row-major over h, w, C), all under one
`Categorical(frequencies, perfect=False)` model, followed by a 16-bit end marker (the value
END_MARKER = 0x5A17 under a uniform model over 2^16 values).

The checksum covers everything but itself, so truncation and any flipped byte, in the header or
in the payload, are caught before decoding starts. A range decoder, though, reads any bit
pattern as *some* symbols, so decoding checks two more things: the end marker follows the
announced number of symbols (a header that claims more symbols than were coded would otherwise
decode "successfully", from the coder's final padding), and re-encoding the decoded symbols
gives back the payload word for word (which a file coded with another table, in practice,
never does).

Layout of families 1 (hyperprior) and 3 (mean-scale hyperprior), version 1. Bytes [0, 15+n)
are as above (magic, version, family = 1 or 3, name length, name, fingerprint); then:

  | offset | size | type        | field                                                     |
  | ------ | ---- | ----------- | --------------------------------------------------------- |
  | 15+n   | 4    | uint32      | image height, before padding to a multiple of 16          |
  | 19+n   | 4    | uint32      | image width, before padding                               |
  | 23+n   | 2    | uint16      | latent y: height hy                                       |
  | 25+n   | 2    | uint16      | latent y: width wy                                        |
  | 27+n   | 2    | uint16      | latent y: channels M                                      |
  | 29+n   | 2    | uint16      | hyper-latent z: height hz                                 |
  | 31+n   | 2    | uint16      | hyper-latent z: width wz                                  |
  | 33+n   | 2    | uint16      | hyper-latent z: channels N                                |
  | 35+n   | 4    | uint32      | z payload length Pz in bytes (a positive multiple of 4)   |
  | 39+n   | 4    | uint32      | y payload length Py in bytes (a positive multiple of 4)   |
  | 43+n   | 4    | uint32      | CRC-32 (zlib.crc32) of bytes [0, 43+n) and both payloads  |
  | 47+n   | Pz   | uint32 LE[] | z payload                                                 |
  | 47+n+Pz| Py   | uint32 LE[] | y payload                                                 |

The file ends exactly after the y payload. Each payload is one constriction queue RangeEncoder
stream of integer symbols, each coded under one of a set of integer tables (`Tables`): a table
t covers the values offsets[t] .. offsets[t] + lengths[t] - 2, and its last entry is an escape.
Every table sums to TABLE_TOTAL = 2^20 and has no zero entry. Which table codes which symbol:

- z stream: table c for every symbol of channel c (the codec's factorized density, one table
  per channel);
- y stream: table k for every symbol whose scale index is k. The decoder computes the scale
  indices from the decoded z (the codec's integer hyper-synthesis), never from the file.

Order within a stream: the symbols grouped by table, tables in increasing order, and within a
table in C order of the latent (row-major over height, width, channel). Then, for every symbol
that was coded as an escape, in the same order: one bit (Uniform(2)) that is 1 if the value lies
below the table's range, the number of bits k of (excess + 1) minus one (Uniform(ESCAPE_BITS)),
and if k > 0 the k low bits of (excess + 1) (Uniform(2^k)), where excess >= 0 is the distance
from the value to the nearest end of the range, minus one. Then the end marker (as for family
0). The decoder checks the marker, that the coder is exhausted, and that re-encoding the decoded
symbols gives the payload back word for word.

Version 2 (both families). The header is the version-1 header of the family, byte for byte,
with 2 in the version byte; each payload (the autoencoder's one, the hyperprior's z and y) is
instead a stream of interleaved rANS lanes (rans.py, where its layout is written down), and its
length need not be a multiple of 4. The symbols are coded in C order of their latent (y too: not
grouped by table), symbol i under the same table as in version 1 (the autoencoder's one table;
z: its channel's; y: its scale index's), with the same integer tables. The end marker is gone:
the lanes' final states play its part. Version 2 decodes in lockstep with stock TensorFlow ops
(graph_decode.py: what a SavedModel serving .tfci files runs); version 1 needs constriction.
Readers read both; writers write DEFAULT_FORMAT_VERSION unless told otherwise.

Every problem with a file raises BitstreamError (a ValueError) with a one-line message.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

import constriction
import numpy as np

from tfcdi.codec import rans
from tfcdi.codec.errors import BitstreamError  # pylint: disable=unused-import  (its home here)
# The hyperprior's integer tables (tables.py), under the names they have always had here.
from tfcdi.codec.tables import MAX_TABLE_LENGTH  # pylint: disable=unused-import
from tfcdi.codec.tables import TABLE_PRECISION
from tfcdi.codec.tables import TABLE_TOTAL  # pylint: disable=unused-import
from tfcdi.codec.tables import Tables
from tfcdi.codec.tables import make_tables  # pylint: disable=unused-import
from tfcdi.codec.tables import quantize_pmf  # pylint: disable=unused-import

MAGIC = b"TFCI"
FORMAT_VERSION = 1  # the range-coded layout
RANS_VERSION = 2  # the interleaved-rANS layout (rans.py)
SUPPORTED_VERSIONS = (FORMAT_VERSION, RANS_VERSION)
# What encode and encode_hyperprior write unless told (see BUILD_NOTES: the measured overhead).
DEFAULT_FORMAT_VERSION = FORMAT_VERSION
FAMILY_AUTOENCODER = 0
FAMILY_HYPERPRIOR = 1
FAMILY_FACTORIZED = 2  # its own layout: factorized_bitstream.py
FAMILY_MEANSCALE = 3  # family 1's layout
# The families whose headers parse_header reads (family 2's module parses its own).
SUPPORTED_FAMILIES = (FAMILY_AUTOENCODER, FAMILY_HYPERPRIOR, FAMILY_MEANSCALE)
_TWO_STREAM_FAMILIES = (FAMILY_HYPERPRIOR, FAMILY_MEANSCALE)
FAMILY_NAMES = {FAMILY_AUTOENCODER: "autoencoder", FAMILY_HYPERPRIOR: "hyperprior",
                FAMILY_FACTORIZED: "factorized", FAMILY_MEANSCALE: "meanscale"}

FINGERPRINT_BYTES = 8
# The largest image side we accept. It bounds the memory a hostile header can make us allocate.
MAX_IMAGE_SIDE = 65535
MAX_LATENT_SIDE = 65535  # a uint16
MAX_CENTERS = 255  # a uint8
# An upper bound on h * w * C (1 GiB of int32 symbols); far above any real image.
MAX_SYMBOLS = 1 << 28
# Coded after the symbols; costs 16 bits per file.
END_MARKER = 0x5A17
_MARKER_VALUES = 1 << 16

# Everything between the name and the checksum: fingerprint, H, W, h, w, C, L, P.
_FIXED = struct.Struct(f">{FINGERPRINT_BYTES}sIIHHHBI")
_CRC = struct.Struct(">I")
_PREFIX_BYTES = len(MAGIC) + 3  # magic, version, family, name length


def _unpack_checked(data, fixed_at: int, fixed: struct.Struct, payload_bytes) -> tuple:
  """(fields, payload offset): the fixed header fields after the codec name, once the file's
  length matches what they announce (`payload_bytes(fields)`) and its checksum matches.

  Both families end their header with these fields and a CRC-32 of everything but itself.
  """
  payload_offset = fixed_at + fixed.size + _CRC.size
  if len(data) < payload_offset:
    raise BitstreamError(f"truncated .tfci file ({len(data)} bytes, the header alone needs "
                         f"{payload_offset})")
  fields = fixed.unpack(data[fixed_at:fixed_at + fixed.size])
  end = payload_offset + payload_bytes(fields)
  if len(data) < end:
    raise BitstreamError(f"truncated .tfci file ({len(data)} bytes, its header announces {end})")
  if len(data) > end:
    raise BitstreamError(f"corrupted .tfci file ({len(data) - end} unexpected bytes after the "
                         "payload)")
  (stored_crc,) = _CRC.unpack(data[fixed_at + fixed.size:payload_offset])
  # Checked before any field is trusted: a flipped bit anywhere reads as "corrupted", not as
  # whatever odd value it happens to produce.
  crc = zlib.crc32(data[payload_offset:], zlib.crc32(data[:fixed_at + fixed.size]))
  if crc != stored_crc:
    raise BitstreamError("corrupted .tfci file (checksum mismatch)")
  return fields, payload_offset


@dataclasses.dataclass(frozen=True)
class HeaderFields:
  """What every family's header starts with (each family's header class adds its shapes)."""

  codec_family: int
  codec_name: str
  fingerprint: bytes
  image_size: tuple  # (height, width) of the original image


@dataclasses.dataclass(frozen=True)
class Header(HeaderFields):
  """The parsed header of a .tfci file."""

  latent_shape: tuple  # (h, w, C)
  num_centers: int  # L
  payload_offset: int  # where the payload starts in the file
  payload_length: int  # P
  version: int

  @property
  def num_symbols(self) -> int:
    h, w, c = self.latent_shape
    return h * w * c


def _check_frequencies(frequencies) -> np.ndarray:
  table = np.asarray(frequencies)
  if table.ndim != 1 or not np.issubdtype(table.dtype, np.integer):
    raise BitstreamError(f"the frequency table must be a 1-D integer array, got {table!r}")
  if not 2 <= table.size <= MAX_CENTERS or np.any(table < 1):
    raise BitstreamError(
        f"the frequency table needs 2..{MAX_CENTERS} entries, all >= 1, got {table.tolist()}")
  return table.astype(np.int64)


def _entropy_model(table: np.ndarray):
  # The integers, exactly, as floats: the model constriction quantizes from them is then the same
  # on every machine. perfect=False is constriction's fast, version-stable quantization.
  return constriction.stream.model.Categorical(table.astype(np.float64), perfect=False)


def _marker_model():
  return constriction.stream.model.Uniform(_MARKER_VALUES)


def _range_encode(flat_symbols: np.ndarray, table: np.ndarray) -> np.ndarray:
  """The payload's words: the symbols, then the end marker."""
  encoder = constriction.stream.queue.RangeEncoder()
  encoder.encode(flat_symbols, _entropy_model(table))
  encoder.encode(END_MARKER, _marker_model())
  return encoder.get_compressed()


def information_content_bits(symbols, frequencies) -> float:
  """-sum log2(f[s] / total): the ideal code length of `symbols` under the table, in bits.

  This is an estimate of the payload size; the file spends a little more: the 16-bit end
  marker, the coder's final flush (up to a couple of 32-bit words) and fixed-point rounding.
  """
  table = _check_frequencies(frequencies)
  flat = np.asarray(symbols).reshape(-1)
  if flat.size == 0:
    return 0.0
  if flat.min() < 0 or flat.max() >= table.size:
    raise BitstreamError(f"symbols must lie in [0, {table.size})")
  counts = np.bincount(flat, minlength=table.size)
  bits_per_symbol = -np.log2(table / table.sum())
  return float(np.dot(counts, bits_per_symbol))


def _is_coder_failure(error: BaseException) -> bool:
  """Whether an exception out of constriction means "these bytes do not decode"."""
  return not isinstance(error, (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError))


def _check_name(codec_name: str) -> bytes:
  try:
    raw = codec_name.encode("ascii")
  except (UnicodeEncodeError, AttributeError):
    raise BitstreamError(f"the codec name must be ASCII, got {codec_name!r}") from None
  if not 1 <= len(raw) <= 255 or not raw.isascii() or not codec_name.isprintable():
    raise BitstreamError(f"the codec name must be 1..255 printable characters: {codec_name!r}")
  return raw


def encode(symbols, frequencies, *, codec_name: str, fingerprint: bytes, image_size,
           codec_family: int = FAMILY_AUTOENCODER, format_version: int | None = None,
           lanes: int | None = None) -> bytes:
  """Writes a complete .tfci file.

  Args:
    symbols: integer array [h, w, C], every value in [0, L).
    frequencies: the codec's integer frequency table [L]; every entry >= 1.
    codec_name: ASCII name of the codec, stored so a decoder can find it.
    fingerprint: the codec's 8-byte fingerprint.
    image_size: (height, width) of the original image, before any padding.
    codec_family: FAMILY_AUTOENCODER.
    format_version: 1 (range coder) or 2 (interleaved rANS); None: DEFAULT_FORMAT_VERSION.
    lanes: version 2's lane count; None: rans.choose_lanes.

  Returns:
    The file's bytes.
  """
  table = _check_frequencies(frequencies)
  symbols = np.asarray(symbols)
  if symbols.ndim != 3 or not np.issubdtype(symbols.dtype, np.integer):
    raise BitstreamError(f"symbols must be an integer array [h, w, C], got {symbols.dtype} "
                         f"{symbols.shape}")
  if not all(1 <= d <= MAX_LATENT_SIDE for d in symbols.shape) or symbols.size > MAX_SYMBOLS:
    raise BitstreamError(f"latent shape {symbols.shape} is out of range")
  if symbols.min() < 0 or symbols.max() >= table.size:
    raise BitstreamError(f"symbols must lie in [0, {table.size}), got [{symbols.min()}, "
                         f"{symbols.max()}]")
  if codec_family != FAMILY_AUTOENCODER:
    raise BitstreamError(f"encode writes autoencoder (family 0) files, not family {codec_family}"
                         "; hyperprior files are written by encode_hyperprior")
  name = _check_name(codec_name)
  fingerprint = bytes(fingerprint)
  if len(fingerprint) != FINGERPRINT_BYTES:
    raise BitstreamError(f"the fingerprint must be {FINGERPRINT_BYTES} bytes, got "
                         f"{len(fingerprint)}")
  height, width = (int(s) for s in image_size)
  if not (1 <= height <= MAX_IMAGE_SIDE and 1 <= width <= MAX_IMAGE_SIDE):
    raise BitstreamError(f"image size {height}x{width} is out of range (1..{MAX_IMAGE_SIDE} "
                         "pixels per side)")

  version = _writer_version(format_version)
  if version == RANS_VERSION:
    flat = symbols.astype(np.int64).reshape(-1)
    payload = _rans(rans.encode_stream, flat, np.zeros_like(flat), _single_table(table), lanes)
  else:
    words = _range_encode(symbols.astype(np.int32).reshape(-1), table)
    # Explicitly little-endian, whatever the machine's byte order.
    payload = words.astype("<u4").tobytes()
  head = (MAGIC + bytes([version, codec_family, len(name)]) + name + _FIXED.pack(
      fingerprint, height, width, *symbols.shape, table.size, len(payload)))
  checksum = zlib.crc32(payload, zlib.crc32(head))
  return head + _CRC.pack(checksum) + payload


def _writer_version(format_version) -> int:
  version = DEFAULT_FORMAT_VERSION if format_version is None else int(format_version)
  if version not in SUPPORTED_VERSIONS:
    raise BitstreamError(f"unknown .tfci format version {format_version} (choose "
                         f"{' or '.join(map(str, SUPPORTED_VERSIONS))})")
  return version


def _single_table(table: np.ndarray) -> rans.StreamTables:
  """The autoencoder's table as version 2 codes it: its total is a power of two."""
  total = int(table.sum())
  if total & (total - 1) or total > 1 << rans.MAX_PRECISION:
    raise BitstreamError(f"format version 2 needs a table summing to a power of two up to "
                         f"2^{rans.MAX_PRECISION}, not {total}")
  return rans.single_table(table, total.bit_length() - 1)


def _rans(function, *args):
  """A rans.py function, its errors as BitstreamError."""
  try:
    return function(*args)
  except rans.RansError as e:
    raise BitstreamError(f"undecodable .tfci payload ({e})" if function is rans.decode_stream
                         else str(e)) from None


def family_byte(data) -> int:
  """The family byte of a .tfci file, once its magic and version are checked; whether any
  family reads it is the registry's business (codec/registry.py)."""
  data = memoryview(data).cast("B")
  _check_magic_and_version(data)
  return data[5]


def _check_magic_and_version(data) -> None:
  if len(data) == 0:
    raise BitstreamError("empty file, not a .tfci file")
  if bytes(data[:len(MAGIC)]) != MAGIC[:len(data)]:
    raise BitstreamError("not a .tfci file (it does not start with the bytes TFCI)")
  if len(data) < _PREFIX_BYTES:
    raise BitstreamError(f"truncated .tfci file ({len(data)} bytes)")
  version = data[4]
  if version not in SUPPORTED_VERSIONS:
    raise BitstreamError(f"unsupported .tfci format version {version} (this tfcdi reads "
                         f"versions {', '.join(map(str, SUPPORTED_VERSIONS))})")


def _parse_prefix(data) -> tuple:
  """(version, family, name length) of the bytes common to every family, checked."""
  _check_magic_and_version(data)
  version, family, name_length = data[4], data[5], data[6]
  if family not in SUPPORTED_FAMILIES:
    if family in FAMILY_NAMES:  # a family whose module parses its own layout
      raise BitstreamError(f"a {FAMILY_NAMES[family]} file (family {family}); read it with a "
                           "codec of that family")
    raise BitstreamError(f"unsupported codec family {family} (this tfcdi reads "
                         f"{', '.join(f'{k} ({v})' for k, v in FAMILY_NAMES.items())})")
  if name_length == 0:
    raise BitstreamError("corrupted .tfci header (empty codec name)")
  return version, family, name_length


def _check_name_bytes(name: bytes) -> str:
  if not all(0x20 <= b < 0x7F for b in name):
    raise BitstreamError("corrupted .tfci header (codec name is not printable ASCII)")
  return name.decode("ascii")


def parse_header(data: bytes):
  """Parses and validates a .tfci file's header, and checks the payload against the checksum.

  Returns:
    A Header (family 0, autoencoder) or a HyperpriorHeader (family 1); both have
    `codec_family`, `codec_name`, `fingerprint` and `image_size`.

  Raises:
    BitstreamError: the data is not a complete, uncorrupted version-1 .tfci file.
  """
  data = memoryview(data).cast("B")
  _, family, _ = _parse_prefix(data)
  if family in _TWO_STREAM_FAMILIES:
    return _parse_hyperprior_header(data)
  return _parse_autoencoder_header(data)


def _parse_autoencoder_header(data) -> Header:
  version, family, name_length = _parse_prefix(data)
  fixed_at = _PREFIX_BYTES + name_length
  (fingerprint, height, width, h, w, c, num_centers, payload_length), payload_offset = (
      _unpack_checked(data, fixed_at, _FIXED, lambda fields: fields[-1]))

  name = _check_name_bytes(bytes(data[_PREFIX_BYTES:fixed_at]))
  if not (1 <= height <= MAX_IMAGE_SIDE and 1 <= width <= MAX_IMAGE_SIDE):
    raise BitstreamError(f"unsupported image size {height}x{width} (1..{MAX_IMAGE_SIDE} pixels "
                         "per side)")
  # The latent is a downsampled image; one larger than the image, or empty, is no real file.
  if not (1 <= h <= height and 1 <= w <= width and c >= 1) or h * w * c > MAX_SYMBOLS:
    raise BitstreamError(f"implausible latent shape {h}x{w}x{c} for a {height}x{width} image")
  if num_centers < 2:
    raise BitstreamError(f"implausible number of centers {num_centers}")
  if payload_length == 0 or (version == FORMAT_VERSION and payload_length % 4):
    raise BitstreamError(f"corrupted .tfci file (payload of {payload_length} bytes is not a "
                         "whole number of 32-bit words)")
  return Header(codec_family=family, codec_name=name, fingerprint=fingerprint,
                image_size=(height, width), latent_shape=(h, w, c), num_centers=num_centers,
                payload_offset=payload_offset, payload_length=payload_length, version=version)


def decode_symbols(data: bytes, header: Header, frequencies) -> np.ndarray:
  """Decodes the payload of a file whose header `parse_header` returned.

  Returns:
    int32 symbols [h, w, C].

  Raises:
    BitstreamError: the table does not fit the file, or the payload is not what encoding the
      decoded symbols with this table gives (a file made with another table, or tampered with).
  """
  if not isinstance(header, Header):
    raise BitstreamError(f"a {FAMILY_NAMES.get(header.codec_family, 'foreign')} file has no "
                         "autoencoder symbols; decode it with its own family's reader")
  table = _check_frequencies(frequencies)
  if table.size != header.num_centers:
    raise BitstreamError(f"the file uses {header.num_centers} centers; the frequency table has "
                         f"{table.size}")
  # Every symbol costs at least the information of the most likely one. A header announcing
  # more symbols than the payload can hold is refused before any memory is allocated for them
  # (the 1% and 64 bits leave room for the coder's fixed-point rounding).
  min_bits = -np.log2(table.max() / table.sum())
  if 0.99 * min_bits * header.num_symbols > 8 * header.payload_length + 64:
    raise BitstreamError(f"a {header.payload_length}-byte payload cannot hold the announced "
                         f"{header.num_symbols} symbols")
  if header.version == RANS_VERSION:
    payload = bytes(memoryview(data)[header.payload_offset:
                                     header.payload_offset + header.payload_length])
    flat = _rans(rans.decode_stream, payload, np.zeros(header.num_symbols, np.int64),
                 _single_table(table))
    return flat.astype(np.int32).reshape(header.latent_shape)
  payload = memoryview(data)[header.payload_offset:header.payload_offset + header.payload_length]
  words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
  decoder = constriction.stream.queue.RangeDecoder(words)
  try:
    flat = decoder.decode(_entropy_model(table), header.num_symbols)
    marker = decoder.decode(_marker_model())
  except BaseException as e:  # pylint: disable=broad-except
    # constriction reports undecodable data as AssertionError, among others, and a failed
    # assertion in its Rust core as a PanicException (a BaseException).
    if not _is_coder_failure(e):
      raise
    raise BitstreamError(f"undecodable .tfci payload ({e})") from None
  consistent = (marker == END_MARKER and decoder.maybe_exhausted()
                and np.array_equal(_range_encode(flat, table), words))
  if not consistent:
    raise BitstreamError(f"the payload does not decode to the announced {header.num_symbols} "
                         "symbols (a forged file, or one coded with another frequency table)")
  return flat.astype(np.int32).reshape(header.latent_shape)


def decode(data: bytes, frequencies) -> tuple[Header, np.ndarray]:
  """parse_header + decode_symbols: a file's header and its int32 symbols [h, w, C]."""
  header = parse_header(data)
  return header, decode_symbols(data, header, frequencies)


# --- family 1: the scale hyperprior ------------------------------------------------------------

# An escaped value is at most 2^ESCAPE_BITS - 1 past its table's range.
ESCAPE_BITS = 20
# y and z need at least one symbol each; shapes are uint16 in the header.
_HYPER_FIXED = struct.Struct(f">{FINGERPRINT_BYTES}sIIHHHHHHII")


def _escape_parts(value: int, low: int, high: int):
  """(below, k, low bits) of a value outside [low, high]; see the module docstring."""
  below = value < low
  excess = (low - 1 - value) if below else (value - high - 1)
  x = excess + 1
  k = x.bit_length() - 1
  if k >= ESCAPE_BITS:
    raise BitstreamError(f"value {value} is too far outside its table's range [{low}, {high}] "
                         "to be coded")
  return int(below), k, x - (1 << k)


def _grouped(table_of: np.ndarray, num_tables: int):
  """The positions of each table's symbols, tables in order, C order within a table."""
  # One pass per table, not one argsort of them all: only one table's positions are held at a
  # time (an argsort of a large image's y is 8 bytes per symbol, twice over while it sorts).
  counts = np.bincount(table_of, minlength=num_tables)
  for t in np.flatnonzero(counts):
    yield int(t), np.flatnonzero(table_of == t)


def _encode_stream(values: np.ndarray, table_of: np.ndarray, tables: Tables) -> np.ndarray:
  """One payload's words: `values` (flat int64), each under table table_of[i]; see docstring."""
  encoder = constriction.stream.queue.RangeEncoder()
  escapes = []
  for t, positions in _grouped(table_of, tables.num_tables):
    symbols = values[positions] - tables.offsets[t]
    escape = int(tables.lengths[t]) - 1
    outside = (symbols < 0) | (symbols >= escape)
    encoder.encode(np.where(outside, escape, symbols).astype(np.int32), tables.model(t))
    low, high = int(tables.offsets[t]), int(tables.offsets[t]) + escape - 1
    escapes.extend(_escape_parts(int(v), low, high) for v in values[positions][outside])
  for below, k, bits in escapes:
    encoder.encode(below, _BIT)
    encoder.encode(k, _ESCAPE_LENGTH)
    if k:
      encoder.encode(bits, constriction.stream.model.Uniform(1 << k))
  encoder.encode(END_MARKER, _marker_model())
  return encoder.get_compressed()


_BIT = constriction.stream.model.Uniform(2)
_ESCAPE_LENGTH = constriction.stream.model.Uniform(ESCAPE_BITS)


def _decode_stream(words: np.ndarray, table_of: np.ndarray, tables: Tables) -> np.ndarray:
  """Inverse of _encode_stream: the flat int64 values, checked (see the module docstring)."""
  values = np.empty(table_of.size, np.int64)
  decoder = constriction.stream.queue.RangeDecoder(words)
  try:
    escaped = []
    for t, positions in _grouped(table_of, tables.num_tables):
      symbols = decoder.decode(tables.model(t), positions.size).astype(np.int64)
      escape = int(tables.lengths[t]) - 1
      values[positions] = symbols + tables.offsets[t]
      escaped.extend((int(p), t) for p in positions[symbols == escape])
    for position, t in escaped:
      below = int(decoder.decode(_BIT))
      k = int(decoder.decode(_ESCAPE_LENGTH))
      bits = int(decoder.decode(constriction.stream.model.Uniform(1 << k))) if k else 0
      excess = (1 << k) + bits - 1
      low = int(tables.offsets[t])
      high = low + int(tables.lengths[t]) - 2
      values[position] = low - 1 - excess if below else high + 1 + excess
    marker = decoder.decode(_marker_model())
    exhausted = decoder.maybe_exhausted()
  except BaseException as e:  # pylint: disable=broad-except
    if not _is_coder_failure(e):
      raise
    raise BitstreamError(f"undecodable .tfci payload ({e})") from None
  if marker != END_MARKER or not exhausted:
    raise BitstreamError(f"the payload does not decode to the announced {table_of.size} "
                         "symbols (a damaged or forged file, or other tables)")
  if not np.array_equal(_encode_stream(values, table_of, tables), words):
    raise BitstreamError("the payload is not what its decoded symbols encode to (a forged "
                         "file, or one coded with other tables)")
  return values


def stream_information_bits(values, table_indices, tables: Tables) -> float:
  """The ideal code length of `values` (each under tables[table_indices]), in bits.

  -log2(f / TABLE_TOTAL) per symbol, plus for each escape the bits of its escape code. The
  payload spends a little more: the 16-bit end marker, the coder's final flush (up to a couple
  of 32-bit words) and constriction's fixed-point rounding of the tables.
  """
  values = np.asarray(values, np.int64).reshape(-1)
  table_of = np.asarray(table_indices, np.int64).reshape(-1)
  bits = 0.0
  for t, positions in _grouped(table_of, tables.num_tables):
    symbols = values[positions] - tables.offsets[t]
    escape = int(tables.lengths[t]) - 1
    outside = (symbols < 0) | (symbols >= escape)
    freqs = tables.table(t)[np.where(outside, escape, symbols)]
    bits += float(-np.log2(freqs / TABLE_TOTAL).sum())
    low, high = int(tables.offsets[t]), int(tables.offsets[t]) + escape - 1
    for v in values[positions][outside]:
      _, k, _ = _escape_parts(int(v), low, high)
      bits += 1 + np.log2(ESCAPE_BITS) + k
  return bits


@dataclasses.dataclass(frozen=True)
class HyperpriorHeader(HeaderFields):
  """The parsed header of a hyperprior (family 1) .tfci file."""

  y_shape: tuple  # (hy, wy, M)
  z_shape: tuple  # (hz, wz, N)
  z_offset: int  # where the z payload starts in the file
  z_length: int  # Pz
  y_length: int  # Py
  version: int

  @property
  def y_offset(self) -> int:
    return self.z_offset + self.z_length

  @property
  def latent_shape(self) -> tuple:
    """The shape of y, the representation the compressed-domain nets read."""
    return self.y_shape

  @property
  def payload_length(self) -> int:
    """Both payloads' bytes."""
    return self.z_length + self.y_length


def _check_integer_array(name: str, arr, ndim: int) -> np.ndarray:
  arr = np.asarray(arr)
  if arr.ndim != ndim or not np.issubdtype(arr.dtype, np.integer):
    raise BitstreamError(f"{name} must be a {ndim}-D integer array, got {arr.dtype} {arr.shape}")
  return arr


def _check_hyper_shapes(image_size, y_shape, z_shape) -> None:
  """The shape rules parse_header enforces; encode_hyperprior checks them too."""
  height, width = image_size
  hy, wy, m = y_shape
  hz, wz, n = z_shape
  if not (1 <= height <= MAX_IMAGE_SIDE and 1 <= width <= MAX_IMAGE_SIDE):
    raise BitstreamError(f"unsupported image size {height}x{width} (1..{MAX_IMAGE_SIDE} pixels "
                         "per side)")
  # Both latents are downsampled images: no larger than what they code, never empty.
  if not (1 <= hy <= height and 1 <= wy <= width and 1 <= m <= MAX_LATENT_SIDE
          and hy * wy * m <= MAX_SYMBOLS):
    raise BitstreamError(f"implausible latent shape {hy}x{wy}x{m} for a {height}x{width} image")
  if not (1 <= hz <= hy and 1 <= wz <= wy and 1 <= n <= MAX_LATENT_SIDE
          and hz * wz * n <= MAX_SYMBOLS):
    raise BitstreamError(f"implausible hyper-latent shape {hz}x{wz}x{n} for a {hy}x{wy} latent")


def _check_table_indices(indices, shape, num_tables: int, what: str) -> np.ndarray:
  indices = _check_integer_array(f"the {what} table indices", indices, 3)
  if tuple(indices.shape) != tuple(shape):
    raise BitstreamError(f"{what} table indices of shape {indices.shape} for {what} of shape "
                         f"{tuple(shape)}")
  if indices.min() < 0 or indices.max() >= num_tables:
    raise BitstreamError(f"{what} table indices must lie in [0, {num_tables})")
  # int32 holds any table index, at half the memory of a large image's int64 copy.
  return indices.astype(np.int32).reshape(-1)


def _z_table_of(z_shape) -> np.ndarray:
  hz, wz, n = z_shape
  return np.broadcast_to(np.arange(n, dtype=np.int64), (hz, wz, n)).reshape(-1)


def encode_hyperprior(y, y_indices, y_tables: Tables, z, z_tables: Tables, *, codec_name: str,
                      fingerprint: bytes, image_size, format_version: int | None = None,
                      lanes: tuple | None = None,
                      codec_family: int = FAMILY_HYPERPRIOR) -> bytes:
  """Writes a complete hyperprior (family 1) .tfci file, or one of family 3 (same layout).

  Args:
    y: integer array [hy, wy, M], the rounded latent.
    y_indices: integer array [hy, wy, M], the table of each y symbol (its scale index).
    y_tables: the codec's y tables (one per scale index).
    z: integer array [hz, wz, N], the rounded hyper-latent.
    z_tables: the codec's z tables (one per channel, N of them).
    codec_name: ASCII name of the codec, stored so a decoder can find it.
    fingerprint: the codec's 8-byte fingerprint.
    image_size: (height, width) of the original image, before any padding.
    format_version: 1 (range coder) or 2 (interleaved rANS); None: DEFAULT_FORMAT_VERSION.
    lanes: version 2's lane counts (z, y); None: rans.choose_lanes for each.
    codec_family: FAMILY_HYPERPRIOR or FAMILY_MEANSCALE (whose y holds y - mean rounded).

  Returns:
    The file's bytes.
  """
  if codec_family not in _TWO_STREAM_FAMILIES:
    raise BitstreamError(f"family {codec_family} files do not have the two-stream layout")
  y = _check_integer_array("y", y, 3)
  z = _check_integer_array("z", z, 3)
  height, width = (int(s) for s in image_size)
  _check_hyper_shapes((height, width), y.shape, z.shape)
  if z_tables.num_tables != z.shape[-1]:
    raise BitstreamError(f"{z_tables.num_tables} z tables for {z.shape[-1]} z channels")
  y_table_of = _check_table_indices(y_indices, y.shape, y_tables.num_tables, "y")
  name = _check_name(codec_name)
  fingerprint = bytes(fingerprint)
  if len(fingerprint) != FINGERPRINT_BYTES:
    raise BitstreamError(f"the fingerprint must be {FINGERPRINT_BYTES} bytes, got "
                         f"{len(fingerprint)}")
  version = _writer_version(format_version)
  if version == RANS_VERSION:
    z_lanes, y_lanes = lanes or (None, None)
    z_payload = _rans(rans.encode_stream, z.astype(np.int64).reshape(-1), _z_table_of(z.shape),
                      stream_tables(z_tables), z_lanes)
    y_payload = _rans(rans.encode_stream, y.astype(np.int64).reshape(-1), y_table_of,
                      stream_tables(y_tables), y_lanes)
  else:
    z_words = _encode_stream(z.astype(np.int64).reshape(-1), _z_table_of(z.shape), z_tables)
    y_words = _encode_stream(y.astype(np.int64).reshape(-1), y_table_of, y_tables)
    z_payload = z_words.astype("<u4").tobytes()
    y_payload = y_words.astype("<u4").tobytes()
  head = (MAGIC + bytes([version, codec_family, len(name)]) + name
          + _HYPER_FIXED.pack(fingerprint, height, width, *y.shape, *z.shape, len(z_payload),
                              len(y_payload)))
  checksum = zlib.crc32(y_payload, zlib.crc32(z_payload, zlib.crc32(head)))
  return head + _CRC.pack(checksum) + z_payload + y_payload


def _parse_hyperprior_header(data) -> HyperpriorHeader:
  version, family, name_length = _parse_prefix(data)
  fixed_at = _PREFIX_BYTES + name_length
  (fingerprint, height, width, hy, wy, m, hz, wz, n, z_length, y_length), z_offset = (
      _unpack_checked(data, fixed_at, _HYPER_FIXED, lambda fields: fields[-2] + fields[-1]))
  name = _check_name_bytes(bytes(data[_PREFIX_BYTES:fixed_at]))
  _check_hyper_shapes((height, width), (hy, wy, m), (hz, wz, n))
  for what, length in (("z", z_length), ("y", y_length)):
    if length == 0 or (version == FORMAT_VERSION and length % 4):
      raise BitstreamError(f"corrupted .tfci file ({what} payload of {length} bytes is not a "
                           "whole number of 32-bit words)")
  return HyperpriorHeader(codec_family=family, codec_name=name, fingerprint=fingerprint,
                          image_size=(height, width), y_shape=(hy, wy, m), z_shape=(hz, wz, n),
                          z_offset=z_offset, z_length=z_length, y_length=y_length,
                          version=version)


def stream_tables(tables: Tables) -> rans.StreamTables:
  """Hyperprior tables as version 2 codes them (the same integers, escape last)."""
  return rans.escape_tables(tables.frequencies, tables.lengths, tables.offsets, TABLE_PRECISION)


def _decode_hyper_stream(data, header, offset: int, length: int, table_of, tables: Tables):
  if header.version == RANS_VERSION:
    return _rans(rans.decode_stream, bytes(memoryview(data)[offset:offset + length]), table_of,
                 stream_tables(tables))
  return _decode_stream(_words(data, offset, length), table_of, tables)


def _words(data, offset: int, length: int) -> np.ndarray:
  return np.frombuffer(memoryview(data)[offset:offset + length], dtype="<u4").astype(np.uint32)


def _check_hyperprior_header(header) -> None:
  if not isinstance(header, HyperpriorHeader):
    raise BitstreamError(f"a {FAMILY_NAMES.get(header.codec_family, 'foreign')} file has no "
                         "hyperprior streams")


def decode_hyperprior_z(data: bytes, header: HyperpriorHeader, z_tables: Tables) -> np.ndarray:
  """The z stream of a file whose header `parse_header` returned: int32 [hz, wz, N]."""
  _check_hyperprior_header(header)
  if z_tables.num_tables != header.z_shape[-1]:
    raise BitstreamError(f"the file has {header.z_shape[-1]} z channels; the codec has "
                         f"{z_tables.num_tables} z tables")
  values = _decode_hyper_stream(data, header, header.z_offset, header.z_length,
                                _z_table_of(header.z_shape), z_tables)
  return values.astype(np.int32).reshape(header.z_shape)


def decode_hyperprior_y(data: bytes, header: HyperpriorHeader, y_tables: Tables,
                        y_indices) -> np.ndarray:
  """The y stream, given the scale indices computed from the decoded z: int32 [hy, wy, M]."""
  _check_hyperprior_header(header)
  table_of = _check_table_indices(y_indices, header.y_shape, y_tables.num_tables, "y")
  values = _decode_hyper_stream(data, header, header.y_offset, header.y_length, table_of,
                                y_tables)
  return values.astype(np.int32).reshape(header.y_shape)
