"""The classifier model of Table 2: per-channel mean centering, a net of the spec table, logits.

`build_model` wraps a row of nets.specs.NETS (built by nets.resnet.build_resnet) as
ChannelMean -> the net -> float32 logits, for inputs of any spatial size. The mean centering of
the paper lives in the model (a ChannelMean layer, set once from the training split with
`set_channel_mean`), so it is checkpointed and exported with the weights.

The latent arm of a hyperprior store names the net it builds by `latent_inputs`:

  y_hat+sigma_hat  the follow-up's two-branch cResNet (the row built with
                   input_branches="hyperprior"): inputs {"y_hat", "sigma_hat"}, each through
                   its own ChannelMean and branch;
  y_hat            the same row as a plain cResNet on y_hat alone: the ablation.

`config` is the training config (train.classifier.ClassifierTrainConfig): the builder reads its
width_multiplier, weight_decay, batch_norm_momentum and max_units_per_stage.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tfcdi.nets import resnet as resnet_lib
from tfcdi.nets import specs as specs_lib

# What the latent arm of a hyperprior store reads (see the module docstring).
Y_HAT = "y_hat"
TWO_BRANCH = "y_hat+sigma_hat"
LATENT_INPUTS = (Y_HAT, TWO_BRANCH)


@keras.saving.register_keras_serializable(package="tfcdi")
class ChannelMean(keras.layers.Layer):
  """Subtracts a fixed per-channel mean: the paper's mean centering, kept with the weights."""

  def __init__(self, channels: int, **kwargs):
    super().__init__(**kwargs)
    self.channels = int(channels)
    self.mean = self.add_weight(name="mean", shape=(self.channels,), initializer="zeros",
                                trainable=False)

  def call(self, inputs):
    return inputs - tf.cast(self.mean, inputs.dtype)

  def get_config(self):
    return {**super().get_config(), "channels": self.channels}


def net_spec(net: str, config) -> specs_lib.NetSpec:
  """The row of the spec table, with stages truncated if the config asks for it."""
  spec = specs_lib.get_spec(net)
  if config.max_units_per_stage:
    spec = dataclasses.replace(spec, blocks=tuple(
        dataclasses.replace(b, num_units=min(b.num_units, config.max_units_per_stage))
        for b in spec.blocks))
  return spec


def branch_names() -> list[str]:
  """The two-branch net's input names, in branch order ("y_hat", "sigma_hat")."""
  return [b.input_name for b in specs_lib.get_input_branches("hyperprior")]


def build_model(net: str, channels: int, num_classes: int, config,
                precision: str = "float32", latent_inputs: str | None = None) -> keras.Model:
  """ChannelMean -> the net -> logits, for inputs [B, H, W, channels] of any size.

  `precision` (resolved, not "auto") sets the backbone's dtype policy; the mean subtraction
  and the logits are float32 under both. latent_inputs="y_hat+sigma_hat" builds the two-branch
  net: inputs {"y_hat", "sigma_hat"}, each [B, H, W, channels] with its own ChannelMean
  ("channel_mean_y_hat", "channel_mean_sigma_hat"); otherwise one input and "channel_mean".
  """
  two_branch = latent_inputs == TWO_BRANCH
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy("mixed_bfloat16" if precision == "mixed_bfloat16" else "float32")
  try:
    backbone = resnet_lib.build_resnet(
        net_spec(net, config), (None, None, channels), num_classes,
        width_multiplier=config.width_multiplier, weight_decay=config.weight_decay,
        batch_norm_momentum=config.batch_norm_momentum, model_name=net,
        input_branches="hyperprior" if two_branch else None)
  finally:
    keras.config.set_dtype_policy(previous)
  if two_branch:
    inputs = {name: keras.Input((None, None, channels), name=name) for name in branch_names()}
    logits = backbone([ChannelMean(channels, name=f"channel_mean_{name}", dtype="float32")(
        inputs[name]) for name in branch_names()])
  else:
    inputs = keras.Input((None, None, channels), name="inputs")
    logits = backbone(ChannelMean(channels, name="channel_mean", dtype="float32")(inputs))
  logits = keras.layers.Activation("linear", name="logits_float32", dtype="float32")(logits)
  return keras.Model(inputs, logits,
                     name=f"{net}_hyperprior_classifier" if two_branch else f"{net}_classifier")


def set_channel_mean(model: keras.Model, mean) -> None:
  """Loads a mean into the model: a list (one input) or {input name: list} (two branches)."""
  if isinstance(mean, dict):
    for name, value in mean.items():
      model.get_layer(f"channel_mean_{name}").mean.assign(np.asarray(value, np.float32))
  else:
    model.get_layer("channel_mean").mean.assign(np.asarray(mean, np.float32))
