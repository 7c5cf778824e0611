"""The follow-up's two-branch cResNet-39: the cresnet39 row built with input_branches="hyperprior"."""

import functools

import keras
import numpy as np
import pytest

from tfcdi import nets
from tfcdi.nets import flops
from tfcdi.nets import specs

TINY = 0.125  # branches: base depth 4, 16 channels each; conv3_x reads 32 channels
M = 192  # channels of y_hat and sigma_hat at the follow-up's qualities 1 and 4 (320 at 8)
MINC_CLASSES = 23


@functools.lru_cache(maxsize=None)
def _tiny(channels=8, num_classes=5, **kwargs):
  return nets.build_resnet("cresnet39", (None, None, channels), num_classes,
                           width_multiplier=TINY, input_branches="hyperprior", **kwargs)


@functools.lru_cache(maxsize=None)
def _full_size(channels=M, branches="hyperprior"):
  # Zero kernels build faster than random ones and change no count.
  return nets.build_resnet("cresnet39", (None, None, channels), MINC_CLASSES,
                           input_branches=branches, kernel_initializer="zeros")


def _weight_shapes(model, prefixes):
  return {w.path: tuple(w.shape) for w in model.weights if w.path.startswith(prefixes)}


def test_branches_are_data_and_the_table_is_unchanged():
  assert nets.net_names() == ("resnet50", "resnet71", "cresnet39", "cresnet51", "cresnet72")
  branches = specs.INPUT_BRANCHES["hyperprior"]
  assert [b.input_name for b in branches] == ["y_hat", "sigma_hat"]
  # Table 2 of the follow-up: conv2_x as two columns of 1x1,32 / 3x3,32 / 1x1,128.
  assert all(b.block == specs.Block("conv2", 32, 1, 1) for b in branches)
  assert sum(b.block.depth for b in branches) == 256  # what conv3_1 of ResNet-50 reads
  assert specs.get_input_branches("hyperprior") is branches


def test_two_inputs_each_through_its_own_branch():
  model = _tiny()
  assert model.name == "cresnet39_hyperprior"
  assert [t.name for t in model.inputs] == ["y_hat", "sigma_hat"]
  for name in ("y_hat", "sigma_hat"):
    assert model.get_layer(f"{name}_conv2_1_conv1").input.shape[-1] == 8
    assert model.get_layer(f"{name}_conv2_1_conv2").kernel_size == (3, 3)
    assert model.get_layer(f"{name}_conv2_1_conv3").filters == 16
    assert model.get_layer(f"{name}_conv2_1_shortcut").filters == 16  # M != 128: projection
  assert model.get_layer("branches").output.shape[-1] == 32
  assert model.get_layer("conv3_1_conv1").input.shape[-1] == 32
  # The y_hat branch never sees sigma_hat and vice versa.
  y_branch = keras.Model(model.inputs[0], model.get_layer("y_hat_conv2_1_out").output)
  assert len(y_branch.inputs) == 1


def test_list_and_dict_inputs_and_shapes():
  model = _tiny(num_classes=5)
  rng = np.random.default_rng(0)
  y = rng.normal(size=(2, 28, 28, 8)).astype(np.float32)
  sigma = rng.uniform(0.1, 2.0, size=(2, 28, 28, 8)).astype(np.float32)
  by_list = model([y, sigma])
  by_dict = model({"y_hat": y, "sigma_hat": sigma})
  assert by_list.shape == (2, 5)
  np.testing.assert_allclose(by_list, by_dict, rtol=1e-6)
  # Swapping the inputs changes the answer: the branches have their own weights.
  assert not np.allclose(model([sigma, y]), by_list)
  features = keras.Model(model.inputs, model.get_layer("pool5").input)
  assert tuple(features.compute_output_spec(
      [keras.KerasTensor((1, 28, 28, 8))] * 2).shape) == (1, 7, 7, 256)


def test_conv3_onward_is_cresnet39():
  two_branch = _tiny(channels=8, num_classes=5)
  one_branch = nets.build_resnet("cresnet39", (None, None, 32), 5, width_multiplier=TINY)
  # cresnet39 reading 32 channels has exactly the trunk the 2 x 16 concatenated channels enter.
  trunk = ("conv3", "conv4", "conv5", "logits")
  assert _weight_shapes(two_branch, trunk) == _weight_shapes(one_branch, trunk)
  branch_weights = {w.path.split("/")[0] for w in two_branch.weights
                    if not w.path.startswith(trunk)}
  assert {p.split("_conv2_")[0] for p in branch_weights} == {"y_hat", "sigma_hat"}


def test_parameter_count_pinned_by_hand():
  # Bottleneck unit (in -> base -> base -> out) weights: in*base + 9*base^2 + base*out, plus
  # in*out for a projection shortcut; each conv has a BN (gamma, beta trainable; mean, var not).
  #   branch (192 -> 32 -> 32 -> 128, projection): 6,144 + 9,216 + 4,096 + 24,576 = 44,032;
  #     BN channels 32 + 32 + 128 + 128 = 320.                    two branches: 88,064 / 640
  #   conv3_x: (256 -> 128 -> 512, projection) 376,832 + 3 x (512 -> 128 -> 512) 278,528
  #     = 1,212,416; BN 1,280 + 3 x 768 = 3,584
  #   conv4_x: 1,507,328 + 5 x 1,114,112 = 7,077,888; BN 2,560 + 5 x 1,536 = 10,240
  #   conv5_x: 6,029,312 + 2 x 4,456,448 = 14,942,208; BN 5,120 + 2 x 3,072 = 11,264
  #   logits: 2,048 x 23 + 23 = 47,127
  # Trainable: 88,064 + 23,232,512 + 47,127 + 2 x (640 + 25,088) BN = 23,419,159.
  # BN moving statistics: 2 x 25,728 = 51,456.
  model = _full_size()
  assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 23_419_159
  assert model.count_params() == 23_419_159 + 51_456
  # The trunk from conv3_x onward has ResNet-50's 23,282,688 trainable weights.
  trunk = sum(int(np.prod(w.shape)) for w in model.trainable_weights
              if w.path.startswith(("conv3", "conv4", "conv5")))
  assert trunk == 23_232_512 + 2 * 25_088


