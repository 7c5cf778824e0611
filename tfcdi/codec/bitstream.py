"""The .tfci file format: a small self-describing header plus range-coded symbols.

A .tfci file holds the quantized representation of one image, as the L-ary symbols the codec's
quantizer produced, entropy coded with a static categorical model: the codec's integer
frequency table. The table lives in the codec bundle, not in the file; the file names the codec
(name + fingerprint) so that a decoder can find it and refuse any other.

This module is pure NumPy + constriction. It knows nothing of Keras: it turns a symbol array
into bytes and back, and checks that the bytes are a well-formed, uncorrupted file.

Layout, version 1 (n is the length of the codec name; integers in the header are big-endian):

  | offset | size | type        | field                                                     |
  | ------ | ---- | ----------- | --------------------------------------------------------- |
  | 0      | 4    | bytes       | magic b"TFCI"                                             |
  | 4      | 1    | uint8       | format version, 1                                         |
  | 5      | 1    | uint8       | codec family: 0 = autoencoder (Torfason et al.);          |
  |        |      |             | 1 = reserved for a hyperprior codec                       |
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

Every problem with a file raises BitstreamError (a ValueError) with a one-line message.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

import constriction
import numpy as np

MAGIC = b"TFCI"
FORMAT_VERSION = 1
FAMILY_AUTOENCODER = 0
FAMILY_HYPERPRIOR = 1  # reserved: no codec of this family exists yet
SUPPORTED_FAMILIES = (FAMILY_AUTOENCODER,)

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


class BitstreamError(ValueError):
  """A .tfci file (or what should become one) is malformed, truncated or corrupted."""


@dataclasses.dataclass(frozen=True)
class Header:
  """The parsed header of a .tfci file."""

  codec_family: int
  codec_name: str
  fingerprint: bytes
  image_size: tuple  # (height, width) of the original image
  latent_shape: tuple  # (h, w, C)
  num_centers: int  # L
  payload_offset: int = 0  # where the payload starts in the file
  payload_length: int = 0  # P
  version: int = FORMAT_VERSION

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


def _check_name(codec_name: str) -> bytes:
  try:
    raw = codec_name.encode("ascii")
  except (UnicodeEncodeError, AttributeError):
    raise BitstreamError(f"the codec name must be ASCII, got {codec_name!r}") from None
  if not 1 <= len(raw) <= 255 or not raw.isascii() or not codec_name.isprintable():
    raise BitstreamError(f"the codec name must be 1..255 printable characters: {codec_name!r}")
  return raw


def encode(symbols, frequencies, *, codec_name: str, fingerprint: bytes, image_size,
           codec_family: int = FAMILY_AUTOENCODER) -> bytes:
  """Writes a complete .tfci file.

  Args:
    symbols: integer array [h, w, C], every value in [0, L).
    frequencies: the codec's integer frequency table [L]; every entry >= 1.
    codec_name: ASCII name of the codec, stored so a decoder can find it.
    fingerprint: the codec's 8-byte fingerprint.
    image_size: (height, width) of the original image, before any padding.
    codec_family: FAMILY_AUTOENCODER.

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
  if codec_family not in SUPPORTED_FAMILIES:
    raise BitstreamError(f"unknown codec family {codec_family}")
  name = _check_name(codec_name)
  fingerprint = bytes(fingerprint)
  if len(fingerprint) != FINGERPRINT_BYTES:
    raise BitstreamError(f"the fingerprint must be {FINGERPRINT_BYTES} bytes, got "
                         f"{len(fingerprint)}")
  height, width = (int(s) for s in image_size)
  if not (1 <= height <= MAX_IMAGE_SIDE and 1 <= width <= MAX_IMAGE_SIDE):
    raise BitstreamError(f"image size {height}x{width} is out of range (1..{MAX_IMAGE_SIDE} "
                         "pixels per side)")

  words = _range_encode(symbols.astype(np.int32).reshape(-1), table)
  # Explicitly little-endian, whatever the machine's byte order.
  payload = words.astype("<u4").tobytes()
  head = (MAGIC + bytes([FORMAT_VERSION, codec_family, len(name)]) + name + _FIXED.pack(
      fingerprint, height, width, *symbols.shape, table.size, len(payload)))
  checksum = zlib.crc32(payload, zlib.crc32(head))
  return head + _CRC.pack(checksum) + payload


