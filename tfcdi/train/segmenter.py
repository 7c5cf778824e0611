"""Training and evaluation of the DeepLab-v2 segmenters on original, decoded or latent inputs.

Library code: experiments/train_segmenter.py parses flags and calls `train`. Presets are typed
configs: "paper" is Appendix A.5 (DeepLab-v2's schedule), "cpu" fits a 2-core machine, "tiny"
is what the tests run.

The three arms of Table 2:
  original: ResNet-d on the dataset's own RGB images;
  decoded:  ResNet-d on the codec's reconstructions (decoded once into a store);
  latent:   cResNet-d on z_hat entropy-decoded from the .tfci bytes of a latent store.

Optimisation (Appendix A.5): SGD with momentum 0.9, learning rate lr * (1 - step / steps)^0.9,
and 10x that for the ASPP head, the layer that replaces the classifier. The two rates are two
SGD optimizers over disjoint variable sets (deeplab.split_trainable_variables), so each has its
own momentum and schedule; weight decay is the models' L2 regularisation loss. The loss is the
softmax cross-entropy of the logits, upsampled to the label resolution, over the pixels whose
label is not the ignore label.

A run checkpoints model, both optimizers and the step; killed and restarted with the same
arguments it continues where it stopped. Every `eval_every` steps and at the end it evaluates
mIoU and per-class IoU on full validation images (tfcdi.metrics, with the ignore label) and
rewrites results.json; at the end it also dumps the predictions for a few validation images
(predictions.npz) so that figures can be drawn later without running a net.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tfcdi import configs
from tfcdi import metrics
from tfcdi.data import segmentation as seg
from tfcdi.nets import deeplab
from tfcdi.nets import flops as flops_lib
from tfcdi.nets import specs
from tfcdi.train import workdir as workdir_lib
# predictions.npz is read where the Fig. 5 analog is drawn (the reporting layer reads no TF).
from tfcdi.reporting.figures import read_predictions  # noqa: F401  pylint: disable=unused-import

INPUTS = ("original", "decoded", "latent")
RESULTS_FILE = workdir_lib.RESULTS_FILE
# The counter of its checkpoints (with "model", "backbone_optimizer" and "head_optimizer"),
# which also numbers the files; runs on disk hold this name (tests/test_workdir.py).
CHECKPOINT_COUNTERS = ("step",)
PREDICTIONS_FILE = "predictions.npz"
MEAN_FILE = "input_mean.json"


# The config and its presets are tfcdi/configs.py's (every stage's, reached one way).
SegmenterTrainConfig = configs.SegmenterTrainConfig
PRESETS = configs.PRESETS["segmenter"]


def get_config(preset: str, **overrides) -> SegmenterTrainConfig:
  """configs.get_config("segmenter", ...): a preset with some fields replaced (None: unset)."""
  return configs.get_config("segmenter", preset, **overrides)


def check_arm(net: str, input_kind: str) -> specs.NetSpec:
  """The net's spec, if it reads what `input_kind` provides (RGB nets RGB, cResNets latents)."""
  spec = specs.get_spec(net)
  if input_kind not in INPUTS:
    raise ValueError(f"Unknown input {input_kind!r}; expected one of {', '.join(INPUTS)}.")
  if spec.reads_latent != (input_kind == "latent"):
    wanted = "latent" if spec.reads_latent else "original or decoded"
    raise ValueError(f"{net} reads {'the latent' if spec.reads_latent else 'RGB images'}: use "
                     f"--input={wanted}, not {input_kind}.")
  return spec


# --- Optimisation --------------------------------------------------------------------------


def make_optimizers(config: SegmenterTrainConfig) -> tuple[keras.optimizers.SGD,
                                                           keras.optimizers.SGD]:
  """(backbone optimizer, head optimizer): SGD + momentum with poly decay, head at 10x."""

  def sgd(rate, name):
    schedule = keras.optimizers.schedules.PolynomialDecay(
        rate, decay_steps=config.num_steps, end_learning_rate=0.0, power=config.poly_power)
    return keras.optimizers.SGD(schedule, momentum=config.momentum, name=name)

  return (sgd(config.learning_rate, "backbone_sgd"),
          sgd(config.head_learning_rate, "head_sgd"))


