"""One builder for every ResNet v1 of the paper: RGB or compressed input, plain or dilated.

`build_resnet("resnet50")` is the RGB baseline that reads (decoded) images;
`build_resnet("cresnet51", input_shape=(None, None, 32))` reads the 28x28x32 latent of a
224x224 image. The net itself is a row of `specs.NETS`; everything else is an argument:

- `output_stride` turns a classifier into the dilated "-d" backbone of the segmentation
  experiments: once the requested stride is reached, later units keep the resolution and dilate
  their 3x3 convs instead (DeepLab's atrous convolution), so the receptive field is unchanged.
- `stride_placement` says where a stage downsamples: "paper" on the first 1x1 conv of its first
  unit (He et al. 2016, the architecture behind the published multiply-add counts), "slim" on the
  3x3 conv of the previous stage's last unit with explicit padding, exactly as tf-slim's
  resnet_v1 does, so that tf-slim checkpoints can be imported (see slim_import.py).
- `width_multiplier` scales every width, for the small CPU presets and the tests.
- `input_branches` gives a cResNet several inputs, each through a stage of its own before they
  are concatenated and enter the net's first stage: `build_resnet("cresnet39", (None, None, 192),
  input_branches="hyperprior")` is the follow-up's two-branch cResNet-39, which reads y_hat and
  sigma_hat of the scale-hyperprior codec (specs.INPUT_BRANCHES).

Blocks are plain functions; the result is an ordinary functional keras.Model made only of
built-in Keras layers, so it saves, loads and exports without custom objects.
"""

from __future__ import annotations

import numbers
from typing import Sequence

import keras

from tfcdi.nets import specs as specs_lib


def _scaled(depth: int, width_multiplier: float) -> int:
  return max(1, int(round(depth * width_multiplier)))


class _LayerFactory:
  """Makes the layers of one net with shared settings (regularizer, BN constants)."""

  def __init__(self, weight_decay: float, batch_norm_momentum: float, batch_norm_epsilon: float,
               kernel_initializer):
    # `weight_decay` is the SGD-style coefficient (gradient += wd * w), as in the paper, Caffe and
    # tf-slim's l2_regularizer; Keras' L2(l) adds l * sum(w^2), whose gradient is 2 * l * w.
    self.regularizer = keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None
    self.momentum = batch_norm_momentum
    self.epsilon = batch_norm_epsilon
    self.initializer = kernel_initializer

  def conv_bn(self, x, filters: int, kernel: int, stride: int, rate: int, name: str,
              relu: bool = True, explicit_padding: bool = False):
    """Conv (no bias: BN follows) -> BN -> optional ReLU.

    With `explicit_padding` and stride > 1 the input is zero-padded by (k - 1) // 2 before and
    the rest after, then convolved with VALID padding (tf-slim's conv2d_same). On an even-sized
    input Keras' SAME padding would pad one pixel less at the start than at the end, which
    shifts the sampling grid by one pixel.
    """
    padding = "same"
    if explicit_padding and stride > 1 and kernel > 1:
      effective = kernel + (kernel - 1) * (rate - 1)
      before = (effective - 1) // 2
      after = effective - 1 - before
      x = keras.layers.ZeroPadding2D(((before, after), (before, after)), name=f"{name}_pad")(x)
      padding = "valid"
    x = keras.layers.Conv2D(
        filters, kernel, strides=stride, dilation_rate=rate, padding=padding, use_bias=False,
        kernel_initializer=self.initializer, kernel_regularizer=self.regularizer, name=name)(x)
    x = keras.layers.BatchNormalization(
        momentum=self.momentum, epsilon=self.epsilon, name=f"{name}_bn")(x)
    if relu:
      x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return x

  def dense(self, units: int, name: str):
    return keras.layers.Dense(units, kernel_initializer=self.initializer,
                              kernel_regularizer=self.regularizer, name=name)


