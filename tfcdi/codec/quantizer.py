"""Scalar quantization to L learned centers, and the histogram entropy estimate H(q).

Forward: every entry of the representation goes to its nearest center, exactly (this is what the
file stores). Backward: the gradient of the soft assignment sum_l softmax(-sigma * d_l^2) * c_l,
which is how Torfason et al. (Appendix A.1) replace the annealing of Agustsson et al. (2017).
"""

from __future__ import annotations

import tensorflow as tf


def _squared_distances(z, centers):
  # [..., 1] - [L] -> [..., L]; the centers broadcast over every entry of z.
  return tf.square(tf.expand_dims(z, -1) - centers)


def symbols_of(z, centers):
  """Index of the nearest center for each entry of z (int32, same shape as z)."""
  return tf.argmin(_squared_distances(z, centers), axis=-1, output_type=tf.int32)


def soft_assignment(z, centers, sigma):
  """softmax over -sigma * squared distance to each center: [..., L], sums to 1."""
  return tf.nn.softmax(-sigma * _squared_distances(z, centers), axis=-1)


def soft_quantize(z, centers, sigma):
  """The differentiable stand-in for quantization: the assignment-weighted mean of the centers."""
  return tf.reduce_sum(soft_assignment(z, centers, sigma) * centers, axis=-1)


def quantize(z, centers, sigma=1.0):
  """Hard nearest-center values forward, the soft quantizer's gradient backward.

  Gradients flow to both z and the centers, so the centers are learned.
  """
  sigma = float(sigma)

  @tf.custom_gradient
  def _quantize(z, centers):
    hard = tf.gather(centers, symbols_of(z, centers))

    def grad(upstream):
      # Recomputing the soft path here keeps the [..., L] assignment out of the forward
      # activations: only z and the centers are saved for the backward pass.
      with tf.GradientTape() as tape:
        tape.watch([z, centers])
        soft = soft_quantize(z, centers, sigma)
      return tape.gradient(soft, [z, centers], output_gradients=upstream)

    return hard, grad

  return _quantize(z, tf.convert_to_tensor(centers, dtype=z.dtype))


def soft_histogram(z, centers, sigma):
  """Differentiable symbol distribution: the mean soft assignment over all entries, [L]."""
  assign = soft_assignment(z, centers, sigma)
  return tf.reduce_mean(tf.reshape(assign, [-1, tf.shape(centers)[0]]), axis=0)


def hard_histogram(symbols, num_centers):
  """Symbol distribution from the actual symbol counts, [L] float32."""
  counts = tf.math.bincount(
      tf.reshape(symbols, [-1]), minlength=num_centers, maxlength=num_centers, dtype=tf.float32)
  return counts / tf.maximum(tf.reduce_sum(counts), 1.0)


def entropy_bits(probabilities):
  """Shannon entropy in bits of a distribution over the centers (0 log 0 = 0)."""
  p = tf.convert_to_tensor(probabilities, tf.float32)
  logs = tf.math.log(tf.where(p > 0, p, tf.ones_like(p))) / tf.math.log(2.0)
  return -tf.reduce_sum(p * logs)


def bits_per_pixel(entropy, channels):
  """bpp of a w/8 x h/8 x C representation coded at `entropy` bits per symbol: C * H / 64."""
  return channels * entropy / 64.0


def rate_distortion_loss(mse, entropy, beta, target_entropy):
  """Eq. 1: MSE + beta * max(H - Ht, 0). The rate term is zero once H is under its target."""
  return mse + beta * tf.nn.relu(entropy - target_entropy)
