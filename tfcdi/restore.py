"""Seeding a tfcdi-reproduce workdir from the results committed under reports/.

A run's measured results outlive the machine it ran on only as the copies committed under the
repository's reports/. `Restoring.restore` (`tfcdi-reproduce --restore_from=reports`) puts those
copies back where the pipeline's steps look for them, so that a fresh machine runs only what is
still missing, and where the report reads them (seed runs, the storage measurement). It is a
part of tfcdi.reproduce.Pipeline (a base class of it), kept in its own module.
"""

from __future__ import annotations

import glob
import os
import shutil

from tfcdi.codec import operating_points
from tfcdi.codec import pretrained
from tfcdi.reporting import results as results_lib
from tfcdi.reporting import width as width_lib

# Beside a run's results.json when the results were restored from committed copies rather than
# measured in this workdir: {file name: the copy it came from}. Such a run has no weights.
RESTORED_FILE = "restored.json"


class PipelineError(Exception):
  """A step cannot run: something it needs is missing from the workdir."""


class Restoring:
  """Pipeline's restore methods. They use its paths (path, codec_bundle, classifier_dir,
  segmenter_dir, joint_dir, joint_segmentation_dir, kodak_result), preset, data, joint_points
  and classification_arms, and its JSON helpers (_read, _read_if_exists, _write)."""

  def _codec_fingerprint(self, op_name: str) -> str | None:
    """The fingerprint of the codec this workdir's steps use at `op_name`: its bundle if the
    codec step has run, else the shipped one where the preset ships its codecs; None if the
    codec does not exist yet (then no result measured with a codec can be taken as this run's)."""
    if os.path.exists(self.codec_bundle(op_name)):
      return pretrained.read_metadata(self.codec_bundle(op_name))["fingerprint"]
    if self.preset.codecs == "shipped":
      return pretrained.read_metadata(pretrained.shipped_path(op_name))["fingerprint"]
    return None

  @staticmethod
  def _fingerprint_of(result: dict) -> str | None:
    """The fingerprint of the codec a result was measured with (None: original images)."""
    codec = result.get("codec") or result.get("base_codec") or {}
    return codec.get("fingerprint") if isinstance(codec, dict) else None

  def _restore_file(self, source: str, target: str, restored: list) -> None:
    """Copies one committed file into the workdir, unless the workdir has its own."""
    if os.path.exists(target):
      return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    marker_path = os.path.join(os.path.dirname(target), RESTORED_FILE)
    marker = self._read_if_exists(marker_path) or {}
    marker[os.path.basename(target)] = os.path.abspath(source)
    shutil.copyfile(source, target + ".tmp")
    os.replace(target + ".tmp", target)
    self._write(marker_path, marker)
    restored.append((source, target))

  def restore(self, reports_dir: str) -> list[tuple[str, str]]:
    """Seeds the workdir with the results committed under `reports_dir` (the repository's
    reports/), so that the steps they measured count as done; returns (source, target) pairs.

    Only results that are this run's are taken: the same preset, finished, and measured with the
    codec this workdir uses at that point (fingerprint). A file the workdir already has is never
    replaced. A restored run brings its numbers, not its weights or data: a later step that needs
    them (a segmenter started from a restored classifier, say) stops with a PipelineError naming
    the run to train again. Further seeds of an arm (`<name>_seed<N>.json`, config.seed = N)
    go to the arm's folder name + `_seed<N>`, where the preset's seed steps look (and, for the
    seeds it does not run, the report's tables, which average an arm's seeds). Latent stores, Table
    1's counts and Figs. 9 / 10 are cheap and are always made here; the stores' sizes and the
    storage measurement on full-size photos come back as results the report reads.
    """
    if not os.path.isdir(reports_dir):
      raise PipelineError(f"{reports_dir} is not a folder of committed results")
    restored = []

    def runs(*parts):
      return [(path, self._read(path))
              for path in sorted(glob.glob(os.path.join(reports_dir, *parts, "runs", "*.json")))]

    def codec_matches(result, op_name):
      return op_name == "original" or self._fingerprint_of(result) == self._codec_fingerprint(
          op_name)

    preset = self.preset
    arms = {(net, op or "original"): run_name for run_name, net, op in self.classification_arms()}
    if preset.classifier_preset:
      for path, result in runs("classification"):
        op_name = result.get("operating_point")
        run_name = arms.get((result.get("net"), op_name))
        if (run_name and result.get("complete") and result.get("preset") == preset.classifier_preset
            and codec_matches(result, op_name)):
          self._restore_file(path, os.path.join(self.classifier_dir(
              run_name + results_lib.seed_suffix(result)), "results.json"), restored)
    if preset.classifier_preset:
      # The width study's runs (tools/width_table.py) at other backbone widths: results the
      # report reads beside Table 2's, of no step.
      for path, result in runs("classification", "width"):
        if (width_lib.study_arm(result) and result.get("complete")
            and result.get("preset") == preset.classifier_preset
            and codec_matches(result, result.get("operating_point"))):
          name = os.path.splitext(os.path.basename(path))[0]
          self._restore_file(path, self.path("width", name, "results.json"), restored)
    if preset.segmenter_preset:
      from tfcdi.train import segmenter  # pylint: disable=g-import-not-at-top
      width = segmenter.get_config(preset.segmenter_preset).width_multiplier
      for path, result in runs("segmentation"):
        op_name = result.get("operating_point") or "original"  # segmenters write None
        run_name = arms.get((str(result.get("net", "")).removesuffix("-d"), op_name))
        config = result.get("config") or {}
        if (run_name and result.get("preset") == preset.segmenter_preset
            and result.get("steps") == config.get("num_steps") and "miou" in result
            and config.get("width_multiplier") == width and codec_matches(result, op_name)):
          self._restore_file(path, os.path.join(self.segmenter_dir(
              run_name + results_lib.seed_suffix(result)), "results.json"), restored)
    if preset.classifier_preset:
      self._restore_store_sizes(reports_dir, restored)
    if preset.classifier_preset and preset.joint_preset:
      self._restore_joint(reports_dir, restored)
    self._restore_codec_measurements(reports_dir, restored)
    # The storage claim measured on full-size photos (tools/storage_check.py) with this
    # workdir's codec: a result the report reads, of no step.
    for path in sorted(glob.glob(os.path.join(reports_dir, "storage", "*.json"))):
      result = self._read(path)
      op_name = result.get("operating_point")
      if (op_name in operating_points.OPERATING_POINTS and self._codec_fingerprint(op_name)
          and (result.get("codec") or {}).get("fingerprint") == self._codec_fingerprint(op_name)):
        self._restore_file(path, self.path("storage", os.path.basename(path)), restored)
    return restored

  def _restore_store_sizes(self, reports_dir: str, restored: list) -> None:
    """The latent stores' sizes as the committed classification table recorded them, one
    store_sizes/<store>.json each, for stores made with this workdir's codec at their point (or
    a codec fine-tuned from it: "<name>-codecft"). A store is data, not committed; its sizes are
    a result the report shows (the storage table), so they come back without the store."""
    table = self._read_if_exists(os.path.join(reports_dir, "classification",
                                              "classification.json")) or {}
    for record in table.get("stores", []):
      op_name = record.get("operating_point")
      if op_name not in operating_points.OPERATING_POINTS:
        continue
      name = self._codec_name(op_name)
      if not name or not (record.get("codec") == name
                          or str(record.get("codec")).startswith(name + "-")):
        continue
      store = os.path.basename(os.path.normpath(record["store_dir"]))
      target = self.path("store_sizes", f"{store}.json")
      if not os.path.exists(target):
        self._write(target, {**record, "store_dir": os.path.join("stores", store),
                             "restored_from": os.path.join(reports_dir, "classification",
                                                           "classification.json")})
        restored.append((os.path.join(reports_dir, "classification", "classification.json"),
                         target))

  def _codec_name(self, op_name: str) -> str | None:
    """The name of the codec this workdir uses at `op_name` (as _codec_fingerprint finds it)."""
    if os.path.exists(self.codec_bundle(op_name)):
      return pretrained.read_metadata(self.codec_bundle(op_name))["name"]
    if self.preset.codecs == "shipped":
      return pretrained.read_metadata(pretrained.shipped_path(op_name))["name"]
    return None

  def _restore_joint(self, reports_dir: str, restored: list) -> None:
    """Section 6's results of a point, all or nothing: each arm's codec and classifier exist
    only in the workdir that trained them, so a partly restored chain could not be finished
    here. Each segmentation run is checked against the codec its arm ended with."""
    folder = os.path.join(reports_dir, "joint", "runs")
    for op_name in self.joint_points:
      found, results = [], {}  # (committed copy, workdir target); {arm: result}
      for arm in ("joint", "codec", "classifier"):
        path = os.path.join(folder, f"{op_name}_{arm}.json")
        result = self._read_if_exists(path)
        if (result and result.get("complete") and result.get("arm") == arm
            and result.get("operating_point") == op_name
            and result.get("preset") == self.preset.joint_preset):
          results[arm] = result
          found.append((path, os.path.join(self.joint_dir(arm, op_name), "results.json")))
      if self.preset.segmenter_preset:
        codecs = {"baseline": self._codec_fingerprint(op_name),
                  "compression_ft": self._fingerprint_of(results.get("classifier", {})),
                  "joint_ft": results.get("joint", {}).get("bundle", {}).get("fingerprint")}
        for arm, fingerprint in codecs.items():
          path = os.path.join(folder, f"{op_name}_segmentation_{arm}.json")
          result = self._read_if_exists(path)
          if (result and fingerprint and self._fingerprint_of(result) == fingerprint
              and result.get("operating_point") == op_name
              and result.get("preset") == self.preset.segmenter_preset
              and result.get("steps") == (result.get("config") or {}).get("num_steps")):
            found.append((path, os.path.join(self.joint_segmentation_dir(arm, op_name),
                                             "results.json")))
      if len(found) == (6 if self.preset.segmenter_preset else 3):
        for path, target in found:
          self._restore_file(path, target, restored)
      if os.path.exists(os.path.join(self.joint_dir("joint", op_name), "results.json")):
        self._restore_joint_seeds(folder, op_name, restored)

  def _restore_joint_seeds(self, folder: str, op_name: str, restored: list) -> None:
    """Further seeds of Section 6's arms at a point whose seed-0 chain the workdir has:
    <op>_<arm>_seed<N>.json to the arm's folder + _seed<N> (as restore does for Table 2)."""
    for path in sorted(glob.glob(os.path.join(folder, f"{op_name}_*_seed*.json"))):
      result = self._read(path)
      suffix = results_lib.seed_suffix(result)
      name = os.path.basename(path)[len(op_name) + 1:-len(".json")]
      if not suffix or not name.endswith(suffix) or result.get("operating_point") != op_name:
        continue
      arm = name[:-len(suffix)]
      if arm in ("joint", "codec", "classifier"):
        fits = (result.get("complete") and result.get("arm") == arm
                and result.get("preset") == self.preset.joint_preset)
        target = self.joint_dir(arm, op_name) + suffix
      elif arm.removeprefix("segmentation_") in ("baseline", "compression_ft", "joint_ft"):
        fits = (self.preset.segmenter_preset
                and result.get("preset") == self.preset.segmenter_preset
                and result.get("steps") == (result.get("config") or {}).get("num_steps"))
        target = self.joint_segmentation_dir(arm.removeprefix("segmentation_"), op_name) + suffix
      else:
        continue
      if fits:
        self._restore_file(path, os.path.join(target, "results.json"), restored)

  def _restore_codec_measurements(self, reports_dir: str, restored: list) -> None:
    """Kodak results of the shipped codecs, the JPEG / JPEG 2000 sweep and the benchmark, where
    they were measured exactly as this preset's steps would measure them."""
    if self.preset.codecs != "shipped" or self.preset.kodak_images:
      return  # trained codecs are this workdir's own; a Kodak subset is another measurement
    kodak = sorted(f for f in os.listdir(self.data["kodak"]) if f.lower().endswith(".png"))
    evaluations = {}
    for op_name in operating_points.OPERATING_POINTS:
      path = os.path.join(os.path.dirname(pretrained.shipped_path(op_name)),
                          f"kodak_eval_{op_name}.json")
      result = self._read_if_exists(path)
      if (result and result.get("fingerprint") == self._codec_fingerprint(op_name)
          and result.get("num_images") == len(kodak)):
        evaluations[op_name] = result
        self._restore_file(path, self.kodak_result(op_name), restored)
    rd_path = os.path.join(reports_dir, "codec", "rd_curve.json")
    rd = self._read_if_exists(rd_path)
    if (rd and not self.preset.jpeg_qualities and not self.preset.jp2_psnrs
        and len(evaluations) == len(operating_points.OPERATING_POINTS)
        and {p["operating_point"]: p.get("fingerprint") for p in rd.get("learned", [])}
        == {op: e["fingerprint"] for op, e in evaluations.items()}):
      self._restore_file(rd_path, self.path("rd", "rd_curve.json"), restored)
      figure = os.path.join(reports_dir, "codec", "rd_curve.png")
      if os.path.exists(figure):
        self._restore_file(figure, self.path("rd", "rd_curve.png"), restored)
    settings = self.preset.benchmark or {}
    if settings:
      # reports/benchmarks/ holds the binary's own run (the shipped codec, codec_path None) and
      # the pipeline's (a workdir's copy of the codec, recorded by fingerprint); the first whose
      # settings are this preset's and whose codec is this workdir's is the step's result.
      fingerprint = self._codec_fingerprint(settings["operating_point"])
      for bench_path in sorted(glob.glob(os.path.join(reports_dir, "benchmarks", "**",
                                                      "benchmark.json"), recursive=True)):
        bench = self._read_if_exists(bench_path) or {}
        config = bench.get("config", {})
        same_codec = ("codec_path" in config and config["codec_path"] is None) or (
            fingerprint is not None and bench.get("inputs", {}).get("fingerprint") == fingerprint)
        if config and same_codec and all(config.get(k) == v for k, v in settings.items()):
          self._restore_file(bench_path, self.path("benchmark", "benchmark.json"), restored)
          break
