"""Images <-> .tfci bytes with a codec: the glue between the Keras model and the bitstream.

compress_image:   uint8 image -> pad to a multiple of 8 -> model.encode -> bitstream.encode
decompress_bytes: bytes -> header -> (find the codec) -> symbols -> model.decode -> crop -> uint8
read_symbols:     bytes -> header + symbols, for the compressed-domain nets; never decodes to RGB

A file names the codec that made it (name + fingerprint). Decoding with any other codec is
refused with a CodecError, even one for the same operating point: its centers and table would
turn the symbols into a different image, silently. Without an explicit codec, the one the header
names is looked up among the shipped bundles (tfcdi/pretrained/*.npz).

Both codec families go through compress_image / decompress_bytes: the codec object (a Codec or
a HyperpriorCodec) says which family writes, the file's header which family reads. A
hyperprior file's symbols are two streams, read by read_hyperprior_symbols:

  bytes -> header -> z symbols (z tables) -> scale indices (integer hyper-synthesis)
        -> y symbols (the y table of each symbol's scale index)
"""

from __future__ import annotations

import functools
import glob
import os

import numpy as np
import tensorflow as tf

from tfcdi.codec import bitstream
from tfcdi.codec import hyperprior as hyperprior_lib
from tfcdi.codec import model as model_lib
from tfcdi.codec import pretrained
from tfcdi.codec.pretrained import CodecError


# The largest |y| a hyperprior file may hold; checked on reading, as the integer
# hyper-synthesis checks z, and on writing, so that no file we write is refused. The format
# codes any value (escapes). The shipped codecs' y stay within a few dozen on photos, but a codec
# may have wide latents (the latent cache keeps y beyond 16 bits), so the bound is generous; a
# forged y below it can still drive a synthesis to inf (the shipped q1 at +-2^16 with random
# signs), which decompress_bytes refuses as non-finite pixels.
MAX_Y_MAGNITUDE = 1 << 16


def _check_y_range(y) -> None:
  largest = int(np.abs(np.asarray(y, np.int64)).max())
  if largest > MAX_Y_MAGNITUDE:
    raise bitstream.BitstreamError(f"implausible latent values (|y| up to {largest}; a real "
                                   f"image's stay within {MAX_Y_MAGNITUDE})")


