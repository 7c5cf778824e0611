"""Training of the classifiers of Table 2 on the three inputs, resumable after a kill.

One net (a row of nets.specs.NETS) reads one input: the uncompressed images of an ImageFolder
split ("original"), the codec's reconstructions of a latent store ("decoded"; RGB nets, the
baseline of the paper) or the store's quantized representation ("latent"; cResNets, the paper's
point). The model is nets/classifier.py's (the net behind a ChannelMean layer); the input
pipeline, its geometry and the channel mean are data/classification_input.py's, the hyperprior
store's arms (`latent_inputs`) included. This module holds the rest: the config and its
presets, the distribution strategy, the loop, checkpoints, results and restoring a trained
classifier.

Training follows the paper (Appendix A.4): SGD with momentum 0.9, batch 64, learning rate 0.025
divided by 10 at epochs 8, 16 and 24 of 28, weight decay 1e-4. Presets scale that down.

Library code: experiments/train_classifier.py parses flags and calls `train`. Everything goes
under the workdir: checkpoints/ (model, optimizer, epoch, step in epoch), results.json (the
config, the command, per-epoch curves, final top-1/top-5) and TensorBoard logs.
"""

from __future__ import annotations

import dataclasses
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tfcdi import configs
from tfcdi import metrics
from tfcdi.data import classification_input
from tfcdi.data import latent_store
from tfcdi.data import rgb_arms
from tfcdi.nets import classifier as classifier_net
from tfcdi.nets import specs as specs_lib
from tfcdi.train import precision as precision_lib
from tfcdi.train import workdir as workdir_lib

INPUT_KINDS = ("original", "decoded", "latent")
STRATEGIES = ("default", "mirrored", "multi_worker_mirrored")
RESULTS_FILE = workdir_lib.RESULTS_FILE
# The counters of its checkpoints (with "model" and "optimizer"): finished epochs and steps into
# the next one. Runs on disk hold these names; tests/test_workdir.py pins them.
CHECKPOINT_COUNTERS = ("epoch", "step_in_epoch")


# The config and its presets are tfcdi/configs.py's (every stage's, reached one way).
ClassifierTrainConfig = configs.ClassifierTrainConfig
PRESETS = configs.PRESETS["classifier"]


# The net, the input, the data or the workdir do not fit together: the input pipeline's error,
# which this module raises for the rest.
TrainingError = classification_input.TrainingError


def get_config(preset: str, **overrides) -> ClassifierTrainConfig:
  """configs.get_config("classifier", ...): a preset with some fields replaced (None: unset)."""
  try:
    return configs.get_config("classifier", preset, **overrides)
  except configs.ConfigError as e:
    raise TrainingError(str(e)) from None


def check_net_and_input(net: str, input_kind: str) -> None:
  """The RGB nets read original or decoded images, the cResNets the latent."""
  if input_kind not in INPUT_KINDS:
    raise TrainingError(f"unknown input {input_kind!r}; choose one of {', '.join(INPUT_KINDS)}")
  try:
    spec = specs_lib.get_spec(net)
  except ValueError as e:
    raise TrainingError(str(e)) from None
  if spec.reads_latent != (input_kind == "latent"):
    reads, wanted = (("the compressed representation", "latent") if spec.reads_latent else
                     ("RGB images", "original or --input=decoded"))
    raise TrainingError(f"{net} reads {reads}; use --input={wanted}, not {input_kind}")


# --- distribution -----------------------------------------------------------------------------