def segmentation_loss(logits, labels, ignore_label: int):
  """Mean softmax cross-entropy over the labelled pixels; logits upsampled to the labels.

  Args:
    logits: [B, h, w, K] at the net's output grid (one logit per 8x8 block).
    labels: int [B, H, W] with H, W within a block of 8h, 8w; ignore_label pixels are left out.
  """
  labels = tf.cast(labels, tf.int32)
  logits = deeplab.upsample_logits(logits, labels.shape[1:3])
  valid = tf.not_equal(labels, ignore_label)
  safe_labels = tf.where(valid, labels, tf.zeros_like(labels))
  losses = tf.nn.sparse_softmax_cross_entropy_with_logits(safe_labels, logits)
  weights = tf.cast(valid, losses.dtype)
  # A crop can be all-ignore (e.g. a sky-less, unlabelled corner): its loss is 0, not NaN.
  return tf.reduce_sum(losses * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)


def freeze_batch_norm(model: keras.Model) -> int:
  """Makes every BN layer non-trainable (Keras 3 then runs it in inference mode)."""
  count = 0
  for layer in model.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
      layer.trainable = False
      count += 1
  return count


class Trainer:
  """A segmenter, its two optimizers and its checkpoint; one training step as a tf.function."""

  def __init__(self, model: keras.Model, config: SegmenterTrainConfig, ignore_label: int,
               checkpoint_dir: str | None = None):
    self.model = model
    self.config = config
    self.ignore_label = ignore_label
    self.backbone_vars, self.head_vars = deeplab.split_trainable_variables(model)
    self.backbone_optimizer, self.head_optimizer = make_optimizers(config)
    # Creating the slots now lets a checkpoint restore them at once, not lazily.
    self.backbone_optimizer.build(self.backbone_vars)
    self.head_optimizer.build(self.head_vars)
    self.checkpointing = None
    if checkpoint_dir:
      self.checkpointing = workdir_lib.Checkpointing(
          checkpoint_dir, CHECKPOINT_COUNTERS, number_by="step", model=model,
          backbone_optimizer=self.backbone_optimizer, head_optimizer=self.head_optimizer)
    self.train_step = (self._train_step if config.run_eagerly
                       else tf.function(self._train_step))

  def restore(self) -> int:
    """The step of the latest checkpoint (0 without one, or without a checkpoint folder)."""
    return self.checkpointing.restore()[0] if self.checkpointing else 0

  def save(self, step: int) -> None:
    self.checkpointing.save(step)

  def apply_gradients(self, backbone_grads, head_grads) -> None:
    self.backbone_optimizer.apply_gradients(zip(backbone_grads, self.backbone_vars))
    self.head_optimizer.apply_gradients(zip(head_grads, self.head_vars))

  def _train_step(self, inputs, labels):
    with tf.GradientTape() as tape:
      logits = self.model(inputs, training=True)
      loss = segmentation_loss(logits, labels, self.ignore_label)
      regularization = tf.add_n(self.model.losses) if self.model.losses else 0.0
      total = loss + regularization
    grads = tape.gradient(total, self.backbone_vars + self.head_vars)
    n = len(self.backbone_vars)
    self.apply_gradients(grads[:n], grads[n:])
    return {"loss": loss, "total_loss": total}


# --- Evaluation ----------------------------------------------------------------------------


def predict(model: keras.Model, inputs, label_size):
  """Class index per label pixel [B, H, W] (int32) of one batch of full inputs."""
  logits = model(inputs, training=False)
  return tf.argmax(deeplab.upsample_logits(logits, label_size), axis=-1, output_type=tf.int32)


