"""Joint fine-tuning of codec and cResNet-51 (Eq. 2, Section 6) and its control arms.

Eq. 2 of the paper:

    L = gamma * (MSE(x, x_hat) + beta * max(H(q) - Ht, 0)) + CE(y, y_hat)

Encoder, quantizer centers, decoder and the classifier are all trained; the classifier's
gradient reaches the encoder through the custom-gradient quantizer (hard forward, soft
backward). Three arms share this one loop, so that they differ only in what they train:

  joint       codec + classifier, the loss above ("joint ft." of Figs. 7 and 11)
  codec       the codec alone, gamma * (MSE + beta * max(H - Ht, 0)) with the same schedule
              ("compression ft."). The codec loss keeps its gamma: with the same optimizer and
              rate, the codec's update then differs from the joint arm's only by the classifier's
              gradient, which is the comparison the control protocol is after.
  classifier  the classifier alone on a fixed codec: the control's "9 more epochs"

The control protocol of Section 6.1 is then: `codec` arm -> encode a store with the new codec
-> train cResNet-51 from scratch on it (train_classifier) -> `classifier` arm from that
classifier. Segmentation after joint training fine-tunes cResNet-51-d from the joint arm's
classifier (train_segmenter --init_from=WORKDIR/classifier) on the joint codec's latents.

Geometry: the classifier baselines read 28 x 28 crops of the 32 x 32 latent of a 256 x 256 view
(latent_store.square_view). Here a 224 x 224 crop of that view at an offset that is a multiple
of 8 is encoded, whose 28 x 28 latent is the same crop of the representation (up to the
encoder's border effects), and the decoder's reconstruction of it is what the MSE compares.
Evaluation encodes the whole view and classifies the central 28 x 28 latent crop, exactly as a
latent store's evaluation does; so the evaluation before fine-tuning reproduces the baseline
classifier's accuracy, and the one after it is what a user gets from real files.

Outputs (all under the workdir, resumable after a kill):
  checkpoints/           codec, classifier, optimizer, epoch and step
  results.json           config, command, the evaluation before and after each epoch, the final
                         evaluation of the float16-rounded codec on the whole validation split,
                         the Kodak metrics of the fine-tuned codec from real files
  codec_<op>.npz         the fine-tuned codec bundle (arms joint and codec)
  classifier/            a train_classifier-style workdir (results.json + checkpoints) holding the
                         fine-tuned classifier (arms joint and classifier), for export and for
                         train_segmenter --init_from
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
from tfcdi import metrics
from tfcdi.codec import evaluation as codec_evaluation
from tfcdi.codec import model as model_lib
from tfcdi.codec import pretrained
from tfcdi.codec import quantizer as q
from tfcdi.data import images as images_lib
from tfcdi.data import latent_store
from tfcdi.train import classifier as classifier_lib
from tfcdi.train import codec as codec_train
from tfcdi.train import precision as precision_lib
from tfcdi.train import workdir as workdir_lib

ARMS = ("joint", "codec", "classifier")
RESULTS_FILE = workdir_lib.RESULTS_FILE
# The counters of its checkpoints (with "codec", "optimizer" and "classifier"); runs on disk
# hold these names (tests/test_workdir.py).
CHECKPOINT_COUNTERS = ("epoch", "step")
CLASSIFIER_DIR = "classifier"
_EVAL_SEED = 1234
_EVAL_BATCH = 32


# The config and its presets are tfcdi/configs.py's (every stage's, reached one way).
JointTrainConfig = configs.JointTrainConfig
PRESETS = configs.PRESETS["joint"]


class JointError(ValueError):
  """The arm, the codec, the classifier, the data or the workdir do not fit together."""


def get_config(preset: str, **overrides) -> JointTrainConfig:
  """configs.get_config("joint", ...): a preset with some fields replaced (None: unset)."""
  try:
    return configs.get_config("joint", preset, **overrides)
  except configs.ConfigError as e:
    raise JointError(str(e)) from None


def learning_rate_schedule(config: JointTrainConfig, steps_per_epoch: int):
  """The rate divided by lr_drop_factor every lr_drop_every epochs."""
  # The optimizer's iteration count is the index of the step being taken, and the schedule
  # keeps values[i] up to and including boundaries[i]: the last step of an epoch is the boundary.
  drops = [e * steps_per_epoch - 1 for e in range(config.lr_drop_every, config.epochs,
                                                   config.lr_drop_every)]
  if not drops:
    return config.learning_rate
  values = [config.learning_rate / config.lr_drop_factor ** i for i in range(len(drops) + 1)]
  return keras.optimizers.schedules.PiecewiseConstantDecay(drops, values)


# --- data ---------------------------------------------------------------------------------------


def _load_view(path, size: int):
  return latent_store.square_view(images_lib.decode_rgb(path), size)


def aligned_random_crop(view, crop: int):
  """A random crop whose offsets are multiples of 8, so its latent is a crop of the view's."""
  size = tf.shape(view)[0]
  positions = (size - crop) // model_lib.DOWNSAMPLING + 1
  offsets = tf.random.uniform([2], 0, positions, dtype=tf.int32) * model_lib.DOWNSAMPLING
  return view[offsets[0]:offsets[0] + crop, offsets[1]:offsets[1] + crop, :]


