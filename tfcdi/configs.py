"""Every stage's configs: typed frozen dataclasses with named presets, reached one way.

  get_config(stage, preset, **overrides)   a preset with some fields replaced (None: unset)
  parse_settings(stage, ["field=value"])   the binaries' repeated --set flag, typed

Stages (the binaries' --preset picks one of each's presets; `tiny` is for the tests):
  codec       CodecTrainConfig       the autoencoder at one operating point (train/codec.py)
  hyperprior  HyperpriorTrainConfig  the scale hyperprior at one quality (train/hyperprior.py)
  classifier  ClassifierTrainConfig  Table 2's classifiers (train/classifier.py)
  segmenter   SegmenterTrainConfig   the DeepLab-style segmenters (train/segmenter.py)
  joint       JointTrainConfig       Eq. 2 fine-tuning (train/joint.py)
  reproduce   Preset                 the whole pipeline (reproduce.py)

A value given with --set is parsed by its field's type: int, float (also a fraction, "1/16"),
bool (true / false), str, "none" for a field that may be None, a tuple as comma-separated values
("3,5,7"; empty for none), a tuple of pairs as "a:b,c:d" (width_study=0.25:2,0.5:1), a dict
as JSON. A field that does not exist, or a value that does not
parse, is a ConfigError whose one-line message names the field. This module imports no
TensorFlow, so the binaries check their flags before loading it. Architecture constants are
not restated here: the codec widths and downsampling are operating_points.py's; the ASPP rates
are stated here, with the presets that pick them (nets/deeplab.py reads them).
"""

from __future__ import annotations

import dataclasses
import fractions
import json
import typing

from tfcdi.codec import operating_points
from tfcdi.codec import qualities
from tfcdi.train import precision as precision_lib  # its choices only; no TensorFlow

# Side of the square view a latent store encodes (latent_store's default) and joint training
# reads.
DEFAULT_IMAGE_SIZE = 256

# The ASPP dilation rates of DeepLab-v2 ("ASPP-L") that the paper uses (Section 5.1; also
# shared/reference/paper_numbers.json, training.segmentation.aspp_rates, which a test compares).
ASPP_RATES = (6, 12, 18, 24)
# DeepLab-v2's "ASPP-S" rates, for small logit grids: the CPU preset's 128-pixel crops give a
# 16x16 grid, on which the rate-18 and rate-24 branches would see only padding in training but
# real features on full evaluation images.
ASPP_SMALL_RATES = (2, 4, 8, 12)


class ConfigError(ValueError):
  """An unknown stage, preset or field, or a value its field's type does not take."""


# --- codec (train/codec.py) -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CodecTrainConfig:
  """How to train one operating point. `learning_rate=None` takes the operating point's own."""

  filters: tuple = operating_points.PAPER_FILTERS
  crop: int = 128
  batch_size: int = 30
  num_steps: int = 600_000
  learning_rate: float | None = None
  # The learning rate is divided by 10 after this fraction of the steps.
  decay_at: float = 1.0
  # Adam's global gradient-norm clip (None: none, as the paper states none). It cuts single
  # spikes, which would otherwise inflate Adam's second moments and slow every later step.
  clip_norm: float | None = None
  log_every: int = 100
  checkpoint_every: int = 1000
  # Multiplies the operating point's beta. Short runs end with an MSE several times the
  # converged one, against which the paper's beta is too weak to bring H down to Ht.
  beta_scale: float = 1.0
  # Multiplies the target entropy Ht. The paper defines an operating point by the bpp measured
  # on its evaluation images; when those are smoother than the training crops (Kodak against
  # Imagenette), the same Ht lands below the published rate, and this moves it back.
  target_entropy_scale: float = 1.0
  # Training images whose symbols estimate the shipped frequency table.
  table_images: int = 1000
  # The initial weights and the data order: runs of one recipe with two seeds measure its
  # run-to-run spread (tfcdi-train-codec --recipe=... --seed=N).
  seed: int = 0
  # "auto", "float32" or "mixed_bfloat16" (tfcdi/train/precision.py). Training only: the
  # bundle is built and its frequency table counted in float32.
  precision: str = "float32"
  # A codec bundle to start from when the workdir has no checkpoint (weights and step count).
  init_from: str | None = None


