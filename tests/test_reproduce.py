"""The main job at its smoke preset, end to end, and its resume."""

import dataclasses
import json
import os

import pytest

from tfcdi import reproduce
from tfcdi.codec import pretrained

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
REPORTS = os.path.join(os.path.dirname(__file__), "..", "reports")


def test_unknown_preset_and_missing_data_are_clear_errors(tmp_path):
  with pytest.raises(ValueError, match="unknown reproduce preset"):
    reproduce.get_preset("huge")
  with pytest.raises(ValueError, match="must hold imagenette2_224"):
    reproduce.Pipeline(reproduce.get_preset("smoke"), str(tmp_path), str(tmp_path / "w"))
  # Segmentation needs its dataset too, and says so before any step runs.
  for sub in ("imagenette2_224", "kodak"):
    os.makedirs(tmp_path / sub)
  with pytest.raises(ValueError, match="must hold camvid"):
    reproduce.Pipeline(reproduce.get_preset("smoke"), str(tmp_path), str(tmp_path / "w"))
  assert not os.path.exists(tmp_path / "w")


def test_segmentation_arms_are_table_2_rows():
  pipeline = reproduce.Pipeline.__new__(reproduce.Pipeline)  # the arm list needs no data
  arms = pipeline.segmentation_arms()
  assert len(arms) == 12 and len({name for name, *_ in arms}) == 12
  assert ("resnet50_original", "resnet50", "original", None) in arms
  for name, net, input_kind, op in arms:
    if op is not None:
      assert input_kind == ("decoded" if net.startswith("resnet") else "latent")
  assert {net for _, net, _, op in arms if op == "0.0983"} == {
      "resnet50", "resnet71", "cresnet39", "cresnet51", "cresnet72"}


def test_paper_preset_reads_imagenet_and_voc_and_passes_the_strategy(tmp_path, monkeypatch):
  root = tmp_path / "data"
  for sub in ("imagenette2_224", "kodak", "camvid"):
    os.makedirs(root / sub)
  with pytest.raises(ValueError, match="must hold imagenet/"):
    reproduce.Pipeline(reproduce.get_preset("paper"), str(root), str(tmp_path / "w"))
  os.makedirs(root / "imagenet")
  with pytest.raises(ValueError, match="must hold VOCdevkit"):
    reproduce.Pipeline(reproduce.get_preset("paper"), str(root), str(tmp_path / "w"))
  os.makedirs(root / "VOCdevkit" / "VOC2012")
  pipeline = reproduce.Pipeline(reproduce.get_preset("paper"), str(root), str(tmp_path / "w"),
                                strategy="mirrored")
  assert pipeline.images == str(root / "imagenet")
  # The classifier steps get the strategy and the preset's images.
  from tfcdi.train import classifier  # pylint: disable=g-import-not-at-top
  seen = {}
  monkeypatch.setattr(classifier, "train", lambda *args, **kwargs: seen.update(kwargs))
  pipeline._classifier("resnet50", None, "resnet50_original")  # pylint: disable=protected-access
  assert seen["strategy"] == "mirrored" and seen["data_dir"] == str(root / "imagenet")


def _fake_data_root(root):
  for sub in ("imagenette2_224", "kodak", "camvid"):
    os.makedirs(root / sub)
  return str(root)


def _cpu_pipeline(tmp_path):
  """(workdir, the cpu preset's pipeline in it) over empty data folders."""
  workdir = tmp_path / "w"
  return workdir, reproduce.Pipeline(reproduce.get_preset("cpu"),
                                     _fake_data_root(tmp_path / "data"), str(workdir))