def train_dataset(paths, labels, config: JointTrainConfig, epoch: int, skip_steps: int = 0):
  """One epoch of (crops float32 [B, crop, crop, 3] in [0, 255], labels), mirrored at random.

  The shuffle is seeded by the epoch, so a resumed epoch skips the batches it already saw.
  """
  ds = tf.data.Dataset.from_tensor_slices((list(paths), np.asarray(labels, np.int32)))
  ds = ds.shuffle(min(len(paths), config.shuffle_buffer), seed=config.seed + epoch,
                  reshuffle_each_iteration=False)

  def load(path, label):
    crop = aligned_random_crop(_load_view(path, config.view_size), config.crop)
    return tf.cast(tf.image.random_flip_left_right(crop), tf.float32), label

  ds = ds.repeat().skip(skip_steps * config.batch_size)
  ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
  return ds.batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def eval_subset(paths, labels, limit: int):
  """A fixed random subset (the same every epoch and every run), or everything."""
  if not limit or limit >= len(paths):
    return list(paths), list(labels)
  chosen = sorted(np.random.default_rng(_EVAL_SEED).choice(len(paths), limit, replace=False))
  return [paths[i] for i in chosen], [labels[i] for i in chosen]


def eval_dataset(paths, labels, config: JointTrainConfig):
  ds = tf.data.Dataset.from_tensor_slices((list(paths), np.asarray(labels, np.int32)))
  ds = ds.map(lambda p, y: (tf.cast(_load_view(p, config.view_size), tf.float32), y),
              num_parallel_calls=tf.data.AUTOTUNE)
  return ds.batch(_EVAL_BATCH).prefetch(tf.data.AUTOTUNE)


# --- models -------------------------------------------------------------------------------------


def _trainable_codec(codec: pretrained.Codec, precision: str) -> model_lib.Autoencoder:
  """A copy of the codec's model in the training precision, with its weights."""
  model = model_lib.from_operating_point(codec.operating_point, codec.filters,
                                         precision_lib.conv_dtype(precision)).build_weights()
  _copy_weights(codec.model, model)
  return model


def _load_classifier(workdir: str, codec: pretrained.Codec, classes) -> tuple:
  """The baseline cResNet of `workdir`, checked against the codec and the data."""
  try:
    model, results = classifier_lib.restore_model(workdir)
  except classifier_lib.TrainingError as e:
    raise JointError(str(e)) from None
  if results["input"] != "latent":
    raise JointError(f"{workdir} holds a {results['net']} on {results['input']} inputs; joint "
                     "training needs a cResNet trained on the latent (--input=latent)")
  if results["input_shape"][-1] != codec.channels:
    raise JointError(f"{workdir}'s {results['net']} reads {results['input_shape'][-1]} channels; "
                     f"codec {codec.name!r} makes {codec.channels}")
  trained_on = (results.get("codec") or {}).get("fingerprint")
  if trained_on and trained_on != codec.fingerprint.hex():
    raise JointError(f"{workdir}'s {results['net']} was trained on codec "
                     f"{results['codec']['name']!r} ({trained_on}), not on {codec.name!r} "
                     f"({codec.fingerprint.hex()}); pass the codec it was trained on")
  if list(results["classes"]) != list(classes):
    raise JointError(f"{workdir}'s classifier knows {len(results['classes'])} classes that are "
                     f"not the {len(classes)} classes of the data")
  return model, results


# --- the loop -----------------------------------------------------------------------------------


# A finished run read back (the workdir module's; checkpoints: "epoch" and "step").
read_results = workdir_lib.read_results