_CODEC_PRESETS = {
    # Appendix A.1: Adam, batch 30, 600k iterations, per-point learning rates, full width.
    "paper": CodecTrainConfig(),
    # What fits a 2-core CPU in about half an hour per point (see BUILD_NOTES.md): half width,
    # 128x128 crops, one learning rate for all three points, a 10x drop for the last fifth.
    "cpu": CodecTrainConfig(filters=(32, 64), crop=128, batch_size=16, num_steps=2000,
                            learning_rate=1e-3, decay_at=0.8, log_every=50,
                            checkpoint_every=200, beta_scale=10.0, target_entropy_scale=1.3,
                            table_images=1000, precision="auto"),
    # Seconds, for tests and the smoke run.
    "tiny": CodecTrainConfig(filters=(8, 16), crop=32, batch_size=2, num_steps=6,
                             learning_rate=1e-3, log_every=2, checkpoint_every=3,
                             table_images=8),
}


# --- hyperprior (train/hyperprior.py) ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HyperpriorTrainConfig:
  """How to train one quality."""

  # Which channel counts of qualities.py: "paper", "cpu" or "tiny".
  widths: str = "paper"
  crop: int = 256
  batch_size: int = 8
  num_steps: int = 1_000_000
  learning_rate: float = 1e-4
  # The learning rate is divided by 10 after this fraction of the steps (and never goes back).
  decay_at: float = 0.9
  # Adam's global gradient-norm clip; keeps the first steps of GDN and the density stable.
  clip_norm: float = 1.0
  log_every: int = 100
  checkpoint_every: int = 1000
  # Training images whose real files check the finished bundle (bits against the estimate).
  check_images: int = 16
  seed: int = 0  # the initial weights and the data order, as the autoencoder's
  # "auto", "float32" or "mixed_bfloat16" (tfcdi/train/precision.py) for the convolutions;
  # GDN, the entropy models and the loss are float32 under every policy.
  precision: str = "float32"
  # What the loss measures: "mse" or "ms-ssim" (qualities.DISTORTIONS).
  distortion: str = qualities.MSE


_HYPERPRIOR_PRESETS = {
    # Balle et al. 2018: Adam at 1e-4, batches of 8 crops of 256x256, paper widths. Trained for
    # MS-SSIM, as the follow-up's codecs were (CompressAI's bmshj2018-hyperprior MS-SSIM
    # models; 256-px crops hold all five MS-SSIM scales).
    "paper": HyperpriorTrainConfig(distortion=qualities.MS_SSIM),
    # A 2-core CPU (BUILD_NOTES.md): the cpu widths of qualities.py, 128x128 crops. MSE, as the
    # first shipped codecs; the MS-SSIM ones train by their recipes (train/hyperprior.py RECIPES).
    "cpu": HyperpriorTrainConfig(widths="cpu", crop=128, batch_size=8, num_steps=8000,
                                 learning_rate=5e-4, decay_at=0.8, log_every=50,
                                 checkpoint_every=200, check_images=16, precision="auto"),
    # Seconds, for tests and smoke runs.
    "tiny": HyperpriorTrainConfig(widths="tiny", crop=64, batch_size=2, num_steps=6,
                                  learning_rate=1e-3, log_every=2, checkpoint_every=3,
                                  check_images=2),
}