def test_plan_lists_every_step_runs_nothing_and_sees_finished_ones(tmp_path):
  workdir, pipeline = _cpu_pipeline(tmp_path)
  plan = pipeline.plan()
  names = [step.name for step, _ in plan]
  assert len(names) == len(set(names))
  assert not [name for name in names if "," in name]  # --only is a comma-separated list
  # Codecs, Kodak, rd, flops, 3 stores, 12 classifiers, figures, benchmark, 12 segmenters,
  # Section 6's 8 steps at each of its two points; seeds 1 and 2 of the 0.0983 arms (3
  # classifiers, 2 segmenters, Section 6's 5 steps without its segmentation); the width study's
  # three arms at 1/4 (two seeds) and 1/2 (one).
  assert len(plan) == 6 + 2 + 3 + 12 + 2 + 12 + 2 * 8 + 2 * (3 + 2 + 5) + 3 * (2 + 1)
  assert not any(done for _, done in plan)
  assert not workdir.exists()  # a plan writes nothing
  # An output file marks its step done; a classifier is done only once its run is complete.
  os.makedirs(workdir / "flops")
  (workdir / "flops" / "flops.json").write_text("{}")
  run = workdir / "classification" / "cresnet51_0.0983"
  os.makedirs(run)
  (run / "results.json").write_text('{"complete": false}')
  done = {step.name for step, is_done in pipeline.plan() if is_done}
  assert done == {"multiply-adds (Table 1)"}
  (run / "results.json").write_text('{"complete": true}')
  done = {step.name for step, is_done in pipeline.plan() if is_done}
  assert done == {"multiply-adds (Table 1)", "classifier cresnet51_0.0983"}
  # --only selects steps by name prefix; a prefix no step has is refused, never a silent no-op.
  assert [s.name for s in pipeline.selected_steps(["kodak", "runtime"])] == [
      "kodak 0.0983", "kodak 0.330", "kodak 0.635", "runtime benchmark (Appendix A.9)"]
  with pytest.raises(ValueError, match="no step of the cpu preset starts with 'kodac'"):
    pipeline.selected_steps(["kodac"])
  # A segmenter run counts only at the preset's width: a run of another configuration (the
  # older from-scratch width) in the workdir is not taken for this one's.
  seg = workdir / "segmentation" / "resnet50_original"
  os.makedirs(seg)
  (seg / "predictions.npz").write_bytes(b"")
  (seg / "results.json").write_text('{"steps": 600, "config": {"width_multiplier": 0.25}}')
  assert not dict((s.name, d) for s, d in pipeline.plan())["segmenter resnet50_original"]
  (seg / "results.json").write_text('{"steps": 600, "config": {"width_multiplier": 0.125}}')
  assert dict((s.name, d) for s, d in pipeline.plan())["segmenter resnet50_original"]
  (seg / "results.json").unlink()
  text = reproduce.format_plan(pipeline)
  assert "  done  classifier cresnet51_0.0983" in text and "  todo  classifier resnet50_0.0983" in text
  assert text.splitlines()[-1].startswith(f"2 of {len(plan)} steps done")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(DATA), reason="shared data missing")
def test_smoke_preset_runs_to_a_report_and_resumes(tmp_path):
  lines = []
  pipeline = reproduce.Pipeline(reproduce.get_preset("smoke"), DATA, str(tmp_path),
                                log=lines.append)
  pipeline.run()
  text = open(tmp_path / "report" / "report.md").read()
  assert "Table 1" in text and "Codec operating points" in text
  # Every classification arm of Table 2 ran (tiny) and is reported beside the published row.
  assert "Table 2: classification" in text and "Not measured yet" not in text
  # ... and every segmentation arm, with the Fig. 5 analog.
  assert "Table 2: segmentation" in text and "not finished) yet" not in text
  assert text.count("| done |") == 24
  # The benchmark with its speed-ups, and every figure the paper has an analog of here.
  assert "Runtime benchmark" in text and "| cresnet51 | decoder+resnet50 |" in text
  for figure in ("fig3_top5.png", "fig3_top1.png", "fig3_validation_curves.png", "fig4_miou.png",
                 "fig5_masks.png",
                 "fig6_accuracy_vs_multiply_adds.png", "fig9_channels.png", "fig10_decoded.png",
                 "fig12_accuracy_vs_runtime.png"):
    assert os.path.exists(tmp_path / "report" / figure), figure
    assert f"({figure})" in text, figure
  assert os.path.exists(tmp_path / "report" / "rd_curve.png")
  # Section 6 at both of its points: all three arms, the figures, the directions of the changes.
  assert "Section 6: joint training" in text and "Arms not finished" not in text
  assert text.count("| joint_ft_top5_points |") == 2
  # ... with the segmentation step of every arm at both points.
  assert text.count("| joint_ft_miou_points |") == 2
  assert text.count("| joint_vs_compression_ft_miou_points |") == 2
  for figure in ("fig7_joint_accuracy.png", "fig11_joint_codec.png"):
    assert os.path.exists(tmp_path / "report" / figure)
  # A second run finds every step done and only re-renders the report.
  lines.clear()
  pipeline.run()
  assert sum(": done (" in line for line in lines) >= 8
  assert not any("finished in" in line for line in lines)
  assert all(done for _, done in pipeline.plan())


