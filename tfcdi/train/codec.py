"""Training of one codec operating point (Eq. 1), with checkpoints that a killed run resumes from.

Library code: the binary experiments/train_codec.py parses flags and calls `train` and
`finalize`. Presets are typed configs; "tiny" is the variant the tests use.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tfcdi import configs
from tfcdi.codec import model as model_lib
from tfcdi.codec import operating_points
from tfcdi.codec import pretrained
from tfcdi.codec import quantizer as q
from tfcdi.codec import widen
from tfcdi.data import images as images_lib
from tfcdi.train import precision as precision_lib
from tfcdi.train import workdir as workdir_lib


# The config and its presets are tfcdi/configs.py's (every stage's, reached one way).
CodecTrainConfig = configs.CodecTrainConfig
PRESETS = configs.PRESETS["codec"]


@dataclasses.dataclass(frozen=True)
class CodecRecipe:
  """Everything that makes one shipped codec: from it, one command trains that codec from
  scratch (`tfcdi-train-codec --recipe=NAME`), and a killed run resumes on the same schedule.

  The run measures itself on Kodak from real files at each milestone and appends the result to
  its workdir's history.json, so a codec's history is data written by the run.
  """

  operating_point: str
  preset: str
  # (field, value) pairs over the preset's CodecTrainConfig: steps, schedule, precision.
  overrides: tuple = ()
  milestones: tuple = ()  # steps at which the run measures itself
  data: str = "imagenette2_224"  # the training images (--data_dir) the recipe is written for
  # A recipe that goes on from another's codec: its run starts from that recipe's bundle,
  # trained first in <workdir>/start/ (unless this run has checkpoints already) and widened
  # when this recipe has more filters (codec/widen.py); its steps count on from the start's.
  start: str | None = None
  variant: str = ""  # tells apart two recipes of one operating point and preset

  @property
  def name(self) -> str:
    # The bundle's own name (finalize names bundles so), so a bundle names its recipe.
    base = f"ae-{self.operating_point}-{self.preset}"
    return f"{base}-{self.variant}" if self.variant else base

  def config(self) -> CodecTrainConfig:
    return get_config(self.preset, **dict(self.overrides))


def _every(step: int, last: int, after: int = 0) -> tuple:
  return tuple(range(after + step, last + 1, step))


def _decay_at_step(step: int, num_steps: int) -> float:
  """The decay_at fraction whose boundary (decay_boundary) is exactly `step`."""
  return (step + 0.5) / num_steps


_LONG_RUN = (("learning_rate", 5e-4), ("clip_norm", 10_000.0))

RECIPES = {recipe.name: recipe for recipe in (
    # What the shipped 0.0983 codec ran: the cpu preset in float32, 2,000 steps at once.
    CodecRecipe("0.0983", "cpu", (("precision", "float32"),), milestones=(1000, 2000)),
    # Long single runs from scratch for the two higher rates (the shipped ones are chains of
    # extensions, BUILD_NOTES.md): lr 5e-4 for 80% of the steps, then 5e-5, mixed bfloat16.
    # At the preset's 1e-3 the 0.635 run diverged at step 4,150 (25.5 dB to 11 dB in 50 steps,
    # measured); the clip is 4x the gradient norm's median at steps 500-600 (2,200-2,500,
    # measured), so that it cuts spikes only.
    CodecRecipe("0.330", "cpu", _LONG_RUN + (("num_steps", 40_000),),
                milestones=_every(5000, 40_000)),
    CodecRecipe("0.635", "cpu", _LONG_RUN + (("num_steps", 80_000),),
                milestones=_every(5000, 80_000)),
    # The same codec at the paper's filters: the bundle above widened to them, computing the
    # same function, then trained on at lr 1e-4 and 1e-5 from step 82,000 (0.65 s/step here,
    # measured). The half-width codec had stopped improving: 3,000 more steps at lr 5e-6 left
    # its Kodak margin to JPEG at -0.0089 (reports/codec/second_decay_0.635/).
    CodecRecipe("0.635", "cpu", (("filters", operating_points.PAPER_FILTERS),
                                 ("learning_rate", 1e-4), ("clip_norm", 10_000.0),
                                 ("num_steps", 92_000),
                                 ("decay_at", _decay_at_step(82_000, 92_000))),
                milestones=_every(2000, 92_000, after=80_000), start="ae-0.635-cpu",
                variant="wide"),
    # The paper's filters from scratch: the widened codec kept near the half-width one's
    # function. 0.65 s/step, so the schedule is shortened from the half-width run's measured
    # curve: its Kodak margin to JPEG moved by +0.002 between steps 30,000 and 60,000 at lr
    # 5e-4 and by +0.004 within 1,000 steps of the drop, so this one drops at 32,000.
    CodecRecipe("0.635", "cpu", (("filters", operating_points.PAPER_FILTERS),) + _LONG_RUN + (
                    ("num_steps", 48_000), ("decay_at", _decay_at_step(32_000, 48_000))),
                milestones=_every(2000, 12_000) + _every(4000, 48_000, after=12_000),
                variant="full"),
    # Seconds, for the tests.
    CodecRecipe("0.0983", "tiny", (("num_steps", 4), ("checkpoint_every", 1)),
                milestones=(2, 4)),
    CodecRecipe("0.0983", "tiny", (("filters", (16, 32)), ("num_steps", 6),
                                   ("checkpoint_every", 1)),
                milestones=(6,), start="ae-0.0983-tiny", variant="wide"),
)}


def replicate(recipe, seed: int):
  """The recipe (of either codec family) run with another seed: other initial weights and data
  order, the same settings and name; its history records the seed. Seed 0 is the recipe's own
  run. Replicates measure how far one run of a recipe can be trusted."""
  return dataclasses.replace(recipe, overrides=recipe.overrides + (("seed", seed),))


def get_recipe(name: str) -> CodecRecipe:
  if name not in RECIPES:
    raise ValueError(f"unknown codec recipe {name!r}; choose one of {', '.join(RECIPES)}")
  return RECIPES[name]


def get_config(preset: str, **overrides) -> CodecTrainConfig:
  """configs.get_config("codec", ...): a preset with some fields replaced (None: unset)."""
  return configs.get_config("codec", preset, **overrides)


def _psnr(mse):
  return 10.0 * math.log10(255.0 ** 2 / max(mse, 1e-10))


def rate_entropy(outputs):
  """The rate term's H: the hard histogram's value with the soft histogram's gradient.

  The hinge max(H - Ht, 0) then switches on exactly when the symbols' real entropy, the one
  the file pays, is above target, while the gradient still flows through the soft assignment.
  (The soft histogram alone over-estimates H for sigma=1 and would push the rate well below Ht.)
  """
  soft = outputs["soft_entropy"]
  return soft + tf.stop_gradient(outputs["entropy"] - soft)


# The counter of its checkpoints (with "model", "optimizer" and "decayed_at"), which also numbers
# the files; runs on disk hold this name (tests/test_workdir.py). The hyperprior's loop too.
CHECKPOINT_COUNTERS = ("step",)


class StepCheckpointing(workdir_lib.Checkpointing):
  """Model, optimizer, step and the decay flag in one tf.train.Checkpoint, restored if any; the
  files are numbered by step.

  Shared by both codec families' training loops (this one and train/hyperprior.py).
  """

  def __init__(self, model, optimizer, directory, decayed_at):
    super().__init__(directory, CHECKPOINT_COUNTERS, number_by="step", model=model,
                     optimizer=optimizer, decayed_at=decayed_at)
    self.step, self.decayed_at = self.counters["step"], decayed_at

  def restore(self) -> int:
    """The step of the latest checkpoint (0 without one)."""
    return super().restore()[0]


class DecayOnce(keras.optimizers.schedules.LearningRateSchedule):
  """`rate` until `boundary`, rate / 10 after it, and never back up once decayed.

  The boundary is a fraction of num_steps, so extending a finished run (a larger num_steps)
  moves it past the current step. A plain piecewise schedule then jumps back to the full rate
  with Adam's moment estimates fitted to the small one: a 0.330 codec resumed that way at step
  10,000 fell from 25 dB to 13 dB within 50 steps (measured). `decayed_at`, kept in the
  checkpoint, remembers that the decay happened.
  """

  def __init__(self, rate: float, boundary: int, decayed_at: tf.Variable):
    self.rate = float(rate)
    self.boundary = int(boundary)
    self.decayed_at = decayed_at

  def __call__(self, step):
    decayed = tf.logical_or(tf.cast(step, tf.int64) >= self.boundary, self.decayed_at > 0)
    return tf.where(decayed, self.rate / 10.0, self.rate)

  def get_config(self):
    return {"rate": self.rate, "boundary": self.boundary}


def decay_boundary(config: CodecTrainConfig) -> int:
  return max(1, int(config.decay_at * config.num_steps))


def build(op, config: CodecTrainConfig, workdir: str, precision: str = "float32"):
  """The model, its optimizer and checkpointing, restored from `workdir` if possible."""
  model = model_lib.from_operating_point(op, config.filters, precision_lib.conv_dtype(precision))
  lr = config.learning_rate if config.learning_rate is not None else op.learning_rate
  boundary = decay_boundary(config)
  decayed_at = tf.Variable(0, dtype=tf.int64, trainable=False, name="decayed_at")
  optimizer = keras.optimizers.Adam(DecayOnce(lr, boundary, decayed_at),
                                    global_clipnorm=config.clip_norm)
  # Creating the slots up front lets the checkpoint restore them immediately, not lazily.
  optimizer.build(model.trainable_variables)
  checkpointing = StepCheckpointing(model, optimizer, workdir_lib.checkpoint_dir(workdir),
                                    decayed_at)
  return model, optimizer, checkpointing


def make_train_step(model, optimizer, beta, target_entropy):
  """One optimizer step of Eq. 1 on a batch of images; returns the loss and its parts.

  A function of its own so that tests can drive the exact step that training runs.
  """
  @tf.function(reduce_retracing=True)
  def step_fn(images):
    with tf.GradientTape() as tape:
      out = model(images, training=True)
      mse = tf.reduce_mean(tf.square(out["reconstruction"] - images))
      loss = q.rate_distortion_loss(mse, rate_entropy(out), beta, target_entropy)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return {"loss": loss, "mse": mse, "entropy": out["entropy"],
            "soft_entropy": out["soft_entropy"]}

  return step_fn


def train(operating_point, config: CodecTrainConfig, data_dir: str, workdir: str,
          split: str = "train", log=print, milestones=(), on_milestone=None) -> dict:
  """Trains (or resumes) one operating point up to config.num_steps; returns the last metrics.

  At each step of `milestones` the run checkpoints and calls `on_milestone(step)`, which must
  be idempotent: a run killed while measuring a milestone measures it again on resume.
  """
  op = operating_points.get_operating_point(operating_point)
  os.makedirs(workdir, exist_ok=True)
  workdir_lib.check_run(workdir, {"operating_point": op.name, "filters": config.filters,
                                  "seed": config.seed}, "codec")
  keras.utils.set_random_seed(config.seed)  # the initial weights: a seed is a whole replicate
  precision = precision_lib.resolve(config.precision)
  model, optimizer, checkpointing = build(op, config, workdir, precision)
  start = checkpointing.restore()
  if not start and config.init_from:
    start = _initialize_from_bundle(model, optimizer, op, config, checkpointing, log)
  if on_milestone is not None and start in milestones:
    on_milestone(start)
  if start >= config.num_steps:
    log(f"[codec {op.name}] already trained for {start} steps")
    return {"step": start}
  log(f"[codec {op.name}] {'resuming from step %d' % start if start else 'starting'}, "
      f"computing in {precision}")

  # A different seed per resume: the data stream is not checkpointed, and restarting the same
  # shuffle order after every interruption would replay the same images.
  dataset = images_lib.codec_training_dataset(
      data_dir, split, config.crop, config.batch_size, seed=config.seed + start)
  beta = tf.constant(op.beta * config.beta_scale, tf.float32)
  target_entropy = op.target_entropy * config.target_entropy_scale
  target = tf.constant(target_entropy, tf.float32)

  step_fn = make_train_step(model, optimizer, beta, target)

  def describe(step, metrics, seconds):
    metrics["bpp_estimate"] = float(q.bits_per_pixel(metrics["entropy"], op.channels))
    return (f"[codec {op.name}] step {step}/{config.num_steps}  loss {metrics['loss']:.2f}  "
            f"psnr {metrics['psnr']:.2f} dB  H {metrics['entropy']:.3f} (target "
            f"{target_entropy:.3f})  bpp~{metrics['bpp_estimate']:.4f}  {seconds:.2f} s/step")

  batches = iter(dataset)
  metrics = {}
  stops = sorted({m for m in milestones if start < m < config.num_steps} | {config.num_steps})
  for stop in stops:
    metrics = run_steps(step_fn, batches, start, config, checkpointing,
                        os.path.join(workdir, "tensorboard"), describe, f"[codec {op.name}]", log,
                        stop=stop)
    start = stop
    if on_milestone is not None and stop in milestones:
      on_milestone(stop)
  return {"step": config.num_steps, **metrics}


def run_steps(step_fn, dataset, start: int, config, checkpointing: StepCheckpointing,
              tensorboard_dir: str, describe, tag: str, log, stop: int | None = None) -> dict:
  """The loop both codec families share: steps up to config.num_steps (or `stop`), the decay
  flag, averaged metrics (with PSNR) to the log and TensorBoard, checkpoints; returns the last
  metrics.

  `describe(step, metrics, seconds)` returns the progress line (and may add metrics). `dataset`
  may be an iterator, so that runs in segments (between milestones) continue one stream.
  """
  writer = tf.summary.create_file_writer(tensorboard_dir)
  boundary = decay_boundary(config)
  end = config.num_steps if stop is None else min(stop, config.num_steps)
  sums, count, tick, metrics = {}, 0, time.time(), {}
  # zip takes the step first: when the range ends, no batch is drawn and lost.
  for step, images in zip(range(start + 1, end + 1), dataset):
    values = step_fn(images)
    if step >= boundary and not int(checkpointing.decayed_at.numpy()):
      checkpointing.decayed_at.assign(step)
    for k, v in values.items():
      sums[k] = sums.get(k, 0.0) + float(v)
    count += 1
    # Stop before a checkpoint can save diverged weights over the last good ones.
    if not all(math.isfinite(v) for v in sums.values()):
      raise FloatingPointError(f"{tag} the loss is no longer finite at step {step}; restart "
                               "from the last checkpoint with a smaller --set=learning_rate=...")
    if step % config.log_every == 0 or step == end:
      metrics = {k: v / count for k, v in sums.items()}
      metrics["psnr"] = _psnr(metrics["mse"])
      line = describe(step, metrics, (time.time() - tick) / count)
      with writer.as_default(step=step):
        for k, v in metrics.items():
          tf.summary.scalar(k, v)
      log(line)
      sums, count, tick = {}, 0, time.time()
    if step % config.checkpoint_every == 0 or step == end:
      checkpointing.save(step)
  writer.flush()
  return metrics


def _initialize_from_bundle(model, optimizer, op, config, checkpointing, log) -> int:
  """Starts an empty workdir from a bundle's weights (and its step count), with a new Adam.

  For a run whose checkpoints are gone but whose bundle survives, or one that goes on from a
  narrower codec: a bundle whose filters divide the run's is widened to them first (widen.py,
  the same function with more filters). Returns the starting step.
  """
  meta = pretrained.read_metadata(config.init_from)
  narrower = tuple(meta["filters"]) != tuple(config.filters)
  if meta["operating_point"] != op.name or (
      narrower and not widen.can_widen(meta["filters"], config.filters)):
    raise ValueError(f"{config.init_from} is a {meta['operating_point']} codec with filters "
                     f"{meta['filters']}; this run trains {op.name} with {list(config.filters)}")
  source = pretrained.load_codec(path=config.init_from).model
  if narrower:
    source = widen.widen(source, config.filters, seed=config.seed)
  for target, weights in zip(model.weights, source.weights):
    target.assign(weights)
  start = int(meta.get("trained_steps", 0))
  checkpointing.step.assign(start)
  # The schedule counts the optimizer's iterations. The bundle does not say whether its rate
  # had decayed: the caller picks the rate (--set=learning_rate=...), small for a fresh Adam.
  optimizer.iterations.assign(start)
  log(f"[codec {op.name}] initialized from {config.init_from} ({meta['name']}, "
      f"{start} steps{', widened from filters %s' % meta['filters'] if narrower else ''}), "
      "new optimizer")
  return start


def symbol_counts(model, data_dir: str, split: str, num_images: int, batch_size: int = 16):
  """Histogram of the symbols the model produces on full training images."""
  paths, _, _ = images_lib.list_images(data_dir, split)
  rng = np.random.default_rng(0)
  chosen = sorted(rng.choice(len(paths), size=min(num_images, len(paths)), replace=False))
  counts = np.zeros(model.num_centers, np.int64)
  for path in (paths[i] for i in chosen):
    image = tf.cast(images_lib.decode_rgb(path), tf.float32)[None]
    padded, _ = model_lib.pad_to_multiple(image)
    symbols = model.encode(padded).numpy()
    counts += np.bincount(symbols.ravel(), minlength=model.num_centers)
  return counts


def finalize(operating_point, config: CodecTrainConfig, data_dir: str, workdir: str,
             preset_name: str, split: str = "train", log=print,
             recipe: str | None = None) -> str:
  """Turns the trained checkpoint into a compact bundle (float16 weights + frequency table).

  Returns the bundle's path. The table is estimated on the float16-rounded model so that it
  describes the symbols the shipped weights produce.
  """
  op = operating_points.get_operating_point(operating_point)
  path = os.path.join(workdir, f"codec_{op.name}.npz")
  summary = _bundle_checkpoint(op, config, data_dir, workdir, preset_name, split, path, log,
                               required_step=config.num_steps, recipe=recipe)
  workdir_lib.write_json(os.path.join(workdir, "train_summary.json"), summary)
  return path


def _bundle_checkpoint(op, config, data_dir, workdir, preset_name, split, path, log,
                       required_step: int, exact: bool = False, recipe: str | None = None) -> dict:
  """The workdir's latest checkpoint as a bundle at `path`; returns its summary.

  `exact`: the checkpoint must be of `required_step` itself (a milestone), not a later one.
  """
  model, _, checkpointing = build(op, config, workdir)
  step = checkpointing.restore()
  if step < required_step or (exact and step != required_step):
    raise ValueError(f"codec {op.name} in {workdir} is trained for {step} of "
                     f"{required_step} steps; train it first")
  pretrained.round_weights_to_float16(model)
  counts = symbol_counts(model, data_dir, split, config.table_images)
  freqs = pretrained.frequency_table(counts)
  probs = counts / counts.sum()
  entropy = float(q.entropy_bits(probs))
  name = recipe or f"ae-{op.name}-{preset_name}"
  fingerprint = pretrained.save_codec(
      model, op, freqs, path, name,
      extra_metadata={"trained_steps": step, "preset": preset_name,
                      "table_entropy_bits": entropy, **({"recipe": recipe} if recipe else {})})
  log(f"[codec {op.name}] bundle {path} ({os.path.getsize(path) / 1024:.0f} KiB), "
      f"fingerprint {fingerprint.hex()}, table entropy {entropy:.3f} bits "
      f"(bpp {q.bits_per_pixel(entropy, op.channels):.4f} on training images)")
  return {"operating_point": op.name, "preset": preset_name, "steps": step,
          "config": dataclasses.asdict(config), "symbol_counts": counts.tolist(),
          "frequencies": freqs.tolist(), "table_entropy_bits": entropy,
          "bundle": os.path.basename(path), "name": name, "fingerprint": fingerprint.hex()}


HISTORY_FILE = "history.json"


def read_history(workdir: str) -> dict | None:
  return workdir_lib.read_json(os.path.join(workdir, HISTORY_FILE))


def measure_milestone(recipe: CodecRecipe, data_dir: str, kodak_dir: str, workdir: str,
                      step: int, split: str = "train", log=print) -> dict:
  """Bundles the checkpoint of `step` and measures it on Kodak from real files; appends the
  result to workdir/history.json (once per step) and returns the history."""
  from tfcdi.codec import evaluation  # pylint: disable=g-import-not-at-top  (bitstream only here)
  history = read_history(workdir) or {
      "recipe": recipe.name, "operating_point": recipe.operating_point,
      "preset": recipe.preset, "data": recipe.data,
      "config": dataclasses.asdict(recipe.config()),
      **({"start": recipe.start} if recipe.start else {}), "milestones": []}
  if any(m["step"] == step for m in history["milestones"]):
    return history
  op = operating_points.get_operating_point(recipe.operating_point)
  where = os.path.join(workdir, "milestones", f"step_{step}")
  os.makedirs(where, exist_ok=True)
  bundle = os.path.join(where, f"codec_{op.name}.npz")
  _bundle_checkpoint(op, recipe.config(), data_dir, workdir, recipe.preset, split, bundle,
                     lambda m: None, required_step=step, exact=True, recipe=recipe.name)
  result = evaluation.evaluate_bundle_on_folder(bundle, kodak_dir, where, log=lambda m: None)
  history["milestones"].append({
      "step": step, **{k: result[k] for k in ("bpp", "psnr", "ssim", "ms_ssim")},
      "num_images": result["num_images"], "fingerprint": result["fingerprint"],
      "measured_from": result["measured_from"]})
  history["milestones"].sort(key=lambda m: m["step"])
  workdir_lib.write_json(os.path.join(workdir, HISTORY_FILE), history)
  log(f"[codec {op.name}] milestone {step}: Kodak {result['bpp']:.4f} bpp, PSNR "
      f"{result['psnr']:.2f} dB, MS-SSIM {result['ms_ssim']:.4f} (real files)")
  return history


def train_recipe(recipe: CodecRecipe, data_dir: str, kodak_dir: str, workdir: str,
                 split: str = "train", log=print) -> str:
  """Trains (or resumes) a recipe with its milestones, bundles it and measures the bundle on
  Kodak; returns the bundle's path. Each stage is skipped when its output is there.

  A recipe with a start trains that recipe first, in workdir/start/, unless this run has a
  checkpoint already (then the start has done its part, and may be gone).
  """
  from tfcdi.codec import evaluation  # pylint: disable=g-import-not-at-top
  config = recipe.config()
  if recipe.start and not tf.train.latest_checkpoint(workdir_lib.checkpoint_dir(workdir)):
    start = train_recipe(replicate(get_recipe(recipe.start), config.seed), data_dir, kodak_dir,
                         os.path.join(workdir, "start"), split, log)
    config = dataclasses.replace(config, init_from=start)
  train(recipe.operating_point, config, data_dir, workdir, split=split, log=log,
        milestones=recipe.milestones,
        on_milestone=lambda step: measure_milestone(recipe, data_dir, kodak_dir, workdir, step,
                                                    split, log))
  bundle = os.path.join(workdir, f"codec_{recipe.operating_point}.npz")
  if (not os.path.exists(bundle)
      or pretrained.read_metadata(bundle).get("trained_steps") != config.num_steps):
    finalize(recipe.operating_point, config, data_dir, workdir, recipe.preset, split, log,
             recipe=recipe.name)
  evaluation.evaluate_bundle_on_folder(bundle, kodak_dir, workdir, log=log)
  return bundle