# --- classifier (train/classifier.py) ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ClassifierTrainConfig:
  """How to train one classifier. Sizes are in pixels (RGB) or latent entries (latent)."""

  batch_size: int = 64  # global, over all replicas
  epochs: int = 28
  learning_rate: float = 0.025
  lr_drop_epochs: tuple = (8, 16, 24)
  lr_drop_factor: float = 10.0
  momentum: float = 0.9
  weight_decay: float = 1e-4
  # Of the BN moving averages. The paper's stack (tf-slim's resnet_arg_scope) uses 0.997; the
  # cpu and tiny presets use 0.99 so that runs of a few hundred steps end with usable
  # statistics (0.997 averages over ~330 steps, a third of a whole cpu-preset run).
  batch_norm_momentum: float = 0.997
  width_multiplier: float = 1.0
  # 0 keeps the net as specified; n > 0 keeps at most n units per stage (test presets only).
  max_units_per_stage: int = 0
  rgb_size: int = 256  # side of the square view the RGB nets crop from
  rgb_crop: int = 224
  latent_crop: int = 28
  # Hyperprior stores: y_hat and sigma_hat are resized to this side before the latent crop (the
  # follow-up's 32; its 16 x 16 latents of a 256 view are upsampled). Autoencoder latents are
  # cropped as they are.
  hyperprior_resize: int = 32
  # Hyperprior stores: entropy-decode each split once into the store's latent cache
  # (latent_store.build_latent_cache) and read that every epoch: the same values, without
  # ~40 ms of range decoding per example and epoch (more than a cpu-preset step costs).
  # Autoencoder stores are read from their latent cache when one exists (tfcdi-encode-dataset
  # --latent_cache): range decoding on the fly holds the GIL, which caps one process at about
  # 1,850 examples/s at 0.0983 and 970 at 0.635 (README, tools/input_throughput.py); a cpu run
  # needs far less, and the cache costs 1 byte per latent entry on disk, so none is built here.
  cache_latents: bool = True
  # Training examples (a seeded random subset) the channel mean is estimated on; 0 = all.
  # 10,000 pin a mean down far below a gray level; ImageNet would take a full pass.
  mean_examples: int = 0
  steps_per_epoch: int = 0  # 0 = one pass over the training split
  # Validation examples (a fixed random subset) evaluated after each epoch but the last, and
  # after the last one; 0 = all. The final top-1 / top-5 come from the last evaluation.
  eval_examples: int = 0
  final_eval_examples: int = 0
  checkpoint_every: int = 0  # steps; 0 = only at the end of each epoch
  log_every: int = 50
  # Records the shuffle mixes, on top of a shuffled shard order (store shards are already in a
  # random order). A decoded-RGB record is 192 KiB at 256 x 256, so this is ~0.5 GB of memory
  # for that arm (a latent record at 0.635 bpp is ~3 KB).
  shuffle_buffer: int = 2_500
  # Seeds the weights' initialisation as well as the data order and crops, so that two runs
  # of one arm differ only where their seeds do (a second seed measures the run-to-run spread).
  seed: int = 0
  # "auto", "float32" or "mixed_bfloat16" (tfcdi/train/precision.py): the compute precision of
  # training; the weights, exports and evaluation-after-restore are float32 either way. The cpu
  # preset stays float32: at 1/8 width the nets are too thin for bfloat16 to pay (measured: no
  # faster per step), unlike the codec.
  precision: str = "float32"

  def crop_for(self, input_kind: str) -> int:
    return self.latent_crop if input_kind == "latent" else self.rgb_crop


_CLASSIFIER_PRESETS = {
    # Appendix A.4 of the paper, on ImageNet with 8 GPUs or one.
    "paper": ClassifierTrainConfig(mean_examples=10_000),
    # A 2-core CPU on Imagenette: the paper's geometry (224 / 28 crops of a 256 view), nets at
    # 1/8 width, 8 epochs with the paper's schedule compressed (drops at 8/28, 16/28, 24/28 of
    # the run, 2.3 / 4.6 / 6.9 epochs, rounded up). Curves on 1,000 validation images, the
    # final numbers on all of them. See BUILD_NOTES.md for the measured step times.
    "cpu": ClassifierTrainConfig(epochs=8, lr_drop_epochs=(3, 5, 7), width_multiplier=0.125,
                                 batch_norm_momentum=0.99, eval_examples=1000,
                                 checkpoint_every=50, log_every=25),
    # Seconds, for the tests: truncated, narrow nets on a 64-pixel view (8 x 8 latents).
    "tiny": ClassifierTrainConfig(batch_size=4, epochs=2, lr_drop_epochs=(1,),
                                  batch_norm_momentum=0.99,
                                  width_multiplier=1 / 16, max_units_per_stage=1, rgb_size=64,
                                  rgb_crop=56, latent_crop=7, hyperprior_resize=8,
                                  mean_examples=8, steps_per_epoch=2,
                                  eval_examples=8, final_eval_examples=8, checkpoint_every=1,
                                  log_every=1,
                                  shuffle_buffer=64),
}