def test_channels_enter_only_the_branches():
  # M enters the first 1x1 conv (to base depth 4) and the projection (to 16) of each branch.
  small = _tiny(channels=8, num_classes=5)
  large = _tiny(channels=24, num_classes=5)
  assert large.count_params() - small.count_params() == 2 * (4 + 16) * (24 - 8)
  assert (flops.count_multiply_adds(large, [(12, 12, 24)] * 2)
          - flops.count_multiply_adds(small, [(12, 12, 8)] * 2)) == 144 * 2 * (4 + 16) * 16


def test_multiply_adds_at_28x28_pinned_by_hand():
  # At 28x28 (784 positions): branches 2 x 784 x 44,032 = 69,042,176; conv3_x 784 x 1,212,416
  # = 950,534,144; conv4_x at 14x14 (the stride is on conv4_1's first 1x1 conv)
  # 196 x 7,077,888 = 1,387,266,048; conv5_x at 7x7 49 x 14,942,208 = 732,168,192;
  # logits 2,048 x 23 = 47,104.
  shapes = {"y_hat": (28, 28, M), "sigma_hat": (28, 28, M)}
  by_layer = flops.multiply_adds_by_layer(_full_size(), shapes)
  assert by_layer["y_hat_conv2_1_shortcut"] == 784 * M * 128
  assert by_layer["conv3_1_conv1"] == 784 * 256 * 128
  assert sum(by_layer.values()) == 3_139_057_664
  assert flops.count_multiply_adds(_full_size(), [(28, 28, M)] * 2) == 3_139_057_664
  # cResNet-39 on y_hat alone (the ablation) reads 192 instead of 256 channels at conv3_1 and
  # has no branches.
  y_only = nets.build_resnet("cresnet39", (None, None, M), MINC_CLASSES,
                             kernel_initializer="zeros")
  assert nets.count_multiply_adds(y_only, (28, 28, M)) == (
      3_139_057_664 - 69_042_176 - 784 * (256 - M) * (128 + 512))


def test_counter_needs_one_shape_per_input():
  model = _tiny()
  with pytest.raises(ValueError, match="2 inputs"):
    flops.count_multiply_adds(model, (28, 28, 8))
  with pytest.raises(ValueError, match="names the inputs"):
    flops.count_multiply_adds(model, {"y_hat": (28, 28, 8), "latent": (28, 28, 8)})


def test_dilated_backbone_and_saving(tmp_path):
  model = nets.build_resnet("cresnet39", (None, None, 8), include_top=False,
                            output_stride="latent", width_multiplier=TINY,
                            input_branches="hyperprior")
  x = np.ones((1, 10, 12, 8), np.float32)
  features = model([x, 2 * x])
  assert features.shape == (1, 10, 12, 256)
  # Only built-in layers: the .keras file loads without custom objects.
  path = str(tmp_path / "two_branch.keras")
  model.save(path)
  np.testing.assert_allclose(keras.saving.load_model(path)([x, 2 * x]), features, rtol=1e-5,
                             atol=1e-6)


def test_branches_of_any_cresnet_and_custom_branches():
  branches = (specs.Branch("a", specs.Block("stem", 8, 2, 1)),
              specs.Branch("b", specs.Block("stem", 8, 1, 1)),
              specs.Branch("c", specs.Block("stem", 8, 1, 1)))
  model = nets.build_resnet("cresnet51", [(None, None, 4), (None, None, 6), (None, None, 2)], 3,
                            width_multiplier=TINY, input_branches=branches)
  assert [t.shape[-1] for t in model.inputs] == [4, 6, 2]
  assert model.get_layer("a_stem_2_out").output.shape[-1] == 4
  assert model.get_layer("branches").output.shape[-1] == 12
  assert model.name == "cresnet51"
  assert model([np.zeros((1, 8, 8, c), np.float32) for c in (4, 6, 2)]).shape == (1, 3)


@pytest.mark.parametrize("kwargs,message", [
    (dict(name="resnet50", input_branches="hyperprior"), "reads RGB"),
    (dict(input_branches="hyperprior3"), "Unknown input branches"),
    (dict(input_branches=()), "non-empty tuple"),
    (dict(input_branches=(specs.Branch("y", specs.Block("b", 8, 1, 2)),)), "stride 1"),
    (dict(input_branches=(specs.Branch("y", specs.Block("b", 8, 1, 1)),) * 2), "distinct"),
    (dict(input_shape=[(None, None, 8)] * 3, input_branches="hyperprior"), "3 shapes for 2"),
    (dict(input_shape=None, input_branches="hyperprior"), "input_shape=\\(height, width, C\\)"),
])
def test_bad_branch_arguments_raise_value_error(kwargs, message):
  kwargs = {"name": "cresnet39", "input_shape": (None, None, 8), **kwargs}
  with pytest.raises(ValueError, match=message):
    nets.build_resnet(**kwargs)
