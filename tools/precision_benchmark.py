r"""Training-step time in float32 against mixed bfloat16, measured in one run (a ratio).

  python -m tools.precision_benchmark --json=reports/benchmarks/precision.json

Times one optimizer step of (a) the codec at its cpu preset (half width, 16 crops of 128x128,
Eq. 1) and (b) the cpu-preset classifiers (1/8 width, batch 64), each in both precisions,
interleaved so that a shared machine's load falls on both alike. This is where the presets'
choices come from: the codec's cpu preset trains in mixed bfloat16 where the CPU has bfloat16
units, the classifiers stay float32 (see BUILD_NOTES.md).
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
import keras
import tensorflow as tf

from tfcdi import imageio
from tfcdi.codec import model as model_lib
from tfcdi.codec import operating_points
from tfcdi.codec import quantizer as q
from tfcdi.nets import classifier as classifier_net
from tfcdi.train import classifier
from tfcdi.train import codec as codec_train
from tfcdi.train import precision as precision_lib

_JSON = flags.DEFINE_string("json", None, "Also write the results here.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed steps per case (after two warm-up steps).")
_ROUNDS = flags.DEFINE_integer("rounds", 2, "Alternations of the two precisions per case.")


def _codec_step(precision):
  config = codec_train.get_config("cpu")
  op = operating_points.get_operating_point("0.635")
  model = model_lib.from_operating_point(op, config.filters, precision_lib.conv_dtype(precision))
  optimizer = keras.optimizers.Adam(1e-4)
  images = tf.random.uniform([config.batch_size, config.crop, config.crop, 3], 0.0, 255.0)

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      out = model(images, training=True)
      mse = tf.reduce_mean(tf.square(out["reconstruction"] - images))
      loss = q.rate_distortion_loss(mse, codec_train.rate_entropy(out), 1500.0, op.target_entropy)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss
  return step


def _classifier_step(net, channels, size, precision):
  config = classifier.get_config("cpu")
  model = classifier_net.build_model(net, channels, 10, config, precision)
  optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
  x = tf.random.uniform([config.batch_size, size, size, channels])
  y = tf.zeros([config.batch_size], tf.int32)

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      logits = model(x, training=True)
      loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss
  return step


def _time(step, repeats):
  for _ in range(2):
    float(step())
  tick = time.perf_counter()
  for _ in range(repeats):
    float(step())
  return (time.perf_counter() - tick) / repeats


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  cases = {
      "codec 0.635, cpu preset": lambda p: _codec_step(p),
      "cresnet39 latent, cpu preset": lambda p: _classifier_step("cresnet39", 32, 28, p),
      "resnet50 rgb, cpu preset": lambda p: _classifier_step("resnet50", 3, 224, p),
  }
  rows = []
  for name, make in cases.items():
    steps = {p: make(p) for p in ("float32", "mixed_bfloat16")}
    seconds = {p: [] for p in steps}
    for _ in range(_ROUNDS.value):  # alternate, so load changes hit both precisions
      for p, step in steps.items():
        seconds[p].append(_time(step, _REPEATS.value))
    best = {p: min(s) for p, s in seconds.items()}
    rows.append({"case": name, "float32_s": best["float32"],
                 "mixed_bfloat16_s": best["mixed_bfloat16"],
                 "speedup": best["float32"] / best["mixed_bfloat16"]})
    print(f"{name:<30} float32 {best['float32']:.3f} s/step  mixed_bfloat16 "
          f"{best['mixed_bfloat16']:.3f} s/step  speed-up {rows[-1]['speedup']:.2f}x", flush=True)
  result = {"cpu_has_bfloat16": precision_lib.cpu_has_bfloat16(),
            "cores": os.cpu_count(), "rows": rows}
  if _JSON.value:
    imageio.write_json(_JSON.value, result)


if __name__ == "__main__":
  app.run(main)