# --- segmenter (train/segmenter.py) --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SegmenterTrainConfig:
  """How to train one segmenter.

  Attributes:
    width_multiplier: backbone width (1.0 is the paper's net).
    batch_size: crops per step.
    num_steps: training iterations.
    learning_rate: of the backbone at step 0.
    head_learning_rate_multiplier: the ASPP head's rate is this times the backbone's.
    momentum: of both SGD optimizers.
    poly_power: the rate is multiplied by (1 - step / num_steps) ** poly_power.
    weight_decay: SGD-style L2 coefficient on all kernels.
    crop: side of the random training crop in RGB pixels; the latent crop is crop // 8.
    aspp_rates: dilation rates of the ASPP branches.
    freeze_batch_norm: keep BN statistics and parameters fixed, as DeepLab-v2 does with small
      batches; only applies when the backbone is initialised from a classifier (random BN
      statistics would otherwise stay random).
    eval_every: steps between evaluations (and the final one).
    checkpoint_every: steps between checkpoints.
    log_every: steps between progress lines.
    train_limit: train on the first N images of the split only (0: all).
    eval_limit: evaluate on the first N validation images only (0: all).
    num_dump: validation images whose predictions the final evaluation writes.
    seed: of the data stream.
    run_eagerly: run steps and predictions op by op instead of as traced tf.functions. Only
      for the tiny preset: tracing the gradient of a ~140-layer net takes 10-20 s on 2 cores,
      more than a few eager steps of a tiny net.
  """

  width_multiplier: float = 1.0
  batch_size: int = 10
  num_steps: int = 20_000
  learning_rate: float = 1e-3
  head_learning_rate_multiplier: float = 10.0
  momentum: float = 0.9
  poly_power: float = 0.9
  weight_decay: float = 5e-4
  crop: int = 320
  aspp_rates: tuple = ASPP_RATES
  freeze_batch_norm: bool = True
  # BN moving averages when BN trains: 0.997 as in the paper's stack (tf-slim); 0.99 in the
  # short CPU presets, as for the classifiers they start from.
  batch_norm_momentum: float = 0.997
  eval_every: int = 2000
  checkpoint_every: int = 1000
  log_every: int = 100
  train_limit: int = 0
  eval_limit: int = 0
  num_dump: int = 6
  seed: int = 0
  run_eagerly: bool = False

  @property
  def latent_crop(self) -> int:
    return self.crop // operating_points.DOWNSAMPLING

  @property
  def head_learning_rate(self) -> float:
    return self.learning_rate * self.head_learning_rate_multiplier


