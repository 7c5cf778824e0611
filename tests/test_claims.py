"""The paper's claims are checked on measured numbers: verdicts, thresholds and reasons."""

import json
import os

import pytest

from tfcdi.reporting import claims
from tfcdi.reporting import published
from tfcdi.reporting import report

PAPER = published.DEFAULT_PAPER_NUMBERS
pytestmark = pytest.mark.skipif(not os.path.exists(PAPER), reason="shared/reference missing")


def _by_id(data, preset="cpu"):
  return {c["id"]: c for c in claims.check_claims(data, published.load_paper_numbers(), preset)}


def _cls_row(op, net, input_kind, top1, top5, complete=True):
  return {"operating_point": op, "net": net, "input": input_kind,
          "measured": {"top1": top1, "top5": top5, "complete": complete, "epochs": 8,
                       "width_multiplier": 0.125, "num_classes": 10},
          "published_imagenet": None}


def test_nothing_measured_is_never_a_verdict():
  found = _by_id({})
  assert found and all(c["verdict"] == "not measured yet" for c in found.values())
  assert all(c["why"] == "" for c in found.values())


def test_classification_gap_within_a_point_is_reproduced_and_a_larger_one_is_not():
  rows = [_cls_row("0.0983", "cresnet51", "latent", 56.0, 92.0),
          _cls_row("0.0983", "resnet50", "decoded", 56.5, 92.5),   # -0.5 / -0.5: holds
          _cls_row("0.330", "cresnet51", "latent", 60.0, 94.0),
          _cls_row("0.330", "resnet50", "decoded", 62.0, 94.0),    # top-1 -2.0: fails
          _cls_row("0.635", "cresnet51", "latent", 60.0, 94.0),
          _cls_row("0.635", "resnet50", "decoded", 61.0, 94.0, complete=False)]  # unfinished
  claim = _by_id({"classification": {"rows": rows, "stores": []}})["classification_as_accurate"]
  assert claim["checks"] == [True, False, None]
  assert claim["verdict"] == ("partly reproduced (2 of 3 checks measured; 1 seed, spread "
                              "unknown)")
  assert "0.330: top-1 -2.00, top-5 +0.00" in claim["measured"]
  assert "0.635: not measured" in claim["measured"]
  # The published gaps come from Table 2 (ImageNet top-5), never typed in.
  paper = {(str(r["bpp"]), r["net"]): r for r in published.load_paper_numbers()["table2"]["rows"]}
  gap = paper[("0.0983", "cresnet51")]["top5"] - paper[("0.0983", "resnet50")]["top5"]
  assert f"0.0983: {gap:+.2f}" in claim["published"]
  # The reason names what the run changes from the paper, read from the runs' own results.
  assert "0.125 width" in claim["why"] and "8 epochs" in claim["why"]


def test_codec_claims_follow_the_baselines_at_the_same_rate():
  def record(op, better, in_range=True):
    return {"operating_point": op, "measured": {"bpp": 0.5, "ms_ssim": 0.9},
            "baselines_at_same_bpp": {"jpeg": {"in_range": in_range, "ms_ssim": 0.95,
                                               "learned_better": {"ms_ssim": better}},
                                      "jpeg2000": {"in_range": True, "ms_ssim": 0.85,
                                                   "learned_better": {"ms_ssim": True}}}}
  data = {"codec": [record("0.0983", True, in_range=False), record("0.330", True),
                    record("0.635", False)]}
  found = _by_id(data)
  jpeg = found["codec_beats_jpeg"]
  assert jpeg["checks"] == [None, True, False]  # JPEG cannot go that low: not a check
  assert "JPEG does not reach" in jpeg["measured"]
  assert jpeg["why"].startswith("behind JPEG at 0.635 bpp")
  assert found["codec_beats_jpeg2000"]["verdict"] == "reproduced"


def test_benchmark_and_runtime_claims_read_the_comparisons():
  def comparison(path, speedup, ratio, low, high):
    return {"path": path, "baseline": "decoder+resnet50", "speedup": speedup,
            "speedup_min": low, "speedup_max": high, "multiply_add_ratio": ratio,
            "fraction_of_multiply_add_ratio": speedup / ratio,
            "meets_goal_multiply_add_ratio": speedup >= 0.9 * ratio}
  data = {"benchmark": {"comparisons": [comparison("cresnet51", 1.88, 1.93, 1.5, 2.2),
                                        comparison("cresnet39", 2.0, 2.51, 1.8, 2.1)]}}
  found = _by_id(data)
  assert found["fewer_operations"]["verdict"] == "reproduced"
  assert "cresnet51: 1.93x" in found["fewer_operations"]["measured"]
  # Without a benchmark, Table 1's counts give the same ratio.
  counts = {"flops": {"rows": [{"model": m, "measured_1e9": v} for m, v in (
      ("decoder", 3.557), ("resnet50", 3.858), ("cresnet51", 3.833), ("cresnet39", 2.960))]}}
  ops = _by_id(counts)["fewer_operations"]
  assert ops["verdict"] == "reproduced" and "cresnet51: 1.93x; cresnet39: 2.51x" in ops["measured"]
  runtime = found["runtime_follows_operations"]
  assert runtime["checks"] == [True, False]
  # 0.9 * 2.51 = 2.26 > 2.1: the shortfall is outside even the best round, and says so.
  assert "cresnet39's best round stays below the goal" in runtime["why"]