def _bottleneck_unit(x, layers: _LayerFactory, depth: int, base_depth: int, stride: int,
                     rate: int, stride_placement: str, name: str):
  """A ResNet v1 bottleneck unit: 1x1 base, 3x3 base, 1x1 depth, BN after each; ReLU after add.

  The stride sits on the first 1x1 conv ("paper") or on the 3x3 conv ("slim"). The shortcut is
  the identity, a 1x1/stride max pool (which just subsamples) where only the resolution changes,
  or a 1x1 conv + BN projection where the depth changes.
  """
  in_depth = x.shape[-1]
  if in_depth == depth:
    shortcut = x
    if stride > 1:
      shortcut = keras.layers.MaxPooling2D(1, strides=stride, name=f"{name}_shortcut_subsample")(x)
  else:
    shortcut = layers.conv_bn(x, depth, 1, stride, 1, name=f"{name}_shortcut", relu=False)

  stride_1x1, stride_3x3 = (stride, 1) if stride_placement == "paper" else (1, stride)
  y = layers.conv_bn(x, base_depth, 1, stride_1x1, 1, name=f"{name}_conv1")
  y = layers.conv_bn(y, base_depth, 3, stride_3x3, rate, name=f"{name}_conv2",
                     explicit_padding=stride_placement == "slim")
  y = layers.conv_bn(y, depth, 1, 1, 1, name=f"{name}_conv3", relu=False)
  x = keras.layers.Add(name=f"{name}_add")([shortcut, y])
  return keras.layers.ReLU(name=f"{name}_out")(x)


def _resolve_output_stride(spec: specs_lib.NetSpec, output_stride) -> int | None:
  """Validates `output_stride`; returns None (no dilation) or the stride to stop at."""
  if output_stride is None:
    return None
  if output_stride == "latent":
    output_stride = spec.latent_output_stride
  reachable = [specs_lib.ROOT_STRIDE if spec.include_root else 1]
  for block in spec.blocks:
    if block.stride > 1:
      reachable.append(reachable[-1] * block.stride)
  if isinstance(output_stride, bool) or output_stride not in reachable:
    raise ValueError(
        f"output_stride={output_stride!r} cannot be reached by {spec.name}; expected None, "
        f"'latent' or one of {reachable}.")
  if output_stride == spec.nominal_stride:
    return None
  return int(output_stride)


def _check_input_shape(spec: specs_lib.NetSpec, input_shape) -> tuple:
  if input_shape is None:
    if spec.reads_latent:
      raise ValueError(
          f"{spec.name} reads the compressed representation: pass "
          "input_shape=(height, width, C) with the codec's channel count C (height and width "
          "may be None).")
    input_shape = (None, None, 3)
  input_shape = tuple(input_shape)
  if len(input_shape) != 3:
    raise ValueError(f"input_shape must be (height, width, channels), got {input_shape}.")
  channels = input_shape[-1]
  if not isinstance(channels, numbers.Integral) or isinstance(channels, bool) or channels < 1:
    raise ValueError(f"The channel count of input_shape must be a positive int, got {channels!r}.")
  if spec.include_root and channels != 3:
    raise ValueError(f"{spec.name} reads RGB images and needs 3 input channels, got {channels}.")
  return input_shape[:2] + (int(channels),)


def _branch_input_shapes(spec: specs_lib.NetSpec, branches, input_shape) -> list[tuple]:
  """One checked (height, width, channels) per branch: `input_shape` for all, or one each."""
  if not spec.reads_latent:
    raise ValueError(f"input_branches replace the latent input of a cResNet; {spec.name} reads "
                     "RGB images.")
  for branch in branches:
    if branch.block.stride != 1:
      raise ValueError(f"Input branch {branch.input_name!r} has stride {branch.block.stride}; "
                       "branches keep the latent's resolution (stride 1).")
  if input_shape is not None and len(input_shape) and all(
      isinstance(s, (tuple, list)) for s in input_shape):
    shapes = list(input_shape)
    if len(shapes) != len(branches):
      raise ValueError(f"input_shape gives {len(shapes)} shapes for {len(branches)} input "
                       "branches; pass one shape for all of them or one per branch.")
  else:
    shapes = [input_shape] * len(branches)
  return [_check_input_shape(spec, shape) for shape in shapes]


