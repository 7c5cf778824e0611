"""The codec families, keyed by the .tfci header's family byte; bundles load through here.

Each family is one module defining FAMILY (an interface.Family); BUILT_IN below lists the
built-in ones (importing this module imports them, and so Keras). `register` adds one at run
time, e.g. a test's toy family. Every question about "which family" is answered here or by the
family's own objects; nothing outside tfcdi/codec/ compares family names or types.
"""

from __future__ import annotations

from tfcdi.codec import autoencoder
from tfcdi.codec import bitstream
from tfcdi.codec import bundles
from tfcdi.codec import factorized_codec
from tfcdi.codec import hyperprior_codec
from tfcdi.codec import interface
from tfcdi.codec import meanscale_codec
from tfcdi.codec.interface import CodecError

# The built-in families. Adding a family: one module and one line here (and its import above).
BUILT_IN = (autoencoder.FAMILY, hyperprior_codec.FAMILY, factorized_codec.FAMILY,
            meanscale_codec.FAMILY)
# What codec JSON without a "family" key is: stores and results from before families existed.
DEFAULT_FAMILY = "autoencoder"

_registered: dict[int, interface.Family] = interface.Family.registered


def register(family: interface.Family) -> interface.Family:
  """Adds a family (or replaces the one with its byte); returns it."""
  if not 0 <= family.byte <= 255 or not family.name:
    raise ValueError(f"a family needs a name and a byte in [0, 255], got {family.name!r} "
                     f"{family.byte}")
  clash = [f for b, f in _all().items() if f.name == family.name and b != family.byte]
  if clash:
    raise ValueError(f"family name {family.name!r} is taken by byte {clash[0].byte}")
  _registered[family.byte] = family
  return family


def unregister(byte: int) -> None:
  """Removes a family added with `register` (the built-in ones come back on next use)."""
  _registered.pop(byte, None)


def _all() -> dict[int, interface.Family]:
  for family in BUILT_IN:
    _registered.setdefault(family.byte, family)
  return _registered


def families() -> list[interface.Family]:
  """Every family, by byte."""
  return [f for _, f in sorted(_all().items())]


def names() -> tuple:
  return tuple(f.name for f in families())


def get(key) -> interface.Family:
  """The family of a byte (int) or a name (str).

  Raises:
    CodecError: no such family.
  """
  for byte, family in _all().items():
    if key == byte if isinstance(key, int) else key == family.name:
      return family
  raise CodecError(f"unknown codec family {key!r} (known: "
                   f"{', '.join(f'{f.byte} ({f.name})' for f in families())})")


def of_json(codec_json: dict, key: str = "family") -> interface.Family:
  """The family of a codec's JSON identity (`key` "family") or of an evaluation result
  (`key` "codec_family"); JSON without the key is from the autoencoder, the first family."""
  return get(codec_json.get(key) or DEFAULT_FAMILY)


def of_selector(selector: str) -> interface.Family | None:
  """The family whose shipped codecs `selector` ("operating_point", "quality") picks."""
  return next((f for f in families() if f.selected_by(selector)), None)


def name_of(byte: int) -> str:
  """The name of the family of a header's byte, or "unknown"."""
  family = _all().get(byte)
  return family.name if family else "unknown"


def parse_header(data: bytes):
  """A .tfci file's checked header, parsed by the family its family byte names.

  Raises:
    bitstream.BitstreamError: not a .tfci file, or one of a family nobody registered.
  """
  byte = bitstream.family_byte(data)
  family = _all().get(byte)
  if family is None:
    raise bitstream.BitstreamError(
        f"unsupported codec family {byte} (this tfcdi reads "
        f"{', '.join(f'{f.byte} ({f.name})' for f in families())})")
  return family.parse_header(data)


def check_file_family(header, family: str) -> None:
  """Refuses a file whose header is not of the family named `family`.

  Raises:
    CodecError: the file is of another family (or `family` is no family's name).
  """
  wanted = get(family)
  if header.codec_family != wanted.byte:
    raise CodecError(f"the file is of the {name_of(header.codec_family)} family, not of the "
                     f"{wanted.name} family")


def bundle_family(path: str) -> interface.Family:
  """The family a bundle's metadata names (the autoencoder's bundles name none)."""
  family = bundles.read_metadata(path).get("family") or DEFAULT_FAMILY
  try:
    return get(family)
  except CodecError:
    raise CodecError(f"{path}: unknown codec family {family!r}") from None


def load(path: str | None = None, *, family=None, **selection) -> interface.Codec:
  """A codec: the bundle at `path` (of the family its metadata names), or a family's shipped
  codec of a selection (operating_point=..., quality=...).

  A selection belongs to one family; asking a bundle of another for it is refused.

  Raises:
    CodecError: no such bundle or shipped codec, or one that does not match the request.
  """
  given = {k: v for k, v in selection.items() if v is not None}
  if path is not None:
    chosen = bundle_family(path)
    if family is not None and get(family).name != chosen.name:
      raise CodecError(f"{path} is a codec of the {chosen.name} family, not of the "
                       f"{get(family).name} family")
  elif family is not None:
    chosen = get(family)
  elif given:
    chosen = of_selector(next(iter(given)))
    if chosen is None:
      raise CodecError(f"no codec family is chosen by {', '.join(given)}")
  else:
    raise CodecError("give a codec bundle path, or a family and what selects its codec")
  for key in given:
    if not chosen.selected_by(key):
      words = key.replace("_", " ")
      if path is None:
        raise CodecError(f"the {chosen.name} codec takes "
                         f"{chosen.selector.replace('_', ' ')}, not {words}")
      owner = of_selector(key)
      raise CodecError(f"{path} is {_a(chosen.name)} codec, not "
                       f"{_a(owner.name if owner else 'other')} codec for {words} {given[key]}")
  return chosen.load(path, given.get(chosen.selector))


def _a(word: str) -> str:
  return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def read_tables(path: str) -> interface.Reader:
  """The Reader of a bundle of any family, without building its model."""
  return bundle_family(path).read_tables(path)


def tables_from_json(codec_json: dict, folder: str | None = None) -> interface.Reader:
  """The Reader a store's metadata or an export's info recorded (Reader.to_json)."""
  return of_json(codec_json).tables_from_json(codec_json, folder)


def describe(codec_json: dict, key: str = "family") -> str:
  """"operating point 0.635", "hyperprior quality 4": a codec's JSON identity in words."""
  return of_json(codec_json, key).describe(codec_json)