def make_predict_fn(model: keras.Model, eager: bool = False):
  """predict() as a tf.function for full images of varying sizes (traced once per size)."""
  fn = lambda x, size: predict(model, x, (size[0], size[1]))  # noqa: E731
  return fn if eager else tf.function(fn, reduce_retracing=True)


def evaluate(model: keras.Model, dataset: tf.data.Dataset, info: seg.DatasetInfo,
             num_dump: int = 0, predict_fn=None) -> tuple[dict, list[dict]]:
  """mIoU and per-class IoU over `dataset` (seg.eval_dataset elements).

  Args:
    predict_fn: from make_predict_fn(model), to reuse its traces across evaluations.

  Returns:
    (metrics dict, up to `num_dump` dicts of name / label / prediction for the first images).
  """
  predict_fn = predict_fn or make_predict_fn(model)
  confusion = np.zeros((info.num_classes, info.num_classes), np.int64)
  dumps, images = [], 0
  with seg.raise_data_errors():
    for element in dataset:
      label = element["label"]
      prediction = predict_fn(element["inputs"], tf.shape(label)[1:3]).numpy()
      # Raises ValueError for a label value outside the classes that is not the ignore label.
      confusion += metrics.confusion_matrix(label.numpy(), prediction, info.num_classes,
                                            ignore_label=info.ignore_label)
      if len(dumps) < num_dump:
        dumps.append({"name": element["name"].numpy()[0].decode(),
                      "label": label.numpy()[0].astype(np.uint8),
                      "prediction": prediction[0].astype(np.uint8)})
      images += 1
  iou = metrics.iou_per_class(confusion)
  total = confusion.sum()
  return {
      "miou": metrics.mean_iou(confusion),
      "per_class_iou": {name: (None if np.isnan(v) else float(v))
                        for name, v in zip(info.class_names, iou)},
      "pixel_accuracy": float(np.trace(confusion) / total) if total else float("nan"),
      "images": images,
      "confusion_matrix": confusion.tolist(),
  }, dumps


def write_predictions(path: str, dumps: list[dict], source: seg.Source, decoded_images=None,
                      meta: dict | None = None) -> None:
  """Writes the dumped predictions with the original (and decoded) images, one key per array.

  Keys: names, meta (JSON bytes), and per image i: image_i (the original), decoded_i (the
  codec's reconstruction, decoded arm only), label_i, prediction_i. Sizes may differ between
  images, hence one key each rather than stacked arrays.
  """
  arrays = {"names": np.asarray([d["name"] for d in dumps]),
            "meta": np.frombuffer(json.dumps(meta or {}).encode(), np.uint8)}
  for i, dump in enumerate(dumps):
    if dump["name"] in source.image_paths:
      arrays[f"image_{i}"] = source.original_image(dump["name"])
    if decoded_images and dump["name"] in decoded_images:
      arrays[f"decoded_{i}"] = decoded_images[dump["name"]]
    arrays[f"label_{i}"] = dump["label"]
    arrays[f"prediction_{i}"] = dump["prediction"]
  tmp = path + ".tmp.npz"
  np.savez_compressed(tmp, **arrays)
  os.replace(tmp, path)


# --- The run ------------------------------------------------------------------------------------


_read_json = workdir_lib.read_json


@dataclasses.dataclass
class _Data:
  info: seg.DatasetInfo
  train_source: seg.Source
  eval_source: seg.Source
  train: tf.data.Dataset  # raw elements
  eval: tf.data.Dataset
  channels: int
  codec: object = None
  store_summary: dict | None = None
  eval_decoded_path: str | None = None