def _psnr(mse: float) -> float:
  return 10.0 * math.log10(255.0 ** 2 / max(mse, 1e-10))


class _Evaluator:
  """Codec and (optionally) classifier metrics on whole views, as a latent store sees them.

  It evaluates a float32 copy of the codec, refreshed from the trained one at every call:
  inference (files, stores) runs in float32 whatever precision training computes in.
  """

  def __init__(self, trained_codec, codec: pretrained.Codec, classifier,
               config: JointTrainConfig):
    self.trained_codec = trained_codec
    self.codec_model = codec_model = _float32_model(codec)
    self.classifier = classifier
    border = (config.view_size - config.crop) // (2 * model_lib.DOWNSAMPLING)
    crop = config.latent_crop
    num_centers = codec_model.num_centers

    @tf.function(reduce_retracing=True)
    def step(images):
      symbols = codec_model.encode(images)
      z_hat = codec_model.latent(symbols)
      reconstruction = tf.clip_by_value(
          tf.cast(codec_model.decoder(z_hat, training=False), tf.float32), 0.0, 255.0)
      # Round as a decoded file would be: an image is 8-bit.
      squared = tf.square(tf.round(reconstruction) - images)
      mse = tf.reduce_mean(squared, axis=[1, 2, 3])
      counts = tf.math.bincount(tf.reshape(symbols, [-1]), minlength=num_centers,
                                maxlength=num_centers, dtype=tf.int64)
      if classifier is None:
        return mse, counts, tf.zeros([tf.shape(images)[0], 1])
      center = z_hat[:, border:border + crop, border:border + crop, :]
      return mse, counts, tf.cast(classifier(center, training=False), tf.float32)

    self._step = step

  def __call__(self, dataset) -> dict:
    tick = time.time()
    _copy_weights(self.trained_codec, self.codec_model)
    mses, logits, labels = [], [], []
    counts = 0
    for images, y in dataset:
      mse, c, out = self._step(images)
      mses.append(mse.numpy())
      counts = counts + c.numpy()
      logits.append(out.numpy())
      labels.append(y.numpy())
    mse = np.concatenate(mses)
    probabilities = counts / max(1, counts.sum())
    entropy = float(q.entropy_bits(probabilities.astype(np.float32)))
    result = {
        "examples": int(mse.size),
        # Mean of per-image PSNRs, as the Kodak reports do.
        "psnr": float(np.mean([_psnr(m) for m in mse])),
        "entropy_bits": entropy,
        # What a file would cost under an ideal coder with this split's own histogram (the
        # real files' rate, on Kodak, is in results["kodak"]).
        "bpp_estimate": float(q.bits_per_pixel(entropy, self.codec_model.channels)),
        "seconds": time.time() - tick,
    }
    if self.classifier is not None:
      logits = np.concatenate(logits).astype(np.float64)
      labels = np.concatenate(labels)
      result["top1"] = metrics.top_k_accuracy(labels, logits, 1)
      result["top5"] = metrics.top_k_accuracy(labels, logits, min(5, logits.shape[1]))
    return result