_SEGMENTER_PRESETS = {
    # Appendix A.5 / paper_numbers.json training.segmentation: batch 10, 20k iterations, SGD
    # momentum 0.9, lr 1e-3 (1e-2 for the head), poly 0.9, weight decay 5e-4, 320 / 40 crops.
    "paper": SegmenterTrainConfig(),
    # A 2-core CPU. Like the paper, each segmenter starts from the classifier of its arm (the
    # Imagenette classifiers of the cpu classification preset), so it has their width, 1/8:
    # tfcdi-reproduce passes --init_from when the widths match, by hand it is
    # `tfcdi-train-segmenter --init_from=CLASSIFIER_WORKDIR`. Started from a classifier,
    # cResNet-51-d at 0.0983 bpp reaches 25.65 mIoU on CamVid where the width-1/4 net from
    # scratch ("cpu_scratch") reaches 16.51 (measured, BUILD_NOTES.md). 128 / 16 crops; ASPP-S
    # rates, which fit the 16x16 logit grid of such crops; BN trained. Rates: 1e-2 for the
    # backbone, 1e-3 for the head, whose large fan-in (4 branches x 3x3 x 512) diverged at 1e-2
    # and above from a random start (loss 2.9 -> 9 after one step, measured).
    "cpu": SegmenterTrainConfig(width_multiplier=0.125, batch_size=8, num_steps=600,
                                batch_norm_momentum=0.99,
                                learning_rate=1e-2, head_learning_rate_multiplier=0.1,
                                crop=128, aspp_rates=ASPP_SMALL_RATES,
                                freeze_batch_norm=False, eval_every=200, checkpoint_every=50,
                                log_every=10, num_dump=6),
    # The cpu preset before it started from the classifiers (session 4's committed CamVid
    # results, reports/segmentation_cpu_scratch/): quarter width, from scratch. Measured on a
    # shared 2-core machine: ResNet-50-d 1.5-1.9 s/step, cResNet-39-d (0.635 latent) 0.8 s/step.
    "cpu_scratch": SegmenterTrainConfig(width_multiplier=0.25, batch_size=8, num_steps=600,
                                        batch_norm_momentum=0.99,
                                        learning_rate=1e-2, head_learning_rate_multiplier=0.1,
                                        crop=128, aspp_rates=ASPP_SMALL_RATES,
                                        freeze_batch_norm=False, eval_every=200,
                                        checkpoint_every=50, log_every=10, num_dump=6),
    # Seconds, for tests.
    "tiny": SegmenterTrainConfig(width_multiplier=0.125, batch_size=2, num_steps=3,
                                 batch_norm_momentum=0.99,
                                 learning_rate=1e-2, crop=32, freeze_batch_norm=False,
                                 eval_every=2, checkpoint_every=2, log_every=1, train_limit=4,
                                 eval_limit=2, num_dump=2, run_eagerly=True),
}


# --- joint (train/joint.py) ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class JointTrainConfig:
  """How to fine-tune. beta / Ht of None take the operating point's (Section 6's) values."""

  gamma: float = 0.001
  batch_size: int = 64
  epochs: int = 9
  learning_rate: float = 0.0025
  lr_drop_every: int = 3  # epochs
  lr_drop_factor: float = 10.0
  momentum: float = 0.9
  # The classifier's L2 weight decay (its kernels carry the regularizer); the codec has none,
  # as in its own training.
  weight_decay: float = 1e-4
  view_size: int = DEFAULT_IMAGE_SIZE
  crop: int = 224
  # Multiply the operating point's beta and Ht, as codec training's presets do: fine-tuning
  # must aim at the rate the codec was trained for, or it moves the operating point.
  beta_scale: float = 1.0
  target_entropy_scale: float = 1.0
  steps_per_epoch: int = 0  # 0 = one pass over the training split
  eval_examples: int = 0  # per-epoch evaluation on a fixed random subset; 0 = all
  final_eval_examples: int = 0  # the evaluations before and after fine-tuning; 0 = all
  checkpoint_every: int = 0  # steps; 0 = only at the end of each epoch
  log_every: int = 50
  shuffle_buffer: int = 10_000  # paths, not images: the whole of Imagenette's list
  table_images: int = 1000  # training images whose symbols estimate the new frequency table
  seed: int = 0
  # The codec's convolutions only (tfcdi/train/precision.py); the classifier stays float32,
  # which at 1/8 width was measured no slower.
  precision: str = "float32"

  @property
  def latent_crop(self) -> int:
    return self.crop // operating_points.DOWNSAMPLING


