"""Imports tf-slim resnet_v1 checkpoints into nets built by `resnet.build_resnet`.

tf-slim's resnet_v1_50 (tf_slim/nets/resnet_v1.py) is the ResNet-50 most TF1-era work, the
paper's included, started from. Its checkpoints load into
`build_resnet("resnet50", stride_placement="slim")`, which reproduces slim's graph exactly: the
stride of a stage on the 3x3 conv of the previous stage's last unit, explicit padding for strided
convs, 1x1/stride max-pool shortcuts and BN with epsilon 1e-5 (slim's resnet_arg_scope).

Variable names map as follows (`scope` is the checkpoint's top scope, e.g. "resnet_v1_50"; the
k-th stage of the Keras net, conv2 .. conv5 for ResNet-50, is slim's block{k}):

  Keras layer              slim variables
  conv1                    {scope}/conv1/weights
  conv1_bn                 {scope}/conv1/BatchNorm/{gamma,beta,moving_mean,moving_variance}
  conv3_2_conv1            {scope}/block2/unit_2/bottleneck_v1/conv1/weights
  conv3_2_conv1_bn         {scope}/block2/unit_2/bottleneck_v1/conv1/BatchNorm/...
  conv3_1_shortcut         {scope}/block2/unit_1/bottleneck_v1/shortcut/weights
  logits (Dense)           {scope}/logits/weights [1, 1, C, N] -> [C, N]; {scope}/logits/biases

Only checkpoints are read (tf.train.load_checkpoint); tf-slim itself is not needed here.
"""

from __future__ import annotations

import re

import keras
import numpy as np
import tensorflow as tf

# Keras names of the layers of a bottleneck unit: "{stage}_{unit}_{conv}" (+ "_bn").
_UNIT_LAYER = re.compile(r"^(conv\d+)_(\d+)_(conv1|conv2|conv3|shortcut)(_bn)?$")
_BN_VARIABLES = ("gamma", "beta", "moving_mean", "moving_variance")


def _check_slim_strides(model: keras.Model):
  # A net with the stride on the first 1x1 conv ("paper") has the same weights as slim's but
  # computes something else; loading into it would "work" and give wrong logits.
  for layer in model.layers:
    match = _UNIT_LAYER.match(layer.name)
    if (match and match.group(3) == "conv1" and not match.group(4)
        and max(layer.strides) > 1):
      raise ValueError(
          f"Model {model.name!r} was built with stride_placement='paper' (layer {layer.name} is "
          "strided); tf-slim checkpoints need build_resnet(..., stride_placement='slim').")


def _stage_blocks(model: keras.Model) -> dict[str, int]:
  """{Keras stage name: slim block number}, numbering stages in the order they appear."""
  blocks: dict[str, int] = {}
  for layer in model.layers:
    match = _UNIT_LAYER.match(layer.name)
    if match and match.group(1) not in blocks:
      blocks[match.group(1)] = len(blocks) + 1
  return blocks


def infer_scope(checkpoint_path: str) -> str:
  """The top scope of a slim ResNet checkpoint, e.g. "resnet_v1_50" (from its root conv)."""
  names = tf.train.load_checkpoint(checkpoint_path).get_variable_to_shape_map()
  roots = sorted((n for n in names if n.endswith("/conv1/weights") and "/block" not in n),
                 key=len)
  if not roots:
    raise ValueError(f"{checkpoint_path} has no '<scope>/conv1/weights'; "
                     "is it a tf-slim ResNet checkpoint?")
  return roots[0][:-len("/conv1/weights")]


def slim_variable_names(model: keras.Model, scope: str = "resnet_v1_50",
                        include_logits: bool = True) -> dict[str, keras.Variable]:
  """{slim checkpoint variable name: Keras variable} for every weight of `model`.

  Raises:
    ValueError: if a weighted layer of `model` has no slim counterpart.
  """
  blocks = _stage_blocks(model)
  mapping: dict[str, keras.Variable] = {}
  for layer in model.layers:
    if not layer.weights:
      continue
    if layer.name in ("conv1", "conv1_bn"):
      slim_layer = f"{scope}/conv1"
      is_bn = layer.name.endswith("_bn")
    elif layer.name == "logits":
      if include_logits:
        mapping[f"{scope}/logits/weights"] = layer.kernel
        mapping[f"{scope}/logits/biases"] = layer.bias
      continue
    else:
      match = _UNIT_LAYER.match(layer.name)
      if not match:
        raise ValueError(f"Layer {layer.name!r} of {model.name!r} has no tf-slim counterpart; "
                         "only nets built by build_resnet can be imported.")
      stage, unit, conv, bn = match.groups()
      slim_layer = f"{scope}/block{blocks[stage]}/unit_{unit}/bottleneck_v1/{conv}"
      is_bn = bool(bn)
    if is_bn:
      for name in _BN_VARIABLES:
        mapping[f"{slim_layer}/BatchNorm/{name}"] = getattr(layer, name)
    else:
      mapping[f"{slim_layer}/weights"] = layer.kernel
  return mapping


def load_slim_checkpoint(model: keras.Model, checkpoint_path: str, scope: str | None = None,
                         include_logits: bool = True) -> list[str]:
  """Assigns the weights of a tf-slim resnet_v1 checkpoint to `model`.

  Args:
    model: built by `build_resnet(..., stride_placement="slim")` with the checkpoint's depth.
      Build it with batch_norm_epsilon equal to the one the checkpoint was trained with (1e-5
      in slim's resnet_arg_scope, the builder's default).
    checkpoint_path: a checkpoint prefix or a directory holding one.
    scope: the checkpoint's top scope; inferred from the checkpoint if None.
    include_logits: False leaves the model's classifier as it is (e.g. fine-tuning an ImageNet
      checkpoint for another number of classes).

  Returns:
    The checkpoint variables that were loaded, sorted. Other checkpoint entries (global_step,
    optimizer slots) are ignored.

  Raises:
    ValueError: if the model uses "paper" stride placement, a model weight has no entry in the
      checkpoint, or shapes disagree.
  """
  _check_slim_strides(model)
  if tf.io.gfile.isdir(checkpoint_path):
    found = tf.train.latest_checkpoint(checkpoint_path)
    if found is None:
      raise ValueError(f"No checkpoint in directory {checkpoint_path}.")
    checkpoint_path = found
  scope = scope or infer_scope(checkpoint_path)
  reader = tf.train.load_checkpoint(checkpoint_path)
  shapes = reader.get_variable_to_shape_map()
  mapping = slim_variable_names(model, scope, include_logits)

  missing = sorted(name for name in mapping if name not in shapes)
  if missing:
    raise ValueError(f"{len(missing)} weights of {model.name!r} are not in {checkpoint_path} "
                     f"(scope {scope!r}), e.g. {missing[:3]}.")
  values = {}
  for name, variable in mapping.items():
    value = reader.get_tensor(name)
    if name.endswith("logits/weights"):
      # slim's classifier is a 1x1 conv on the pooled [B, 1, 1, C] features; ours is a Dense.
      value = value.reshape(value.shape[-2:])
    if tuple(value.shape) != tuple(variable.shape):
      raise ValueError(f"{name} has shape {value.shape} in the checkpoint but the Keras weight "
                       f"{variable.path} has {tuple(variable.shape)}.")
    values[name] = value
  # Assign only after every check passed, so a failed import leaves the model untouched.
  for name, value in values.items():
    mapping[name].assign(np.asarray(value, dtype=mapping[name].dtype))
  return sorted(values)