def _committed(reports, section, name, result):
  """Writes `result` as a committed run copy: reports/<section>/runs/<name>.json."""
  folder = reports / section / "runs"
  os.makedirs(folder, exist_ok=True)
  (folder / f"{name}.json").write_text(json.dumps(result))


def test_restore_seeds_a_workdir_with_this_presets_committed_results_only(tmp_path):
  workdir, pipeline = _cpu_pipeline(tmp_path)
  shipped = {op: pretrained.read_metadata(pretrained.shipped_path(op))["fingerprint"]
             for op in ("0.0983", "0.635")}
  reports = tmp_path / "reports"
  classifier = {"net": "cresnet51", "input": "latent", "operating_point": "0.0983",
                "preset": "cpu", "complete": True, "config": {"width_multiplier": 0.125},
                "codec": {"fingerprint": shipped["0.0983"]}}
  _committed(reports, "classification", "0.0983_cresnet51_latent", classifier)
  # Not this run's: another preset, an unfinished run, another codec at that point.
  _committed(reports, "classification", "0.0983_cresnet39_latent",
             {**classifier, "net": "cresnet39", "preset": "tiny"})
  _committed(reports, "classification", "0.635_cresnet51_latent",
             {**classifier, "operating_point": "0.635", "complete": False})
  _committed(reports, "classification", "0.0983_resnet50_decoded",
             {**classifier, "net": "resnet50", "codec": {"fingerprint": shipped["0.635"]}})
  _committed(reports, "classification", "original_resnet50_original",
             {**classifier, "net": "resnet50", "operating_point": "original", "codec": None})
  _committed(reports, "segmentation", "original_resnet50-d_original",
             {"net": "resnet50-d", "operating_point": None, "preset": "cpu", "steps": 600,
              "miou": 0.25, "config": {"num_steps": 600, "width_multiplier": 0.125}})
  # The workdir's own results are never replaced.
  own = workdir / "classification" / "resnet50_original" / "results.json"
  os.makedirs(own.parent)
  own.write_text('{"complete": true, "mine": 1}')

  restored = pipeline.restore(str(reports))
  targets = sorted(os.path.relpath(t, workdir) for _, t in restored)
  assert targets == ["classification/cresnet51_0.0983/results.json",
                     "segmentation/resnet50_original/results.json"]
  assert json.loads(own.read_text())["mine"] == 1
  marker = json.loads((workdir / "classification" / "cresnet51_0.0983" /
                       reproduce.RESTORED_FILE).read_text())
  assert marker["results.json"].endswith("0.0983_cresnet51_latent.json")
  done = {step.name for step, is_done in pipeline.plan() if is_done}
  # A restored segmenter counts as done without its masks (they are not committed).
  assert {"classifier cresnet51_0.0983", "segmenter resnet50_original"} <= done
  assert "classifier cresnet39_0.0983" not in done and "classifier resnet50_0.0983" not in done
  # Restoring again changes nothing.
  assert pipeline.restore(str(reports)) == []
  with pytest.raises(reproduce.PipelineError, match="not a folder"):
    pipeline.restore(str(tmp_path / "nowhere"))


