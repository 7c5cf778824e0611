"""The codec registry and interface: every family through the same calls, and a toy third one
that registers in a few lines and goes through compress, decompress, read_latents and the
latent store without any other module knowing of it."""

import dataclasses
import json
import os
import struct

import numpy as np
import pytest
import tensorflow as tf

from tfcdi.codec import bitstream
from tfcdi.codec import coding
from tfcdi.codec import interface
from tfcdi.codec import registry
from tfcdi.data import latent_store
from tfcdi.data import rgb_arms

IMAGENETTE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                          "imagenette2_224")
TOY_BYTE = 7


def _image(height, width, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# --- the built-in families, through the same calls ----------------------------------------------


@pytest.fixture(name="bundle", params=["autoencoder", "hyperprior"])
def fixture_bundle(request, tiny_codec_path, tiny_hyperprior_path):
  """(path, codec) of a tiny bundle of each built-in family."""
  path = {"autoencoder": tiny_codec_path, "hyperprior": tiny_hyperprior_path}[request.param]
  return path, registry.load(path)


def test_bundles_load_through_the_registry_as_their_familys_codec(bundle):
  path, codec = bundle
  assert isinstance(codec, interface.Codec) and registry.get(codec.family) is codec.family_info
  assert registry.get(codec.bitstream_family).name == codec.family
  tables = registry.read_tables(path)  # without the model
  assert tables.same_codec(codec) and not isinstance(tables, interface.Codec)
  assert tables.to_json() == codec.tables().to_json()


def test_every_family_reads_back_from_its_files_the_latents_its_model_gives(bundle):
  _, codec = bundle
  image = _image(32, 48, seed=1)  # a multiple of every built-in downsampling
  data = codec.compress(image)
  header = registry.parse_header(data)
  assert header.codec_family == codec.bitstream_family and header.image_size == (32, 48)
  latents = codec.read_latents(data)
  assert tuple(latents) == codec.latent_names
  from_images = codec.latents(tf.constant(image[None], tf.float32))
  for name in codec.latent_names:
    assert latents[name].shape == (32 // codec.downsampling, 48 // codec.downsampling,
                                   codec.channels)
    np.testing.assert_array_equal(latents[name], from_images[name].numpy()[0])
    # The Reader, which has no model, reads the same numbers.
    np.testing.assert_array_equal(codec.tables().read_latents(data)[name], latents[name])
  assert codec.decompress(data).shape == image.shape
  assert np.array_equal(coding.decompress_bytes(data, codec), codec.decompress(data))


def test_a_readers_json_identity_and_side_files_give_it_back(bundle, tmp_path):
  _, codec = bundle
  tables = codec.tables()
  tables.save_beside(str(tmp_path))
  again = registry.tables_from_json(json.loads(json.dumps(tables.to_json())), str(tmp_path))
  assert again.same_codec(codec) and again.integer_tables().keys() == tables.integer_tables().keys()
  assert all(np.array_equal(again.integer_tables()[k], v)
             for k, v in tables.integer_tables().items())


def test_a_selection_of_another_family_is_refused_by_name(tiny_hyperprior_path):
  with pytest.raises(interface.CodecError, match="hyperprior codec, not an autoencoder codec"):
    registry.load(tiny_hyperprior_path, operating_point="0.635")
  with pytest.raises(interface.CodecError, match="takes quality, not operating point"):
    registry.load(family="hyperprior", operating_point="0.635")
  with pytest.raises(interface.CodecError, match="unknown codec family 'jpeg'"):
    registry.get("jpeg")


# --- the toy family: 4 x 4 block means of each colour, one byte each ----------------------------

_TOY_FIXED = struct.Struct(">8sII")


@dataclasses.dataclass(frozen=True)
class ToyHeader:
  codec_family: int
  codec_name: str
  fingerprint: bytes
  image_size: tuple
  latent_shape: tuple
  payload_offset: int


class ToyFamily(interface.Family):
  name, byte, downsampling, selector = "toy", TOY_BYTE, 4, "level"
  latent_names, symbol_names = ("t_hat",), ("t",)

  def parse_header(self, data):
    n = data[6]
    fingerprint, height, width = _TOY_FIXED.unpack(bytes(data[7 + n:7 + n + _TOY_FIXED.size]))
    return ToyHeader(data[5], bytes(data[7:7 + n]).decode(), fingerprint, (height, width),
                     (-(-height // 4), -(-width // 4), 3), 7 + n + _TOY_FIXED.size)

  def load(self, path=None, selection=None):
    return ToyCodec(json.loads(bytes(np.load(path)["meta"]).decode())["name"])

  def tables_from_json(self, data, folder=None):
    return ToyCodec(data["name"])


@dataclasses.dataclass(frozen=True)
class ToyCodec(interface.Codec):
  name: str
  family, bitstream_family, channels, fingerprint = "toy", TOY_BYTE, 3, b"toytoyto"

  def to_json(self):
    return {"family": self.family, "name": self.name, "fingerprint": self.fingerprint.hex()}

  def latent_shapes(self, image_size):
    return {"latent_shape": [-(-int(s) // 4) for s in image_size] + [3]}

  def check_shapes(self, header):
    pass

  def batch_compressor(self, image_size):
    def files(images, size):
      blocks = tf.nn.avg_pool2d(tf.convert_to_tensor(images), 4, 4, "SAME").numpy()
      head = (bitstream.MAGIC + bytes([1, TOY_BYTE, len(self.name)]) + self.name.encode()
              + _TOY_FIXED.pack(self.fingerprint, *size))
      return [head + np.rint(b).astype(np.uint8).tobytes() for b in blocks]
    return files

  def read_symbols(self, data):
    header = registry.parse_header(data)
    self.check_header(header)
    t = np.frombuffer(data[header.payload_offset:], np.uint8)
    return header, {"t": t.reshape(header.latent_shape).astype(np.int32)}

  def latents_from_symbols(self, symbols):
    return {"t_hat": tf.cast(symbols["t"], tf.float32) / 255.0}

  def reconstruct(self, symbols):
    return tf.cast(tf.repeat(tf.repeat(symbols["t"], 4, axis=-3), 4, axis=-2), tf.float32)


@pytest.fixture(name="toy")
def fixture_toy():
  registry.register(ToyFamily())
  yield ToyCodec("toy-1")
  registry.unregister(TOY_BYTE)


def test_a_toy_family_compresses_decompresses_and_reads_latents_through_the_interface(toy):
  image = _image(12, 16)
  data = coding.compress_image(toy, image)
  header = registry.parse_header(data)
  assert header.codec_family == TOY_BYTE and header.image_size == (12, 16)
  decoded = coding.decompress_bytes(data, toy)
  block_means = image.reshape(3, 4, 4, 4, 3).mean(axis=(1, 3))
  assert np.abs(decoded[::4, ::4].astype(float) - block_means).max() <= 0.5
  latents = coding.read_latents(data, toy)
  assert list(latents) == ["t_hat"] and latents["t_hat"].shape == (3, 4, 3)
  np.testing.assert_allclose(latents["t_hat"], np.rint(block_means) / 255.0, rtol=1e-6)
  # Another codec of the family does not read it: the interface's identity check.
  with pytest.raises(interface.CodecError, match="made by codec 'toy-1'"):
    ToyCodec("toy-2").read_latents(data)


def test_a_toy_bundle_loads_through_the_registry_and_is_found_by_its_files(toy, tmp_path):
  meta = json.dumps({"family": "toy", "name": "toy-1", "fingerprint": toy.fingerprint.hex()})
  np.savez(tmp_path / "toy.npz", meta=np.frombuffer(meta.encode(), np.uint8))
  assert registry.load(str(tmp_path / "toy.npz")) == toy
  data = coding.compress_image(toy, _image(8, 8))
  assert coding.find_codec(registry.parse_header(data), str(tmp_path)) == toy
  with pytest.raises(interface.CodecError, match="not of the autoencoder family"):
    registry.load(str(tmp_path / "toy.npz"), family="autoencoder")


def test_files_of_an_unregistered_family_are_refused_by_number(toy):
  data = coding.compress_image(toy, _image(8, 8))
  registry.unregister(TOY_BYTE)
  with pytest.raises(bitstream.BitstreamError, match="unsupported codec family 7"):
    registry.parse_header(data)


@pytest.mark.skipif(not os.path.isdir(IMAGENETTE), reason="the shared Imagenette is not beside "
                    "the repo")
def test_a_toy_family_goes_through_the_latent_store(toy, tmp_path):
  source = latent_store.ImageFolderSource(IMAGENETTE, "train", limit=3)
  store_dir = str(tmp_path / "store")
  latent_store.encode_split(source, toy, store_dir, "train", image_size=32, shard_size=2,
                            progress=False)
  meta = latent_store.read_metadata(store_dir)
  assert latent_store.store_family(meta) == "toy" and meta["latent_shape"] == [8, 8, 3]
  assert latent_store.store_tables(meta, store_dir) == toy
  latents = list(latent_store.latent_dataset(store_dir, "train").as_numpy_iterator())
  assert [label for _, label in latents] == source.labels
  for (t_hat, _), path in zip(latents, source.paths):
    view = latent_store.square_view(latent_store.images_lib.decode_rgb(path), 32).numpy()
    means = view.reshape(8, 4, 8, 4, 3).mean(axis=(1, 3))
    assert np.abs(t_hat * 255.0 - means).max() <= 0.5 + 1e-3
  latent_store.build_latent_cache(store_dir, "train", progress=False)
  cached = list(latent_store.latent_dataset(store_dir, "train", cached=True,
                                            output="symbols").as_numpy_iterator())
  direct = list(latent_store.latent_dataset(store_dir, "train",
                                            output="symbols").as_numpy_iterator())
  assert all(np.array_equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(cached, direct))
  rgb_arms.build_decoded_cache(store_dir, "train", toy, progress=False)
  decoded = [image for image, _ in rgb_arms.decoded_dataset(store_dir, "train")]
  assert decoded[0].shape == (32, 32, 3)
  assert np.array_equal(decoded[0].numpy()[::4, ::4], direct[0][0].astype(np.uint8))


def test_a_family_refuses_what_it_does_not_implement_in_one_line(toy):
  # The toy family implements only what reading and writing its files needs; the optional
  # capabilities are refused with a CodecError naming the codec, and the required ones cannot
  # be left out (an abstract method, caught when the class is instantiated).
  codec, family = toy, ToyFamily()
  for call in (codec.integer_tables, codec.analysis_model, codec.result_identity,
               lambda: codec.label, lambda: family.read_tables("x.npz")):
    with pytest.raises(interface.CodecError, match="cannot") as raised:
      call()
    assert "\n" not in str(raised.value)

  class Incomplete(interface.Codec):
    def to_json(self):
      return {}
  with pytest.raises(TypeError, match="abstract"):
    Incomplete()
