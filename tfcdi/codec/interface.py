"""The one interface every codec family implements; the rest of tfcdi talks only to it.

Three kinds of object, all defined here as base classes a family module subclasses:

  Family  what the registry holds (registry.py), one per family: its name, the .tfci header's
          family byte, the downsampling, the names of the latents its files give the
          compressed-domain nets, and how to load its bundles, read its tables and parse its
          headers. Also the family-level words for a codec's JSON identity (`describe`).
  Reader  a codec's identity (name, fingerprint) and integer tables: everything needed to read
          its files into symbols and latents, and nothing of its neural network. This is what a
          latent store, a classifier export and the compressed-domain path hold.
  Codec   a Reader plus the trained model: compress(image) -> bytes, decompress(bytes) ->
          image, latents(images). A loaded bundle is one.

Symbols and latents. A family's files hold integer symbol arrays (`symbol_names`; the
autoencoder: "symbols", the hyperprior: "y" and "indices", the scale index of every y symbol);
`latents_from_symbols` turns them into the float latents the nets read (`latent_names`: "z_hat";
"y_hat" and "sigma_hat"). Both are {name: array} dicts; every array of one file has the same
spatial size, [h, w, channels], which lets stores, caches and exports handle any family alike.
The split matters for speed: a store's cache keeps the small integers, the floats are made on
the fly (in a tf.data graph, hence TensorFlow ops in `latents_from_symbols`).
"""

from __future__ import annotations

import abc
import sys
import typing

import numpy as np

from tfcdi.codec import bitstream
from tfcdi.codec import tiling


class CodecError(ValueError):
  """A codec bundle is missing, unreadable or does not match what was asked of it."""


class Family(abc.ABC):
  """A codec family as the registry knows it; a family module defines one instance, FAMILY.

  Attributes:
    name: what --codec, bundle metadata ("family") and store metadata call it.
    byte: its family byte in the .tfci header (bitstream.py); the registry's key.
    downsampling: image side / latent side.
    latent_names: what read_latents returns, in the order nets and datasets list them.
    symbol_names: the integer arrays a file holds; the i-th gives the i-th latent.
    selector: the argument that picks one of its shipped codecs ("operating_point",
      "quality"); a codec's JSON identity holds its value under that key.
  """

  name: str = ""
  byte: int = -1
  downsampling: int = 1
  latent_names: tuple = ()
  symbol_names: tuple = ()
  selector: str = ""

  def _unsupported(self, what: str) -> CodecError:
    return CodecError(f"the {self.name} codec family cannot {what}")

  def parse_header(self, data: bytes):
    """The file's checked header (codec_family, codec_name, fingerprint, image_size,
    latent_shape at least). The built-in families share bitstream.parse_header."""
    return bitstream.parse_header(data)

  @abc.abstractmethod
  def load(self, path: str | None = None, selection=None) -> Codec:
    """The bundle at `path`, or the shipped codec of `selection`; a bundle must match a
    selection given with it. Raises CodecError."""

  def read_tables(self, path: str) -> Reader:
    """The Reader of a bundle, without building its model. Raises CodecError."""
    raise self._unsupported("read a bundle's tables without its model")

  @abc.abstractmethod
  def tables_from_json(self, data: dict, folder: str | None = None) -> Reader:
    """The Reader whose Reader.to_json() is `data`; `folder` holds what Reader.save_beside
    wrote there. Raises CodecError."""

  def selection_of(self, codec_json: dict):
    """The selector's value in a codec's JSON identity (or a result JSON)."""
    return codec_json.get(self.selector)

  def same_selection(self, codec_json: dict, selection) -> bool:
    return self.selection_of(codec_json) == selection

  def selected_by(self, selector: str) -> bool:
    """Whether `selector` ("operating_point", "quality") picks this family's codecs."""
    return selector == self.selector

  def describe(self, codec_json: dict) -> str:
    """E.g. "operating point 0.635", "hyperprior quality 4": how messages name the codec."""
    return f"{self.name} {self.selector.replace('_', ' ')} {self.selection_of(codec_json)}"

  def result_label(self, result: dict) -> str:
    """How a plot legend names an evaluation result of one of its codecs."""
    return f"{self.name}, {self.selector.replace('_', ' ')} {result.get(self.selector, '?')}"

  def tables_from_serving(self, identity: dict, arrays: dict) -> Reader:
    """The Reader an export kept: its identity (Reader.to_json) and Reader.serving_arrays()."""
    return self.tables_from_json(identity)

  # byte -> Family: the families registry.py has loaded or been given (registry.register). Kept
  # here, below the registry, so that a Reader can find a family registered at run time.
  registered: typing.ClassVar[dict] = {}

  # How a rate-distortion plot marks its codecs' results.
  plot_marker: str = "o"
  plot_marker_size: int = 10
  # The input names an export's signatures give its symbol arrays, where not their own names.
  serving_names: dict = {}

  def serving_name(self, symbol_name: str) -> str:
    return self.serving_names.get(symbol_name, symbol_name)


