"""Runtime benchmark: compressed-domain inference against decoding + RGB inference, in one run.

The paper's claim is about cost: a cResNet on the compressed representation needs fewer
operations than the codec's decoder followed by a ResNet on the reconstructed image (Table 1,
Fig. 6), and runs faster (Appendix A.9, Fig. 12: per-image runtimes on a Titan X, batch 256 for
classification and 20 for segmentation, 224x224 RGB and 28x28 latents). This module measures both
halves of that claim for every path, side by side:

- classification on the representation: cResNet-39 / -51 / -72;
- decoding + classification: decoder + ResNet-50 / -71, and ResNet-50 / -71 alone;
- from files: entropy decoding of real .tfci files (symbols only, no neural net) + cResNet, against
  entropy decoding + decoder + ResNet, and JPEG decoding + ResNet-50 with JPEGs of the same bpp;
- segmentation: the DeepLab-v2 "-d" nets of nets/deeplab.py on the same inputs.

What is timed. A *stage* is one unit of work on one batch: a net (or the decoder and a net fused
in one tf.function, which is how a decoding pipeline would run them), or the decoding of a batch
of files. A *path* is a sum of stages: "entropy+cresnet51" is the stage "entropy_decode" plus the
stage "cresnet51". Entropy decoding runs per file in Python (constriction), so it is timed per
batch of files on its own and added, rather than hidden inside a graph. Net inputs are made once,
outside the timing, on the device. Every stage is called once untimed to trace it (tracing never
counts), then all stages run round-robin for `warmup` untimed and `repeats` timed rounds; the
round-robin starts each round at the next stage, so that a change of machine load (this machine
is shared) falls on every stage alike and no stage always follows the same neighbour.

What is reported. Per path: multiply-adds per image counted from the built graphs
(tfcdi.nets.flops; decoding files counts none, it is not a neural net), and per-image seconds
(median, quartiles, min, max over the repetitions). Per comparison: the speed-up (the baseline's
median over the path's median, with the min / max of the per-round ratios as its spread), the
multiply-add ratio of the two graphs, the ratio of the published counts of Table 1 where the paper
has them, and speed-up / multiply-add ratio. Absolute times depend on the machine and its load;
the ratios measured in one run are the result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import io
import logging
import math
import os
import time
from typing import Callable, Iterable, Sequence

import numpy as np

# The inputs the stages time (images, .tfci files, JPEGs) are made in their own module.
from tfcdi.benchmark_inputs import BenchmarkError  # noqa: F401  (raised here, and by callers)
from tfcdi.benchmark_inputs import FileSet
from tfcdi.benchmark_inputs import load_images
from tfcdi.benchmark_inputs import make_files
from tfcdi.codec import operating_points

# The batch sizes of the paper's runtime benchmark (Appendix A.9).
PAPER_BATCH_SIZE = 256
PAPER_SEG_BATCH_SIZE = 20
# Image side of the benchmark; the cResNets read the 28x28xC latent of such an image.
PAPER_IMAGE_SIZE = 224
# The codec's decoder of the paper (Appendix A.1), scaled by the width multiplier by default.
PAPER_DECODER_FILTERS = operating_points.PAPER_FILTERS

GROUPS = ("classification", "files", "segmentation")
DEVICES = ("cpu", "gpu")
# Stages that decode files; they have no multiply-adds.
ENTROPY_DECODE = "entropy_decode"
JPEG_DECODE = "jpeg_decode"
DECODER = "decoder"
# Published multiply-adds of stages that are not neural nets: none.
_NOT_COUNTED = (ENTROPY_DECODE, JPEG_DECODE)
# Speed-ups at least this fraction of the multiply-add ratio meet the benchmark's goal.
GOAL_FRACTION = 0.9


@dataclasses.dataclass(frozen=True)
class Path:
  """One way from an input to a prediction.

  Attributes:
    name: e.g. "cresnet51", "decoder+resnet50", "entropy+cresnet51", "cresnet51-d".
    group: "classification", "files" or "segmentation".
    stages: the timed stages whose per-image times add up to the path's.
    description: one line for people.
  """

  name: str
  group: str
  stages: tuple[str, ...]
  description: str


def _paths() -> dict[str, Path]:
  paths = []
  for net in ("cresnet39", "cresnet51", "cresnet72"):
    paths.append(Path(net, "classification", (net,), f"{net} on the latent"))
  for net in ("resnet50", "resnet71"):
    paths.append(Path(f"decoder+{net}", "classification", (f"decoder+{net}",),
                      f"decoder, then {net} on the reconstructed RGB image"))
  for net in ("resnet50", "resnet71"):
    paths.append(Path(net, "classification", (net,), f"{net} on RGB (no decoding)"))
  for net in ("cresnet39", "cresnet51", "cresnet72"):
    paths.append(Path(f"entropy+{net}", "files", (ENTROPY_DECODE, net),
                      f".tfci files: entropy decoding to symbols, {net} on the latent"))
  for net in ("resnet50", "resnet71"):
    paths.append(Path(f"entropy+decoder+{net}", "files", (ENTROPY_DECODE, f"decoder+{net}"),
                      f".tfci files: entropy decoding, decoder, {net}"))
  paths.append(Path("jpeg+resnet50", "files", (JPEG_DECODE, "resnet50"),
                    "JPEG files of the same bpp: JPEG decoding, resnet50"))
  for net in ("cresnet39", "cresnet51", "cresnet72"):
    paths.append(Path(f"{net}-d", "segmentation", (f"{net}-d",),
                      f"DeepLab {net}-d on the latent"))
  for net in ("resnet50", "resnet71"):
    paths.append(Path(f"decoder+{net}-d", "segmentation", (f"decoder+{net}-d",),
                      f"decoder, then DeepLab {net}-d on the reconstructed image"))
  for net in ("resnet50", "resnet71"):
    paths.append(Path(f"{net}-d", "segmentation", (f"{net}-d",),
                      f"DeepLab {net}-d on RGB (no decoding)"))
  return {p.name: p for p in paths}


PATHS: dict[str, Path] = _paths()

# (path, baseline): the speed-ups reported. Decoding + RGB inference first (the paper's claim),
# then inference alone (Fig. 6 / Fig. 12 show both), then JPEG files.
COMPARISONS: tuple[tuple[str, str], ...] = (
    ("cresnet39", "decoder+resnet50"),
    ("cresnet51", "decoder+resnet50"),
    ("cresnet72", "decoder+resnet50"),
    ("cresnet72", "decoder+resnet71"),
    ("cresnet39", "resnet50"),
    ("cresnet51", "resnet50"),
    ("cresnet72", "resnet71"),
    ("entropy+cresnet39", "entropy+decoder+resnet50"),
    ("entropy+cresnet51", "entropy+decoder+resnet50"),
    ("entropy+cresnet72", "entropy+decoder+resnet71"),
    ("entropy+cresnet39", "jpeg+resnet50"),
    ("entropy+cresnet51", "jpeg+resnet50"),
    ("cresnet39-d", "decoder+resnet50-d"),
    ("cresnet51-d", "decoder+resnet50-d"),
    ("cresnet72-d", "decoder+resnet71-d"),
    ("cresnet39-d", "resnet50-d"),
    ("cresnet51-d", "resnet50-d"),
    ("cresnet72-d", "resnet71-d"),
)


def select_paths(names: Iterable[str] = ("all",)) -> list[Path]:
  """The paths named, in table order; a name may be a group or "all".

  Raises:
    BenchmarkError: for an unknown name, or if nothing is selected.
  """
  wanted = set()
  for name in names:
    name = name.strip()
    if name == "all":
      wanted.update(PATHS)
    elif name in GROUPS:
      wanted.update(p.name for p in PATHS.values() if p.group == name)
    elif name in PATHS:
      wanted.add(name)
    else:
      raise BenchmarkError(f"unknown path {name!r}; choose from all, {', '.join(GROUPS)}, "
                           f"{', '.join(PATHS)}")
  if not wanted:
    raise BenchmarkError("no path selected")
  return [p for p in PATHS.values() if p.name in wanted]


def stage_components(stage: str) -> tuple[str, ...]:
  """The parts of a stage whose multiply-adds are counted: "decoder+resnet50" -> both."""
  return tuple(stage.split("+"))


def is_segmentation_stage(stage: str) -> bool:
  return stage.endswith("-d")


# --- configuration -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
  """What to benchmark and how. The defaults are the paper's benchmark (Appendix A.9).

  Attributes:
    paths: path names, groups or "all" (see select_paths).
    batch_size: images per call for classification (and for decoding files).
    seg_batch_size: images per call for segmentation.
    repeats: timed rounds; medians and spreads are over these.
    warmup: untimed rounds before them (each stage is traced, untimed, before these too).
    width_multiplier: of every ResNet / cResNet (1.0: the paper's nets).
    operating_point: the codec's operating point; fixes C of the latent.
    decoder_filters: (f1, f2) of the decoder; None: the paper's (64, 128) times width_multiplier.
    image_size: side of the square RGB input; the latent is image_size / 8 on a side.
    num_classes: logits of the classifiers (ImageNet's 1000).
    seg_num_classes: logits of the segmenters (PASCAL VOC's 21).
    num_files: distinct images coded as .tfci and JPEG files; a batch cycles through them.
    image_dir: a folder of images to code (searched recursively); None: synthetic images.
    codec_path: a codec bundle to make the .tfci files with; None: the shipped codec.
    device: "cpu" or "gpu".
    jit_compile: compile each stage's tf.function with XLA.
    seed: of the random inputs and weights.
  """

  paths: tuple[str, ...] = ("all",)
  batch_size: int = PAPER_BATCH_SIZE
  seg_batch_size: int = PAPER_SEG_BATCH_SIZE
  repeats: int = 5
  warmup: int = 2
  width_multiplier: float = 1.0
  operating_point: str = "0.635"
  decoder_filters: tuple[int, int] | None = None
  image_size: int = PAPER_IMAGE_SIZE
  num_classes: int = 1000
  seg_num_classes: int = 21
  num_files: int = 16
  image_dir: str | None = None
  codec_path: str | None = None
  device: str = "cpu"
  jit_compile: bool = False
  seed: int = 0

  def validate(self) -> "BenchmarkConfig":
    """Returns self, or raises BenchmarkError naming the first bad setting."""
    for name in ("batch_size", "seg_batch_size", "repeats", "num_files", "num_classes",
                 "seg_num_classes"):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BenchmarkError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
      raise BenchmarkError(f"warmup must be a non-negative integer, got {self.warmup!r}")
    if not self.width_multiplier > 0 or not math.isfinite(self.width_multiplier):
      raise BenchmarkError(f"width_multiplier must be positive, got {self.width_multiplier!r}")
    if self.image_size < 8 or self.image_size % 8:
      raise BenchmarkError(f"image_size must be a positive multiple of 8 (the codec's "
                           f"downsampling), got {self.image_size}")
    if self.decoder_filters is not None and (
        len(self.decoder_filters) != 2 or any(int(f) < 1 for f in self.decoder_filters)):
      raise BenchmarkError(f"decoder_filters must be two positive integers, got "
                           f"{self.decoder_filters!r}")
    if self.device not in DEVICES:
      raise BenchmarkError(f"device must be one of {DEVICES}, got {self.device!r}")
    select_paths(self.paths)
    try:
      operating_points.get_operating_point(self.operating_point)
    except ValueError as e:
      raise BenchmarkError(str(e)) from None
    if self.image_dir is not None and not os.path.isdir(self.image_dir):
      raise BenchmarkError(f"image_dir {self.image_dir} is not a folder")
    return self

  @property
  def resolved_decoder_filters(self) -> tuple[int, int]:
    if self.decoder_filters is not None:
      return tuple(int(f) for f in self.decoder_filters)
    return tuple(max(1, int(round(f * self.width_multiplier))) for f in PAPER_DECODER_FILTERS)

  @property
  def latent_side(self) -> int:
    return self.image_size // 8


# --- timing --------------------------------------------------------------------------------------


def time_round_robin(stages: dict[str, Callable[[], object]], repeats: int, warmup: int,
                     clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
  """Seconds per call of each stage, `repeats` per stage, after `warmup` untimed rounds.

  One round calls every stage once; round r starts at stage r mod n and wraps around, so each
  stage is timed at every position of the order, next to different neighbours, and a slow spell
  of a shared machine hits all stages of a round alike. Entry i of every list is from round i,
  which makes per-round ratios of two stages meaningful.

  Python's garbage collector is off during a round, as timeit turns it off: the built models
  hold a large graph of Python objects, and a collection would be charged to whichever stage
  happened to trigger it. Garbage is collected between rounds instead, untimed; tensors are
  freed by reference counting either way.
  """
  names = list(stages)
  seconds = {name: [] for name in names}
  was_enabled = gc.isenabled()
  try:
    for round_index in range(warmup + repeats):
      gc.collect()
      gc.disable()
      start = round_index % len(names)
      for name in names[start:] + names[:start]:
        tick = clock()
        stages[name]()
        elapsed = clock() - tick
        if round_index >= warmup:
          seconds[name].append(elapsed)
      gc.enable()
  finally:
    if was_enabled:
      gc.enable()
    else:
      gc.disable()
  return seconds


def summarize(samples: Sequence[float]) -> dict:
  """Median, quartiles, min, max and mean of per-image seconds (plus the samples)."""
  values = np.asarray(samples, np.float64)
  if values.size == 0:
    raise BenchmarkError("no timed samples")
  q1, median, q3 = np.percentile(values, [25, 50, 75])
  return {"median": float(median), "q1": float(q1), "q3": float(q3),
          "min": float(values.min()), "max": float(values.max()), "mean": float(values.mean()),
          "samples": [float(v) for v in values]}


def published_cost_1e9(path: Path | str, published_1e9: dict) -> float | None:
  """The path's multiply-adds by the paper's Table 1 (x1e9), or None if it has no count.

  Decoding files counts zero multiply-adds (it is not a neural net); the "-d" segmenters have
  no published count.
  """
  path = PATHS[path] if isinstance(path, str) else path
  total = 0.0
  for stage in path.stages:
    for component in stage_components(stage):
      if component in _NOT_COUNTED:
        continue
      value = published_1e9.get(component)
      if not isinstance(value, (int, float)):
        return None
      total += float(value)
  return total


def path_results(paths: Sequence[Path], stage_seconds: dict[str, Sequence[float]],
                 stage_batch: dict[str, int], stage_multiply_adds: dict[str, dict[str, int]],
                 published_1e9: dict | None = None) -> list[dict]:
  """One JSON-ready row per path from the stages' timings and counts.

  Args:
    paths: the paths to report.
    stage_seconds: seconds per call of each stage, one entry per round (time_round_robin).
    stage_batch: images per call of each stage.
    stage_multiply_adds: {stage: {component: multiply-adds per image}}.
    published_1e9: the paper's Table 1 counts (paper_numbers.json's "flops_1e9_at_224").

  Returns:
    Rows with name, group, description, stages, batch_size, multiply_adds (per image, and
    by component), published_multiply_adds_1e9 and per_image_seconds (summarize() of the
    per-round sum of the stages' per-image times), images_per_second (at the median).
  """
  rows = []
  for path in paths:
    rounds = {len(stage_seconds[s]) for s in path.stages}
    if len(rounds) != 1:
      raise BenchmarkError(f"stages of {path.name} were timed a different number of rounds")
    per_image = np.zeros(rounds.pop())
    by_component = {}
    for stage in path.stages:
      per_image += np.asarray(stage_seconds[stage], np.float64) / stage_batch[stage]
      for component, count in stage_multiply_adds[stage].items():
        by_component[component] = by_component.get(component, 0) + int(count)
    stats = summarize(per_image)
    rows.append({
        "name": path.name,
        "group": path.group,
        "description": path.description,
        "stages": list(path.stages),
        "batch_size": max(stage_batch[s] for s in path.stages),
        "multiply_adds": int(sum(by_component.values())),
        "multiply_adds_by_component": by_component,
        "published_multiply_adds_1e9": (None if published_1e9 is None else
                                        published_cost_1e9(path, published_1e9)),
        "per_image_seconds": stats,
        "images_per_second": 1.0 / stats["median"] if stats["median"] > 0 else None,
    })
  return rows


def _ratio(numerator, denominator):
  if numerator is None or denominator is None or not denominator:
    return None
  return numerator / denominator


def compare_paths(rows: Sequence[dict],
                  comparisons: Sequence[tuple[str, str]] = COMPARISONS) -> list[dict]:
  """Speed-ups beside multiply-add ratios, for every comparison whose two paths were run.

  speedup: the baseline's median per-image time over the path's; speedup_min / _max: the range
  of the per-round ratios (both paths are timed in the same rounds). multiply_add_ratio: the
  baseline's multiply-adds over the path's, from the graphs; published_ratio: the same from the
  paper's counts. fraction_*: speedup over each ratio; meets_goal_*: fraction >= GOAL_FRACTION.
  """
  by_name = {row["name"]: row for row in rows}
  out = []
  for name, baseline in comparisons:
    if name not in by_name or baseline not in by_name:
      continue
    fast, slow = by_name[name], by_name[baseline]
    fast_t, slow_t = fast["per_image_seconds"], slow["per_image_seconds"]
    per_round = [s / f for s, f in zip(slow_t["samples"], fast_t["samples"]) if f > 0]
    speedup = _ratio(slow_t["median"], fast_t["median"])
    madd_ratio = _ratio(slow["multiply_adds"], fast["multiply_adds"])
    published = _ratio(slow.get("published_multiply_adds_1e9"),
                       fast.get("published_multiply_adds_1e9"))
    fraction = _ratio(speedup, madd_ratio)
    fraction_published = _ratio(speedup, published)
    out.append({
        "path": name,
        "baseline": baseline,
        "speedup": speedup,
        "speedup_min": min(per_round) if per_round else None,
        "speedup_max": max(per_round) if per_round else None,
        "multiply_add_ratio": madd_ratio,
        "published_ratio": published,
        "fraction_of_multiply_add_ratio": fraction,
        "fraction_of_published_ratio": fraction_published,
        "meets_goal_multiply_add_ratio": None if fraction is None else fraction >= GOAL_FRACTION,
        "meets_goal_published_ratio": (None if fraction_published is None else
                                       fraction_published >= GOAL_FRACTION),
    })
  return out


# --- building the stages -------------------------------------------------------------------------


@dataclasses.dataclass
class Stage:
  """One timed unit: `run()` processes one batch and returns when the result exists."""

  name: str
  batch_size: int
  run: Callable[[], None]
  multiply_adds: dict[str, int]  # per image, by component
  # How often the stage's tf.function has been traced (None: no tf.function); one trace means
  # no call was retraced, so no timed call paid for tracing.
  tracing_count: Callable[[], int] | None = None


def _wait(tensor) -> None:
  """Blocks until `tensor` is computed: fetching one element needs it (and is cheap) on a GPU;
  on a CPU, eager TensorFlow has finished by the time a call returns anyway."""
  tensor[(0,) * len(tensor.shape)].numpy()


def device_name(device: str) -> str:
  """The TensorFlow device for "cpu" / "gpu"; raises BenchmarkError if no GPU is visible."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if device == "gpu":
    if not tf.config.list_physical_devices("GPU"):
      raise BenchmarkError("--device=gpu was asked for, but TensorFlow sees no GPU on this "
                           "machine; use --device=cpu")
    return "/GPU:0"
  if device == "cpu":
    return "/CPU:0"
  raise BenchmarkError(f"device must be one of {DEVICES}, got {device!r}")


def _device_description(device: str) -> dict:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  info = {"requested": device, "tensorflow": tf.__version__, "cpu_count": os.cpu_count()}
  if device == "gpu":
    gpu = tf.config.list_physical_devices("GPU")[0]
    details = tf.config.experimental.get_device_details(gpu)
    info["gpu"] = details.get("device_name", gpu.name)
  return info


class _StageBuilder:
  """Builds the stages of the selected paths: models, fixed inputs, traced tf.functions."""

  def __init__(self, config: BenchmarkConfig, channels: int, codec=None,
               files: FileSet | None = None):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self.tf = tf
    self.config = config
    self.channels = channels
    self.codec = codec
    self.files = files
    self.rng = np.random.default_rng(config.seed)
    self._inputs = {}
    self._decoder = None
    self._decoder_count = None

  def _input(self, kind: str, batch: int):
    """A fixed batch, made once on the device: uniform pixels, or z_hat of random symbols."""
    key = (kind, batch)
    if key not in self._inputs:
      size, side = self.config.image_size, self.config.latent_side
      if kind == "rgb":
        values = self.rng.uniform(0.0, 255.0, (batch, size, size, 3)).astype(np.float32)
      else:
        centers = np.asarray(self.codec.model.quantizer.centers.numpy(), np.float32)
        symbols = self.rng.integers(0, centers.size, (batch, side, side, self.channels))
        values = centers[symbols]
      self._inputs[key] = self.tf.constant(values)
    return self._inputs[key]

  def _shape(self, kind: str) -> tuple[int, int, int]:
    if kind == "rgb":
      return (self.config.image_size, self.config.image_size, 3)
    return (self.config.latent_side, self.config.latent_side, self.channels)

  def _decoder_model(self):
    if self._decoder is None:
      from tfcdi.codec import model as codec_model  # pylint: disable=g-import-not-at-top
      from tfcdi.nets import flops  # pylint: disable=g-import-not-at-top
      self._decoder = codec_model.build_decoder(self.channels,
                                                self.config.resolved_decoder_filters)
      self._decoder_count = flops.count_multiply_adds(self._decoder, self._shape("latent"))
    return self._decoder

  def _net(self, component: str):
    """A classifier ("resnet50") or segmenter ("resnet50-d") and its input kind."""
    from tfcdi.nets import deeplab  # pylint: disable=g-import-not-at-top
    from tfcdi.nets import resnet  # pylint: disable=g-import-not-at-top
    from tfcdi.nets import specs  # pylint: disable=g-import-not-at-top
    net = component[:-2] if is_segmentation_stage(component) else component
    kind = "rgb" if specs.get_spec(net).include_root else "latent"
    shape = (None, None, self._shape(kind)[-1])
    if is_segmentation_stage(component):
      model = deeplab.build_segmenter(net, self.config.seg_num_classes, shape,
                                      width_multiplier=self.config.width_multiplier,
                                      weight_decay=0.0)
    else:
      model = resnet.build_resnet(net, input_shape=shape, num_classes=self.config.num_classes,
                                  width_multiplier=self.config.width_multiplier)
    return model, kind

  def build(self, name: str) -> Stage:
    tf = self.tf
    batch = (self.config.seg_batch_size if is_segmentation_stage(name)
             else self.config.batch_size)
    if name == ENTROPY_DECODE:
      return self._entropy_stage(batch)
    if name == JPEG_DECODE:
      return self._jpeg_stage(batch)
    from tfcdi.nets import flops  # pylint: disable=g-import-not-at-top
    components = stage_components(name)
    net_name = components[-1]
    model, kind = self._net(net_name)
    counts = {}
    if components[0] == DECODER:
      decoder = self._decoder_model()
      counts[DECODER] = self._decoder_count
      inputs = self._input("latent", batch)

      def forward(z_hat):
        # As Autoencoder.decode: the reconstruction is clipped to the pixel range.
        images = tf.clip_by_value(decoder(z_hat, training=False), 0.0, 255.0)
        return model(images, training=False)
    else:
      inputs = self._input(kind, batch)

      def forward(x):
        return model(x, training=False)
    counts[net_name] = flops.count_multiply_adds(model, self._shape(kind))
    function = tf.function(forward, jit_compile=self.config.jit_compile)

    def run():
      _wait(function(inputs))
    return Stage(name, batch, run, counts, function.experimental_get_tracing_count)

  def _batch_of(self, files: Sequence[bytes], batch: int) -> list[bytes]:
    return [files[i % len(files)] for i in range(batch)]

  def _entropy_stage(self, batch: int) -> Stage:
    """Bytes -> header check + range decoding (constriction) -> z_hat on the device."""
    from tfcdi.codec import coding  # pylint: disable=g-import-not-at-top
    tf, codec = self.tf, self.codec
    files = self._batch_of(self.files.tfci, batch)
    centers = tf.constant(np.asarray(codec.model.quantizer.centers.numpy(), np.float32))

    def run():
      symbols = np.stack([coding.read_symbols(data, codec)[1] for data in files])
      _wait(tf.gather(centers, tf.convert_to_tensor(symbols)))
    return Stage(ENTROPY_DECODE, batch, run, {ENTROPY_DECODE: 0})

  def _jpeg_stage(self, batch: int) -> Stage:
    """Bytes -> Pillow (libjpeg) decoding -> float pixels on the device."""
    from PIL import Image  # pylint: disable=g-import-not-at-top
    tf = self.tf
    files = self._batch_of(self.files.jpeg, batch)

    def decode(data):
      with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))

    def run():
      pixels = np.stack([decode(data) for data in files])
      _wait(tf.cast(tf.convert_to_tensor(pixels), tf.float32))
    return Stage(JPEG_DECODE, batch, run, {JPEG_DECODE: 0})


@contextlib.contextmanager
def _quiet_tracing():
  """Silences TensorFlow's "triggered tf.function retracing" warning while stages are built.

  Every stage's tf.function wraps a closure of the same code, which TensorFlow's heuristic takes
  for one function traced again and again; each is in fact traced once (the result's "traces").
  """
  logger = logging.getLogger("tensorflow")
  level = logger.level
  logger.setLevel(logging.ERROR)
  try:
    yield
  finally:
    logger.setLevel(level)


def _load_codec(config: BenchmarkConfig):
  from tfcdi.codec import pretrained  # pylint: disable=g-import-not-at-top
  try:
    return pretrained.load_codec(config.operating_point, path=config.codec_path)
  except pretrained.CodecError as e:
    raise BenchmarkError(str(e)) from None


def run_benchmark(config: BenchmarkConfig, published_1e9: dict | None = None,
                  log: Callable[[str], None] = lambda message: None) -> dict:
  """Builds, traces and times every stage of the selected paths; returns the JSON-ready result.

  Args:
    config: what to run (validated here).
    published_1e9: paper_numbers.json's "flops_1e9_at_224", for the published ratios.
    log: progress lines.

  Returns:
    {"config", "device", "inputs", "files" (or None), "paths" (path_results rows),
     "comparisons" (compare_paths rows), "stages" (per-call seconds of each stage), "note",
     "load_average", "seconds"}.
  """
  config.validate()
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfcdi.codec import operating_points  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  load_before = os.getloadavg()
  device = device_name(config.device)
  op = operating_points.get_operating_point(config.operating_point)
  paths = select_paths(config.paths)
  stage_names = list(dict.fromkeys(s for p in paths for s in p.stages))
  keras.utils.set_random_seed(config.seed)  # the nets' random weights

  codec, files = None, None
  needs_files = any(s in (ENTROPY_DECODE, JPEG_DECODE) for s in stage_names)
  # The codec's centers make the latent inputs; its files the from-file paths.
  if needs_files or any("cresnet" in s or DECODER in s for s in stage_names):
    codec = _load_codec(config)
    if codec.channels != op.channels:
      raise BenchmarkError(f"codec {codec.name!r} makes {codec.channels}-channel latents, not "
                           f"the {op.channels} of operating point {op.name}")
  if needs_files:
    images, source = load_images(config.image_dir, config.num_files, config.image_size,
                                 config.seed)
    log(f"coding {len(images)} images as .tfci ({codec.name}) and JPEG files")
    files = make_files(codec, images, source)
    log(f"  .tfci {files.tfci_bpp:.4f} bpp; JPEG quality {files.jpeg_quality} "
        f"{files.jpeg_bpp:.4f} bpp")

  stages = {}
  with tf.device(device):
    builder = _StageBuilder(config, op.channels, codec, files)
    for name in stage_names:
      log(f"building and tracing {name}")
      with _quiet_tracing():
        stage = builder.build(name)
        stage.run()  # traces the tf.function: never timed
      stages[name] = stage
    log(f"timing {len(stages)} stages round-robin: {config.warmup} warm-up + "
        f"{config.repeats} timed rounds")
    seconds = time_round_robin({n: s.run for n, s in stages.items()}, config.repeats,
                               config.warmup)

  rows = path_results(paths, seconds, {n: s.batch_size for n, s in stages.items()},
                      {n: s.multiply_adds for n, s in stages.items()}, published_1e9)
  config_json = dataclasses.asdict(config)
  config_json["decoder_filters"] = list(config.resolved_decoder_filters)
  config_json["paths"] = list(config.paths)
  return {
      "note": "Per-image seconds depend on the machine and its load; the ratios measured in "
              "this one run (comparisons) are the result. Multiply-adds are per image, counted "
              "from the built graphs; decoding files counts none.",
      "config": config_json,
      "device": _device_description(config.device),
      "inputs": {"image_size": config.image_size,
                 "latent_shape": [config.latent_side, config.latent_side, op.channels],
                 "operating_point": op.name,
                 "codec": None if codec is None else codec.name,
                 "fingerprint": None if codec is None else codec.fingerprint.hex()},
      "files": None if files is None else files.to_json(),
      "paths": rows,
      "comparisons": compare_paths(rows),
      "stages": {n: {"batch_size": s.batch_size, "seconds_per_call": seconds[n],
                     "multiply_adds": s.multiply_adds,
                     "traces": None if s.tracing_count is None else s.tracing_count()}
                 for n, s in stages.items()},
      "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
      "seconds": time.perf_counter() - start,
  }


# --- output --------------------------------------------------------------------------------------


def _fmt(value, spec: str, suffix: str = "") -> str:
  return "-" if value is None else format(value, spec) + suffix


def format_table(result: dict) -> str:
  """The result as two plain-text tables: per-path costs and times, then the ratios."""
  config = result["config"]
  lines = [
      f"Per-image inference on {result['device']['requested']} "
      f"(width x{config['width_multiplier']:g}, batch {config['batch_size']} / segmentation "
      f"{config['seg_batch_size']}, {config['repeats']} timed rounds after {config['warmup']} "
      f"warm-up, {config['image_size']}px RGB / "
      f"{'x'.join(map(str, result['inputs']['latent_shape']))} latent)",
      f"{'path':<26} {'group':<14} {'Mult-add 1e9':>12} {'median ms':>10} "
      f"{'IQR ms':>15} {'min-max ms':>17}",
  ]
  for row in result["paths"]:
    t = {k: 1e3 * v for k, v in row["per_image_seconds"].items() if k != "samples"}
    iqr = f"{t['q1']:.3f}-{t['q3']:.3f}"
    extremes = f"{t['min']:.3f}-{t['max']:.3f}"
    lines.append(
        f"{row['name']:<26} {row['group']:<14} {row['multiply_adds'] / 1e9:>12.4f} "
        f"{t['median']:>10.3f} {iqr:>15} {extremes:>17}")
  files = result.get("files")
  if files:
    lines.append(f"files: {files['count']} images ({files['source']}); .tfci "
                 f"{files['tfci_mean_bpp']:.4f} bpp, JPEG quality {files['jpeg_quality']} "
                 f"{files['jpeg_mean_bpp']:.4f} bpp")
  lines += [
      "",
      "Speed-ups measured in this run beside multiply-add ratios (graph counts, and the "
      "paper's Table 1 counts: published)",
      f"{'path':<20} {'over':<26} {'speed-up':>8} {'[min, max]':>14} {'Mult-add':>8} "
      f"{'published':>9} {'speed/MA':>8} {'speed/pub':>9}",
  ]
  for c in result["comparisons"]:
    spread = (f"[{c['speedup_min']:.2f}, {c['speedup_max']:.2f}]"
              if c["speedup_min"] is not None else "-")
    lines.append(
        f"{c['path']:<20} {c['baseline']:<26} {_fmt(c['speedup'], '.2f', 'x'):>8} "
        f"{spread:>14} {_fmt(c['multiply_add_ratio'], '.2f', 'x'):>8} "
        f"{_fmt(c['published_ratio'], '.2f', 'x'):>9} "
        f"{_fmt(c['fraction_of_multiply_add_ratio'], '.0%'):>8} "
        f"{_fmt(c['fraction_of_published_ratio'], '.0%'):>9}")
  return "\n".join(lines)
