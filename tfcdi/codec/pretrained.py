"""Codec bundles of every family, and the shipped ones: where the rest of tfcdi loads codecs.

`load_codec` loads the shipped codec of an operating point, or a bundle of any family from a
path (through the registry, registry.load: a hyperprior bundle as a HyperpriorCodec). The bundle
file (bundles.py) is shared by the families; what each stores, and its fingerprint, is in its
family module (autoencoder.py, hyperprior_codec.py), whose save and load functions are named here
too, under the names callers have always used.

The codec's identity is its name plus a fingerprint (8 bytes of a SHA-256 of its stored weights
and tables). A .tfci header carries both, and decoding with any other bundle is refused, even
one trained for the same operating point. Shipped bundles live in tfcdi/pretrained/
(codec_<operating point>.npz, hyperprior_q<quality>.npz).
"""

from __future__ import annotations

from tfcdi.codec import autoencoder
from tfcdi.codec import hyperprior_codec
from tfcdi.codec import registry
from tfcdi.codec.bundles import FREQUENCY_TOTAL  # noqa: F401
from tfcdi.codec.bundles import PRETRAINED_DIR  # noqa: F401
from tfcdi.codec.bundles import frequency_table  # noqa: F401
from tfcdi.codec.bundles import read_metadata  # noqa: F401
from tfcdi.codec.bundles import round_weights_to_float16  # noqa: F401
from tfcdi.codec.interface import CodecError  # noqa: F401  (where callers have caught it)

# The family modules' classes and bundle functions, under their long-standing names here.
Codec = autoencoder.AutoencoderCodec
HyperpriorCodec = hyperprior_codec.HyperpriorCodec
save_codec = autoencoder.save_codec
shipped_path = autoencoder.shipped_path
load_autoencoder_bundle = autoencoder.load_bundle
save_hyperprior_codec = hyperprior_codec.save_hyperprior_codec
load_hyperprior_codec = hyperprior_codec.load_hyperprior_codec
hyperprior_shipped_path = hyperprior_codec.hyperprior_shipped_path
hyperprior_integer_arrays = hyperprior_codec.hyperprior_integer_arrays
hyperprior_coding_tables = hyperprior_codec.hyperprior_coding_tables
read_hyperprior_tables = hyperprior_codec.read_hyperprior_tables


def load_codec(operating_point=None, path: str | None = None):
  """Loads a bundle: the shipped one of an operating point, or one from `path`.

  A bundle at `path` loads as a codec of the family its metadata names (registry.load): a
  hyperprior bundle as a HyperpriorCodec. An operating point and a bundle of a family without
  operating points are refused together.
  """
  if path is None and operating_point is None:
    raise CodecError("give an operating point or a codec bundle path")
  if path is None:
    return registry.get("autoencoder").load(None, operating_point)
  return registry.load(path, operating_point=operating_point)