def make_strategy(name: str) -> tf.distribute.Strategy:
  """The tf.distribute strategy of a --strategy value.

  multi_worker_mirrored reads the cluster from the TF_CONFIG environment variable.
  """
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker_mirrored":
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise TrainingError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def num_workers(strategy) -> int:
  """Worker processes the strategy spans (1 unless TF_CONFIG names a cluster)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None:
    return 1
  cluster = resolver.cluster_spec().as_dict()
  return max(1, len(cluster.get("worker", [])) + len(cluster.get("chief", [])))


def _sharded_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """Every worker builds the same global stream and keeps its share of each global batch.

  tf.data's default (AUTO) shards a store by files: workers would read different records, a
  resumed epoch's skip (counted in global batches) would land elsewhere than in one process,
  and an evaluation would see whatever its workers' files hold. By data, the batches of N
  workers are exactly those of one process, at the price of each worker reading the stream.
  """
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
  return dataset.with_options(options)


def _synchronize_batch_norm(model) -> None:
  """Batch statistics over the global batch, on every replica.

  Keras 3 updates a BatchNormalization's moving mean and variance on each replica from that
  replica's batch, and keeps no aggregation for them: measured with two workers, their moving
  variances parted by 2% within six steps, so each worker evaluated another net and the
  checkpoint held the chief's. Synchronized, every replica normalizes with, and averages, the
  same global-batch statistics: N replicas train the net one process trains on the same global
  batch, and stay identical (BUILD_NOTES.md).
  """
  for layer in _all_layers(model):
    if isinstance(layer, keras.layers.BatchNormalization):
      layer.synchronized = True


def _all_layers(model):
  for layer in model.layers:
    yield layer
    if isinstance(layer, keras.Model):
      yield from _all_layers(layer)


def _is_chief(strategy) -> bool:
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return True
  if resolver.task_type == "chief":
    return True
  has_chief = "chief" in resolver.cluster_spec().as_dict()
  return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


# --- results -----------------------------------------------------------------------------------


# A finished run read back (the workdir module's; checkpoints: "epoch" and "step_in_epoch").
read_results = workdir_lib.read_results


def _learning_rate_schedule(config: ClassifierTrainConfig, steps_per_epoch: int):
  boundaries = [int(e) * steps_per_epoch for e in config.lr_drop_epochs]
  values = [config.learning_rate / config.lr_drop_factor ** i for i in range(len(boundaries) + 1)]
  if not boundaries:
    return config.learning_rate
  return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def _softmax_cross_entropy(labels, logits) -> float:
  logits = logits - logits.max(axis=1, keepdims=True)
  log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
  return float(-log_probs[np.arange(len(labels)), labels].mean())


# --- training ---------------------------------------------------------------------------------


def train(net: str, input_kind: str, config: ClassifierTrainConfig, *, workdir: str,
          data_dir: str | None = None, store_dir: str | None = None, codec=None,
          operating_point: str | None = None, strategy: str = "default",
          train_split: str = "train", eval_split: str = "val",
          preset_name: str | None = None, command: list | None = None,
          latent_inputs: str | None = None, quality: int | None = None, log=print) -> dict:
  """Trains (or resumes) one classifier for config.epochs epochs; returns the results.

  Args:
    net: a net of nets.specs.NETS.
    input_kind: "original", "decoded" or "latent".
    config: the training config (see PRESETS).
    workdir: checkpoints, results.json and TensorBoard logs go here; a run in it resumes.
    data_dir: ImageFolder root with train/ and val/ (input "original").
    store_dir: a latent store with train and val splits (inputs "decoded" and "latent").
    codec: the store's pretrained.Codec (or HyperpriorCodec), or a function returning it
      (called only if the decoded cache is missing and has to be built).
    operating_point: if given, the store must hold this operating point.
    quality: if given, the (hyperprior) store must hold this quality.
    latent_inputs: the latent arm of a hyperprior store: "y_hat+sigma_hat" (the two-branch
      net; the default) or "y_hat" (the net on y_hat alone). Recorded in the results.
    strategy: "default", "mirrored" or "multi_worker_mirrored".
    train_split: the split trained on ("train").
    eval_split: the split evaluated after every epoch ("val"; tfds ImageNet: "validation").
    preset_name: recorded in the results.
    command: the command line, recorded in the results.
    log: where progress lines go.

  Raises:
    TrainingError, latent_store.StoreError: inputs that do not fit together.
  """
  check_net_and_input(net, input_kind)
  data = classification_input.describe_data(
      input_kind, data_dir=data_dir, store_dir=store_dir, config=config,
      operating_point=operating_point, train_split=train_split, eval_split=eval_split,
      latent_inputs=latent_inputs, quality=quality)
  _check_workdir(workdir, net, input_kind, data, config.seed)
  if input_kind == "decoded":
    _ensure_decoded_cache(data, codec, log)
  if data.reads_pairs and config.cache_latents:
    _ensure_latent_cache(data, log)
  train_count = data.count(data.train_split)
  steps_per_epoch = train_count // config.batch_size
  if steps_per_epoch < 1:
    raise TrainingError(f"{train_count} training examples do not make one batch of "
                        f"{config.batch_size}")
  if config.steps_per_epoch:
    steps_per_epoch = min(steps_per_epoch, config.steps_per_epoch)
  eval_count = data.count(data.eval_split)

  dist = make_strategy(strategy)
  if config.batch_size % dist.num_replicas_in_sync:
    raise TrainingError(f"batch size {config.batch_size} does not split over "
                        f"{dist.num_replicas_in_sync} replicas")
  chief = _is_chief(dist)
  os.makedirs(workdir, exist_ok=True)
  # Non-chief workers must take part in saving (it is collective) but write elsewhere.
  chief_dir = ckpt_dir = workdir_lib.checkpoint_dir(workdir)
  if not chief:
    ckpt_dir = os.path.join(workdir, f"worker_tmp_{dist.cluster_resolver.task_id}")
  tag = f"[{net} {input_kind} {data.latent_inputs}]" if data.latent_inputs else (
      f"[{net} {input_kind}]")

  precision = precision_lib.resolve(config.precision)
  # Keras draws initial weights from its global generator; seeding it here (not at import) keeps
  # the seed an argument of the run. A resumed run restores its weights, so this only matters
  # for a fresh one.
  keras.utils.set_random_seed(config.seed)
  with dist.scope():
    model = classifier_net.build_model(net, data.channels, len(data.classes), config,
                                       precision, data.latent_inputs)
    if dist.num_replicas_in_sync > 1:
      _synchronize_batch_norm(model)
    optimizer = keras.optimizers.SGD(_learning_rate_schedule(config, steps_per_epoch),
                                     momentum=config.momentum)
    optimizer.build(model.trainable_variables)
    checkpointing = workdir_lib.Checkpointing(ckpt_dir, CHECKPOINT_COUNTERS,
                                              restore_from=chief_dir, model=model,
                                              optimizer=optimizer)
  epoch_done, step_done = checkpointing.restore()

  results = read_results(workdir) if epoch_done or step_done else None
  if results is None:
    tick = time.time()
    mean = classification_input.channel_mean(data, config)
    shown = "; ".join(f"{name}: {_format_mean(m)}" for name, m in mean.items()) if isinstance(
        mean, dict) else _format_mean(mean)
    log(f"{tag} channel mean over {config.mean_examples or train_count} training examples "
        f"({time.time() - tick:.0f} s): {shown}")
    results = _new_results(net, input_kind, config, data, mean, preset_name, command, strategy,
                           operating_point, train_count, eval_count, steps_per_epoch, model)
  # Entries past the checkpoint cannot exist (results are written after it), unless someone
  # removed checkpoints; the curves then restart with the training.
  del results["epochs"][epoch_done:]
  classifier_net.set_channel_mean(model, results["channel_mean"])
  # The config and command of the latest (possibly resumed and extended) run.
  results["config"] = dataclasses.asdict(config)
  results["command"] = command if command is not None else results.get("command")
  results["precision"] = precision

  if epoch_done >= config.epochs:
    log(f"{tag} already trained for {epoch_done} epochs")
    return results
  if epoch_done or step_done:
    log(f"{tag} resuming at epoch {epoch_done + 1}, step {step_done}")

  train_step, predict_step = _step_functions(model, optimizer, dist, config)
  writer = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard")) if chief else None

  def save_results():
    if chief:
      workdir_lib.write_results(workdir, results)

  # A kill between saving an end-of-epoch checkpoint and writing the results leaves that
  # epoch's evaluation unrecorded: do it now.
  while len(results["epochs"]) < epoch_done:
    done = len(results["epochs"]) + 1
    evaluation = evaluate(predict_step, data, config, dist, _eval_limit(config, done))
    results["epochs"].append({"epoch": done, **evaluation})
  save_results()

  for epoch in range(epoch_done, config.epochs):
    start_step = step_done if epoch == epoch_done else 0
    dataset = dist.experimental_distribute_dataset(_sharded_by_data(
        classification_input.train_input(data, config, epoch, start_step)))
    sums = {"loss": 0.0, "correct": 0.0, "count": 0}
    window = {"loss": 0.0, "count": 0}
    epoch_tick = window_tick = time.time()
    warm_tick = None  # after the first step, which also starts the input pipeline (and traces)
    iterator = iter(dataset)
    for step in range(start_step + 1, steps_per_epoch + 1):
      loss, correct = train_step(*next(iterator))
      if warm_tick is None:
        float(loss)
        warm_tick = time.time()
      sums["loss"] += float(loss)
      sums["correct"] += float(correct)
      sums["count"] += 1
      window["loss"] += float(loss)
      window["count"] += 1
      if config.checkpoint_every and step % config.checkpoint_every == 0 and step < steps_per_epoch:
        checkpointing.save(epoch, step)
      if step % config.log_every == 0 or step == steps_per_epoch:
        seconds = (time.time() - window_tick) / window["count"]
        lr = float(_current_lr(optimizer))
        log(f"{tag} epoch {epoch + 1}/{config.epochs} step {step}/{steps_per_epoch}  loss "
            f"{window['loss'] / window['count']:.4f}  lr {lr:g}  {seconds:.3f} s/step")
        if writer:
          with writer.as_default(step=int(optimizer.iterations.numpy())):
            tf.summary.scalar("train/loss", window["loss"] / window["count"])
            tf.summary.scalar("train/learning_rate", lr)
        window, window_tick = {"loss": 0.0, "count": 0}, time.time()
    train_seconds = time.time() - epoch_tick
    warm_steps = sums["count"] - 1
    step_seconds = ((time.time() - warm_tick) / warm_steps if warm_steps > 0
                    else train_seconds / max(1, sums["count"]))
    evaluation = evaluate(predict_step, data, config, dist, _eval_limit(config, epoch + 1))
    entry = {
        "epoch": epoch + 1,
        "learning_rate": float(_current_lr(optimizer)),
        "train_loss": sums["loss"] / max(1, sums["count"]),
        "train_top1": sums["correct"] / max(1, sums["count"] * config.batch_size),
        "train_steps_measured": sums["count"],
        "train_seconds": train_seconds,
        "step_seconds": step_seconds,  # steady state: without the epoch's first step
        **evaluation,
    }
    results["epochs"].append(entry)
    checkpointing.save(epoch + 1, 0)
    if epoch + 1 == config.epochs:
      results["final"] = {"epoch": epoch + 1, "top1": entry["val_top1"],
                          "top5": entry["val_top5"]}
      results["complete"] = True
    save_results()
    if writer:
      with writer.as_default(step=epoch + 1):
        for key in ("val_top1", "val_top5", "val_loss", "train_loss"):
          tf.summary.scalar(key.replace("_", "/", 1), entry[key])
    log(f"{tag} epoch {epoch + 1}/{config.epochs}: val top-1 {entry['val_top1']:.4f}  top-5 "
        f"{entry['val_top5']:.4f}  (train loss {entry['train_loss']:.4f}, "
        f"{entry['step_seconds']:.3f} s/step, eval {entry['eval_seconds']:.0f} s)")
  if writer:
    writer.flush()
  return results


def _format_mean(mean) -> str:
  return np.array2string(np.asarray(mean), precision=3, max_line_width=10**6)


def _check_workdir(workdir: str, net: str, input_kind: str, data: classification_input.DataSpec,
                   seed: int = 0) -> None:
  """Refuses to resume a workdir that holds another net, input, seed or codec's run."""
  previous = read_results(workdir)
  if previous is None:
    return
  if (previous["net"], previous["input"]) != (net, input_kind):
    raise TrainingError(f"{workdir} holds a {previous['net']} run on {previous['input']} "
                        "inputs; use another --workdir")
  if previous.get("latent_inputs") != data.latent_inputs:
    raise TrainingError(f"{workdir} holds a {previous['net']} run on "
                        f"{previous.get('latent_inputs') or previous['input']} inputs, not "
                        f"{data.latent_inputs or input_kind}; use another --workdir")
  if data.store_dir and previous.get("codec"):
    store_codec = latent_store.read_metadata(data.store_dir)["codec"]
    if store_codec["fingerprint"] != previous["codec"]["fingerprint"]:
      raise TrainingError(f"{workdir} holds a run on codec {previous['codec']['name']!r}'s "
                          f"latents, not {store_codec['name']!r}'s; use another --workdir")
  previous_seed = previous.get("config", {}).get("seed", 0)
  if previous_seed != seed:
    # Resuming seed 0's checkpoint under seed 1 would give a run that is neither.
    raise TrainingError(f"{workdir} holds a run with seed {previous_seed}, not {seed}; use "
                        "another --workdir for each seed")