def test_restore_takes_the_benchmark_measured_with_this_presets_settings_and_codec(tmp_path):
  workdir = tmp_path / "w"
  preset = reproduce.get_preset("cpu")
  pipeline = reproduce.Pipeline(preset, _fake_data_root(tmp_path / "data"), str(workdir))
  op = preset.benchmark["operating_point"]
  shipped = pretrained.read_metadata(pretrained.shipped_path(op))["fingerprint"]
  reports = tmp_path / "reports"

  def committed(folder, config, fingerprint):
    os.makedirs(reports / "benchmarks" / folder, exist_ok=True)
    (reports / "benchmarks" / folder / "benchmark.json").write_text(json.dumps(
        {"config": config, "inputs": {"fingerprint": fingerprint}}))

  # Other settings (the binary's default point), then another codec: neither is this step's.
  committed(".", {**preset.benchmark, "operating_point": "0.635", "codec_path": None}, None)
  committed("other_codec", {**preset.benchmark, "codec_path": "/x/codec.npz"}, "00" * 8)
  assert pipeline.restore(str(reports)) == []
  # The pipeline's own run elsewhere, made with a copy of the shipped codec (by fingerprint).
  committed("cpu_preset", {**preset.benchmark, "codec_path": "/x/codec.npz"}, shipped)
  (restored,) = pipeline.restore(str(reports))
  assert restored[0].endswith(os.path.join("cpu_preset", "benchmark.json"))
  assert "runtime benchmark (Appendix A.9)" in {s.name for s, done in pipeline.plan() if done}


def test_a_step_that_needs_a_restored_runs_weights_says_so(tmp_path):
  workdir, pipeline = _cpu_pipeline(tmp_path)
  reports = tmp_path / "reports"
  # A real committed result: the report rendered below reads all of it.
  with open(os.path.join(REPORTS, "classification", "runs", "original_resnet50_original.json")) as f:
    _committed(reports, "classification", "original_resnet50_original", json.load(f))
  assert len(pipeline.restore(str(reports))) == 1
  # The segmenter of that arm starts from its classifier, whose weights were not committed.
  with pytest.raises(reproduce.PipelineError, match="restored from committed results"):
    pipeline._segmenter("resnet50_original", "resnet50", "original", None)  # pylint: disable=protected-access
  # In a run, the blocked step is reported and the run goes on: the steps after it run (here
  # the Table 1 count), the report is rendered, and the run ends with what could not run.
  lines = []
  pipeline.log = lines.append
  with pytest.raises(reproduce.PipelineError, match="1 step.* could not run"):
    pipeline.run(only=["segmenter resnet50_original", "multiply-adds"])
  assert any(line.startswith("== segmenter resnet50_original: cannot run") for line in lines)
  assert os.path.exists(workdir / "flops" / "flops.json")
  assert os.path.exists(workdir / "report" / "report.md")