class Reader(abc.ABC):
  """A codec's identity and integer tables: reads its .tfci files into symbols and latents.

  Subclasses set `family` (the family's name), `bitstream_family` (its byte), `name`,
  `fingerprint` and `channels`, and implement the abstract methods (what reading its files
  needs). The other capabilities are optional: a family without one refuses it in one line
  (CodecError), so a new family can start from the abstract methods alone.
  """

  family: str = ""
  bitstream_family: int = -1
  name: str
  fingerprint: bytes
  channels: int

  def _unsupported(self, what: str) -> CodecError:
    return CodecError(f"codec {self.name!r} (of the {self.family} family) cannot {what}")

  @property
  def family_info(self) -> Family:
    """Its family: the FAMILY of the module that defines its class (every family module defines
    one), or, for a family registered at run time, the registry's entry for its byte. Read from
    there rather than asked of registry.py, which sits above this module."""
    family = getattr(sys.modules.get(type(self).__module__), "FAMILY", None)
    if isinstance(family, Family) and family.byte == self.bitstream_family:
      return family
    family = Family.registered.get(self.bitstream_family)
    if family is None:
      raise CodecError(f"codec {self.name!r}: no family with byte {self.bitstream_family} is "
                       "registered")
    return family

  @property
  def downsampling(self) -> int:
    return self.family_info.downsampling

  @property
  def latent_names(self) -> tuple:
    return self.family_info.latent_names

  @property
  def symbol_names(self) -> tuple:
    return self.family_info.symbol_names

  def tables(self) -> Reader:
    """The Reader itself (a Codec gives its Reader, without the model)."""
    return self

  def same_codec(self, other) -> bool:
    return (self.name, bytes(self.fingerprint)) == (other.name, bytes(other.fingerprint))

  def same_family(self, header) -> bool:
    """Whether a file's header is of this codec's family (its family byte)."""
    return header.codec_family == self.bitstream_family

  def check_header(self, header) -> None:
    """Refuses a file this codec did not make, or whose shapes do not fit it.

    Raises:
      CodecError: another codec made the file.
      bitstream.BitstreamError: the header's shapes do not fit the codec (damaged or forged).
    """
    if (header.codec_name, header.fingerprint) != (self.name, bytes(self.fingerprint)):
      raise CodecError(
          f"the file was made by codec {header.codec_name!r} ({header.fingerprint.hex()}), not "
          f"by {self.name!r} ({bytes(self.fingerprint).hex()}); decode it with the codec that "
          "made it")
    if header.codec_family != self.bitstream_family:
      raise CodecError(f"the file is a {bitstream.FAMILY_NAMES.get(header.codec_family, '?')} "
                       f"file; codec {self.name!r} is a {self.family} codec")
    self.check_shapes(header)

  @abc.abstractmethod
  def check_shapes(self, header) -> None:
    """Refuses a header whose latent shapes are not what this codec makes of its image size."""

  @abc.abstractmethod
  def latent_shapes(self, image_size) -> dict:
    """(H, W) of an image -> {"latent_shape": [h, w, C], ...}: the shapes its file announces
    (a latent store writes them into its metadata)."""

  @abc.abstractmethod
  def read_symbols(self, data: bytes) -> tuple:
    """(header, {symbol name: int32 [h, w, C]}) of a file, checked against this codec."""

  @abc.abstractmethod
  def latents_from_symbols(self, symbols: dict) -> dict:
    """{symbol name: int tensor [..., h, w, C]} -> {latent name: float32 tensor}, in TF ops:
    the latents of the symbol arrays given (the i-th latent comes from the i-th symbols)."""

  def read_latents(self, data: bytes) -> dict:
    """{latent name: float32 [h, w, C]} of a file: what compressed-domain nets read. Entropy
    decoding and integer tables only; no transform runs."""
    _, symbols = self.read_symbols(data)
    return {k: np.asarray(v) for k, v in self.latents_from_symbols(symbols).items()}

  def information_bits(self, data: bytes) -> tuple:
    """(header, the ideal code length in bits of the file's symbols under this codec's
    tables): what the payload would be with a perfect entropy coder."""
    raise self._unsupported("measure a file's ideal code length")

  def integer_tables(self) -> dict:
    """The named integer arrays of its coding path (what a bundle stores for the coder)."""
    raise self._unsupported("give its coding tables")

  @abc.abstractmethod
  def to_json(self) -> dict:
    """The identity (and small tables) a store's metadata and an export's info record; the
    family's tables_from_json reads it back. Holds "family" unless the family is the
    autoencoder (whose stores predate families)."""

  def save_beside(self, folder: str) -> None:
    """Writes into `folder` what to_json leaves out (large tables); nothing by default."""

  def serving_arrays(self) -> dict:
    """{name: array} an export keeps as variables to read files with no bundle at hand;
    `family.tables_from_serving(identity, arrays)` rebuilds the Reader."""
    return self.integer_tables()


