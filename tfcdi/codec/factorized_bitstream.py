"""The .tfci layout of family 2, the factorized prior: one stream, y under one table per channel.

A sibling of bitstream.py (which documents the container and the other layouts, and whose
container helpers this module shares): same magic, version, name, fingerprint and checksum
rules, then this family's fields. Pure NumPy + the entropy coder, like bitstream.py.

Layout of family 2, version 1. Bytes [0, 15+n) are as in bitstream.py (magic b"TFCI", version
1, family = 2, name length n, name, fingerprint); then (big-endian):

  | offset | size | type        | field                                                     |
  | ------ | ---- | ----------- | --------------------------------------------------------- |
  | 15+n   | 4    | uint32      | image height, before padding to a multiple of 16          |
  | 19+n   | 4    | uint32      | image width, before padding                               |
  | 23+n   | 2    | uint16      | latent y: height h                                        |
  | 25+n   | 2    | uint16      | latent y: width w                                         |
  | 27+n   | 2    | uint16      | latent y: channels M                                      |
  | 29+n   | 4    | uint32      | payload length P in bytes (a positive multiple of 4)      |
  | 33+n   | 4    | uint32      | CRC-32 (zlib.crc32) of bytes [0, 33+n) and the payload    |
  | 37+n   | P    | uint32 LE[] | payload                                                   |

The file ends exactly after the payload, one constriction queue RangeEncoder stream coded as
family 1's z stream (bitstream.py): the h*w*M symbols, symbol v of channel c under the codec's
table c, grouped by table, escapes and the end marker after them. A symbol v of channel c stands
for y_hat = v + median_c (the codec's per-channel medians, which its tables are centred on).
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

import numpy as np

from tfcdi.codec import bitstream
# The container's helpers, shared with the layouts bitstream.py holds.
from tfcdi.codec.bitstream import BitstreamError
from tfcdi.codec.bitstream import _check_integer_array  # pylint: disable=protected-access
from tfcdi.codec.bitstream import _check_magic_and_version  # pylint: disable=protected-access
from tfcdi.codec.bitstream import _check_name  # pylint: disable=protected-access
from tfcdi.codec.bitstream import _check_name_bytes  # pylint: disable=protected-access
from tfcdi.codec.bitstream import _decode_stream  # pylint: disable=protected-access
from tfcdi.codec.bitstream import _encode_stream  # pylint: disable=protected-access
from tfcdi.codec.bitstream import _unpack_checked  # pylint: disable=protected-access
from tfcdi.codec.bitstream import _z_table_of  # pylint: disable=protected-access

FAMILY = bitstream.FAMILY_FACTORIZED
# Everything between the name and the checksum: fingerprint, H, W, h, w, M, P.
_FIXED = struct.Struct(f">{bitstream.FINGERPRINT_BYTES}sIIHHHI")
_CRC = struct.Struct(">I")
_PREFIX_BYTES = len(bitstream.MAGIC) + 3


@dataclasses.dataclass(frozen=True)
class FactorizedHeader(bitstream.HeaderFields):
  """The parsed header of a family-2 .tfci file."""

  latent_shape: tuple  # (h, w, M)
  payload_offset: int = 0
  payload_length: int = 0
  version: int = bitstream.FORMAT_VERSION


def _check_shapes(image_size, latent_shape) -> None:
  height, width = image_size
  h, w, m = latent_shape
  if not (1 <= height <= bitstream.MAX_IMAGE_SIDE and 1 <= width <= bitstream.MAX_IMAGE_SIDE):
    raise BitstreamError(f"unsupported image size {height}x{width} (1..{bitstream.MAX_IMAGE_SIDE}"
                         " pixels per side)")
  # A downsampled image: no larger than what it codes, never empty.
  if not (1 <= h <= height and 1 <= w <= width and 1 <= m <= bitstream.MAX_LATENT_SIDE
          and h * w * m <= bitstream.MAX_SYMBOLS):
    raise BitstreamError(f"implausible latent shape {h}x{w}x{m} for a {height}x{width} image")


def encode(y, tables: bitstream.Tables, *, codec_name: str, fingerprint: bytes,
           image_size) -> bytes:
  """Writes a complete family-2 .tfci file.

  Args:
    y: integer array [h, w, M], the symbols round(y - median) of every channel.
    tables: the codec's tables, one per channel (M of them).
    codec_name: ASCII name of the codec, stored so a decoder can find it.
    fingerprint: the codec's 8-byte fingerprint.
    image_size: (height, width) of the original image, before any padding.
  """
  y = _check_integer_array("y", y, 3)
  height, width = (int(s) for s in image_size)
  _check_shapes((height, width), y.shape)
  if tables.num_tables != y.shape[-1]:
    raise BitstreamError(f"{tables.num_tables} tables for {y.shape[-1]} channels")
  name = _check_name(codec_name)
  fingerprint = bytes(fingerprint)
  if len(fingerprint) != bitstream.FINGERPRINT_BYTES:
    raise BitstreamError(f"the fingerprint must be {bitstream.FINGERPRINT_BYTES} bytes, got "
                         f"{len(fingerprint)}")
  words = _encode_stream(y.astype(np.int64).reshape(-1), _z_table_of(y.shape), tables)
  payload = words.astype("<u4").tobytes()
  head = (bitstream.MAGIC + bytes([bitstream.FORMAT_VERSION, FAMILY, len(name)]) + name
          + _FIXED.pack(fingerprint, height, width, *y.shape, len(payload)))
  return head + _CRC.pack(zlib.crc32(payload, zlib.crc32(head))) + payload


def parse_header(data) -> FactorizedHeader:
  """Parses and checks a family-2 file's header and its checksum over the whole file.

  Raises:
    BitstreamError: not a complete, uncorrupted version-1 family-2 .tfci file.
  """
  data = memoryview(data).cast("B")
  _check_magic_and_version(data)
  family, name_length = data[5], data[6]
  if family != FAMILY:
    raise BitstreamError(f"a {bitstream.FAMILY_NAMES.get(family, 'foreign')} file (family "
                         f"{family}), not a factorized one")
  if name_length == 0:
    raise BitstreamError("corrupted .tfci header (empty codec name)")
  fixed_at = _PREFIX_BYTES + name_length
  (fingerprint, height, width, h, w, m, length), offset = _unpack_checked(
      data, fixed_at, _FIXED, lambda fields: fields[-1])
  name = _check_name_bytes(bytes(data[_PREFIX_BYTES:fixed_at]))
  _check_shapes((height, width), (h, w, m))
  if length == 0 or length % 4:
    raise BitstreamError(f"corrupted .tfci file (payload of {length} bytes is not a whole "
                         "number of 32-bit words)")
  return FactorizedHeader(codec_family=family, codec_name=name, fingerprint=fingerprint,
                          image_size=(height, width), latent_shape=(h, w, m),
                          payload_offset=offset, payload_length=length, version=data[4])


def decode(data, header: FactorizedHeader, tables: bitstream.Tables) -> np.ndarray:
  """The symbols of a file whose header parse_header returned: int32 [h, w, M], checked."""
  if tables.num_tables != header.latent_shape[-1]:
    raise BitstreamError(f"the file has {header.latent_shape[-1]} channels; the codec has "
                         f"{tables.num_tables} tables")
  words = np.frombuffer(memoryview(data)[header.payload_offset:
                                         header.payload_offset + header.payload_length],
                        dtype="<u4").astype(np.uint32)
  values = _decode_stream(words, _z_table_of(header.latent_shape), tables)
  return values.astype(np.int32).reshape(header.latent_shape)