def test_further_seeds_and_the_width_study_train_with_their_seed_and_width_where_restore_looks(
    tmp_path, monkeypatch):
  from tfcdi.train import classifier, joint, segmenter  # pylint: disable=g-import-not-at-top
  workdir, pipeline = _cpu_pipeline(tmp_path)
  calls = []
  monkeypatch.setattr(classifier, "train", lambda net, kind, config, workdir, **kw: calls.append(
      ("classifier", net, kind, config.seed, config.width_multiplier, workdir, kw["store_dir"])))
  monkeypatch.setattr(segmenter, "train", lambda net, kind, config, data, workdir, **kw:
                      calls.append(("segmenter", net, kind, config.seed, kw["init_from"],
                                    workdir)))
  monkeypatch.setattr(joint, "train", lambda arm, config, workdir, **kw: calls.append(
      ("joint", arm, config.seed, kw["classifier_dir"], kw["codec_path"], workdir)))
  w = str(workdir)
  # What the seed-2 chain starts from: the shipped codec and seed 2's own cResNet-51 (and
  # ResNet-50, for its segmenter), then the compression-ft. codec and its scratch classifier.
  for folder in ("classification/cresnet51_0.0983_seed2/checkpoints",
                 "classification/resnet50_0.0983_seed2/checkpoints",
                 "joint/codec_0.0983_seed2", "joint/scratch/cresnet51_0.0983_seed2/checkpoints"):
    os.makedirs(workdir / folder)
  os.makedirs(workdir / "codecs" / "0.0983")
  for bundle in ("codecs/0.0983/codec_0.0983.npz", "joint/codec_0.0983_seed2/codec_0.0983.npz"):
    (workdir / bundle).write_bytes(b"")
  (workdir / "classification/resnet50_0.0983_seed2/results.json").write_text(
      json.dumps({"complete": True, "config": {"width_multiplier": 0.125}}))
  steps = {step.name: step for step, _ in pipeline.plan()}
  for name in ("classifier cresnet51_0.0983_seed2", "segmenter resnet50_0.0983_seed2",
               "joint ft. 0.0983 seed 2", "classifier cresnet51_codecft_0.0983_seed2 (from scratch)",
               "control: the classifier alone 0.0983 seed 2",
               "width study 1/4 seed 1: ResNet-50 on original RGB",
               "width study 1/2 seed 0: cResNet-51 on the representation"):
    steps[name].fn()
  assert calls == [
      ("classifier", "cresnet51", "latent", 2, 0.125, f"{w}/classification/cresnet51_0.0983_seed2",
       f"{w}/stores/0.0983"),
      ("segmenter", "resnet50", "decoded", 2, f"{w}/classification/resnet50_0.0983_seed2",
       f"{w}/segmentation/resnet50_0.0983_seed2"),
      ("joint", "joint", 2, f"{w}/classification/cresnet51_0.0983_seed2",
       f"{w}/codecs/0.0983/codec_0.0983.npz", f"{w}/joint/joint_0.0983_seed2"),
      ("classifier", "cresnet51", "latent", 2, 0.125, f"{w}/joint/scratch/cresnet51_0.0983_seed2",
       f"{w}/stores/codecft_0.0983_seed2"),
      ("joint", "classifier", 2, f"{w}/joint/scratch/cresnet51_0.0983_seed2",
       f"{w}/joint/codec_0.0983_seed2/codec_0.0983.npz", f"{w}/joint/classifier_0.0983_seed2"),
      ("classifier", "resnet50", "original", 1, 0.25,
       f"{w}/width/original_resnet50_original_w4_seed1", None),
      ("classifier", "cresnet51", "latent", 0, 0.5, f"{w}/width/0.0983_cresnet51_latent_w2",
       f"{w}/stores/0.0983")]
  # A width-study run counts as done once complete, in the folder restore gives its committed
  # copy (reports/classification/width/runs/<name>.json -> width/<name>/).
  run = workdir / "width" / "0.0983_resnet50_decoded_w4_seed1"
  os.makedirs(run)
  (run / "results.json").write_text('{"complete": true}')
  done = {step.name for step, is_done in pipeline.plan() if is_done}
  assert "width study 1/4 seed 1: ResNet-50 on decoded RGB" in done
  assert not {name for name in done if name.startswith("width study")} - {
      "width study 1/4 seed 1: ResNet-50 on decoded RGB"}
  # A seed-1 segmenter whose classifier was restored (results, no weights) says so.
  (workdir / "classification" / "cresnet51_0.0983_seed1").mkdir()
  (workdir / "classification" / "cresnet51_0.0983_seed1" / "results.json").write_text(
      json.dumps({"complete": True, "config": {"width_multiplier": 0.125}}))
  (workdir / "classification" / "cresnet51_0.0983_seed1" / reproduce.RESTORED_FILE).write_text("{}")
  with pytest.raises(reproduce.PipelineError, match="restored from committed results"):
    steps["segmenter cresnet51_0.0983_seed1"].fn()


def test_a_preset_runs_at_least_one_seed_and_width_study_entries_are_pairs():
  from tfcdi import configs  # pylint: disable=g-import-not-at-top
  with pytest.raises(configs.ConfigError, match="seeds must be at least 1"):
    configs.get_config("reproduce", "cpu", seeds=0)
  for bad in ((0.25, 2), ((0.25, 0),), ((2.0, 1),), (("1/4", 1),)):
    with pytest.raises(configs.ConfigError, match="width_study holds"):
      configs.get_config("reproduce", "cpu", width_study=bad)
  assert configs.get_config("reproduce", "cpu", seeds=1, width_study=()).seeds == 1


