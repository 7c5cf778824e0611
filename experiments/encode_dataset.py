r"""tfcdi-encode-dataset: a dataset -> latent store of real .tfci files, sized beside its source.

  tfcdi-encode-dataset --operating_point=0.635 \
      --data_dir=../shared/data/imagenette2_224 --splits=train,val --store_dir=stores/0.635
  tfcdi-encode-dataset --codec=runs/codec_0.635/codec_0.635.npz --tfds_name=imagenet2012 \
      --tfds_data_dir=~/tensorflow_datasets --splits=train,validation --store_dir=stores/in1k
  tfcdi-encode-dataset ... --decode     # also decode the store once, for the decoded-RGB arm
  tfcdi-encode-dataset ... --latent_cache  # and entropy-decode it once, for the latent arms
  tfcdi-encode-dataset ... --beam       # shards spread over Apache Beam workers (pip .[beam])
  tfcdi-encode-dataset ... --beam --beam_option=--runner=DirectRunner \
      --beam_option=--direct_running_mode=multi_processing --beam_option=--direct_num_workers=2
  tfcdi-encode-dataset --codec=hyperprior --quality=4 \
      --codec_path=runs/hyperprior_q4/hyperprior_q4.npz \
      --data_dir=../shared/data/imagenette2_224 --splits=train,val --store_dir=stores/hp_q4

Every image becomes a 256 x 256 view (shorter side resized to 256, central square) whose .tfci
file holds a 32 x 32 x C latent (a hyperprior file: y of 16 x 16 x M and z of 4 x 4 x N); see
tfcdi/data/latent_store.py. Killed and restarted with the
same flags, it skips the shards it has finished. With --beam the shards are encoded by the
workers of an Apache Beam pipeline (tfcdi/data/beam_encode.py; the DirectRunner's processes by
default, any runner through --beam_option), into the same store, byte for byte. At the end it prints the store's size beside
the source images' and the paper's ImageNet figures (from shared/reference/paper_numbers.json).
Problems are one `error: ...` line on stderr and exit status 1.
"""

import os

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
from absl import logging

from experiments import _cli

# TensorFlow's modules, imported at first use (in main): --help and flag errors need none.
tf = _cli.lazy_import("tensorflow")
published = _cli.lazy_import("tfcdi.reporting.published")
latent_store = _cli.lazy_import("tfcdi.data.latent_store")
rgb_arms = _cli.lazy_import("tfcdi.data.rgb_arms")

_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "ImageFolder root holding the splits (root/<split>/<class>/<image>).")
_TFDS_NAME = flags.DEFINE_string(
    "tfds_name", None, "A TensorFlow Datasets name (e.g. imagenet2012) instead of --data_dir.")
_TFDS_DATA_DIR = flags.DEFINE_string("tfds_data_dir", None, "The tfds data_dir.")
_SPLITS = flags.DEFINE_list("splits", ["train", "val"], "Splits to encode.")
_STORE_DIR = flags.DEFINE_string("store_dir", None, "Where the store goes.",
                                 allow_override=True)
_OPERATING_POINT, _CODEC = _cli.define_codec_flags()
_QUALITY, _CODEC_PATH = _cli.define_family_flags()
_IMAGE_SIZE = flags.DEFINE_integer(
    "image_size", _cli.STORE_IMAGE_SIZE, "Side of the square view that is encoded.")
_SHARD_SIZE = flags.DEFINE_integer(
    "shard_size", _cli.STORE_SHARD_SIZE, "Examples per TFRecord shard.")
# Not --batch_size: train_classifier has that flag with another meaning, and tests import both.
_BATCH_SIZE = flags.DEFINE_integer("encoder_batch_size", 16, "Images the encoder runs at once.")
_LIMIT = flags.DEFINE_integer("limit", 0, "Encode only this many images per split (0 = all).")
_DECODE = flags.DEFINE_bool(
    "decode", False, "Also decode the store once through the codec, for the decoded-RGB arm.")
_LATENT_CACHE = flags.DEFINE_bool(
    "latent_cache", False, "Also entropy-decode the store once into its latent cache, which "
    "the latent arms then read: the same symbols, several times the examples per CPU core and "
    "no GIL bound (tools/input_throughput.py), at 1 byte per latent entry on disk.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show progress bars.")