class Codec(Reader):
  """A Reader with its trained model (`model`): what a loaded bundle is.

  A family whose codec has a model overrides `tables()` to give its Reader without it.
  """

  # The side, in pixels, of a tile's core: compress and decompress run the transforms one tile
  # at a time (tiling.py), so the tile's activations, not the image's size, bound the memory a
  # transform needs. Any value gives the same file and pixels (the tests use small ones); 512
  # keeps the widest activations of every shipped codec (g_s's 192-channel IGDN at half
  # resolution, the autoencoder's 64 channels at half resolution) to about 100 MB each, with
  # margins of 80-88 pixels adding up to 72-81% to the computation.
  tile_pixels: int = 512

  @property
  def tile(self) -> int:
    """A tile's core side in latent positions."""
    return max(1, self.tile_pixels // self.downsampling)

  def analysis_model(self):
    """The Keras model from image to latent, whose layers bound the analysis' reach."""
    raise self._unsupported("give its analysis transform")

  def synthesis_model(self):
    """The Keras model from latent to image, whose layers bound the synthesis' reach; None (a
    family that does not say) decodes the whole latent at once."""
    return None

  def compress(self, image: np.ndarray, format_version: int | None = None) -> bytes:
    """uint8 RGB [H, W, 3] of any size (up to 65535 per side) -> the bytes of a .tfci file
    (of `format_version`, 1 or 2; None: bitstream.DEFAULT_FORMAT_VERSION).

    The analysis runs tile by tile (tiling.py): the same file as a whole-image encode, in
    memory bounded by the tile size.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3 or 0 in image.shape:
      raise ValueError(f"expected a non-empty uint8 [H, W, 3] image, got {image.dtype} "
                       f"{image.shape}")
    height, width = image.shape[:2]
    if max(height, width) > bitstream.MAX_IMAGE_SIDE:
      raise ValueError(f"a {height}x{width} image is too large: at most "
                       f"{bitstream.MAX_IMAGE_SIDE} pixels per side")
    if format_version is None:
      return self.compress_tiled(image)
    # Only asked of families that write both versions (the built-in ones).
    return self.compress_tiled(image, format_version=format_version)

  def compress_tiled(self, image: np.ndarray, format_version: int | None = None) -> bytes:
    """A checked uint8 image -> the bytes of its .tfci file, the analysis run by `analyse`.

    By default the whole image at once (batch_compressor): a family that knows its analysis
    model overrides this to run it in tiles.
    """
    options = {} if format_version is None else {"format_version": format_version}
    return self.batch_compressor(None, **options)(image[None].astype(np.float32),
                                                  image.shape[:2])[0]

  def analyse(self, transform, image: np.ndarray) -> np.ndarray:
    """`transform` (images [1, h, w, 3] -> [1, h/D, w/D, C]) of a uint8 image, tile by tile,
    with the margin the analysis model's receptive field needs."""
    extra = tiling.margin(tiling.reach(self.analysis_model()), self.downsampling)
    return tiling.analyse(transform, image, self.downsampling, extra, self.tile)

  def to_json(self) -> dict:
    # A codec's identity is its Reader's.
    return self.tables().to_json()

  @abc.abstractmethod
  def batch_compressor(self, image_size: int | None, format_version: int | None = None):
    """A function (float32 images [B, H, W, 3], (height, width)) -> B .tfci files, for images
    already padded to a multiple of the downsampling (or padded by it); `image_size` fixes a
    square input size so the encoder traces once (None: any size); `format_version` as in
    compress."""

  def _encoder(self, image_size: int | None):
    """The model's encode, traced once for square inputs of `image_size` (a store's fixed
    views), or once for any size (None)."""
    if image_size is None:
      return self.traced("encode", self.model.encode)
    import tensorflow as tf  # pylint: disable=g-import-not-at-top  (this module needs no TF)
    return tf.function(self.model.encode, input_signature=[
        tf.TensorSpec([None, image_size, image_size, 3], tf.float32)])

  def traced(self, name: str, function, channels: int = 3, dtype="float32"):
    """`function` (`dtype` [B, H, W, channels] -> tensors) as a tf.function traced once for
    every batch and size, kept on the codec under `name`.

    Called eagerly, a Keras model dispatches each layer from Python: on a Kodak image that is
    about a fifth of an imported bmshj2018-hyperprior's encode (0.195 s eager, 0.156 s traced,
    the same symbols; tools/peer_benchmark.py). Frozen dataclasses too keep it, in __dict__.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top  (this module needs no TF)
    dtype = tf.as_dtype(dtype)
    cache = self.__dict__.setdefault("_traced", {})
    key = (name, channels, dtype.name)
    if key not in cache:
      cache[key] = tf.function(function, input_signature=[
          tf.TensorSpec([None, None, None, channels], dtype)])
    return cache[key]

  def decode_traced(self, symbols):
    """The model's decode of one symbol array [B, h, w, C], traced (see `traced`); inside a
    graph (a decoded cache's tf.data map), the graph's own call."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top  (this module needs no TF)
    if not tf.executing_eagerly():
      return self.model.decode(symbols)
    if not tf.is_tensor(symbols):
      symbols = np.asarray(symbols)
    return self.traced("decode", self.model.decode, symbols.shape[-1], symbols.dtype)(symbols)

  def decompress(self, data: bytes) -> np.ndarray:
    """The bytes of a .tfci file this codec made -> uint8 RGB [H, W, 3] at the original size.

    The synthesis runs tile by tile (tiling.py): the pixels of a whole-image decode, in memory
    bounded by the tile size.
    """
    header, symbols = self.read_symbols(data)
    model, tile = self.synthesis_model(), self.tile
    if model is None:  # one tile holding the whole latent
      extra, tile = 0, max(max(v.shape[:2]) for v in symbols.values())
    else:
      extra = tiling.margin(tiling.reach(model), self.downsampling)
    try:
      # Each pixel rounded (not truncated) to 8 bits; the decoder output is clipped to [0, 255].
      return tiling.synthesise(self.reconstruct, symbols, self.downsampling, extra, tile,
                               header.image_size)
    except tiling.NonFiniteError:
      # The range checks' backstop: NaN must never reach the cast to 8 bits (it would be black).
      raise bitstream.BitstreamError(
          "the file decodes to non-finite pixels (a forged file, or a codec that does not fit "
          "it)") from None

  @abc.abstractmethod
  def reconstruct(self, symbols: dict):
    """{symbol name: int32 [B, h, w, C]} -> float32 images [B, H', W', 3] in [0, 255] (padded
    size): the synthesis transform."""

  def latents(self, images, differentiable: bool = False) -> dict:
    """float32 images [B, H, W, 3] in [0, 255] (multiples of the downsampling) -> {latent name:
    float32 [B, h, w, C]}: what a file of each image gives read_latents. differentiable=True:
    the training-time path with gradients (joint training)."""
    raise self._unsupported("compute latents from images")

  # What an evaluation result records of the codec, and how logs name it.

  def result_identity(self) -> dict:
    """The fields that say which codec a result is for (they lead its JSON)."""
    raise self._unsupported("identify itself in an evaluation result")

  @property
  def label(self) -> str:
    raise self._unsupported("name itself in logs")

  @property
  def target_bpp(self) -> float | None:
    """The rate it was trained for, where it has one."""
    return None