def test_section_6_is_restored_per_point_all_or_nothing(tmp_path):
  workdir, pipeline = _cpu_pipeline(tmp_path)
  base = pretrained.read_metadata(pretrained.shipped_path("0.0983"))["fingerprint"]
  reports = tmp_path / "reports"
  common = {"operating_point": "0.0983", "preset": "cpu", "complete": True}
  _committed(reports, "joint", "0.0983_joint",
             {**common, "arm": "joint", "base_codec": {"fingerprint": base},
              "bundle": {"fingerprint": "aaaa"}})
  _committed(reports, "joint", "0.0983_codec",
             {**common, "arm": "codec", "base_codec": {"fingerprint": base},
              "bundle": {"fingerprint": "bbbb"}})
  _committed(reports, "joint", "0.0983_classifier",
             {**common, "arm": "classifier", "base_codec": {"fingerprint": "bbbb"}})
  seg = {"operating_point": "0.0983", "preset": "cpu", "steps": 600, "miou": 0.2,
         "config": {"num_steps": 600, "width_multiplier": 0.125}}
  _committed(reports, "joint", "0.0983_segmentation_baseline",
             {**seg, "codec": {"fingerprint": base}})
  _committed(reports, "joint", "0.0983_segmentation_compression_ft",
             {**seg, "codec": {"fingerprint": "bbbb"}})
  # The joint arm's segmenter on a codec that is not the joint arm's: the chain is incomplete.
  _committed(reports, "joint", "0.0983_segmentation_joint_ft",
             {**seg, "codec": {"fingerprint": "cccc"}})
  assert pipeline.restore(str(reports)) == []
  _committed(reports, "joint", "0.0983_segmentation_joint_ft",
             {**seg, "codec": {"fingerprint": "aaaa"}})
  assert len(pipeline.restore(str(reports))) == 6
  done = {step.name for step, is_done in pipeline.plan() if is_done}
  # The control's intermediate steps have nothing left to feed once its classifier arm is in.
  assert {"joint ft. 0.0983", "compression ft. 0.0983", "control: the classifier alone 0.0983",
          "latent store of the compression-ft. codec 0.0983",
          "classifier cresnet51_codecft_0.0983 (from scratch)",
          "segmentation after fine-tuning: joint_ft 0.0983"} <= done
  assert not any(name.endswith("0.635") for name in done)


def test_restored_seed_runs_and_the_storage_measurement_reach_the_report(tmp_path):
  # Fabricated here, never committed: two seeds of one arm, and a storage measurement made with
  # this workdir's codec (and one made with another, which is not this run's).
  workdir, pipeline = _cpu_pipeline(tmp_path)
  shipped = pretrained.read_metadata(pretrained.shipped_path("0.635"))["fingerprint"]
  reports = tmp_path / "reports"
  for seed, top1 in ((0, 0.60), (1, 0.64)):
    _committed(reports, "classification",
               "0.635_cresnet51_latent" + (f"_seed{seed}" if seed else ""),
               {"net": "cresnet51", "input": "latent", "operating_point": "0.635",
                "preset": "cpu", "complete": True, "num_classes": 10,
                "config": {"width_multiplier": 0.125, "epochs": 8, "seed": seed},
                "codec": {"name": "ae-0.635-cpu", "fingerprint": shipped},
                "final": {"top1": top1, "top5": 0.9},
                "epochs": [{"epoch": 8, "val_examples": 3925}]})
  os.makedirs(reports / "storage")
  measurement = {"operating_point": "0.635", "images_dir": "imagenet_samples",
                 "codec": {"name": "ae-0.635-cpu", "fingerprint": shipped},
                 "totals": {"images": 53, "source_bytes": 5404635, "tfci_bytes": 795394,
                            "ratio": 6.79, "mean_tfci_bytes": 15007.4, "bpp": 0.722}}
  (reports / "storage" / "photos.json").write_text(json.dumps(measurement))
  (reports / "storage" / "other.json").write_text(json.dumps(
      {**measurement, "codec": {"name": "x", "fingerprint": "00" * 8}}))

  targets = sorted(os.path.relpath(t, workdir) for _, t in pipeline.restore(str(reports)))
  assert targets == ["classification/cresnet51_0.635/results.json",
                     "classification/cresnet51_0.635_seed1/results.json",
                     "storage/photos.json"]
  # The cpu preset runs further seeds at 0.0983 only: at 0.635 a seed's folder is no step's, and
  # the plan sees the arm done once, through seed 0.
  assert "classifier cresnet51_0.635" in {s.name for s, done in pipeline.plan() if done}
  from tfcdi.reporting import report  # pylint: disable=g-import-not-at-top
  text = open(report.write_report(str(workdir), "cpu", str(tmp_path / "r"))).read()
  assert "| 0.635 | cresnet51 | latent | 62.00 (60.00-64.00) | 90.00 (90.00-90.00) | 2 |" in text
  assert "6.79x" in text