_JOINT_PRESETS = {
    # Section 6.1 / Appendix A.8: SGD with momentum 0.9, rate 0.0025 divided by 10 every 3
    # epochs, 9 epochs, gamma 0.001, beta and Ht of the operating point.
    "paper": JointTrainConfig(),
    # A 2-core CPU on Imagenette: 3 epochs of 150 steps of 32 images (about half the training
    # split per epoch), the rate dropped after every epoch; the beta / Ht scales of the codec's
    # cpu preset, so that the fine-tuning aims at the rate the shipped codecs were trained for.
    # Curves on 500 validation images, the before / after numbers on all of them.
    "cpu": JointTrainConfig(batch_size=32, epochs=3, lr_drop_every=1, steps_per_epoch=150,
                            eval_examples=500, checkpoint_every=25, log_every=10,
                            beta_scale=10.0, target_entropy_scale=1.3, precision="auto"),
    # Seconds, for the tests and the smoke run: a 64-pixel view, 2 x 2 steps of 4 images.
    "tiny": JointTrainConfig(batch_size=4, epochs=2, lr_drop_every=1, view_size=64, crop=48,
                             steps_per_epoch=2, eval_examples=8, final_eval_examples=8,
                             checkpoint_every=1, log_every=1, table_images=8),
}


# --- reproduce: the whole pipeline (reproduce.py) ------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Preset:
  name: str
  # "train": train codecs with codec_preset in the workdir; "shipped": use tfcdi/pretrained.
  codecs: str
  codec_preset: str | None = None
  codec_steps: int | None = None  # overrides the codec preset's number of steps
  codec_log_every: int | None = None  # overrides how often codec training prints progress
  kodak_images: int = 0  # 0 = all 24
  jpeg_qualities: tuple | None = None  # None = the sweep's defaults
  jp2_psnrs: tuple | None = None
  classifier_preset: str | None = None  # None: no classification steps
  store_images: tuple = (0, 0)  # (train, val) images per latent store; 0 = all
  store_image_size: int = DEFAULT_IMAGE_SIZE  # side of the square view each store encodes
  joint_preset: str | None = None  # None: no joint-training steps (they need the classifiers)
  segmenter_preset: str | None = None  # None: no segmentation steps
  segmentation_dataset: str = "camvid"  # a DATASETS key: camvid or voc
  # The split segmenters train on: VOC's is the paper's 10,582 images of VOC 2012 + SBD
  # ("train_aug", tfcdi.data.segmentation.voc_devkit_source).
  segmentation_train_split: str = "train"
  # A DATASETS key: imagenette or imagenet. Codecs, stores, classifiers, joint training and the
  # benchmark's files all come from it.
  classification_dataset: str = "imagenette"
  # tfcdi.benchmark.BenchmarkConfig fields (None: no benchmark step). The paper's Figs. 6 and 12
  # are at 0.0983 bpp, so the benchmark's latent is too.
  benchmark: dict | None = None
  # Seeds 0..seeds-1 of the arms whose verdicts rest on a gap (tfcdi.reproduce's SEEDED_*
  # nets and Section 6, at SEEDED_POINT): the report calls a gap inside the seeds' spread
  # inconclusive, so one seed cannot decide them. Seed 0 is each arm's own run; further seeds run after every other step.
  seeds: int = 1
  # The width study (tfcdi/reporting/width.py): ((backbone width, number of seeds), ...), each
  # width other than the classifier preset's own, whose runs are Table 2's.
  width_study: tuple = ()