_BEAM = flags.DEFINE_bool(
    "beam", False, "Encode the shards on an Apache Beam pipeline (the optional .[beam] extra): "
    "the same store, byte for byte, its shards spread over the runner's workers.")
_BEAM_OPTIONS = flags.DEFINE_multi_string(
    "beam_option", [], "A Beam pipeline option, passed through as it is (repeat the flag), e.g. "
    "--beam_option=--runner=FlinkRunner. None: the DirectRunner, one process per core.")
_PAPER_NUMBERS = _cli.define_paper_numbers_flag()


_error = _cli.error


def _load_codec():
  """The codec of the flags: a pretrained.Codec or pretrained.HyperpriorCodec."""
  family, path = _cli.resolve_codec_flag(_CODEC.value, _CODEC_PATH.value)
  return _cli.load_codec(_OPERATING_POINT.value, path, quality=_QUALITY.value, family=family,
                         families=_cli.CODEC_FAMILIES + _cli.IMPORTED_FAMILIES)


def _source(split: str):
  if _TFDS_NAME.value:
    return latent_store.TfdsSource(_TFDS_NAME.value, split, _TFDS_DATA_DIR.value,
                                   limit=_LIMIT.value)
  return latent_store.ImageFolderSource(_DATA_DIR.value, split, limit=_LIMIT.value)


def _published():
  try:
    return published.load_paper_numbers(_PAPER_NUMBERS.value)["claims"]["imagenet_storage_gb"]
  except (ValueError, KeyError):
    return None  # the comparison line is a courtesy; the store is made without it


def _beam_encode(split: str):
  """The split encoded on Beam; the codec is loaded again in each worker from the same flags."""
  import functools  # pylint: disable=g-import-not-at-top
  try:
    from tfcdi.data import beam_encode  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ValueError(f"--beam needs Apache Beam, the optional extra: pip install -e '.[beam]' "
                     f"({e})") from None
  family, path = _cli.resolve_codec_flag(_CODEC.value, _CODEC_PATH.value)
  load = functools.partial(_cli.load_codec, _OPERATING_POINT.value, path,
                           quality=_QUALITY.value, family=family, families=_cli.CODEC_FAMILIES)
  entry, _ = beam_encode.encode_split(
      _source(split), load, os.path.abspath(_STORE_DIR.value), split, options=_BEAM_OPTIONS.value,
      image_size=_IMAGE_SIZE.value, shard_size=_SHARD_SIZE.value,
      batch_size=_BATCH_SIZE.value, log=print)
  return entry


def main(argv):
  if len(argv) > 1:
    _error(f"unexpected arguments: {' '.join(argv[1:])}")
    return 1
  if bool(_DATA_DIR.value) == bool(_TFDS_NAME.value):
    _error("give exactly one of --data_dir and --tfds_name")
    return 1
  if not _STORE_DIR.value:
    _error("--store_dir is required")
    return 1
  if _BEAM_OPTIONS.value and not _BEAM.value:
    _error("--beam_option is for --beam")
    return 1
  logging.set_verbosity(logging.WARNING)
  try:
    codec = _load_codec()
    for split in _SPLITS.value:
      if _BEAM.value:
        entry = _beam_encode(split)
      else:
        entry = latent_store.encode_split(
            _source(split), codec, _STORE_DIR.value, split, image_size=_IMAGE_SIZE.value,
            shard_size=_SHARD_SIZE.value, batch_size=_BATCH_SIZE.value,
            progress=_PROGRESS.value, log=print)
      print(f"{split}: {entry['count']} images encoded into {_STORE_DIR.value}", flush=True)
      if _DECODE.value:
        rgb_arms.build_decoded_cache(_STORE_DIR.value, split, codec,
                                     batch_size=_BATCH_SIZE.value, progress=_PROGRESS.value)
      if _LATENT_CACHE.value:
        latent_store.build_latent_cache(_STORE_DIR.value, split, progress=_PROGRESS.value)
  except (ValueError, OSError) as e:
    _error(e)
    return 1
  except tf.errors.OpError as e:  # e.g. an undecodable image inside the input pipeline
    _error(e.message.splitlines()[0])
    return 1
  for line in latent_store.size_report(latent_store.read_metadata(_STORE_DIR.value),
                                       _published()):
    print(line, flush=True)
  return 0


def run():
  _cli.run(main)


if __name__ == "__main__":
  run()