def train(arm: str, config: JointTrainConfig, *, workdir: str, data_dir: str,
          codec_path: str | None = None, operating_point: str | None = None,
          classifier_dir: str | None = None, kodak_dir: str | None = None,
          kodak_images: int = 0, train_split: str = "train", eval_split: str = "val",
          preset_name: str | None = None, command: list | None = None, log=print) -> dict:
  """Fine-tunes (or resumes) one arm for config.epochs epochs; returns the results.

  Args:
    arm: "joint", "codec" or "classifier" (see the module docstring).
    config: see PRESETS.
    workdir: checkpoints, results.json, the new bundle and classifier go here.
    data_dir: ImageFolder root with the train and eval splits.
    codec_path / operating_point: the codec to start from (a bundle, or the shipped one).
    classifier_dir: a train_classifier workdir of a cResNet trained on that codec's latents;
      required by arms joint and classifier, evaluated (not trained) by arm codec if given.
    kodak_dir: if given, the codec before and after is evaluated on it from real files.
    kodak_images: evaluate on the first n images of kodak_dir only (0: all).

  Raises:
    JointError, pretrained.CodecError: inputs that do not fit together.
  """
  if arm not in ARMS:
    raise JointError(f"unknown arm {arm!r}; choose one of {', '.join(ARMS)}")
  if arm in ("joint", "classifier") and not classifier_dir:
    raise JointError(f"arm {arm!r} fine-tunes a classifier: give the baseline cResNet's "
                     "train_classifier workdir (--classifier)")
  if codec_path is None and operating_point is None:
    raise JointError("give a codec bundle (--codec) or an operating point (--operating_point)")
  codec = pretrained.load_codec(operating_point, codec_path)
  op = codec.operating_point
  paths, classes, labels = images_lib.list_images(data_dir, train_split)
  eval_paths, eval_classes, eval_labels = images_lib.list_images(data_dir, eval_split)
  if eval_classes != classes:
    raise JointError(f"{data_dir}: the {eval_split!r} split's classes differ from "
                     f"{train_split!r}'s")
  classifier, base_results = (None, None)
  if classifier_dir:
    classifier, base_results = _load_classifier(classifier_dir, codec, classes)
  steps_per_epoch = len(paths) // config.batch_size
  if steps_per_epoch < 1:
    raise JointError(f"{len(paths)} training images do not make one batch of "
                     f"{config.batch_size}")
  if config.steps_per_epoch:
    steps_per_epoch = min(steps_per_epoch, config.steps_per_epoch)
  if config.view_size % model_lib.DOWNSAMPLING or config.crop % model_lib.DOWNSAMPLING or \
      not 0 < config.crop <= config.view_size:
    raise JointError(f"view {config.view_size} and crop {config.crop} must be multiples of "
                     f"{model_lib.DOWNSAMPLING}, the crop no larger than the view")

  previous = read_results(workdir)
  if previous is not None:
    if previous["arm"] != arm or previous["base_codec"]["fingerprint"] != codec.fingerprint.hex():
      raise JointError(f"{workdir} holds the {previous['arm']!r} arm from codec "
                       f"{previous['base_codec']['name']!r}; use another --workdir")
  os.makedirs(workdir, exist_ok=True)
  precision = precision_lib.resolve(config.precision)
  codec_model = _trainable_codec(codec, precision)
  if arm == "classifier":
    trainable = list(classifier.trainable_variables)
  elif arm == "codec":
    trainable = list(codec_model.trainable_variables)
  else:
    trainable = list(codec_model.trainable_variables) + list(classifier.trainable_variables)
  optimizer = keras.optimizers.SGD(learning_rate_schedule(config, steps_per_epoch),
                                   momentum=config.momentum)
  optimizer.build(trainable)
  objects = {"codec": codec_model, "optimizer": optimizer}
  if classifier is not None:
    objects["classifier"] = classifier
  checkpointing = workdir_lib.Checkpointing(workdir_lib.checkpoint_dir(workdir),
                                            CHECKPOINT_COUNTERS, **objects)
  epoch_done, step_done = checkpointing.restore()
  tag = f"[joint {arm} {op.name}]"

  evaluator = _Evaluator(codec_model, codec, classifier, config)
  final_paths, final_labels = eval_subset(eval_paths, eval_labels, config.final_eval_examples)
  curve_paths, curve_labels = eval_subset(eval_paths, eval_labels, config.eval_examples)

  results = previous if (previous is not None and (epoch_done or step_done)) else None
  if results is None:
    log(f"{tag} evaluating the starting point on {len(final_paths)} {eval_split} images")
    start_eval = evaluator(eval_dataset(final_paths, final_labels, config))
    results = {
        "arm": arm,
        "operating_point": op.name,
        "preset": preset_name,
        "data_dir": os.path.abspath(data_dir),
        "classes": list(classes),
        "base_codec": {"name": codec.name, "fingerprint": codec.fingerprint.hex(),
                       "path": os.path.abspath(codec_path) if codec_path else
                       pretrained.shipped_path(op.name)},
        "base_classifier": None if base_results is None else {
            "workdir": os.path.abspath(classifier_dir), "net": base_results["net"],
            "final": base_results.get("final")},
        "train_examples": len(paths),
        "steps_per_epoch": steps_per_epoch,
        "start": start_eval,
        "epochs": [],
        "final": None,
        "complete": False,
    }
  del results["epochs"][epoch_done:]
  results["config"] = dataclasses.asdict(config)
  results["command"] = command if command is not None else results.get("command")
  results["precision"] = precision
  beta = op.beta * config.beta_scale
  target_entropy = op.target_entropy * config.target_entropy_scale
  results["beta"], results["target_entropy"] = beta, target_entropy
  results_path = os.path.join(workdir, RESULTS_FILE)
  workdir_lib.write_json(results_path, results)

  train_step = _train_step_fn(arm, codec_model, classifier, optimizer, config, beta,
                              target_entropy)
  if epoch_done < config.epochs:
    if epoch_done or step_done:
      log(f"{tag} resuming at epoch {epoch_done + 1}, step {step_done}")
    else:
      log(f"{tag} starting: {config.epochs} epochs of {steps_per_epoch} steps, codec in "
          f"{precision}")
  for epoch in range(epoch_done, config.epochs):
    first = step_done + 1 if epoch == epoch_done else 1
    dataset = train_dataset(paths, labels, config, epoch, first - 1)
    sums, window, tick = {}, {}, time.time()
    epoch_tick = time.time()
    for step, (images, y) in zip(range(first, steps_per_epoch + 1), dataset):
      values = {k: float(v) for k, v in train_step(images, y).items()}
      for k, v in values.items():
        sums[k] = sums.get(k, 0.0) + v
        window[k] = window.get(k, 0.0) + v
      window["n"] = window.get("n", 0) + 1
      sums["n"] = sums.get("n", 0) + 1
      if config.checkpoint_every and step % config.checkpoint_every == 0 and \
          step < steps_per_epoch:
        checkpointing.save(epoch, step)
      if step % config.log_every == 0 or step == steps_per_epoch:
        n = window.pop("n")
        parts = "  ".join(f"{k} {v / n:.4f}" for k, v in window.items())
        log(f"{tag} epoch {epoch + 1}/{config.epochs} step {step}/{steps_per_epoch}  {parts}  "
            f"{(time.time() - tick) / n:.2f} s/step")
        window, tick = {}, time.time()
    checkpointing.save(epoch + 1, 0)
    n = max(1, sums.pop("n", 0))
    entry = {"epoch": epoch + 1, "seconds": time.time() - epoch_tick,
             **{f"train_{k}": v / n for k, v in sums.items()}}
    if epoch + 1 < config.epochs:
      entry["eval"] = evaluator(eval_dataset(curve_paths, curve_labels, config))
      log(f"{tag} epoch {epoch + 1}: {_describe(entry['eval'])}")
    results["epochs"].append(entry)
    workdir_lib.write_json(results_path, results)

  if not results.get("complete"):
    _finish(arm, results, codec, codec_model, classifier, base_results, evaluator, config,
            workdir, data_dir, train_split, final_paths, final_labels, kodak_dir,
            kodak_images, preset_name, log)
    workdir_lib.write_json(results_path, results)
  return results