def test_synthetic_paper_data_is_read_by_the_paper_presets_loaders(tmp_path):
  from tfcdi.data import latent_store  # pylint: disable=g-import-not-at-top
  from tfcdi.data import segmentation  # pylint: disable=g-import-not-at-top
  from tools import synthetic_paper_data  # pylint: disable=g-import-not-at-top
  synthetic_paper_data.write_all(str(tmp_path), classes=3, train_per_class=2, val_per_class=1,
                                 kodak=1, voc_train=2, voc_val=1)
  paths = reproduce.data_paths(str(tmp_path), reproduce.get_preset("paper"))
  train = latent_store.ImageFolderSource(paths["imagenet"], "train")
  assert train.count == 6 and len(train.classes) == 3
  assert all(c.startswith("n") and len(c) == 9 for c in train.classes)  # wnids
  assert latent_store.ImageFolderSource(paths["imagenet"], "val").count == 3
  # The paper trains segmenters on VOC + SBD (train_aug) and evaluates on VOC val; every label
  # value is read and checked (0-20, 255 void).
  assert reproduce.get_preset("paper").segmentation_train_split == "train_aug"
  for split, count in (("train_aug", 2), ("train", 2), ("val", 1)):
    source = segmentation.voc_devkit_source(paths["voc"], split, check_values=True)
    assert len(source.names) == count
  assert sorted(os.listdir(paths["kodak"])) == ["kodim01.png"]


def test_max_steps_caps_every_training_run_and_changes_nothing_else(tmp_path):
  from tfcdi.train import classifier, codec, joint, segmenter  # pylint: disable=g-import-not-at-top
  root = tmp_path / "data"
  for sub in ("imagenet", "kodak", os.path.join("VOCdevkit", "VOC2012")):
    os.makedirs(root / sub)
  pipeline = reproduce.Pipeline(reproduce.get_preset("paper"), str(root), str(tmp_path / "w"),
                                max_steps=2)
  capped = pipeline._capped  # pylint: disable=protected-access
  paper = classifier.get_config("paper")
  assert capped(paper) == dataclasses.replace(paper, epochs=1, steps_per_epoch=2, log_every=2)
  paper = codec.get_config("paper")
  assert capped(paper) == dataclasses.replace(paper, num_steps=2, log_every=2,
                                              checkpoint_every=2)
  paper = segmenter.get_config("paper")
  assert capped(paper) == dataclasses.replace(paper, num_steps=2, eval_every=2,
                                              checkpoint_every=2, log_every=2)
  paper = joint.get_config("paper")
  assert capped(paper) == dataclasses.replace(paper, epochs=1, steps_per_epoch=2, log_every=2)
  uncapped = reproduce.Pipeline(reproduce.get_preset("paper"), str(root), str(tmp_path / "w"))
  assert uncapped._capped(paper) is paper  # pylint: disable=protected-access
  with pytest.raises(ValueError, match="max_steps"):
    reproduce.Pipeline(reproduce.get_preset("paper"), str(root), str(tmp_path / "w"),
                       max_steps=-1)