def test_segmentation_and_joint_directions():
  data = {"segmentation": {"latent_vs_decoded": [
      {"operating_point": "0.0983", "measured": -7.4, "published_voc": 1.65},
      {"operating_point": "0.330", "measured": -0.6, "published_voc": 0.37},
      {"operating_point": "0.635", "measured": -2.0, "published_voc": -0.11}]},
      "joint": {"points": [{"operating_point": "0.0983", "changes": {
          "joint_vs_compression_ft_top5_points": {"value": 0.7},
          "joint_vs_compression_ft_miou_points": {"value": -0.5},
          "joint_ft_kodak_ssim": {"value": 0.002}, "joint_ft_kodak_ms_ssim": {"value": 0.01},
          "compression_ft_kodak_ms_ssim": {"value": 0.03},
          "joint_vs_compression_ft_kodak_ms_ssim": {"value": -0.02}}}]}}
  found = _by_id(data)
  assert found["segmentation_better_at_low_rate"]["verdict"] == (
      "not reproduced (1 seed, spread unknown)")
  assert found["segmentation_as_accurate"]["checks"] == [True, False]
  assert found["joint_beats_compression_ft_classification"]["verdict"] == (
      "reproduced (1 of 2 checks measured; 1 seed, spread unknown)")
  assert found["joint_beats_compression_ft_segmentation"]["checks"] == [False, None]
  codec = found["joint_improves_codec"]
  # Up on both metrics, but less than the control on MS-SSIM.
  assert codec["checks"] == [True, None, False, None]
  assert "same bpp" in codec["why"]
  # With seeds, the codec's changes follow the spread rule: an SSIM rise inside the joint
  # codecs' seed spread and a gap to the control inside both arms' spreads are inconclusive.
  changes = data["joint"]["points"][0]["changes"]
  changes["joint_ft_kodak_ssim"].update(seed_spread=0.004, seeds=[2, 1])
  changes["joint_ft_kodak_ms_ssim"].update(seed_spread=0.002, seeds=[2, 1])
  changes["joint_vs_compression_ft_kodak_ms_ssim"].update(seed_spread=0.025, seeds=[2, 2])
  codec = _by_id(data)["joint_improves_codec"]
  assert codec["checks"] == ["inconclusive", None, "inconclusive", None]
  assert "SSIM +0.0020 (seed spread 0.0040)" in codec["measured"]
  assert "-0.0200 MS-SSIM over the control (seed spread 0.0250)" in codec["measured"]
  assert codec["verdict"].startswith("inconclusive")


def test_the_report_opens_with_the_claims(tmp_path):
  work = str(tmp_path)
  os.makedirs(os.path.join(work, "flops"))
  with open(os.path.join(work, "flops", "flops.json"), "w") as f:
    json.dump({"rows": [{"model": "decoder", "measured_1e9": 3.56, "published_1e9": 2.85,
                         "relative_difference": 0.248, "within_1pct": False}]}, f)
  text = open(report.write_report(work, "cpu", str(tmp_path / "r"))).read()
  sections = [line for line in text.splitlines() if line.startswith("## ")]
  assert sections[:2] == ["## The paper's claims, checked", "## Table 1: multiply-adds (x1e9)"]
  assert "| **not reproduced** | off by more than 1%: decoder (+24.80%)" in text
  data = json.load(open(tmp_path / "r" / "report.json"))
  assert {c["id"] for c in data["claims"]} >= {"table1_multiply_adds", "storage"}


def test_the_runtime_claim_reads_each_nets_speed_up_against_that_nets_ratio():
  # As a smoke run measured them: the timed nets are narrow (width 1/16), so their ratios are
  # not Table 1's; cResNet-51's timed ratio happens to equal cResNet-39's full-width one.
  def comparison(path, speedup, ratio):
    return {"path": path, "baseline": "decoder+resnet50", "speedup": speedup,
            "speedup_min": speedup, "speedup_max": speedup, "multiply_add_ratio": ratio}
  data = {"benchmark": {"config": {"width_multiplier": 0.0625},
                        "comparisons": [comparison("cresnet39", 3.33, 3.149),
                                        comparison("cresnet51", 4.053, 2.506)]},
          "flops": {"rows": [{"model": m, "measured_1e9": v} for m, v in (
              ("decoder", 3.557), ("resnet50", 3.858), ("cresnet51", 3.833),
              ("cresnet39", 2.960))]}}
  found = _by_id(data)
  ops, runtime = found["fewer_operations"], found["runtime_follows_operations"]
  assert "cresnet51: 1.93x; cresnet39: 2.51x (counted on Table 1's full-width graphs)" in (
      ops["measured"])
  parts = dict(part.split(": ", 1) for part in runtime["measured"].split(" (ratios")[0].split("; "))
  assert parts["cresnet51"].startswith("speed-up 4.05x, multiply-add ratio 2.51x")
  assert parts["cresnet39"].startswith("speed-up 3.33x, multiply-add ratio 3.15x")
  assert "nets at width 0.0625" in runtime["measured"]
  assert runtime["checks"] == [True, True]


def test_the_runtime_goal_is_the_benchmarks():
  from tfcdi import benchmark  # pylint: disable=g-import-not-at-top
  assert claims.RUNTIME_GOAL_FRACTION == benchmark.GOAL_FRACTION


def test_the_storage_claim_is_tested_on_full_size_photos_only():
  store = {"classification": {"stores": [{"operating_point": "0.635",
                                          "totals": {"ratio": 1.75}}]}}
  claim = _by_id(store)["storage"]
  # The small re-saved JPEGs of the store cannot test the paper's number: not a check.
  assert claim["checks"] == [None] and claim["verdict"] == "not measured yet"
  assert "1.75x" in claim["measured"] and "does not test it" in claim["measured"]
  photos = {"storage": [{"operating_point": "0.635", "ratio": 5.0, "images": 53,
                         "mean_tfci_bytes": 21000.0, "bpp": 1.0}], **store}
  claim = _by_id(photos)["storage"]
  assert claim["checks"] == [False] and "5.00x, 21.0 kB per image" in claim["measured"]