def _describe(evaluation: dict) -> str:
  text = (f"PSNR {evaluation['psnr']:.2f} dB, H {evaluation['entropy_bits']:.3f} bits "
          f"(~{evaluation['bpp_estimate']:.4f} bpp)")
  if "top1" in evaluation:
    text = f"top-1 {evaluation['top1']:.4f}, top-5 {evaluation['top5']:.4f}, " + text
  return text


def _train_step_fn(arm, codec_model, classifier, optimizer, config, beta, target_entropy):
  gamma = tf.constant(config.gamma, tf.float32)
  beta = tf.constant(beta, tf.float32)
  target = tf.constant(target_entropy, tf.float32)

  def classification_loss(z_hat, labels):
    logits = tf.cast(classifier(z_hat, training=True), tf.float32)
    cross_entropy = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    decay = tf.add_n(classifier.losses) if classifier.losses else 0.0
    return cross_entropy, decay

  if arm == "classifier":
    variables = classifier.trainable_variables

    @tf.function
    def step(images, labels):
      z_hat = tf.stop_gradient(codec_model.latent(codec_model.encode(images)))
      with tf.GradientTape() as tape:
        cross_entropy, decay = classification_loss(z_hat, labels)
        loss = cross_entropy + decay
      optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
      return {"loss": loss, "cross_entropy": cross_entropy}

    return step

  variables = list(codec_model.trainable_variables)
  if arm == "joint":
    variables += list(classifier.trainable_variables)

  @tf.function
  def step(images, labels):
    with tf.GradientTape() as tape:
      out = codec_model(images, training=True)
      mse = tf.reduce_mean(tf.square(tf.cast(out["reconstruction"], tf.float32) - images))
      entropy = codec_train.rate_entropy(out)
      codec_loss = q.rate_distortion_loss(mse, entropy, beta, target)
      loss = gamma * codec_loss
      values = {"mse": mse, "entropy": out["entropy"]}
      if arm == "joint":
        cross_entropy, decay = classification_loss(out["z_hat"], labels)
        loss = loss + cross_entropy + decay
        values["cross_entropy"] = cross_entropy
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return {"loss": loss, **values}

  return step