def _prepare_data(input_kind, config, dataset, data_dir, train_split, eval_split,
                  operating_point, codec_path, cache_dir, log) -> _Data:
  info = seg.get_dataset_info(dataset)
  train_source = seg.get_source(dataset, data_dir, train_split, config.train_limit)
  eval_source = seg.get_source(dataset, data_dir, eval_split, config.eval_limit)
  if input_kind == "original":
    return _Data(info, train_source, eval_source, train_source.dataset(), eval_source.dataset(), 3)

  from tfcdi.codec import pretrained  # pylint: disable=g-import-not-at-top
  if codec_path is None and operating_point is None:
    raise ValueError(f"--input={input_kind} needs a codec: an operating point or a bundle path.")
  codec = pretrained.load_codec(operating_point, path=codec_path)
  decoded = input_kind == "decoded"
  train_paths = seg.ensure_stores(train_source, codec, cache_dir, decoded, config.train_limit,
                                  log=log)
  eval_paths = seg.ensure_stores(eval_source, codec, cache_dir, decoded, config.eval_limit,
                                 log=log)
  if decoded:
    train = seg.decoded_store_dataset(train_paths["decoded"], info)
    evaluation = seg.decoded_store_dataset(eval_paths["decoded"], info)
    channels = 3
  else:
    train = seg.latent_store_dataset(train_paths["latent"], codec, info)
    evaluation = seg.latent_store_dataset(eval_paths["latent"], codec, info)
    channels = codec.channels
  return _Data(info, train_source, eval_source, train, evaluation, channels, codec,
               _read_json(train_paths["summary"]),
               eval_paths["decoded"] if decoded else None)


def _checkpoint_step(workdir: str) -> int | None:
  """The step of the latest checkpoint in `workdir`, from its name (nothing is built)."""
  latest = tf.train.latest_checkpoint(workdir_lib.checkpoint_dir(workdir))
  if latest is None:
    return None
  try:
    return int(latest.rsplit("-", 1)[1])
  except ValueError:
    return None


def load_init_classifier(init_from: str, net: str, input_kind: str, channels: int,
                         width_multiplier: float, operating_point: str | None) -> keras.Model:
  """The classifier to initialise a segmenter's backbone from.

  `init_from` is a train_classifier workdir (results.json + checkpoints; its model wraps the
  build_resnet net, which is taken out of it), or anything deeplab.load_classifier reads (a
  .keras file, a checkpoint of a bare build_resnet classifier). A workdir's classifier must be
  of the same arm: the same net, input and operating point, at the same width.

  Raises:
    ValueError: the classifier does not fit the segmenter.
  """
  results = _read_json(os.path.join(init_from, RESULTS_FILE)) if os.path.isdir(init_from) else None
  if results is None or "channel_mean" not in results:
    return deeplab.load_classifier(init_from, net, (None, None, channels), width_multiplier)
  from tfcdi.train import classifier as classifier_train  # pylint: disable=g-import-not-at-top
  wanted = {"net": net, "input": input_kind,
            "operating_point": operating_point if input_kind != "original" else "original",
            "width_multiplier": width_multiplier}
  found = {"net": results.get("net"), "input": results.get("input"),
           "operating_point": results.get("operating_point"),
           "width_multiplier": results.get("config", {}).get("width_multiplier")}
  different = [k for k in wanted if found[k] != wanted[k]]
  if different:
    raise ValueError(
        f"The classifier in {init_from} is {found}; the segmenter needs {wanted} (pass e.g. "
        f"--set=width_multiplier={found['width_multiplier']} to match its width).")
  model, _ = classifier_train.restore_model(init_from)
  return model.get_layer(net)  # build_model nests the build_resnet net under its own name


def _input_mean(data: _Data, key: str, workdir: str, log) -> list[float]:
  """The training inputs' per-channel mean, computed once and kept in the workdir.

  A resumed run must centre its inputs exactly as before, so the stored mean is reused.
  """
  path = os.path.join(workdir, MEAN_FILE)
  stored = _read_json(path)
  if stored and stored.get("input") == key and len(stored["mean"]) == data.channels:
    return stored["mean"]
  with seg.raise_data_errors():
    mean = seg.compute_channel_mean(data.train.map(lambda e: {key: e[key]}), key)
  workdir_lib.write_json(path, {"input": key, "mean": mean, "images": len(data.train_source)})
  log(f"[segmenter] per-channel {key} mean over {len(data.train_source)} training images: "
      f"{', '.join(f'{m:.3f}' for m in mean)}")
  return mean


