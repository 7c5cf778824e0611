"""The block-spec table and the ResNet / cResNet builder: shapes, strides, dilation, errors."""

import functools
import json
import os

import keras
import numpy as np
import pytest

from tfcdi import nets
from tfcdi.nets import specs

_PAPER_NUMBERS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference",
                              "paper_numbers.json")
TINY = 0.125  # width multiplier of the test nets: 8 root filters, base depths 8 .. 64
FEATURES = 256  # channels of the last stage of a TINY net (4 * 512 * TINY)
RGB_NETS = ("resnet50", "resnet71")
LATENT_NETS = ("cresnet39", "cresnet51", "cresnet72")


def _conv(model, name):
  return model.get_layer(name)


def test_table_has_the_papers_nets_as_rows():
  assert nets.net_names() == RGB_NETS + LATENT_NETS
  assert all(isinstance(spec, specs.NetSpec) for spec in specs.NETS.values())
  assert specs.get_spec("resnet71").units_per_stage == {
      "conv2": 3, "conv3": 4, "conv4": 13, "conv5": 3}
  assert specs.get_spec("cresnet51").units_per_stage == {"conv3": 4, "conv4": 10, "conv5": 3}


def test_table_matches_paper_numbers_json():
  if not os.path.exists(_PAPER_NUMBERS):
    pytest.skip("shared/reference/paper_numbers.json is not beside the repo")
  with open(_PAPER_NUMBERS) as f:
    architectures = json.load(f)["architectures"]
  for name, spec in specs.NETS.items():
    row = architectures[name]
    assert spec.include_root == row["root"], name
    for stage in ("conv2", "conv3", "conv4", "conv5"):
      assert spec.units_per_stage.get(stage, 0) == row[f"{stage}_x"], (name, stage)


def test_depth_in_the_name_counts_weight_layers():
  # ResNets count 3 convs per unit + root conv + fc; the paper names cResNets by their units only.
  for name, spec in specs.NETS.items():
    depth = 3 * spec.num_units + (2 if spec.include_root else 0)
    assert name.endswith(str(depth)), name


def test_unit_strides_paper_and_slim():
  resnet50 = specs.get_spec("resnet50")
  assert specs.unit_strides(resnet50, "paper") == [[1, 1, 1], [2, 1, 1, 1], [2] + [1] * 5,
                                                   [2, 1, 1]]
  # tf-slim's resnet_v1_50: block1..3 stride 2 on their last unit, block4 stride 1.
  assert specs.unit_strides(resnet50, "slim") == [[1, 1, 2], [1, 1, 1, 2], [1] * 5 + [2],
                                                  [1, 1, 1]]
  # The latent is already at conv3 resolution: conv3_1 does not downsample.
  assert specs.unit_strides(specs.get_spec("cresnet39"), "paper") == [
      [1, 1, 1, 1], [2] + [1] * 5, [2, 1, 1]]


# The tests share their tiny nets: building one takes a second or two on a busy 2-core machine.
@functools.lru_cache(maxsize=None)
def _tiny(name, channels=3, **kwargs):
  return nets.build_resnet(name, input_shape=(None, None, channels), width_multiplier=TINY,
                           **kwargs)


def _features(model):
  """The feature extractor of a net with a head: everything before the global pool."""
  return keras.Model(model.input, model.get_layer("pool5").input)


def _output_shape(model, shape):
  return tuple(model.compute_output_spec(keras.KerasTensor((1,) + shape)).shape)


