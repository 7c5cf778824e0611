"""Generalized divisive normalization (GDN) and its approximate inverse (IGDN), as Keras layers.

GDN (Balle, Laparra & Simoncelli 2016) normalizes every channel by a learned mixture of the
squared activations of all channels at the same position:

  GDN:   y_i = x_i / sqrt(beta_i + sum_j gamma_ij * x_j^2)
  IGDN:  y_i = x_i * sqrt(beta_i + sum_j gamma_ij * x_j^2)

IGDN is the multiplicative counterpart the synthesis transform uses; with the same parameters it
undoes GDN to first order (exactly where the x^2 terms are small against beta).

beta must stay positive and gamma non-negative. As in Balle's "Efficient nonlinear transforms
for lossy image compression" (2018), neither is a free variable: each is the square of a
variable bounded from below, minus a tiny pedestal,

  beta  = max(v_beta, sqrt(beta_min + p))^2 - p      >= beta_min
  gamma = max(v_gamma, sqrt(p))^2 - p                 >= 0

with p = 2^-36. Squaring makes the gradient scale with the parameter's size, which keeps small
values (most of gamma) learning at a sensible relative speed; the bound keeps them in range
without clipping the variables themselves. The bound's gradient (lower_bound below) still lets a
variable that sits on the bound move back up.

The normalization runs in float32 whatever the layer's dtype policy: a sum of squares in
bfloat16 loses the small gamma terms.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

# The pedestal p: keeps the square root's gradient finite at zero.
PEDESTAL = 2.0 ** -36


@tf.custom_gradient
def lower_bound(x, bound):
  """max(x, bound), whose gradient also flows where it would push x up off the bound.

  A plain maximum has zero gradient below the bound, so a variable that crossed it could never
  come back. Here the gradient passes wherever x >= bound, and below the bound whenever
  gradient descent would increase x (a negative gradient).
  """
  bound = tf.cast(bound, x.dtype)
  y = tf.maximum(x, bound)

  def grad(dy):
    passes = tf.logical_or(x >= bound, dy < 0)
    return tf.where(passes, dy, tf.zeros_like(dy)), None

  return y, grad


@keras.saving.register_keras_serializable(package="tfcdi")
class GDN(keras.layers.Layer):
  """GDN over the last axis of a [..., C] tensor; `inverse=True` makes it IGDN.

  Args:
    inverse: IGDN (multiply by the norm) instead of GDN (divide by it).
    beta_min: lower bound of beta, keeps the norm away from zero.
    gamma_init: initial value of gamma's diagonal (off-diagonal entries start at 0, beta at 1),
      so that a fresh layer is close to x / sqrt(1 + 0.1 x^2).
  """

  def __init__(self, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1,
               **kwargs):
    super().__init__(**kwargs)
    self.inverse = bool(inverse)
    self.beta_min = float(beta_min)
    self.gamma_init = float(gamma_init)

  def build(self, input_shape):
    channels = int(input_shape[-1])
    self.channels = channels
    # Stored as the square roots (plus pedestal) of their initial values.
    self.beta_raw = self.add_weight(
        name="beta", shape=(channels,), dtype="float32",
        initializer=keras.initializers.Constant(np.sqrt(1.0 + PEDESTAL)))
    self.gamma_raw = self.add_weight(
        name="gamma", shape=(channels, channels), dtype="float32",
        initializer=keras.initializers.Constant(
            np.sqrt(self.gamma_init * np.eye(channels) + PEDESTAL)))

  @property
  def beta(self):
    """The effective beta [C], >= beta_min."""
    v = tf.convert_to_tensor(self.beta_raw)
    return tf.square(lower_bound(v, np.sqrt(self.beta_min + PEDESTAL))) - PEDESTAL

  @property
  def gamma(self):
    """The effective gamma [C, C] (row i: weights of the channels that normalize channel i)."""
    v = tf.convert_to_tensor(self.gamma_raw)
    return tf.square(lower_bound(v, np.sqrt(PEDESTAL))) - PEDESTAL

  def call(self, x):
    x = tf.cast(x, tf.float32)
    # norm_i = beta_i + sum_j gamma_ij x_j^2: a 1x1 convolution of the squares.
    norm = tf.tensordot(tf.square(x), tf.transpose(self.gamma), axes=[[-1], [0]]) + self.beta
    # tensordot loses the static shape; the layer's output has its input's.
    norm = tf.reshape(norm, tf.shape(x))
    return x * tf.sqrt(norm) if self.inverse else x * tf.math.rsqrt(norm)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), "inverse": self.inverse, "beta_min": self.beta_min,
            "gamma_init": self.gamma_init}


def igdn(**kwargs) -> GDN:
  """An inverse GDN layer (GDN(inverse=True))."""
  return GDN(inverse=True, **kwargs)
