"""Images <-> .tfci bytes with a codec of any family, and the lookup of the codec a file names.

compress_image:   uint8 image -> codec.compress -> the bytes of a .tfci file
decompress_bytes: bytes -> header -> (find the codec) -> codec.decompress -> uint8 image
read_latents:     bytes -> {name: latent}, for the compressed-domain nets; never decodes to RGB

A file names the codec that made it (name + fingerprint). Decoding with any other codec is
refused with a CodecError, even one for the same operating point: its centers and table would
turn the symbols into a different image, silently. Without an explicit codec, the one the header
names is looked up among the shipped bundles (tfcdi/pretrained/*.npz), of any family: the
header's family byte picks the family that parses it (registry.parse_header).

What a family does with its files is its own module's business (interface.py); read_symbols and
read_hyperprior_symbols are the two built-in families' symbol readers under their old names.
"""

from __future__ import annotations

import functools
import glob
import os

import numpy as np

from tfcdi.codec import bundles
from tfcdi.codec import registry
from tfcdi.codec.interface import CodecError


def compress_image(codec, image: np.ndarray, format_version: int | None = None) -> bytes:
  """uint8 RGB [H, W, 3] of any size (up to 65535 per side) -> the bytes of a .tfci file.

  `codec` is a loaded codec of any family; the file's family follows it. `format_version`: 1 or
  2 (bitstream.py); None: the default.
  """
  if format_version is None:
    return codec.compress(image)
  return codec.compress(image, format_version=format_version)


def check_codec(header, codec) -> None:
  """Refuses a codec that did not make the file, and a header that does not fit the codec.

  Raises:
    CodecError: the file was made by another codec.
    BitstreamError: the header's shapes do not fit the codec (a damaged or forged file).
  """
  codec.check_header(header)


def _bundle_identity(path: str):
  """(name, fingerprint) stored in a bundle's metadata, or None if it is not a readable bundle."""
  try:
    meta = bundles.read_metadata(path)  # the small metadata entry only; weights stay on disk
    return meta["name"], bytes.fromhex(meta["fingerprint"])
  except (CodecError, KeyError, ValueError, TypeError):
    return None


@functools.lru_cache(maxsize=4)
def _load_bundle(path: str):
  # Cached so that a folder of files from one codec builds the model once.
  return registry.load(path)


def find_codec(header, search_dir: str | None = None):
  """Loads the bundle in `search_dir` (default: the shipped ones) that made the file.

  Raises:
    CodecError: no bundle there has the header's name and fingerprint.
  """
  search_dir = search_dir or bundles.PRETRAINED_DIR
  wanted = (header.codec_name, header.fingerprint)
  for path in sorted(glob.glob(os.path.join(search_dir, "*.npz"))):
    if _bundle_identity(path) == wanted:
      return _load_bundle(os.path.abspath(path))
  raise CodecError(
      f"the file was made by codec {header.codec_name!r} ({header.fingerprint.hex()}), which is "
      f"not among the codecs in {search_dir}; pass that codec's bundle (--codec=PATH.npz)")


def read_symbols(data: bytes, codec) -> tuple:
  """An autoencoder .tfci file's header and int32 symbols [h, w, C], checked against `codec`.

  The compressed-domain path: no decoder is built or run. z_hat is codec.model.latent(symbols).
  """
  if codec.family != "autoencoder":
    streams = ("two streams (read_hyperprior_symbols)" if codec.family == "hyperprior" else
               f"{', '.join(codec.symbol_names)} (codec.read_symbols)")
    raise CodecError(f"codec {codec.name!r} is a {codec.family} codec; its files hold {streams}")
  header, symbols = codec.read_symbols(data)
  return header, symbols["symbols"]


def read_hyperprior_symbols(data: bytes, codec) -> tuple:
  """A hyperprior .tfci file's (header, y symbols, z symbols, scale indices), checked.

  y and the scale indices are int32 [hy, wy, M], z is int32 [hz, wz, N]. The compressed-domain
  path: no synthesis transform runs; codec.model.latent(y[None], z[None]) gives (y_hat,
  sigma_hat). `codec` is a HyperpriorCodec or its HyperpriorTables (no Keras model).
  """
  if codec.family != "hyperprior":
    raise CodecError(f"codec {codec.name!r} is not a hyperprior codec")
  return codec.read_streams(data)


def read_latents(data: bytes, codec=None) -> dict:
  """{latent name: float32 [h, w, C]} of a .tfci file: what the compressed-domain nets read
  ("z_hat"; "y_hat" and "sigma_hat"). `codec`: the codec (or its tables) that made the file;
  None looks it up among the shipped bundles."""
  if codec is None:
    codec = find_codec(registry.parse_header(data))
  return codec.read_latents(data)


def decompress_bytes(data: bytes, codec=None) -> np.ndarray:
  """The bytes of a .tfci file -> uint8 RGB [H, W, 3] at the original size.

  Args:
    data: the file's bytes.
    codec: the codec that made the file; None looks it up among the shipped bundles.
  """
  if codec is None:
    codec = find_codec(registry.parse_header(data))
  return codec.decompress(data)