@pytest.mark.parametrize("name", RGB_NETS)
def test_rgb_net_shapes(name):
  model = _tiny(name, num_classes=7)
  assert model.input_shape == (None, None, None, 3)
  assert model(np.zeros((2, 64, 48, 3), np.float32)).shape == (2, 7)
  for height, width in [(64, 48), (32, 32), (65, 33)]:
    assert _output_shape(_features(model), (height, width, 3)) == (
        1, -(-height // 32), -(-width // 32), FEATURES)


@pytest.mark.parametrize("name,channels", [("cresnet39", 8), ("cresnet51", 16),
                                           ("cresnet72", 32)])
def test_latent_net_shapes(name, channels):
  model = _tiny(name, channels, num_classes=5)
  assert model.input_shape == (None, None, None, channels)
  assert model(np.zeros((2, 12, 10, channels), np.float32)).shape == (2, 5)
  # conv3 keeps the latent's resolution; conv4_1 and conv5_1 halve it.
  for height, width in [(12, 10), (28, 28), (5, 7)]:
    assert _output_shape(_features(model), (height, width, channels)) == (
        1, -(-height // 4), -(-width // 4), FEATURES)


def test_paper_placement_strides_the_first_1x1_conv():
  model = _tiny("resnet50", num_classes=7)
  assert _conv(model, "conv3_1_conv1").strides == (2, 2)
  assert _conv(model, "conv3_1_conv2").strides == (1, 1)
  assert _conv(model, "conv3_1_shortcut").strides == (2, 2)
  assert _conv(model, "conv2_3_conv2").strides == (1, 1)
  assert _conv(model, "conv5_1_conv1").strides == (2, 2)


def test_slim_placement_strides_the_3x3_of_the_previous_stages_last_unit():
  model = _tiny("resnet50", stride_placement="slim")
  assert _conv(model, "conv2_3_conv2").strides == (2, 2)
  assert _conv(model, "conv2_3_conv2_pad").padding == ((1, 1), (1, 1))  # slim's conv2d_same
  assert _conv(model, "conv3_1_conv1").strides == (1, 1)
  # Unchanged depth, stride 2: the shortcut just subsamples (slim's 1x1 max pool).
  assert _conv(model, "conv2_3_shortcut_subsample").strides == (2, 2)
  assert _conv(model, "conv5_3_conv2").strides == (1, 1)
  assert model(np.zeros((1, 64, 64, 3), np.float32)).shape == (1, 1000)
  assert _output_shape(_features(model), (65, 64, 3)) == (1, 3, 2, FEATURES)


def test_root_block():
  model = _tiny("resnet50", num_classes=7)
  conv1 = _conv(model, "conv1")
  assert conv1.kernel_size == (7, 7) and conv1.strides == (2, 2) and conv1.filters == 8
  assert _conv(model, "conv1_pad").padding == ((3, 3), (3, 3))
  pool1 = model.get_layer("pool1")
  assert pool1.pool_size == (3, 3) and pool1.strides == (2, 2)
  assert model.get_layer("conv2_1_conv1").input.shape[1:] == (None, None, 8)


def test_width_multiplier_scales_every_width():
  model = _tiny("resnet71", num_classes=7)
  assert _conv(model, "conv1").filters == 8
  assert _conv(model, "conv2_1_conv1").filters == 8
  assert _conv(model, "conv3_4_conv2").filters == 16
  assert _conv(model, "conv4_13_conv3").filters == 128
  assert _conv(model, "conv5_3_conv3").filters == 256
  assert model.get_layer("logits").units == 7


def test_dilated_rgb_net_keeps_stride_8():
  model = _tiny("resnet50", include_top=False, output_stride=8)
  assert model(np.zeros((1, 64, 64, 3), np.float32)).shape == (1, 8, 8, FEATURES)
  assert _output_shape(model, (320, 320, 3)) == (1, 40, 40, FEATURES)
  # DeepLab's rates: conv4_x dilation 2 and conv5_x dilation 4, and no stride after conv3_1.
  assert _conv(model, "conv3_1_conv1").strides == (2, 2)
  assert _conv(model, "conv4_1_conv1").strides == (1, 1)
  assert _conv(model, "conv4_1_shortcut").strides == (1, 1)
  assert _conv(model, "conv4_1_conv2").dilation_rate == (2, 2)
  assert _conv(model, "conv4_6_conv2").dilation_rate == (2, 2)
  assert _conv(model, "conv5_1_conv2").dilation_rate == (4, 4)
  assert _conv(model, "conv5_3_conv2").dilation_rate == (4, 4)
  assert _conv(model, "conv3_4_conv2").dilation_rate == (1, 1)
  # "latent" means the latent's resolution: image / 8 for the RGB nets.
  assert specs.get_spec("resnet50").latent_output_stride == 8


def test_dilated_rgb_net_at_output_stride_16():
  model = _tiny("resnet71", include_top=False, output_stride=16)
  assert _output_shape(model, (64, 64, 3)) == (1, 4, 4, FEATURES)
  assert _conv(model, "conv4_13_conv2").dilation_rate == (1, 1)
  assert _conv(model, "conv5_1_conv1").strides == (1, 1)
  assert _conv(model, "conv5_1_conv2").dilation_rate == (2, 2)


def test_dilated_slim_net_dilates_after_the_strided_unit():
  model = _tiny("resnet50", include_top=False, output_stride=8, stride_placement="slim")
  assert _output_shape(model, (64, 64, 3)) == (1, 8, 8, FEATURES)
  # As tf-slim's stack_blocks_dense: the unit that would stride keeps rate 1 ...
  assert _conv(model, "conv3_4_conv2").strides == (1, 1)
  assert _conv(model, "conv3_4_conv2").dilation_rate == (1, 1)
  # ... and the units after it dilate.
  assert _conv(model, "conv4_1_conv2").dilation_rate == (2, 2)
  assert _conv(model, "conv4_6_conv2").dilation_rate == (2, 2)
  assert _conv(model, "conv5_1_conv2").dilation_rate == (4, 4)


def test_dilated_cresnet_keeps_latent_resolution():
  model = _tiny("cresnet51", 16, include_top=False, output_stride="latent")
  assert model(np.zeros((1, 10, 12, 16), np.float32)).shape == (1, 10, 12, FEATURES)
  assert _output_shape(model, (40, 40, 16)) == (1, 40, 40, FEATURES)
  assert _conv(model, "conv4_1_conv2").dilation_rate == (2, 2)
  assert _conv(model, "conv5_3_conv2").dilation_rate == (4, 4)
  assert specs.get_spec("cresnet51").latent_output_stride == 1


def test_weight_decay_softmax_and_saving(tmp_path):
  model = _tiny("cresnet39", 8, num_classes=4, weight_decay=1e-4,
                classifier_activation="softmax", output_stride="latent")
  kernels = [layer for layer in model.layers
             if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
  assert len(model.losses) == len(kernels) == 3 * 13 + 3 + 1
  # SGD-style decay: the loss is wd / 2 * sum(w^2), so its gradient is wd * w.
  logits = model.get_layer("logits")
  expected = 0.5e-4 * float(np.sum(np.square(logits.kernel.numpy())))
  assert np.isclose(float(logits.kernel_regularizer(logits.kernel)), expected, rtol=1e-5)
  assert not _tiny("cresnet39", 8, num_classes=5).losses
  assert model.get_layer("conv3_1_conv1_bn").epsilon == 1e-5

  x = np.random.default_rng(0).normal(size=(2, 6, 6, 8)).astype(np.float32)
  probabilities = model(x)
  np.testing.assert_allclose(np.sum(probabilities, axis=-1), 1.0, rtol=1e-5)
  # Only built-in layers: a .keras file loads without custom objects.
  path = str(tmp_path / "cresnet39.keras")
  model.save(path)
  restored = keras.saving.load_model(path)
  np.testing.assert_allclose(restored(x), probabilities, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs,message", [
    (dict(name="resnet18"), "Unknown net"),
    (dict(name="resnet50", input_shape=(None, None, 4)), "3 input channels"),
    (dict(name="resnet50", input_shape=(None, None)), "height, width, channels"),
    (dict(name="cresnet39"), "input_shape=\\(height, width, C\\)"),
    (dict(name="cresnet39", input_shape=(None, None, None)), "channel count"),
    (dict(name="resnet50", output_stride=2), "output_stride=2"),
    (dict(name="resnet50", output_stride=64), "cannot be reached"),
    (dict(name="cresnet51", input_shape=(None, None, 8), output_stride=8), "cannot be reached"),
    (dict(name="resnet50", output_stride="dense"), "cannot be reached"),
    (dict(name="resnet50", stride_placement="v1.5"), "stride_placement"),
    (dict(name="resnet50", width_multiplier=0.0), "width_multiplier"),
])
def test_bad_arguments_raise_value_error(kwargs, message):
  with pytest.raises(ValueError, match=message):
    nets.build_resnet(**kwargs)