def train(net: str, input_kind: str, config: SegmenterTrainConfig, data_dir: str, workdir: str,
          *, dataset: str = "camvid", operating_point: str | None = None,
          codec_path: str | None = None, init_from: str | None = None,
          cache_dir: str | None = None, train_split: str = "train", eval_split: str = "val",
          preset_name: str = "", command: str = "", log=print) -> dict:
  """Trains (or resumes) one segmenter, evaluates it, and writes results.json; returns it.

  Args:
    net: resnet50 / resnet71 (input original or decoded) or cresnet39 / 51 / 72 (input latent).
    input_kind: "original", "decoded" or "latent".
    config: a SegmenterTrainConfig (see `get_config`).
    data_dir: the dataset's root (CamVid folder, or VOCdevkit/VOC2012 / a folder for VOC).
    workdir: checkpoints, results.json, predictions.npz, input_mean.json.
    dataset: "camvid" or "voc".
    operating_point, codec_path: the codec of the decoded and latent arms: a shipped bundle by
      operating point, or a bundle file (its own operating point is used).
    init_from: a classifier of the same arm to initialise the backbone from (a .keras file or a
      checkpoint; see deeplab.load_classifier). Only used when starting from step 0.
    cache_dir: where the latent / decoded stores go (default workdir/cache); share it between
      runs that use the same codec to encode the dataset once.
    preset_name, command: recorded in results.json.
  """
  check_arm(net, input_kind)
  os.makedirs(workdir, exist_ok=True)
  results_path = os.path.join(workdir, RESULTS_FILE)
  previous = _read_json(results_path) or {}
  if (previous.get("steps") == config.num_steps
      and _checkpoint_step(workdir) == config.num_steps
      and os.path.exists(os.path.join(workdir, PREDICTIONS_FILE))):
    log(f"[segmenter] already trained for {config.num_steps} steps and evaluated")
    return previous
  cache_dir = cache_dir or os.path.join(workdir, "cache")
  data = _prepare_data(input_kind, config, dataset, data_dir, train_split, eval_split,
                       operating_point, codec_path, cache_dir, log)
  info = data.info
  key = "latent" if input_kind == "latent" else "image"
  mean = _input_mean(data, key, workdir, log)

  model = deeplab.build_segmenter(net, info.num_classes, (None, None, data.channels),
                                  width_multiplier=config.width_multiplier,
                                  weight_decay=config.weight_decay, rates=config.aspp_rates,
                                  batch_norm_momentum=config.batch_norm_momentum)
  frozen = bool(config.freeze_batch_norm and init_from)
  if config.freeze_batch_norm and not init_from:
    log("[segmenter] no classifier to start from: batch norm is trained, not frozen")
  if frozen:
    freeze_batch_norm(model)
  trainer = Trainer(model, config, info.ignore_label, workdir_lib.checkpoint_dir(workdir))
  start = trainer.restore()
  if start == 0 and init_from:
    classifier = load_init_classifier(
        init_from, net, input_kind, data.channels, config.width_multiplier,
        data.codec.operating_point.name if data.codec else None)
    copied = deeplab.init_backbone_from_classifier(model, classifier)
    log(f"[segmenter] backbone initialised from {init_from} ({len(copied)} layers)")
  elif start:
    log(f"[segmenter] resuming from step {start}")

  history = [h for h in previous.get("history", []) if h["step"] <= start]
  crop = config.latent_crop if input_kind == "latent" else config.crop
  results = {
      "net": f"{net}-d", "input": input_kind, "dataset": info.name,
      "train_split": train_split, "eval_split": eval_split,
      "train_images": len(data.train_source), "eval_images": len(data.eval_source),
      "eval_on": "full images (logits upsampled to the full label)",
      "operating_point": data.codec.operating_point.name if data.codec else None,
      "codec": ({"name": data.codec.name, "fingerprint": data.codec.fingerprint.hex()}
                if data.codec else None),
      "latent_store": data.store_summary,
      "preset": preset_name, "config": dataclasses.asdict(config), "command": command,
      "init_from": init_from or previous.get("init_from"), "batch_norm_frozen": frozen,
      "input_mean": mean, "crop": [crop, crop, data.channels],
      "multiply_adds_per_crop": flops_lib.count_multiply_adds(model, (crop, crop, data.channels)),
      "history": history, "seconds_per_step": previous.get("seconds_per_step"),
  }

  predict_fn = make_predict_fn(model, config.run_eagerly)

  def run_eval(step, num_dump=0):
    evaluation = seg.eval_dataset(data.eval, mean, info)
    values, dumps = evaluate(model, evaluation, info, num_dump, predict_fn)
    entry = {"step": step, **{k: v for k, v in values.items() if k != "confusion_matrix"}}
    results["history"] = [h for h in results["history"] if h["step"] != step] + [entry]
    results.update({"steps": step, "miou": values["miou"],
                    "per_class_iou": values["per_class_iou"],
                    "pixel_accuracy": values["pixel_accuracy"],
                    "confusion_matrix": values["confusion_matrix"]})
    workdir_lib.write_json(results_path, results)
    log(f"[segmenter] step {step}: mIoU {100 * values['miou']:.2f}% pixel accuracy "
        f"{100 * values['pixel_accuracy']:.2f}% on {values['images']} {eval_split} images")
    return dumps

  if start < config.num_steps:
    stream = seg.train_dataset(data.train, mean, info, crop, config.batch_size,
                               seed=config.seed + start,  # a new order after each resume
                               cache=input_kind == "latent")
    sums, count, tick, timings = {}, 0, time.time(), []
    with seg.raise_data_errors():
      for step, (inputs, labels) in zip(range(start + 1, config.num_steps + 1), stream):
        values = trainer.train_step(inputs, labels)
        for k, v in values.items():
          sums[k] = sums.get(k, 0.0) + float(v)
        count += 1
        if step % config.log_every == 0 or step == config.num_steps:
          seconds = (time.time() - tick) / count
          if step > start + count:  # the first window includes tracing; keep it out
            timings.append(seconds)
          log(f"[segmenter {net}-d/{input_kind}] step {step}/{config.num_steps}  loss "
              f"{sums['loss'] / count:.4f}  (+wd {(sums['total_loss'] - sums['loss']) / count:.4f})"
              f"  lr {float(trainer.backbone_optimizer.learning_rate):.2e}  {seconds:.2f} s/step")
          sums, count, tick = {}, 0, time.time()
        if step % config.checkpoint_every == 0 or step == config.num_steps:
          trainer.save(step)
        if step % config.eval_every == 0 and step != config.num_steps:
          paused = time.time()
          run_eval(step)
          tick += time.time() - paused  # evaluation time is not step time
    if timings:
      results["seconds_per_step"] = float(np.median(timings))

  dumps = run_eval(config.num_steps, config.num_dump)
  decoded_images = None
  if data.eval_decoded_path and dumps:
    wanted = {d["name"] for d in dumps}
    decoded_images = {
        e["name"].decode(): e["image"]
        for e in seg.decoded_store_dataset(data.eval_decoded_path, info).as_numpy_iterator()
        if e["name"].decode() in wanted}
  write_predictions(os.path.join(workdir, PREDICTIONS_FILE), dumps, data.eval_source,
                    decoded_images, meta={
                        "dataset": info.name, "net": f"{net}-d", "input": input_kind,
                        "operating_point": results["operating_point"],
                        "class_names": list(info.class_names),
                        "palette": [list(c) for c in info.palette],
                        "ignore_label": info.ignore_label, "steps": config.num_steps})
  return results