def _input_branch(inputs, branch: specs_lib.Branch, layers: _LayerFactory,
                  width_multiplier: float, stride_placement: str):
  """One input through the units of its own stage (stride 1, no dilation)."""
  x = inputs
  block = branch.block
  for i in range(block.num_units):
    x = _bottleneck_unit(x, layers, _scaled(block.depth, width_multiplier),
                         _scaled(block.base_depth, width_multiplier), 1, 1, stride_placement,
                         name=f"{branch.input_name}_{block.name}_{i + 1}")
  return x


def build_resnet(
    name: str | specs_lib.NetSpec,
    input_shape: Sequence[int | None] | Sequence[Sequence[int | None]] | None = None,
    num_classes: int = 1000,
    *,
    include_top: bool = True,
    width_multiplier: float = 1.0,
    output_stride: int | str | None = None,
    stride_placement: str = "paper",
    weight_decay: float = 0.0,
    batch_norm_momentum: float = 0.99,
    batch_norm_epsilon: float = 1e-5,
    kernel_initializer="he_normal",
    classifier_activation: str | None = None,
    model_name: str | None = None,
    input_branches: str | Sequence[specs_lib.Branch] | None = None,
) -> keras.Model:
  """Builds a ResNet v1 (RGB) or cResNet (latent) of `specs.NETS` as a functional keras.Model.

  Args:
    name: a net of `specs.NETS` ("resnet50", "resnet71", "cresnet39", "cresnet51", "cresnet72")
      or a `specs.NetSpec`.
    input_shape: (height, width, channels) without the batch; height and width may be None. RGB
      nets need 3 channels (default (None, None, 3)); cResNets need the latent's C, e.g.
      (None, None, 32), and have no default.
    num_classes: number of logits of the classification head.
    include_top: if True the model ends in global average pooling + Dense(num_classes) logits;
      if False it returns the last stage's feature map (for segmentation heads).
    width_multiplier: scales the root's 64 filters and every stage's base depth (rounded, at
      least 1). 1.0 is the paper's net.
    output_stride: None for the classifier; otherwise the ratio of input to output resolution
      to keep, reached by dilating the later stages instead of striding them. "latent" is the
      paper's segmentation setting: 8 for the RGB nets (conv4_x dilation 2, conv5_x dilation 4)
      and 1 for the cResNets (the latent's resolution, same dilations).
    stride_placement: "paper" (stride on the first 1x1 conv of a stage's first unit) or "slim"
      (tf-slim resnet_v1: stride on the 3x3 conv of the previous stage's last unit).
    weight_decay: SGD-style L2 weight decay on conv and dense kernels (the paper trains with
      1e-4); 0 adds no regularization loss.
    batch_norm_momentum: moving-average momentum of the BN statistics. The training presets
      set it: 0.997 (tf-slim's, the paper's stack) in the paper presets, 0.99 in the short CPU
      presets so that their runs end with usable statistics; 0.99 here is Keras' default.
    batch_norm_epsilon: 1e-5, as in tf-slim's resnet_arg_scope and the MSRA Caffe models.
    kernel_initializer: of conv and dense kernels; "he_normal" (truncated, fan-in) is what
      tf-slim's resnet_arg_scope uses. Anything keras.initializers.get accepts.
    classifier_activation: None for logits (the default; apply softmax in the loss) or e.g.
      "softmax".
    model_name: name of the keras.Model; defaults to the net's name, with "_" and the branches'
      name appended when `input_branches` is a name (e.g. "cresnet39_hyperprior").
    input_branches: None for one input; otherwise a name of `specs.INPUT_BRANCHES` (e.g.
      "hyperprior": y_hat and sigma_hat) or a tuple of `specs.Branch`. The model then has one
      input per branch, named after it (a list in branch order; a dict keyed by those names is
      accepted too), each through its own stage, concatenated before the net's first stage.
      Only for cResNets; `input_shape` is then the shape of every branch input, or a list of one
      shape per branch.

  Returns:
    A keras.Model from the input(s) to logits [B, num_classes] (include_top) or to the feature
    map [B, H / s, W / s, 2048 * width_multiplier], s being the output stride.

  Raises:
    ValueError: for an unknown net, a bad input shape or channel count, an unreachable
      output_stride, an unknown stride_placement, a non-positive width_multiplier, or input
      branches that are unknown, on an RGB net, or strided.
  """
  spec = name if isinstance(name, specs_lib.NetSpec) else specs_lib.get_spec(name)
  branches = None
  if input_branches is not None:
    branches = specs_lib.get_input_branches(input_branches)
    branch_shapes = _branch_input_shapes(spec, branches, input_shape)
    if model_name is None and isinstance(input_branches, str):
      model_name = f"{spec.name}_{input_branches}"
  else:
    input_shape = _check_input_shape(spec, input_shape)
  target_stride = _resolve_output_stride(spec, output_stride)
  strides = specs_lib.unit_strides(spec, stride_placement)
  if not width_multiplier > 0:
    raise ValueError(f"width_multiplier must be positive, got {width_multiplier}.")
  if include_top and num_classes < 1:
    raise ValueError(f"num_classes must be positive, got {num_classes}.")

  layers = _LayerFactory(weight_decay, batch_norm_momentum, batch_norm_epsilon,
                         kernel_initializer)
  if branches is None:
    inputs = keras.Input(input_shape, name="latent" if spec.reads_latent else "images")
    x = inputs
  else:
    inputs = [keras.Input(shape, name=branch.input_name)
              for branch, shape in zip(branches, branch_shapes)]
    outputs = [_input_branch(branch_input, branch, layers, width_multiplier, stride_placement)
               for branch_input, branch in zip(inputs, branches)]
    x = outputs[0] if len(outputs) == 1 else keras.layers.Concatenate(name="branches")(outputs)
  current_stride = 1
  if spec.include_root:
    # Both placements pad the 7x7/2 conv by 3 on every side, like the original Caffe ResNet and
    # tf-slim; the max pool pads at the end only (SAME), which matches Caffe's ceil-mode pooling.
    x = layers.conv_bn(x, _scaled(specs_lib.ROOT_DEPTH, width_multiplier), 7, 2, 1, name="conv1",
                       explicit_padding=True)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    current_stride = specs_lib.ROOT_STRIDE

  rate = 1
  for block, block_strides in zip(spec.blocks, strides):
    depth = _scaled(block.depth, width_multiplier)
    base_depth = _scaled(block.base_depth, width_multiplier)
    for i, stride in enumerate(block_strides):
      if target_stride is not None and current_stride * stride > target_stride:
        # Striding here would overshoot the output stride: keep the resolution and dilate from
        # where the subsampled grid would have started. With "paper" placement the stride was
        # on the 1x1 conv in front of this unit's 3x3, so that 3x3 already sees the coarser grid
        # and dilates; with "slim" placement the stride was on this 3x3 itself, so only the
        # units after it dilate (tf-slim's stack_blocks_dense does the same).
        if stride_placement == "paper":
          rate *= stride
          unit_rate = rate
        else:
          unit_rate = rate
          rate *= stride
        stride = 1
      else:
        unit_rate = rate
        current_stride *= stride
      x = _bottleneck_unit(x, layers, depth, base_depth, stride, unit_rate, stride_placement,
                           name=f"{block.name}_{i + 1}")

  if include_top:
    x = keras.layers.GlobalAveragePooling2D(name="pool5")(x)
    x = layers.dense(num_classes, name="logits")(x)
    if classifier_activation is not None:
      x = keras.layers.Activation(classifier_activation, name="predictions")(x)
  return keras.Model(inputs, x, name=model_name or spec.name)
