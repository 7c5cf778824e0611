"""The autoencoder's shapes, interfaces, padding and operating points."""

import numpy as np
import pytest
import tensorflow as tf

from tfcdi.codec import model as model_lib
from tfcdi.codec import operating_points as ops
from tfcdi.codec import pretrained


@pytest.fixture(scope="module")
def tiny():
  return model_lib.from_operating_point(ops.get_operating_point("0.330"), filters=(8, 16))


def test_operating_points_follow_the_paper():
  assert {k: v.channels for k, v in ops.OPERATING_POINTS.items()} == {
      "0.0983": 8, "0.330": 16, "0.635": 32}
  for op in ops.OPERATING_POINTS.values():
    assert op.channels * op.target_entropy / 64 == pytest.approx(op.bpp)
    assert op.num_centers == 6
  assert ops.get_operating_point(0.33) is ops.OPERATING_POINTS["0.330"]
  with pytest.raises(ValueError, match="unknown operating point"):
    ops.get_operating_point("0.5")


def test_representation_is_an_eighth_of_the_image(tiny):
  images = tf.random.uniform([2, 32, 48, 3], 0, 255)
  out = tiny(images)
  assert out["y"].shape == (2, 4, 6, 16)
  assert out["reconstruction"].shape == (2, 32, 48, 3)
  symbols = tiny.encode(images)
  assert symbols.dtype == tf.int32 and symbols.shape == (2, 4, 6, 16)
  np.testing.assert_array_equal(symbols.numpy(), out["symbols"].numpy())
  np.testing.assert_array_equal(tiny.latent(symbols).numpy(), out["z_hat"].numpy())
  decoded = tiny.decode(symbols).numpy()
  assert decoded.min() >= 0 and decoded.max() <= 255


@pytest.mark.parametrize("size", [(1, 1), (7, 9), (8, 8), (17, 33)])
def test_padding_to_a_multiple_of_8_replicates_edges(size):
  images = tf.random.uniform([1, *size, 3], 0, 255)
  padded, original = model_lib.pad_to_multiple(images)
  h, w = padded.shape[1:3]
  assert h % 8 == 0 and w % 8 == 0 and h - size[0] < 8 and w - size[1] < 8
  np.testing.assert_array_equal(model_lib.crop_to(padded, original).numpy(), images.numpy())
  np.testing.assert_array_equal(padded[0, -1, -1].numpy(), images[0, -1, -1].numpy())


def test_bundle_round_trip_keeps_symbols_and_refuses_corruption(tiny, tmp_path):
  op = ops.get_operating_point("0.330")
  pretrained.round_weights_to_float16(tiny)
  path = str(tmp_path / "c.npz")
  fingerprint = pretrained.save_codec(tiny, op, pretrained.frequency_table(np.arange(6)),
                                      path, "tiny")
  codec = pretrained.load_codec(path=path)
  assert codec.fingerprint == fingerprint and codec.name == "tiny"
  images = tf.random.uniform([1, 16, 16, 3], 0, 255)
  np.testing.assert_array_equal(codec.model.encode(images).numpy(), tiny.encode(images).numpy())
  with pytest.raises(pretrained.CodecError, match="not 0.635"):
    pretrained.load_codec("0.635", path=path)
  (tmp_path / "bad.npz").write_bytes(b"not a bundle")
  with pytest.raises(pretrained.CodecError, match="not a readable"):
    pretrained.load_codec(path=str(tmp_path / "bad.npz"))


def test_frequency_table_is_integer_complete_and_normalised():
  freqs = pretrained.frequency_table([1000, 0, 10, 0, 5, 3])
  assert freqs.dtype == np.int64 and freqs.sum() == pretrained.FREQUENCY_TOTAL
  assert freqs.min() >= 1 and np.argmax(freqs) == 0
  with pytest.raises(ValueError):
    pretrained.frequency_table([-1, 2])
