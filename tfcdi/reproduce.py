"""The main job: the paper's pipeline as a list of resumable steps, at a preset.

Every step writes its results as JSON under the workdir and is skipped when that file exists,
so an interrupted run picks up where it stopped. The report (tfcdi/reporting) reads only those
JSON files and the published numbers.

Steps so far, in order:
  codec_<op>    train the codec of each operating point (or take the shipped bundle)
  kodak_<op>    measure it on Kodak from real .tfci files
  rd_curve      sweep JPEG / JPEG 2000 on the same images and place the codec points among them
  flops         multiply-adds of every net and of the codec (Table 1)
  store_<op>    encode Imagenette with each codec into a latent store (+ its decoded cache)
  cls_<arm>     train each classification arm of Table 2: ResNet-50 on the original images,
                and per operating point ResNet-50 on decoded RGB, cResNet-51 and cResNet-39 on
                the representation (and ResNet-71 / cResNet-72 at 0.0983 bpp, as Table 2)
  seg_<arm>     train each segmentation arm of Table 2 (the "-d" nets, same arms as cls_) on
                CamVid (PASCAL VOC at the paper preset), with one latent / decoded store per
                codec shared by the arms of its operating point
  benchmark     multiply-adds and measured per-image time of every inference path (Appendix A.9)
  figures       Figs. 9 and 10: one Kodak image through each codec, decoded, with the
                highest-entropy channels of its representation
  joint_<op>    Section 6 at 0.0983 and 0.635 bpp: joint ft. of codec + cResNet-51 from the
                baseline; the control (compression ft. alone, a store of the new codec,
                cResNet-51 from scratch on it, then the classifier alone with the same schedule),
                then cResNet-51-d from each arm's classifier on that arm's codec (segmentation)
  seeds         further seeds (preset.seeds) of the arms whose verdicts rest on a gap at
                SEEDED_POINT: ResNet-50 on decoded RGB, cResNet-51 and cResNet-39; ResNet-50-d
                and cResNet-51-d; Section 6's chain (each seed's from its own cResNet-51)
  width study   ResNet-50 on decoded and original RGB and cResNet-51 at other backbone widths
                (preset.width_study), the question of why the representation leads decoded RGB
  report        Markdown + figures + one JSON of everything

A run's measured results outlive the machine it ran on only as the copies committed under the
repository's reports/. `Pipeline.restore` (`tfcdi-reproduce --restore_from=reports`) puts those
copies back where the steps look for them, so a fresh machine runs only what is still missing.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import shutil
import time
from typing import Callable, Sequence

from tfcdi import configs
from tfcdi import imageio
from tfcdi.codec import operating_points
from tfcdi.codec import pretrained
from tfcdi.reporting import published
from tfcdi.reporting import results as results_lib
from tfcdi.reporting import width as width_lib
from tfcdi.reporting.claims import DRY_RUN_FILE
from tfcdi.restore import PipelineError  # noqa: F401  (raised by the steps; callers catch it)
from tfcdi.restore import RESTORED_FILE
from tfcdi.restore import Restoring

# Section 6 fine-tunes at the lowest and the highest rate.
JOINT_POINTS = ("0.0983", "0.635")
# The point whose verdicts rest on gaps between arms (the paper's Figs. 6, 7 and 12), and the
# arms run at further seeds there (preset.seeds): the nets of the classification and
# segmentation gaps, and Section 6.
SEEDED_POINT = width_lib.STUDY_POINT
SEEDED_CLASSIFIERS = ("resnet50", "cresnet51", "cresnet39")
SEEDED_SEGMENTERS = ("resnet50", "cresnet51")
# Folders under --data_root. ImageNet is ILSVRC2012 in class folders (train/<wnid>/*.JPEG and
# val/<wnid>/*.JPEG, the layout Imagenette shares), which every step reads as it reads
# Imagenette; tfds' imagenet2012 is for tfcdi-encode-dataset --tfds_name by hand.
DATASETS = {"imagenette": "imagenette2_224", "imagenet": "imagenet", "kodak": "kodak",
            "camvid": "camvid", "voc": os.path.join("VOCdevkit", "VOC2012")}


def render_report(workdir: str, preset: Preset, out_dir: str,
                  paper_numbers: str | None = None) -> str:
  """Renders the report of a workdir run at `preset` into `out_dir`; report.md's path.

  What the pipeline does after every run, and tools/make_report.py on its own (to re-render a
  workdir's report, e.g. after the report's code changed, without running a step). The report
  reads JSON only; the one thing it needs counted from models (each classification arm's
  multiply-adds at its trained width, for Fig. 6) is written here first.
  """
  from tfcdi.reporting import report  # pylint: disable=g-import-not-at-top  (matplotlib)
  write_arm_costs(workdir)
  dataset = {"imagenette": "Imagenette", "imagenet": "ImageNet"}[preset.classification_dataset]
  return report.write_report(workdir, preset.name, out_dir, paper_numbers=paper_numbers,
                             classification_dataset=dataset)


def write_arm_costs(workdir: str) -> str | None:
  """<workdir>/flops/arms.json: the multiply-adds of each classification arm's nets
  (tfcdi.nets.arm_costs), recounted when an arm is missing from it; None without classifiers."""
  files = sorted(glob.glob(os.path.join(workdir, "classification", "*", "results.json")))
  if not files:
    return None
  path = os.path.join(workdir, "flops", "arms.json")
  results = [Pipeline._read(f) for f in files]  # pylint: disable=protected-access
  wanted = {(r.get("operating_point") or "original", r["net"], r["input"]) for r in results}
  existing = Pipeline._read_if_exists(path) or {}  # pylint: disable=protected-access
  if wanted <= {(a["operating_point"], a["net"], a["input"]) for a in existing.get("arms", [])}:
    return path
  from tfcdi.nets import arm_costs  # pylint: disable=g-import-not-at-top  (TensorFlow)
  Pipeline._write(path, arm_costs.count_arm_costs(  # pylint: disable=protected-access
      results, arm_costs.codec_bundles_in(workdir)))
  return path


# The pipeline's presets are tfcdi/configs.py's (every stage's, reached one way).
Preset = configs.Preset
PRESETS = configs.PRESETS["reproduce"]


def get_preset(name: str) -> Preset:
  return configs.get_config("reproduce", name)


def data_paths(data_root: str, preset: Preset | None = None) -> dict:
  """The datasets under data_root; those the preset needs must exist (checked before any step)."""
  paths = {key: os.path.join(data_root, sub) for key, sub in DATASETS.items()}
  needed = ["imagenette" if preset is None else preset.classification_dataset, "kodak"]
  if preset is not None and preset.segmenter_preset:
    needed.append(preset.segmentation_dataset)
  for key in needed:
    if not os.path.isdir(paths[key]):
      raise ValueError(f"{paths[key]} not found: --data_root must hold {DATASETS[key]}/")
  return paths


@dataclasses.dataclass(frozen=True)
class Step:
  """One resumable step: `fn` writes `output`; the step is done once that exists, or once
  `done()` says so for steps whose output is written as they go (checkpointed training)."""
  name: str
  output: str
  fn: Callable[[], None]
  done: Callable[[], bool] | None = None

  def is_done(self) -> bool:
    return self.done() if self.done is not None else os.path.exists(self.output)


class Pipeline(Restoring):
  """Runs the steps of a preset in a workdir, skipping those whose results exist."""

  joint_points = JOINT_POINTS

  def __init__(self, preset: Preset, data_root: str, workdir: str, log=print,
               strategy: str = "default", max_steps: int = 0):
    """strategy: the tf.distribute strategy of the classifier steps (tfcdi-train-classifier's
    --strategy); the other steps run on the default one. max_steps > 0: every training run
    stops after that many optimizer steps (one epoch of them where a run counts epochs), and
    the benchmark times that many rounds; nothing else of the preset changes (a dry run of
    its full-size nets and settings, `tfcdi-reproduce --max_steps`)."""
    if max_steps < 0:
      raise ValueError(f"max_steps must be 0 (no cap) or positive, got {max_steps}")
    self.preset = preset
    self.strategy = strategy
    self.max_steps = max_steps
    self.data = data_paths(data_root, preset)
    self.workdir = os.path.abspath(workdir)
    self.log = log

  @property
  def images(self) -> str:
    """The classification dataset's folder (train/ and val/ of class folders)."""
    return self.data[self.preset.classification_dataset]

  def path(self, *parts) -> str:
    return os.path.join(self.workdir, *parts)

  def _run_step(self, step: Step):
    """Runs a step unless it is done."""
    if step.is_done():
      self.log(f"== {step.name}: done ({os.path.relpath(step.output, self.workdir)})")
      return
    self.log(f"== {step.name} ...")
    tick, cpu = time.time(), time.process_time()
    step.fn()
    # CPU seconds (all threads) beside the wall time: on a shared machine the wall time
    # measures the other jobs as much as the step.
    self.log(f"== {step.name}: finished in {time.time() - tick:.0f} s "
             f"({time.process_time() - cpu:.0f} CPU-s)")

  def codec_bundle(self, op_name: str) -> str:
    return self.path("codecs", op_name, f"codec_{op_name}.npz")

  def _make_codec(self, op_name: str):
    from tfcdi.train import codec as codec_train  # heavy imports only when needed
    out = self.codec_bundle(op_name)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if self.preset.codecs == "shipped":
      shutil.copyfile(pretrained.shipped_path(op_name), out)
      return
    config = self._capped(codec_train.get_config(
        self.preset.codec_preset, num_steps=self.preset.codec_steps,
        log_every=self.preset.codec_log_every))
    workdir = os.path.dirname(out)
    codec_train.train(op_name, config, self.images, workdir, log=self.log)
    codec_train.finalize(op_name, config, self.images, workdir,
                         self.preset.codec_preset, log=self.log)

  def _kodak(self, op_name: str):
    from tfcdi.codec import evaluation
    evaluation.evaluate_bundle_on_folder(
        self.codec_bundle(op_name), self.data["kodak"], os.path.dirname(self.codec_bundle(op_name)),
        limit=self.preset.kodak_images, log=self.log)

  def kodak_result(self, op_name: str) -> str:
    return self.path("codecs", op_name, "kodak_eval.json")

  def _rd_curve(self):
    from tfcdi import baselines
    images = baselines.load_images(self.data["kodak"], max_images=self.preset.kodak_images)
    results = [self._read(self.kodak_result(op)) for op in operating_points.OPERATING_POINTS]
    settings = {}
    if self.preset.jpeg_qualities:
      settings["jpeg"] = self.preset.jpeg_qualities
    if self.preset.jp2_psnrs:
      settings["jpeg2000"] = self.preset.jp2_psnrs

    def progress(codec, point, seconds):
      self.log(f"  {codec.name} {codec.setting_name}={point['setting']}: "
               f"{point['bpp']:.3f} bpp, MS-SSIM {point['ms_ssim']:.4f} ({seconds:.1f} s)")

    report = baselines.rd_report(images, results, settings=settings, progress=progress)
    os.makedirs(self.path("rd"), exist_ok=True)
    baselines.plot_rd_curves(report["curves"], results, self.path("rd", "rd_curve.png"))
    self._write(self.path("rd", "rd_curve.json"), report)

  def _flops(self):
    from tfcdi.nets import flops
    counts = published.load_paper_numbers()["flops_1e9_at_224"]
    self._write(self.path("flops", "flops.json"), flops.flops_table(counts))

  def store_dir(self, op_name: str) -> str:
    return self.path("stores", op_name)

  def _store_done(self, op_name: str) -> bool:
    from tfcdi.data import latent_store
    from tfcdi.data import rgb_arms
    try:
      for split in ("train", "val"):
        rgb_arms.decoded_dataset(self.store_dir(op_name), split)
    except latent_store.StoreError:
      return False
    return True

  def _store(self, op_name: str, bundle: str | None = None, store_dir: str | None = None,
             decoded: bool = True):
    from tfcdi.data import latent_store
    from tfcdi.data import rgb_arms
    self._require(bundle or self.codec_bundle(op_name), f"the latent store at {op_name}")
    codec = pretrained.load_codec(path=bundle or self.codec_bundle(op_name))
    store_dir = store_dir or self.store_dir(op_name)
    for split, limit in zip(("train", "val"), self.preset.store_images):
      source = latent_store.ImageFolderSource(self.images, split, limit=limit)
      latent_store.encode_split(source, codec, store_dir, split,
                                image_size=self.preset.store_image_size, progress=False,
                                log=self.log)
      if decoded:
        rgb_arms.build_decoded_cache(store_dir, split, codec, progress=False)

  def classification_arms(self) -> list[tuple[str, str, str | None]]:
    """(run name, net, operating point or None) of each arm, in Table 2's order."""
    arms = [("resnet50_original", "resnet50", None)]
    for op in operating_points.OPERATING_POINTS:
      nets = ["resnet50", "cresnet51", "cresnet39"]
      if op == "0.0983":  # Table 2 has the deeper pair at the lowest rate only
        nets += ["resnet71", "cresnet72"]
      arms += [(f"{net}_{op}", net, op) for net in nets]
    return arms

  def classifier_dir(self, run_name: str) -> str:
    return self.path("classification", run_name)

  def _classifier_done(self, run_name: str, workdir: str | None = None) -> bool:
    from tfcdi.train import classifier
    results = classifier.read_results(workdir or self.classifier_dir(run_name))
    return bool(results and results.get("complete"))

  def _classifier(self, net: str, op_name: str | None, run_name: str,
                  store_dir: str | None = None, workdir: str | None = None, seed: int = 0,
                  width: float | None = None):
    """One classifier run; `seed` and `width` (None: the preset's) replace its config's."""
    from tfcdi.train import classifier
    input_kind = "original" if op_name is None else ("decoded" if net.startswith("resnet")
                                                      else "latent")
    config = self._capped(classifier.get_config(self.preset.classifier_preset, seed=seed,
                                                width_multiplier=width))
    command = ["tfcdi-reproduce", f"--preset={self.preset.name}", f"step {run_name}"]
    classifier.train(net, input_kind, config, workdir=workdir or self.classifier_dir(run_name),
                     data_dir=self.images if op_name is None else None,
                     store_dir=None if op_name is None else (store_dir or self.store_dir(op_name)),
                     preset_name=self.preset.classifier_preset, command=command,
                     strategy=self.strategy, log=self.log)

  def segmentation_arms(self) -> list[tuple[str, str, str, str | None]]:
    """(run name, net, input, operating point or None) of each segmentation arm (Table 2)."""
    return [(run_name, net, "original" if op is None else
             "decoded" if net.startswith("resnet") else "latent", op)
            for run_name, net, op in self.classification_arms()]

  def segmenter_dir(self, run_name: str) -> str:
    return self.path("segmentation", run_name)

  def _segmenter_done(self, workdir: str, width_multiplier: float | None = None) -> bool:
    """A segmenter run is done once it has trained all its steps at the preset's width (or
    `width_multiplier`) and dumped its masks. The width is checked so that a run of another
    configuration in the workdir is never taken for this one's."""
    from tfcdi.train import segmenter
    results = self._read_if_exists(os.path.join(workdir, segmenter.RESULTS_FILE))
    config = self._capped(segmenter.get_config(self.preset.segmenter_preset,
                                               width_multiplier=width_multiplier))
    # A run restored from committed results has no masks (they are not committed).
    return bool(results and results.get("steps") == config.num_steps
                and results.get("config", {}).get("width_multiplier") == config.width_multiplier
                and (os.path.exists(os.path.join(workdir, segmenter.PREDICTIONS_FILE))
                     or os.path.exists(os.path.join(workdir, RESTORED_FILE))))

  def _segmenter(self, run_name: str, net: str, input_kind: str, op_name: str | None,
                 seed: int = 0):
    """One segmentation arm, from the classifier run of the same name (and so the same seed)."""
    from tfcdi.train import segmenter
    config = self._capped(segmenter.get_config(self.preset.segmenter_preset, seed=seed))
    # The paper starts each segmenter from the classifier of the same arm. That needs the same
    # width, as in the cpu and paper presets; the smoke preset's tiny classifiers are shortened
    # nets, so its segmenters start from scratch.
    init_from = None
    classifier = self._read_if_exists(os.path.join(self.classifier_dir(run_name), "results.json"))
    if (classifier and classifier.get("complete")
        and classifier["config"].get("width_multiplier") == config.width_multiplier):
      init_from = self.classifier_dir(run_name)
      self._require(os.path.join(init_from, "checkpoints"), f"segmenter {run_name}")
    segmenter.train(
        net, input_kind, config, self.data[self.preset.segmentation_dataset],
        self.segmenter_dir(run_name), dataset=self.preset.segmentation_dataset,
        codec_path=None if op_name is None else self.codec_bundle(op_name),
        init_from=init_from,
        cache_dir=None if op_name is None else self.path("segmentation", "stores", op_name),
        train_split=self.preset.segmentation_train_split,
        preset_name=self.preset.segmenter_preset,
        command=f"tfcdi-reproduce --preset={self.preset.name} (step seg {run_name})",
        log=self.log)

  def _capped(self, config):
    """A training config with --max_steps applied (the config itself without a cap).

    The cap is in optimizer steps; runs that count epochs get one epoch of that many steps, and
    their checkpoints, logs and evaluations come at least that often, so a capped run still
    passes through every part of its loop (checkpoint, evaluation, results).
    """
    if not self.max_steps:
      return config
    n = self.max_steps
    fields = {f.name for f in dataclasses.fields(config)}
    changes = {}
    if "epochs" in fields:  # classifiers and joint training
      changes.update(epochs=1, steps_per_epoch=n)
    elif "num_steps" in fields:  # codecs and segmenters
      changes["num_steps"] = min(config.num_steps, n)
    for name in ("checkpoint_every", "eval_every", "log_every"):
      if name in fields and getattr(config, name) > n:
        changes[name] = n
    return dataclasses.replace(config, **changes)

  def _benchmark(self):
    from tfcdi import benchmark
    settings = dict(self.preset.benchmark)
    op_name = settings["operating_point"]
    if self.max_steps:  # timed and warm-up rounds are the benchmark's steps
      for name in ("repeats", "warmup"):
        settings[name] = min(settings.get(name, getattr(benchmark.BenchmarkConfig, name)),
                             self.max_steps)
    # The .tfci files it times are made by this run's codec (trained or shipped).
    config = benchmark.BenchmarkConfig(codec_path=self.codec_bundle(op_name),
                                       image_dir=os.path.join(self.images, "val"),
                                       **settings).validate()
    paper = published.load_paper_numbers()
    result = benchmark.run_benchmark(config, paper["flops_1e9_at_224"], log=self.log)
    self.log(benchmark.format_table(result))
    self._write(self.path("benchmark", "benchmark.json"), result)

  def _codec_figures(self):
    from tfcdi import coded_images
    images = sorted(f for f in os.listdir(self.data["kodak"]) if f.lower().endswith(".png"))
    # kodim23 (parrots) when it is there: colourful, with flat and textured regions.
    image = os.path.join(self.data["kodak"],
                         "kodim23.png" if "kodim23.png" in images else images[0])
    codecs = [pretrained.load_codec(path=self.codec_bundle(op))
              for op in operating_points.OPERATING_POINTS]
    os.makedirs(self.path("figures"), exist_ok=True)
    coded_images.fig10_decoded_images(image, codecs, self.path("figures", "fig10_decoded.png"))
    coded_images.fig9_latent_channels(image, codecs, self.path("figures", "fig9_channels.png"))

  def scratch_classifier_dir(self, op_name: str, seed: int = 0) -> str:
    """The control's cResNet-51 from scratch: not a Table 2 arm, so not under classification/."""
    return self.path("joint", "scratch", f"cresnet51_{op_name}{results_lib.suffix_of_seed(seed)}")

  def joint_dir(self, arm: str, op_name: str, seed: int = 0) -> str:
    """A Section 6 arm's folder; a further seed's is beside it (+ _seed<N>, as restore's)."""
    return self.path("joint", f"{arm}_{op_name}{results_lib.suffix_of_seed(seed)}")

  def _joint_done(self, arm: str, op_name: str, seed: int = 0) -> bool:
    from tfcdi.train import joint
    results = joint.read_results(self.joint_dir(arm, op_name, seed))
    return bool(results and results.get("complete"))

  def _joint(self, arm: str, op_name: str, seed: int = 0):
    """One arm of Section 6; the control's classifier arm starts from its own cResNet-51, the
    other two from the cResNet-51 of Table 2 of the same seed."""
    from tfcdi.train import joint
    config = self._capped(joint.get_config(self.preset.joint_preset, seed=seed))
    if arm == "classifier":
      codec_path = os.path.join(self.joint_dir("codec", op_name, seed), f"codec_{op_name}.npz")
      classifier_dir = self.scratch_classifier_dir(op_name, seed)
    else:
      codec_path = self.codec_bundle(op_name)
      classifier_dir = self.classifier_dir(f"cresnet51_{op_name}{results_lib.suffix_of_seed(seed)}")
    step = f"joint training ({arm} arm) at {op_name}" + (f", seed {seed}" if seed else "")
    self._require(codec_path, step)
    self._require(os.path.join(classifier_dir, "checkpoints"), step)
    joint.train(arm, config, workdir=self.joint_dir(arm, op_name, seed),
                data_dir=self.images, codec_path=codec_path,
                classifier_dir=classifier_dir,
                kodak_dir=None if arm == "classifier" else self.data["kodak"],
                kodak_images=self.preset.kodak_images, preset_name=self.preset.joint_preset,
                command=["tfcdi-reproduce", f"--preset={self.preset.name}",
                         f"step joint {arm} {op_name}" + (f" seed {seed}" if seed else "")],
                log=self.log)

  def _joint_steps(self, op: str, seed: int = 0) -> list[Step]:
    """Section 6's chain at a point; a further seed's runs the chain without its segmentation
    (the report's mIoU of Section 6 is one seed's)."""
    suffix = results_lib.suffix_of_seed(seed)
    named = f"{op} seed {seed}" if seed else op
    codecft_bundle = os.path.join(self.joint_dir("codec", op, seed), f"codec_{op}.npz")
    codecft_store = self.path("stores", f"codecft_{op}{suffix}")
    scratch = f"cresnet51_codecft_{op}{suffix}"
    scratch_dir = self.scratch_classifier_dir(op, seed)
    steps = [
        Step(f"joint ft. {named}", os.path.join(self.joint_dir("joint", op, seed), "results.json"),
             lambda: self._joint("joint", op, seed),
             done=lambda: self._joint_done("joint", op, seed)),
        Step(f"compression ft. {named}",
             os.path.join(self.joint_dir("codec", op, seed), "results.json"),
             lambda: self._joint("codec", op, seed),
             done=lambda: self._joint_done("codec", op, seed)),
        # These two only feed the control's classifier arm: once that is measured (or restored
        # from committed results), they have nothing left to do.
        Step(f"latent store of the compression-ft. codec {named}",
             os.path.join(codecft_store, "metadata.json"),
             lambda: self._store(op, codecft_bundle, codecft_store, decoded=False),
             done=lambda: (self._latent_store_done(codecft_store)
                           or self._joint_done("classifier", op, seed))),
        Step(f"classifier {scratch} (from scratch)", os.path.join(scratch_dir, "results.json"),
             lambda: self._classifier("cresnet51", op, scratch, codecft_store, scratch_dir,
                                      seed=seed),
             done=lambda: (self._classifier_done(scratch, scratch_dir)
                           or self._joint_done("classifier", op, seed))),
        Step(f"control: the classifier alone {named}",
             os.path.join(self.joint_dir("classifier", op, seed), "results.json"),
             lambda: self._joint("classifier", op, seed),
             done=lambda: self._joint_done("classifier", op, seed)),
    ]
    if self.preset.segmenter_preset and not seed:
      steps += [Step(f"segmentation after fine-tuning: {arm} {op}",
                     os.path.join(self.joint_segmentation_dir(arm, op), "results.json"),
                     lambda a=arm: self._joint_segmenter(a, op),
                     done=lambda a=arm: self._segmenter_done(self.joint_segmentation_dir(a, op),
                                                             self._classifier_width()))
                for arm in ("baseline", "compression_ft", "joint_ft")]
    return steps

  def _classifier_width(self) -> float:
    from tfcdi.train import classifier
    return classifier.get_config(self.preset.classifier_preset).width_multiplier

  def joint_segmentation_dir(self, arm: str, op_name: str) -> str:
    """Where Section 6's segmentation step of an arm goes (report.joint_segmentation_files)."""
    return self.path("joint", "seg", f"{arm}_{op_name}")

  def _joint_segmenter(self, arm: str, op_name: str):
    """cResNet-51-d from an arm's classifier, on that arm's codec (the paper's Section 6)."""
    from tfcdi.train import classifier
    from tfcdi.train import segmenter
    codec_path, init_from = {
        "baseline": (self.codec_bundle(op_name), self.classifier_dir(f"cresnet51_{op_name}")),
        "compression_ft": (self.path("joint", f"codec_{op_name}", f"codec_{op_name}.npz"),
                           os.path.join(self.joint_dir("classifier", op_name), "classifier")),
        "joint_ft": (self.path("joint", f"joint_{op_name}", f"codec_{op_name}.npz"),
                     os.path.join(self.joint_dir("joint", op_name), "classifier")),
    }[arm]
    # At the classifier's width, so that every weight of the backbone comes from it.
    config = self._capped(segmenter.get_config(self.preset.segmenter_preset,
                                               width_multiplier=self._classifier_width()))
    classifier_config = classifier.get_config(self.preset.classifier_preset)
    step = f"segmentation after fine-tuning ({arm}) at {op_name}"
    self._require(codec_path, step)
    if classifier_config.max_units_per_stage:
      # The tiny preset's classifiers are shortened nets that no segmenter matches: the smoke
      # run trains this step from scratch, on each arm's codec.
      self.log(f"  the {self.preset.classifier_preset} classifiers are shortened nets: "
               f"cResNet-51-d starts from scratch")
      init_from = None
    else:
      self._require(os.path.join(init_from, "checkpoints"), step)
    segmenter.train(
        "cresnet51", "latent", config, self.data[self.preset.segmentation_dataset],
        self.joint_segmentation_dir(arm, op_name), dataset=self.preset.segmentation_dataset,
        codec_path=codec_path, init_from=init_from,
        cache_dir=self.path("joint", "seg", "stores", f"{arm}_{op_name}"),
        train_split=self.preset.segmentation_train_split,
        preset_name=self.preset.segmenter_preset,
        command=f"tfcdi-reproduce --preset={self.preset.name} (step joint seg {arm} {op_name})",
        log=self.log)

  @staticmethod
  def _latent_store_done(store_dir: str) -> bool:
    from tfcdi.data import latent_store
    try:
      meta = latent_store.read_metadata(store_dir)
    except (latent_store.StoreError, OSError, ValueError):
      return False
    return all((meta.get("splits", {}).get(split) or {}).get("complete")
               for split in ("train", "val"))

  def _report(self):
    render_report(self.workdir, self.preset, self.path("report"))

  @classmethod
  def _read_if_exists(cls, path):
    return cls._read(path) if os.path.exists(path) else None

  @staticmethod
  def _read(path):
    with open(path) as f:
      return json.load(f)

  @staticmethod
  def _write(path, value):
    imageio.write_json(path, value)

  @staticmethod
  def _require(path: str, needed_by: str) -> None:
    """Stops `needed_by` when `path` (a run's weights or codec bundle) is missing, saying why
    when the run that should have made it was restored from committed results."""
    if os.path.exists(path):
      return
    folder = os.path.dirname(path.rstrip(os.sep))
    # The marker sits in the run's folder: the path's own, or one up for the classifier that
    # a joint-training run keeps inside its folder.
    if os.path.exists(os.path.join(folder, RESTORED_FILE)) or os.path.exists(
        os.path.join(os.path.dirname(folder), RESTORED_FILE)):
      raise PipelineError(
          f"{needed_by} needs {path}, but {folder} was restored from committed results, which "
          f"carry no weights; remove that folder and run again to train it here")
    raise PipelineError(f"{needed_by} needs {path}, which is missing")

  def steps(self) -> list[Step]:
    """Every step of the preset, in order (the report is not one: it is always re-rendered)."""
    ops = operating_points.OPERATING_POINTS
    steps = []
    for op in ops:
      steps.append(Step(f"codec {op}", self.codec_bundle(op), lambda op=op: self._make_codec(op)))
      steps.append(Step(f"kodak {op}", self.kodak_result(op), lambda op=op: self._kodak(op)))
    steps.append(Step("rate-distortion vs JPEG / JPEG 2000", self.path("rd", "rd_curve.json"),
                      self._rd_curve))
    steps.append(Step("multiply-adds (Table 1)", self.path("flops", "flops.json"), self._flops))
    if self.preset.classifier_preset:
      steps += [Step(f"latent store {op}", self.path("stores", op, "metadata.json"),
                     lambda op=op: self._store(op), done=lambda op=op: self._store_done(op))
                for op in ops]
      steps += [Step(f"classifier {run_name}",
                     self.path("classification", run_name, "results.json"),
                     lambda n=net, o=op, r=run_name: self._classifier(n, o, r),
                     done=lambda r=run_name: self._classifier_done(r))
                for run_name, net, op in self.classification_arms()]
    steps.append(Step("Figs. 9 and 10 (one Kodak image through each codec)",
                      self.path("figures", "fig9_channels.png"), self._codec_figures))
    if self.preset.benchmark:
      steps.append(Step("runtime benchmark (Appendix A.9)",
                        self.path("benchmark", "benchmark.json"), self._benchmark))
    if self.preset.segmenter_preset:
      steps += [Step(f"segmenter {run_name}",
                     os.path.join(self.segmenter_dir(run_name), "results.json"),
                     lambda r=run_name, n=net, i=input_kind, o=op: self._segmenter(r, n, i, o),
                     done=lambda r=run_name: self._segmenter_done(self.segmenter_dir(r)))
                for run_name, net, input_kind, op in self.segmentation_arms()]
    if self.preset.classifier_preset and self.preset.joint_preset:
      for op in JOINT_POINTS:
        steps += self._joint_steps(op)
    return steps + self._seed_steps() + self._width_steps()

  def _seed_steps(self) -> list[Step]:
    """Seeds 1..preset.seeds-1 of the arms at SEEDED_POINT, each in its arm's folder +
    _seed<N> (where restore puts committed seed runs), seed by seed: a run stopped early leaves
    whole seeds behind it."""
    op = SEEDED_POINT
    steps = []
    for seed in range(1, self.preset.seeds):
      suffix = results_lib.suffix_of_seed(seed)
      if self.preset.classifier_preset:
        steps += [Step(f"classifier {net}_{op}{suffix}",
                       self.path("classification", f"{net}_{op}{suffix}", "results.json"),
                       lambda n=net, r=f"{net}_{op}{suffix}", s=seed: self._classifier(
                           n, op, r, seed=s),
                       done=lambda r=f"{net}_{op}{suffix}": self._classifier_done(r))
                  for net in SEEDED_CLASSIFIERS]
      if self.preset.segmenter_preset:
        steps += [Step(f"segmenter {run_name}{suffix}",
                       os.path.join(self.segmenter_dir(run_name + suffix), "results.json"),
                       lambda r=run_name + suffix, n=net, i=kind, s=seed: self._segmenter(
                           r, n, i, op, seed=s),
                       done=lambda r=run_name + suffix: self._segmenter_done(
                           self.segmenter_dir(r)))
                  for run_name, net, kind, point in self.segmentation_arms()
                  if point == op and net in SEEDED_SEGMENTERS]
      if self.preset.classifier_preset and self.preset.joint_preset and op in JOINT_POINTS:
        steps += self._joint_steps(op, seed)
    return steps

  def width_dir(self, net: str, input_kind: str, width: float, seed: int) -> str:
    """A width-study run's folder: width/<its committed name> (tfcdi.reporting.width)."""
    return self.path("width", width_lib.arm_run_name(net, input_kind, width, seed))

  def _width_steps(self) -> list[Step]:
    """The width study's three arms at each of preset.width_study's widths, seed by seed."""
    if not self.preset.classifier_preset:
      return []
    steps = []
    for width, seeds in self.preset.width_study:
      for seed in range(seeds):
        for net, kind, label in width_lib.STUDY_ARMS:
          folder = self.width_dir(net, kind, width, seed)
          steps.append(Step(
              f"width study {width_lib.width_name(width)} seed {seed}: {label}",
              os.path.join(folder, "results.json"),
              lambda n=net, k=kind, f=folder, w=width, s=seed: self._classifier(
                  n, None if k == "original" else width_lib.STUDY_POINT,
                  os.path.basename(f), workdir=f, seed=s, width=w),
              done=lambda f=folder: self._classifier_done(os.path.basename(f), f)))
    return steps

  def selected_steps(self, only: Sequence[str] = ()) -> list[Step]:
    """The steps whose names start with one of `only`'s prefixes (all of them if it is empty);
    a prefix no step has is an error, so that a typo never silently runs nothing."""
    steps = self.steps()
    if not only:
      return steps
    unknown = [p for p in only if not any(s.name.startswith(p) for s in steps)]
    if unknown:
      raise ValueError(f"no step of the {self.preset.name} preset starts with "
                       f"{', '.join(map(repr, unknown))}; `--plan` lists the steps")
    return [s for s in steps if s.name.startswith(tuple(only))]

  def plan(self) -> list[tuple[Step, bool]]:
    """Each step with whether it is done; runs nothing (`tfcdi-reproduce --plan`)."""
    return [(step, step.is_done()) for step in self.steps()]

  def run(self, only: Sequence[str] = ()):
    """Runs every step not done yet (or, with `only`, those whose names start with one of its
    prefixes), then renders the report."""
    steps = self.selected_steps(only)
    self.log(f"tfcdi reproduce: preset {self.preset.name}, workdir {self.workdir}")
    os.makedirs(self.workdir, exist_ok=True)
    if self.max_steps:
      # The workdir's runs are capped from now on; its report says so, even when re-rendered
      # (tools/make_report) or continued without the cap.
      imageio.write_json(self.path(DRY_RUN_FILE), {"max_steps": self.max_steps})
    blocked = []
    for step in steps:
      # A step that cannot run (what it needs is missing) does not stop the independent steps
      # after it: a long run goes as far as it can, then says what is blocked.
      try:
        self._run_step(step)
      except PipelineError as e:
        self.log(f"== {step.name}: cannot run: {e}")
        blocked.append(f"{step.name}: {e}")
    # The report is cheap and reads everything: always re-rendered.
    self.log("== report ...")
    self._report()
    self.log(f"== report: {self.path('report', 'report.md')}")
    if blocked:
      raise PipelineError(f"{len(blocked)} step(s) could not run:\n  " + "\n  ".join(blocked))


def format_plan(pipeline: Pipeline) -> str:
  """The plan as text: one line per step, then how many are left."""
  plan = pipeline.plan()
  lines = [f"tfcdi reproduce --plan: preset {pipeline.preset.name}, workdir {pipeline.workdir}"]
  for step, done in plan:
    lines.append(f"  {'done' if done else 'todo'}  {step.name}"
                 + (f"  ({os.path.relpath(step.output, pipeline.workdir)})" if done else ""))
  left = sum(not done for _, done in plan)
  lines.append(f"{len(plan) - left} of {len(plan)} steps done, {left} to run"
               + ("; the report is re-rendered on every run" if plan else ""))
  return "\n".join(lines)