@pytest.mark.slow
def test_paper_preset_runs_every_step_at_full_width_to_a_report(tmp_path):
  """The paper preset end to end on synthetic ImageNet / Kodak / VOC + SBD, one step each.

  About 45 minutes on a 2-core CPU (README: the paper preset's dry run); it proves that
  nothing of the preset breaks before a user starts it on GPUs.
  """
  from tools import synthetic_paper_data  # pylint: disable=g-import-not-at-top
  data = tmp_path / "data"
  synthetic_paper_data.write_all(str(data))
  lines = []
  pipeline = reproduce.Pipeline(reproduce.get_preset("paper"), str(data), str(tmp_path / "w"),
                                log=lines.append, max_steps=1)
  pipeline.run()
  assert all(done for _, done in pipeline.plan())
  assert not any("cannot run" in line for line in lines)
  # Full width, the paper's settings: the codecs' and classifiers' configs are the preset's.
  codec_results = json.load(open(tmp_path / "w" / "codecs" / "0.635" / "kodak_eval.json"))
  assert codec_results["num_images"] == 2
  results = json.load(open(tmp_path / "w" / "classification" / "resnet50_original" /
                           "results.json"))
  assert results["complete"] and results["config"]["width_multiplier"] == 1.0
  assert results["config"]["batch_size"] == 64 and results["steps_per_epoch"] == 1
  text = open(tmp_path / "w" / "report" / "report.md").read()
  assert "Table 2: classification" in text and "Table 2: segmentation" in text
  assert "This is a dry run (--max_steps=1)" in text.splitlines()[2]


def test_restored_width_study_runs_reach_the_report_and_the_classification_claim(tmp_path):
  # Fabricated here, never committed: the study's two arms at 1/8 (Table 2's runs) and 1/4,
  # and two 1/4 runs that are not this run's (another preset, another codec).
  workdir, pipeline = _cpu_pipeline(tmp_path)
  shipped = pretrained.read_metadata(pretrained.shipped_path("0.0983"))["fingerprint"]
  reports = tmp_path / "reports"

  def run(net, kind, width, top1):
    return {"net": net, "input": kind, "operating_point": "0.0983", "preset": "cpu",
            "complete": True, "num_classes": 10,
            "config": {"width_multiplier": width, "epochs": 8, "seed": 0},
            "codec": {"name": "ae-0.0983-cpu", "fingerprint": shipped},
            "final": {"top1": top1, "top5": 0.9}, "epochs": [{"epoch": 8, "val_examples": 3925}]}

  _committed(reports, "classification", "0.0983_cresnet51_latent",
             run("cresnet51", "latent", 0.125, 0.56))
  _committed(reports, "classification", "0.0983_resnet50_decoded",
             run("resnet50", "decoded", 0.125, 0.51))
  width_reports = reports / "classification" / "width"
  _committed(width_reports, "", "0.0983_cresnet51_latent_w4", run("cresnet51", "latent", 0.25,
                                                                  0.60))
  _committed(width_reports, "", "0.0983_resnet50_decoded_w4", run("resnet50", "decoded", 0.25,
                                                                  0.58))
  _committed(width_reports, "", "0.0983_resnet50_decoded_w2",
             {**run("resnet50", "decoded", 0.5, 0.6), "preset": "tiny"})
  _committed(width_reports, "", "0.0983_cresnet51_latent_w2",
             {**run("cresnet51", "latent", 0.5, 0.6), "codec": {"fingerprint": "00" * 8}})

  targets = sorted(os.path.relpath(t, workdir) for _, t in pipeline.restore(str(reports)))
  assert [t for t in targets if t.startswith("width/")] == [
      "width/0.0983_cresnet51_latent_w4/results.json",
      "width/0.0983_resnet50_decoded_w4/results.json"]
  from tfcdi.reporting import report  # pylint: disable=g-import-not-at-top
  text = open(report.write_report(str(workdir), "cpu", str(tmp_path / "r"))).read()
  assert "The width study" in text and (tmp_path / "r" / "width_gap.png").exists()
  assert "| 1/4 | cResNet-51 on the representation | 60.00 |" in text
  data = json.loads((tmp_path / "r" / "report.json").read_text())
  assert [g["width"] for g in data["width"]["gaps"]] == [0.125, 0.25]
  assert data["width"]["gaps"][1]["top1"] == pytest.approx(2.0)
  claim = next(c for c in data["claims"] if c["id"] == "classification_as_accurate")
  assert "width study, 0.0983 at width 1/4: top-1 +2.00, top-5 +0.00 (1 / 1 seeds)" in (
      claim["measured"])
  assert "at width 1/8" not in claim["measured"]  # Table 2's own runs, measured above it