def _eval_limit(config: ClassifierTrainConfig, epoch: int) -> int:
  return config.final_eval_examples if epoch == config.epochs else config.eval_examples


def _current_lr(optimizer):
  lr = optimizer.learning_rate
  return lr(optimizer.iterations) if callable(lr) else lr


def _ensure_decoded_cache(data: classification_input.DataSpec, codec, log) -> None:
  for split in (data.train_split, data.eval_split):
    try:
      rgb_arms.decoded_dataset(data.store_dir, split)
      continue
    except latent_store.StoreError:
      if codec is None:
        raise TrainingError(
            f"the decoded cache of {split!r} in {data.store_dir} is missing; give the store's "
            "codec (--codec or --operating_point) to build it") from None
    if callable(codec):
      codec = codec()
    log(f"decoding the {split!r} split of {data.store_dir} once, for the decoded arm")
    rgb_arms.build_decoded_cache(data.store_dir, split, codec)


def _ensure_latent_cache(data: classification_input.DataSpec, log) -> None:
  for split in (data.train_split, data.eval_split):
    if not latent_store.has_latent_cache(data.store_dir, split):
      log(f"entropy-decoding the {split!r} split of {data.store_dir} once, for the latent arms")
      latent_store.build_latent_cache(data.store_dir, split, progress=False)


