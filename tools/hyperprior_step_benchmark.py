r"""Training-step time of a hyperprior quality for each distortion, measured in one run (ratios).

  nice -n 3 python -m tools.hyperprior_step_benchmark --quality=4 \
      --json=reports/benchmarks/hyperprior_steps.json

Times one optimizer step (tfcdi/train/hyperprior.py's make_train_step, the step training runs)
of the quality at the cpu preset's widths and precision in three settings: the MSE recipe (8
crops of 128 px), MS-SSIM on the same crops (four of the five scales fit), and the MS-SSIM
recipe (4 crops of 192 px, all five scales). The cases run round-robin, each round starting at
the next, so that a shared machine's load falls on all of them alike; the result is the median
seconds per step of each, their ratios to the MSE recipe's, and the hours a recipe's run would
take at that pace. The images are random: no step's time depends on pixel values.
"""

import dataclasses
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
import keras
import tensorflow as tf

from tfcdi import imageio
from tfcdi.codec import hyperprior as hyperprior_lib
from tfcdi.codec import qualities
from tfcdi.train import hyperprior
from tfcdi.train import precision as precision_lib

_QUALITY = flags.DEFINE_integer("quality", 4, "Hyperprior quality (1..8).")
_REPEATS = flags.DEFINE_integer("repeats", 6, "Timed steps per case and round.")
_ROUNDS = flags.DEFINE_integer("rounds", 4, "Round-robin rounds over the cases.")
_JSON = flags.DEFINE_string("json", None, "Also write the results here.")


def _cases(quality):
  mse = hyperprior.RECIPES[hyperprior.codec_name(quality, qualities.MSE, "cpu")]
  ms_ssim = hyperprior.RECIPES[hyperprior.codec_name(quality, qualities.MS_SSIM, "cpu")]
  return {
      "mse recipe": mse.config(),
      "ms-ssim, mse recipe's crops": dataclasses.replace(mse.config(),
                                                         distortion=qualities.MS_SSIM),
      "ms-ssim recipe": ms_ssim.config(),
  }


def _step(quality, config):
  precision = precision_lib.resolve(config.precision)
  model = hyperprior_lib.from_quality(quality, config.widths, precision_lib.conv_dtype(precision))
  optimizer = keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clip_norm)
  q = qualities.get_quality(quality)
  num_pixels = float(config.batch_size * config.crop * config.crop)
  step_fn = hyperprior.make_train_step(model, optimizer, q.lambda_for(config.distortion),
                                       config.distortion, num_pixels)
  images = tf.random.uniform((config.batch_size, config.crop, config.crop, 3), 0, 255)
  for _ in range(2):  # trace and warm up, untimed
    step_fn(images)
  return lambda: float(step_fn(images)["loss"]), precision


def main(argv):
  del argv
  cases = _cases(_QUALITY.value)
  steps, precisions = {}, {}
  for name, config in cases.items():
    steps[name], precisions[name] = _step(_QUALITY.value, config)
  times = {name: [] for name in cases}
  names = list(cases)
  for round_index in range(_ROUNDS.value):
    for name in names[round_index % len(names):] + names[:round_index % len(names)]:
      for _ in range(_REPEATS.value):
        tick = time.perf_counter()
        steps[name]()
        times[name].append(time.perf_counter() - tick)
  base = statistics.median(times["mse recipe"])
  result = {"quality": _QUALITY.value, "repeats": _REPEATS.value, "rounds": _ROUNDS.value,
            "load_average_at_end": os.getloadavg()[0], "cases": {}}
  for name, config in cases.items():
    median = statistics.median(times[name])
    result["cases"][name] = {
        "distortion": config.distortion, "crop": config.crop, "batch_size": config.batch_size,
        "pixels_per_step": config.batch_size * config.crop**2, "precision": precisions[name],
        "num_steps": config.num_steps, "median_s_per_step": median,
        "quartiles": statistics.quantiles(times[name], n=4),
        "ratio_to_mse_recipe": median / base,
        "hours_for_num_steps": median * config.num_steps / 3600.0}
    print(f"{name:30s} crop {config.crop} x {config.batch_size}: {median:.3f} s/step "
          f"({median / base:.2f}x), {config.num_steps} steps ~ "
          f"{median * config.num_steps / 3600.0:.1f} h")
  if _JSON.value:
    imageio.write_json(_JSON.value, result)


if __name__ == "__main__":
  app.run(main)