_REPRODUCE_PRESETS = {
    # Every step on a small slice with tiny nets: minutes on a 2-core CPU.
    "smoke": Preset(name="smoke", codecs="train", codec_preset="tiny", codec_steps=300,
                    codec_log_every=50,
                    kodak_images=2, jpeg_qualities=(5, 25, 50, 75, 95),
                    jp2_psnrs=(22.0, 26.0, 30.0, 34.0), classifier_preset="tiny",
                    store_images=(16, 8), store_image_size=64, joint_preset="tiny",
                    segmenter_preset="tiny",
                    benchmark={"batch_size": 4, "seg_batch_size": 2, "repeats": 2, "warmup": 1,
                               "width_multiplier": 1 / 16, "image_size": 64, "num_files": 2,
                               "operating_point": "0.0983"}),
    # The scaled reproduction on this machine: the shipped cpu-preset codecs (trained by
    # tools/train_codecs_cpu.sh with exactly that preset) on all of Kodak.
    "cpu": Preset(name="cpu", codecs="shipped", classifier_preset="cpu", joint_preset="cpu",
                  segmenter_preset="cpu",
                  # The paper's nets and batches, timed on this machine (about 20 minutes).
                  benchmark={"repeats": 3, "warmup": 1, "operating_point": "0.0983"},
                  # Measured per step before planning (BUILD_NOTES.md, the width study): a
                  # 1/4-width run costs about 1.5x and a 1/2-width one about 3-5x a 1/8 one.
                  seeds=3, width_study=((0.25, 2), (0.5, 1))),
    # The paper's settings, for users with GPUs and ImageNet.
    "paper": Preset(name="paper", codecs="train", codec_preset="paper", classifier_preset="paper",
                    joint_preset="paper", segmenter_preset="paper", segmentation_dataset="voc",
                    segmentation_train_split="train_aug",
                    classification_dataset="imagenet",
                    benchmark={"operating_point": "0.0983"}),
}


# --- one way to reach them ------------------------------------------------------------------------


def _check_segmenter(config: SegmenterTrainConfig) -> None:
  if config.crop % operating_points.DOWNSAMPLING or config.crop <= 0:
    raise ConfigError(f"crop must be a positive multiple of {operating_points.DOWNSAMPLING} (the "
                      f"latent crop is crop / {operating_points.DOWNSAMPLING}), got {config.crop}")
  if config.batch_size < 1 or config.num_steps < 1:
    raise ConfigError("batch_size and num_steps must be positive")


def _check_reproduce(preset: Preset) -> None:
  if not isinstance(preset.seeds, int) or preset.seeds < 1:
    raise ConfigError(f"seeds must be at least 1 (seed 0 is every arm's own run), got "
                      f"{preset.seeds!r}")
  for entry in preset.width_study:
    if (not isinstance(entry, (tuple, list)) or len(entry) != 2
        or not isinstance(entry[0], (int, float)) or not isinstance(entry[1], int)
        or not 0 < entry[0] <= 1 or entry[1] < 1):
      raise ConfigError(f"width_study holds (width in (0, 1], number of seeds >= 1) pairs, got "
                        f"{entry!r}")


# stage -> its presets; CHECKS: what a stage's config must satisfy beyond its fields' types.
PRESETS = {"codec": _CODEC_PRESETS, "hyperprior": _HYPERPRIOR_PRESETS,
           "classifier": _CLASSIFIER_PRESETS, "segmenter": _SEGMENTER_PRESETS,
           "joint": _JOINT_PRESETS, "reproduce": _REPRODUCE_PRESETS}
CHECKS = {"segmenter": _check_segmenter, "reproduce": _check_reproduce}


def stage_presets(stage: str) -> dict:
  if stage not in PRESETS:
    raise ConfigError(f"unknown config stage {stage!r}; one of {', '.join(PRESETS)}")
  return PRESETS[stage]


def _config_class(stage: str) -> type:
  return type(next(iter(stage_presets(stage).values())))