def _new_results(net, input_kind, config, data, mean, preset_name, command, strategy,
                 operating_point, train_count, eval_count, steps_per_epoch, model) -> dict:
  codec = None
  if data.store_dir:
    meta = latent_store.read_metadata(data.store_dir)
    codec = meta["codec"]
    operating_point = codec["operating_point"]
  crop = config.crop_for(input_kind)
  if isinstance(mean, dict):
    channel_means = {name: [float(m) for m in values] for name, values in mean.items()}
  else:
    channel_means = [float(m) for m in mean]
  return {
      "net": net,
      "input": input_kind,
      # The hyperprior arms: which latents the net reads (None for the other stores and arms).
      "latent_inputs": data.latent_inputs,
      "codec_family": latent_store.codec_family(codec) if codec else None,
      "operating_point": operating_point if input_kind != "original" else "original",
      "preset": preset_name,
      "config": dataclasses.asdict(config),
      "command": command,
      "strategy": strategy,
      "data_dir": os.path.abspath(data.data_dir) if data.data_dir else None,
      "store_dir": os.path.abspath(data.store_dir) if data.store_dir else None,
      "codec": codec,
      "classes": list(data.classes),
      "num_classes": len(data.classes),
      "input_shape": [crop, crop, data.channels],
      "view_size": data.view_size,
      "channel_mean": channel_means,
      "num_params": int(model.count_params()),
      "train_examples": train_count,
      "eval_split_examples": eval_count,
      "steps_per_epoch": steps_per_epoch,
      "epochs": [],
      "final": None,
      "complete": False,
  }