def parse_header(data: bytes) -> Header:
  """Parses and validates a .tfci file's header, and checks the payload against the checksum.

  Raises:
    BitstreamError: the data is not a complete, uncorrupted version-1 .tfci file.
  """
  data = memoryview(data).cast("B")
  if len(data) == 0:
    raise BitstreamError("empty file, not a .tfci file")
  if bytes(data[:len(MAGIC)]) != MAGIC[:len(data)]:
    raise BitstreamError("not a .tfci file (it does not start with b'TFCI')")
  if len(data) < _PREFIX_BYTES:
    raise BitstreamError(f"truncated .tfci file ({len(data)} bytes)")
  version, family, name_length = data[4], data[5], data[6]
  if version != FORMAT_VERSION:
    raise BitstreamError(f"unsupported .tfci format version {version} (this tfcdi reads "
                         f"version {FORMAT_VERSION})")
  fixed_at = _PREFIX_BYTES + name_length
  payload_offset = fixed_at + _FIXED.size + _CRC.size
  if name_length == 0:
    raise BitstreamError("corrupted .tfci header (empty codec name)")
  if len(data) < payload_offset:
    raise BitstreamError(f"truncated .tfci file ({len(data)} bytes, the header alone needs "
                         f"{payload_offset})")
  (fingerprint, height, width, h, w, c, num_centers,
   payload_length) = _FIXED.unpack(data[fixed_at:fixed_at + _FIXED.size])
  end = payload_offset + payload_length
  if len(data) < end:
    raise BitstreamError(f"truncated .tfci file ({len(data)} bytes, its header announces {end})")
  if len(data) > end:
    raise BitstreamError(f"corrupted .tfci file ({len(data) - end} unexpected bytes after the "
                         "payload)")
  (stored_crc,) = _CRC.unpack(data[fixed_at + _FIXED.size:payload_offset])
  # Checked before any field is trusted: a flipped bit anywhere reads as "corrupted", not as
  # whatever odd value it happens to produce.
  crc = zlib.crc32(data[payload_offset:], zlib.crc32(data[:fixed_at + _FIXED.size]))
  if crc != stored_crc:
    raise BitstreamError("corrupted .tfci file (checksum mismatch)")

  if family not in SUPPORTED_FAMILIES:
    detail = " (reserved for hyperprior codecs)" if family == FAMILY_HYPERPRIOR else ""
    raise BitstreamError(f"unsupported codec family {family}{detail}")
  name = bytes(data[_PREFIX_BYTES:fixed_at])
  if not all(0x20 <= b < 0x7F for b in name):
    raise BitstreamError("corrupted .tfci header (codec name is not printable ASCII)")
  if not (1 <= height <= MAX_IMAGE_SIDE and 1 <= width <= MAX_IMAGE_SIDE):
    raise BitstreamError(f"unsupported image size {height}x{width} (1..{MAX_IMAGE_SIDE} pixels "
                         "per side)")
  # The latent is a downsampled image; one larger than the image, or empty, is no real file.
  if not (1 <= h <= height and 1 <= w <= width and c >= 1) or h * w * c > MAX_SYMBOLS:
    raise BitstreamError(f"implausible latent shape {h}x{w}x{c} for a {height}x{width} image")
  if num_centers < 2:
    raise BitstreamError(f"implausible number of centers {num_centers}")
  if payload_length == 0 or payload_length % 4:
    raise BitstreamError(f"corrupted .tfci file (payload of {payload_length} bytes is not a "
                         "whole number of 32-bit words)")
  return Header(codec_family=family, codec_name=name.decode("ascii"), fingerprint=fingerprint,
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
  payload = memoryview(data)[header.payload_offset:header.payload_offset + header.payload_length]
  words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
  decoder = constriction.stream.queue.RangeDecoder(words)
  try:
    flat = decoder.decode(_entropy_model(table), header.num_symbols)
    marker = decoder.decode(_marker_model())
  except Exception as e:  # constriction reports undecodable data as AssertionError, among others
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