def latent_size(image_size) -> tuple:
  """(H, W) of an image -> (h, w) of its representation, after padding to a multiple of 8."""
  return tuple(-(-int(s) // model_lib.DOWNSAMPLING) for s in image_size)


def hyperprior_latent_shapes(image_size, codec: pretrained.HyperpriorCodec) -> tuple:
  """(H, W) of an image -> the shapes of its y [hy, wy, M] and z [hz, wz, N]."""
  hy, wy = (-(-int(s) // hyperprior_lib.DOWNSAMPLING) for s in image_size)
  hz, wz = (-(-s // hyperprior_lib.HYPER_DOWNSAMPLING) for s in (hy, wy))
  return (hy, wy, codec.channels), (hz, wz, codec.num_filters)


def compress_image(codec, image: np.ndarray) -> bytes:
  """uint8 RGB [H, W, 3] of any size (up to 65535 per side) -> the bytes of a .tfci file.

  `codec` is a Codec (autoencoder) or a HyperpriorCodec; the file's family follows it.
  """
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3 or 0 in image.shape:
    raise ValueError(f"expected a non-empty uint8 [H, W, 3] image, got {image.dtype} "
                     f"{image.shape}")
  height, width = image.shape[:2]
  if max(height, width) > bitstream.MAX_IMAGE_SIDE:
    raise ValueError(f"a {height}x{width} image is too large: at most "
                     f"{bitstream.MAX_IMAGE_SIDE} pixels per side")
  if codec.family == "hyperprior":
    return _compress_hyperprior(codec, image)
  padded, _ = model_lib.pad_to_multiple(tf.convert_to_tensor(image[None], tf.float32))
  symbols = codec.model.encode(padded)[0].numpy()
  return bitstream.encode(symbols, codec.frequencies, codec_name=codec.name,
                          fingerprint=codec.fingerprint, image_size=(height, width),
                          codec_family=bitstream.FAMILY_AUTOENCODER)


def _compress_hyperprior(codec: pretrained.HyperpriorCodec, image: np.ndarray) -> bytes:
  height, width = image.shape[:2]
  padded, _ = hyperprior_lib.pad_to_multiple(tf.convert_to_tensor(image[None], tf.float32))
  y, z = codec.model.encode(padded)
  y, z = y.numpy(), z.numpy()
  _check_y_range(y)
  indices = codec.scale_indices(z, y.shape)
  return bitstream.encode_hyperprior(y[0], indices[0], codec.y_tables, z[0], codec.z_tables,
                                     codec_name=codec.name, fingerprint=codec.fingerprint,
                                     image_size=(height, width))


def check_codec(header, codec) -> None:
  """Refuses a codec that did not make the file, and a header that does not fit the codec.

  Raises:
    CodecError: the file was made by another codec.
    BitstreamError: the header's shapes do not fit the codec (a damaged or forged file).
  """
  if (header.codec_name, header.fingerprint) != (codec.name, codec.fingerprint):
    raise CodecError(
        f"the file was made by codec {header.codec_name!r} ({header.fingerprint.hex()}), not by "
        f"{codec.name!r} ({codec.fingerprint.hex()}); decode it with the codec that made it")
  if header.codec_family != codec.bitstream_family:
    raise CodecError(f"the file is a {bitstream.FAMILY_NAMES[header.codec_family]} file; "
                     f"codec {codec.name!r} is a {codec.family} codec")
  if codec.family == "hyperprior":
    y_shape, z_shape = hyperprior_latent_shapes(header.image_size, codec)
    if (tuple(header.y_shape), tuple(header.z_shape)) != (y_shape, z_shape):
      raise bitstream.BitstreamError(
          f"the header announces latents {header.y_shape} and {header.z_shape}; a "
          f"{header.image_size} image coded by {codec.name!r} has {y_shape} and {z_shape}")
    return
  expected = (*latent_size(header.image_size), codec.channels)
  if tuple(header.latent_shape) != expected or header.num_centers != codec.num_centers:
    raise bitstream.BitstreamError(
        f"the header announces a {header.latent_shape} latent with {header.num_centers} centers; "
        f"a {header.image_size} image coded by {codec.name!r} has {expected} with "
        f"{codec.num_centers}")


def _bundle_identity(path: str):
  """(name, fingerprint) stored in a bundle's metadata, or None if it is not a readable bundle."""
  try:
    meta = pretrained.read_metadata(path)  # the small metadata entry only; weights stay on disk
    return meta["name"], bytes.fromhex(meta["fingerprint"])
  except (CodecError, KeyError, ValueError, TypeError):
    return None


@functools.lru_cache(maxsize=4)
def _load_bundle(path: str) -> pretrained.Codec:
  # Cached so that a folder of files from one codec builds the model once.
  return pretrained.load_codec(path=path)


def find_codec(header: bitstream.Header, search_dir: str | None = None) -> pretrained.Codec:
  """Loads the bundle in `search_dir` (default: the shipped ones) that made the file.

  Raises:
    CodecError: no bundle there has the header's name and fingerprint.
  """
  search_dir = search_dir or pretrained.PRETRAINED_DIR
  wanted = (header.codec_name, header.fingerprint)
  for path in sorted(glob.glob(os.path.join(search_dir, "*.npz"))):
    if _bundle_identity(path) == wanted:
      return _load_bundle(os.path.abspath(path))
  raise CodecError(
      f"the file was made by codec {header.codec_name!r} ({header.fingerprint.hex()}), which is "
      f"not among the codecs in {search_dir}; pass that codec's bundle (--codec=PATH.npz)")


def read_symbols(data: bytes, codec: pretrained.Codec) -> tuple:
  """A .tfci file's header and int32 symbols [h, w, C], checked against `codec`.

  The compressed-domain path: no decoder is built or run. z_hat is codec.model.latent(symbols).
  """
  if codec.family != "autoencoder":
    raise CodecError(f"codec {codec.name!r} is a {codec.family} codec; its files hold two "
                     "streams (read_hyperprior_symbols)")
  header = bitstream.parse_header(data)
  check_codec(header, codec)
  return header, bitstream.decode_symbols(data, header, codec.frequencies)


def read_hyperprior_symbols(data: bytes, codec: pretrained.HyperpriorCodec) -> tuple:
  """A hyperprior .tfci file's (header, y symbols, z symbols, scale indices), checked.

  y and the scale indices are int32 [hy, wy, M], z is int32 [hz, wz, N]. The compressed-domain
  path: no synthesis transform runs; codec.model.latent(y[None], z[None]) gives (y_hat,
  sigma_hat). `codec` is a HyperpriorCodec or anything with its identity, its tables and a
  `scale_indices` method (latent_store.HyperpriorTables reads files without a Keras model).
  """
  if codec.family != "hyperprior":
    raise CodecError(f"codec {codec.name!r} is not a hyperprior codec")
  header = bitstream.parse_header(data)
  check_codec(header, codec)
  z = bitstream.decode_hyperprior_z(data, header, codec.z_tables)
  indices = codec.scale_indices(z[None], (1, *header.y_shape))[0]
  y = bitstream.decode_hyperprior_y(data, header, codec.y_tables, indices)
  _check_y_range(y)
  return header, y, z, indices


def decompress_bytes(data: bytes, codec: pretrained.Codec | None = None) -> np.ndarray:
  """The bytes of a .tfci file -> uint8 RGB [H, W, 3] at the original size.

  Args:
    data: the file's bytes.
    codec: the codec that made the file; None looks it up among the shipped bundles.
  """
  if codec is None:
    codec = find_codec(bitstream.parse_header(data))
  if codec.family == "hyperprior":
    header, y, _, _ = read_hyperprior_symbols(data, codec)
    images = codec.model.decode(y[None])
  else:
    header, symbols = read_symbols(data, codec)
    images = codec.model.decode(tf.convert_to_tensor(symbols[None]))
  images = model_lib.crop_to(images, header.image_size)[0].numpy()
  # The range checks' backstop: NaN must never reach the cast below (it would become black).
  if not np.all(np.isfinite(images)):
    raise bitstream.BitstreamError(
        "the file decodes to non-finite pixels (a forged file, or a codec that does not fit it)")
  # The decoder output is already clipped to [0, 255]; rounding, not truncating, to 8 bits.
  return np.clip(np.rint(images), 0, 255).astype(np.uint8)