def field_types(stage: str) -> dict:
  """{field: its type} of a stage's config (the annotations, resolved)."""
  cls = _config_class(stage)
  hints = typing.get_type_hints(cls)
  return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def get_config(stage: str, preset: str, **overrides):
  """The stage's preset with some fields replaced; None values are ignored (unset flags).

  Raises:
    ConfigError: an unknown stage, preset or field, or a config its stage refuses.
  """
  presets = stage_presets(stage)
  if preset not in presets:
    raise ConfigError(f"unknown {stage} preset {preset!r}; choose one of {', '.join(presets)}")
  types = field_types(stage)
  overrides = {k: v for k, v in overrides.items() if v is not None}
  unknown = sorted(set(overrides) - set(types))
  if unknown:
    raise ConfigError(f"{stage} configs have no field {unknown[0]!r} (fields: "
                      f"{', '.join(types)})")
  # A tuple field given as a list (a flag's or JSON's) keeps its type, so configs compare equal.
  overrides = {k: tuple(v) if isinstance(v, list) and _base(types[k]) is tuple else v
               for k, v in overrides.items()}
  config = dataclasses.replace(presets[preset], **overrides)
  if getattr(config, "precision", precision_lib.CHOICES[0]) not in precision_lib.CHOICES:
    raise ConfigError(f"{stage} config field precision: {config.precision!r} is not one of "
                      f"{', '.join(precision_lib.CHOICES)}")
  if stage in CHECKS:
    CHECKS[stage](config)
  return config


def _base(annotation) -> type:
  """The type a value of the field has when it is not None (int for `int | None`)."""
  args = [a for a in typing.get_args(annotation) if a is not type(None)]
  if typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"), "UnionType")):
    return _base(args[0])
  return typing.get_origin(annotation) or annotation


def _optional(annotation) -> bool:
  return type(None) in typing.get_args(annotation)


def _scalar(text: str, kind: type):
  if kind is bool:
    if text.lower() in ("true", "yes", "1"):
      return True
    if text.lower() in ("false", "no", "0"):
      return False
    raise ValueError
  if kind is float:
    return float(fractions.Fraction(text))
  return kind(text)


def _number(text: str):
  return int(text) if text.lstrip("-").isdigit() else _scalar(text, float)


def parse_value(stage: str, field: str, text: str, default=None):
  """The value `text` gives a stage's field, by the field's type (see the module docstring).

  `default` (the preset's value) gives a tuple's element type.

  Raises:
    ConfigError: no such field, or a value the type does not take.
  """
  types = field_types(stage)
  if field not in types:
    raise ConfigError(f"{stage} configs have no field {field!r} (fields: {', '.join(types)})")
  annotation = types[field]
  kind = _base(annotation)
  try:
    if _optional(annotation) and text.lower() == "none":
      return None
    if kind is tuple:
      items = [t.strip() for t in text.split(",") if t.strip()]
      if ":" in text:  # a tuple of tuples (width_study=0.25:2,0.5:1); the config checks shapes
        return tuple(tuple(_number(v.strip()) for v in t.split(":")) for t in items)
      element = type(default[0]) if default else (
          int if all(t.lstrip("-").isdigit() for t in items) else float)
      return tuple(_scalar(t, element) for t in items)
    if kind is dict:
      value = json.loads(text)
      if not isinstance(value, dict):
        raise ValueError
      return value
    return _scalar(text, kind)
  except (ValueError, ZeroDivisionError, json.JSONDecodeError):
    words = {tuple: "a comma-separated list", dict: "a JSON object", bool: "true or false"}
    wanted = words.get(kind, f"{'an' if kind is int else 'a'} {kind.__name__}")
    raise ConfigError(f"{stage} config field {field}: {text!r} is not {wanted}"
                      f"{' (or none)' if _optional(annotation) else ''}") from None


def parse_settings(stage: str, settings, preset: str | None = None) -> dict:
  """{field: typed value} of "field=value" strings (the binaries' --set), later ones winning.

  Raises:
    ConfigError: a setting without "=", an unknown field or a value its type does not take.
  """
  presets = stage_presets(stage)
  base = presets.get(preset) or next(iter(presets.values()))
  parsed = {}
  for setting in settings or ():
    field, equals, text = setting.partition("=")
    field = field.strip()
    if not equals or not field:
      raise ConfigError(f"--set={setting}: give FIELD=VALUE, e.g. --set=batch_size=8")
    parsed[field] = parse_value(stage, field, text.strip(), getattr(base, field, None))
  return parsed