def _finish(arm, results, codec, codec_model, classifier, base_results, evaluator, config,
            workdir, data_dir, train_split, final_paths, final_labels, kodak_dir,
            kodak_images, preset_name, log):
  """The bundle, the classifier workdir, the final evaluation and the Kodak metrics."""
  op = codec.operating_point
  tag = f"[joint {arm} {op.name}]"
  if arm in ("joint", "codec"):
    # Evaluate what ships: the bundle stores float16 weights (the evaluator copies them).
    pretrained.round_weights_to_float16(codec_model)
    final_model = _float32_model(codec)
    _copy_weights(codec_model, final_model)
    counts = codec_train.symbol_counts(final_model, data_dir, train_split, config.table_images)
    frequencies = pretrained.frequency_table(counts)
    bundle = os.path.join(workdir, f"codec_{op.name}.npz")
    name = f"{codec.name}-{arm}ft"
    fingerprint = pretrained.save_codec(
        final_model, op, frequencies, bundle, name,
        extra_metadata={"preset": preset_name, "fine_tuned_from": codec.fingerprint.hex(),
                        "fine_tuning_arm": arm})
    results["bundle"] = {"path": os.path.abspath(bundle), "name": name,
                         "fingerprint": fingerprint.hex()}
    log(f"{tag} bundle {bundle} ({name}, {fingerprint.hex()})")
  log(f"{tag} final evaluation on {len(final_paths)} images")
  results["final"] = evaluator(eval_dataset(final_paths, final_labels, config))
  log(f"{tag} before: {_describe(results['start'])}")
  log(f"{tag} after:  {_describe(results['final'])}")
  if classifier is not None and arm in ("joint", "classifier"):
    results["classifier_workdir"] = _write_classifier_workdir(
        os.path.join(workdir, CLASSIFIER_DIR), classifier, base_results, results)
  if kodak_dir:
    bundles = {"start": results["base_codec"]["path"]}
    if "bundle" in results:
      bundles["final"] = results["bundle"]["path"]
    results["kodak"] = {}
    for key, path in bundles.items():
      evaluation = codec_evaluation.evaluate_bundle_on_folder(
          path, kodak_dir, os.path.join(workdir, f"kodak_{key}"), limit=kodak_images, log=log)
      results["kodak"][key] = {k: evaluation[k] for k in ("bpp", "psnr", "ssim", "ms_ssim")}
      results["kodak"][key]["num_images"] = evaluation["num_images"]
  results["complete"] = True


def _float32_model(codec: pretrained.Codec) -> model_lib.Autoencoder:
  """An empty float32 model of the codec's architecture (the bundle's layout)."""
  return model_lib.from_operating_point(codec.operating_point, codec.filters).build_weights()


def _copy_weights(source, target) -> None:
  for t, s in zip(target.weights, source.weights):
    t.assign(s)


def _write_classifier_workdir(directory, classifier, base_results, results) -> str:
  """A train_classifier-style workdir, so export / classify / train_segmenter can use it."""
  os.makedirs(directory, exist_ok=True)
  # A manager writes the state file through which restore_model finds the latest checkpoint.
  workdir_lib.Checkpointing(workdir_lib.checkpoint_dir(directory), (), max_to_keep=1,
                            model=classifier).save()
  codec_info = dict(base_results.get("codec") or {})
  if "bundle" in results:
    meta = pretrained.read_metadata(results["bundle"]["path"])
    codec_info.update(name=meta["name"], fingerprint=meta["fingerprint"])
    with np.load(results["bundle"]["path"], allow_pickle=False) as data:
      codec_info["frequencies"] = [int(f) for f in data["frequencies"]]
  summary = dict(base_results)
  summary.update({
      "codec": codec_info,
      "trained_by": f"train_joint ({results['arm']} arm)",
      "fine_tuned_from": results["base_classifier"]["workdir"],
      "epochs": [],
      "final": {"epoch": None, "top1": results["final"]["top1"],
                "top5": results["final"]["top5"]},
      "complete": True,
  })
  workdir_lib.write_results(directory, summary)
  return os.path.abspath(directory)