def _step_functions(model, optimizer, dist, config):
  """The distributed training step and the evaluation forward pass."""
  batch_size = config.batch_size

  def replica_train_step(x, y):
    with tf.GradientTape() as tape:
      logits = model(x, training=True)
      per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
      loss = tf.nn.compute_average_loss(per_example, global_batch_size=batch_size)
      total = loss
      if model.losses:  # the L2 weight decay of the kernels, counted once over the replicas
        total += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
    grads = tape.gradient(total, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    correct = tf.reduce_sum(tf.cast(
        tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32))
    return loss, correct

  @tf.function
  def train_step(x, y):
    loss, correct = dist.run(replica_train_step, args=(x, y))
    return (dist.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
            dist.reduce(tf.distribute.ReduceOp.SUM, correct, axis=None))

  @tf.function
  def predict_step(x, y):
    logits = dist.run(lambda x: model(x, training=False), args=(x,))
    return dist.gather(logits, axis=0), dist.gather(y, axis=0)

  return train_step, predict_step


def evaluate(predict_step, data: classification_input.DataSpec, config: ClassifierTrainConfig,
             dist, limit: int = 0) -> dict:
  """Top-1 / top-5 accuracy and loss on the validation split (central crops)."""
  tick = time.time()
  dataset = classification_input.eval_input(data, config, limit)
  if num_workers(dist) > 1:
    count = data.count(data.eval_split)
    dataset = _padded_to_global_batches(dataset, min(count, limit) if limit else count,
                                        config.batch_size)
  all_logits, all_labels = [], []
  for x, y in dist.experimental_distribute_dataset(_sharded_by_data(dataset)):
    logits, labels = predict_step(x, y)
    all_logits.append(logits.numpy())
    all_labels.append(labels.numpy())
  logits = np.concatenate(all_logits).astype(np.float64)
  labels = np.concatenate(all_labels)
  real = labels >= 0  # the padding's label is -1
  logits, labels = logits[real], labels[real]
  return {
      "val_top1": metrics.top_k_accuracy(labels, logits, 1),
      "val_top5": metrics.top_k_accuracy(labels, logits, min(5, logits.shape[1])),
      "val_loss": _softmax_cross_entropy(labels, logits),
      "val_examples": int(labels.size),
      "eval_seconds": time.time() - tick,
  }


def _padded_to_global_batches(batches: tf.data.Dataset, count: int,
                              batch_size: int) -> tf.data.Dataset:
  """The `count` examples of `batches`, then label -1 padding up to whole global batches.

  Workers sharing one evaluation must run the same number of steps (each gathers from all):
  a partial last batch split by data would leave one worker a step short, and both waiting.
  """
  examples = batches.unbatch()
  pad = -count % batch_size
  padding = examples.take(1).map(
      lambda x, y: (tf.nest.map_structure(tf.zeros_like, x), tf.constant(-1, y.dtype)))
  return examples.concatenate(padding.repeat(pad)).batch(batch_size, drop_remainder=True)


# --- restoring a trained classifier -----------------------------------------------------------


def restore_model(workdir: str) -> tuple[keras.Model, dict]:
  """The trained model of a workdir (latest checkpoint) and its results.

  Raises:
    TrainingError: no results or checkpoint in the workdir.
  """
  results = read_results(workdir)
  if results is None:
    raise TrainingError(f"no {RESULTS_FILE} in {workdir}; train a classifier there first")
  config = ClassifierTrainConfig(**{**results["config"],
                                    "lr_drop_epochs": tuple(results["config"]["lr_drop_epochs"])})
  model = classifier_net.build_model(results["net"], results["input_shape"][-1],
                                     results["num_classes"], config,
                                     latent_inputs=results.get("latent_inputs"))
  workdir_lib.restore_latest(workdir, TrainingError, model=model)
  return model, results
