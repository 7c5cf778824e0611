"""An arm's seeds become one number with its spread; a gap inside that spread decides nothing.

Every seed file here is fabricated in the test (tmp_path): no fabricated number is committed."""

import json
import os

import pytest

from tfcdi.reporting import claims
from tfcdi.reporting import classification
from tfcdi.reporting import joint
from tfcdi.reporting import published
from tfcdi.reporting import results
from tfcdi.reporting import seeds
from tfcdi.reporting import segmentation

pytestmark = pytest.mark.skipif(not os.path.exists(published.DEFAULT_PAPER_NUMBERS),
                                reason="shared/reference missing")


def _write(path, value):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(value, f)
  return str(path)


def _classifier(op, net, input_kind, top1, top5, seed=0, complete=True):
  return {"operating_point": op, "net": net, "input": input_kind, "complete": complete,
          "final": {"epoch": 8, "top1": top1, "top5": top5} if complete else None,
          "config": {"epochs": 8, "seed": seed, "width_multiplier": 0.125},
          "num_classes": 10, "command": ["tfcdi-train-classifier", f"--seed={seed}"],
          "codec": None if op == "original" else {"name": f"ae-{op}-cpu", "fingerprint": "ab"},
          "epochs": [{"epoch": 1, "val_examples": 3925, "step_seconds": 0.5}]}


# --- the rule ------------------------------------------------------------------------------------


def test_an_arm_is_the_mean_of_its_finished_seeds_with_their_range_and_count():
  arm = seeds.aggregate([{"seed": 0, "complete": True, "top1": 50.0},
                         {"seed": 1, "complete": True, "top1": 54.0},
                         {"seed": 2, "complete": False, "top1": 10.0}], ("top1",))
  assert arm["top1"] == pytest.approx(52.0)  # the unfinished seed's partial number is left out
  assert arm["top1_range"] == [50.0, 54.0]
  assert arm["num_seeds"] == 2 and arm["seeds"] == [0, 1, 2] and not arm["complete"]
  single = seeds.aggregate([{"seed": 0, "complete": True, "top1": 50.0}], ("top1",))
  assert single["num_seeds"] == 1 and single["top1_range"] is None


def test_a_gap_inside_the_seed_spread_is_inconclusive_and_outside_it_decided():
  a = {"top1": 52.0, "top1_range": [51.0, 53.0], "num_seeds": 3}     # range 2.0
  b = {"top1": 51.5, "top1_range": [51.0, 52.5], "num_seeds": 3}     # range 1.5
  spread = seeds.gap_spread(a, b, metric="top1")
  assert spread == pytest.approx(2.0)
  assert seeds.decide(0.5, 0.0, spread, strict=True) == seeds.INCONCLUSIVE
  assert seeds.decide(-1.5, 0.0, spread) == seeds.INCONCLUSIVE
  assert seeds.decide(2.5, 0.0, spread, strict=True) is True
  assert seeds.decide(-2.5, 0.0, spread) is False
  # The threshold, not zero, is what the gap is read against.
  assert seeds.decide(-0.5, -1.0, spread) == seeds.INCONCLUSIVE
  assert seeds.decide(1.5, -1.0, spread) is True
  # One seed on either side: no measured spread, the single run decides.
  one = {"top1": 50.0, "top1_range": None, "num_seeds": 1}
  assert seeds.gap_spread(a, one, metric="top1") is None
  assert seeds.decide(0.5, 0.0, None, strict=True) is True
  assert seeds.decide(None, 0.0, spread) is None


def test_a_verdict_names_its_seeds_and_one_seed_says_the_spread_is_unknown():
  verdict = claims._verdict  # pylint: disable=protected-access
  assert verdict([True, True], [3, 3, 3, 3]) == "reproduced (3 seeds per arm)"
  assert verdict([True, True], [1, 1]) == "reproduced (1 seed, spread unknown)"
  assert verdict([True], [1, 3]) == "reproduced (1-3 seeds per arm; 1 seed: spread unknown)"
  assert verdict([seeds.INCONCLUSIVE, seeds.INCONCLUSIVE], [2, 2]) == (
      "inconclusive (2 seeds per arm)")
  assert verdict([True, seeds.INCONCLUSIVE, None], [2, 2]) == (
      "reproduced (1 of 3 checks inconclusive; 2 of 3 checks measured; 2 seeds per arm)")
  assert verdict([None]) == "not measured yet"


def test_the_rule_is_stated_once_at_the_top_of_the_claims():
  lines = claims.claims_markdown([])
  rule = [line for line in lines if seeds.SPREAD_RULE in line]
  assert len(rule) == 1 and lines.index(rule[0]) < 6
  assert "inconclusive" in seeds.SPREAD_RULE and "1 seed" in seeds.SPREAD_RULE


# --- seeds through the tables ------------------------------------------------------------------


def _three_seed_arms(tmp_path, latent_top1, rgb_top1):
  files = []
  for seed, (latent, rgb) in enumerate(zip(latent_top1, rgb_top1)):
    files.append(_write(tmp_path / f"c51_{seed}" / "results.json",
                        _classifier("0.0983", "cresnet51", "latent", latent, 0.9, seed)))
    files.append(_write(tmp_path / f"r50_{seed}" / "results.json",
                        _classifier("0.0983", "resnet50", "decoded", rgb, 0.9, seed)))
  return files


def test_classification_rows_average_an_arms_seeds_and_the_table_shows_mean_range_and_count(
    tmp_path):
  files = _three_seed_arms(tmp_path, (0.50, 0.52, 0.54), (0.49, 0.49, 0.49))
  summary = classification.classification_summary(files, [], published.load_paper_numbers())
  rows = {(r["net"], r["input"]): r for r in summary["rows"] if r["operating_point"] == "0.0983"}
  latent = rows[("cresnet51", "latent")]
  assert latent["measured"]["top1"] == pytest.approx(52.0)
  assert latent["measured"]["top1_range"] == pytest.approx([50.0, 54.0])
  assert latent["measured"]["num_seeds"] == 3
  assert [s["seed"] for s in latent["seed_runs"]] == [0, 1, 2]
  text = classification.classification_markdown(summary, "t")
  assert "| 0.0983 | cresnet51 | latent | 52.00 (50.00-54.00) | 90.00 (90.00-90.00) | 3 | done |" \
      in text
  # The same seed twice is a mislabelled copy, not a second seed.
  with pytest.raises(ValueError, match="two results for"):
    classification.classification_summary(files + files[:1], [], published.load_paper_numbers())


def test_the_classification_claim_is_inconclusive_inside_the_spread_and_decided_outside(
    tmp_path):
  paper = published.load_paper_numbers()

  def claim(latent, rgb):
    summary = classification.classification_summary(
        _three_seed_arms(tmp_path / f"{latent}{rgb}", latent, rgb), [], paper)
    return {c["id"]: c for c in claims.check_claims({"classification": summary}, paper,
                                                    "cpu")}["classification_as_accurate"]

  # cResNet-51 2 points behind on average, but its seeds spread over 4 points: inconclusive.
  close = claim((0.46, 0.48, 0.50), (0.50, 0.50, 0.50))
  assert close["checks"][0] == seeds.INCONCLUSIVE
  assert close["verdict"].startswith("inconclusive (") and "3 seeds per arm" in close["verdict"]
  assert "seed spread 4.00" in close["measured"]
  # 5 points behind with a 1-point spread: refuted.
  far = claim((0.445, 0.45, 0.455), (0.50, 0.50, 0.50))
  assert far["checks"][0] is False and far["verdict"].startswith("not reproduced (")


def test_segmentation_gaps_carry_the_seed_spread_of_their_arms(tmp_path):
  files = []
  for seed, (latent, rgb) in enumerate(((0.40, 0.42), (0.44, 0.42))):
    for net, input_kind, miou in (("cresnet51", "latent", latent), ("resnet50", "decoded", rgb)):
      files.append(_write(tmp_path / f"{net}_{seed}" / "results.json", {
          "operating_point": "0.0983", "net": f"{net}-d", "input": input_kind, "steps": 10,
          "miou": miou, "pixel_accuracy": 0.8, "dataset": "camvid", "eval_images": 101,
          "config": {"num_steps": 10, "width_multiplier": 0.125, "seed": seed}}))
  summary = segmentation.segmentation_summary(files, published.load_paper_numbers())
  gap = {g["operating_point"]: g for g in summary["latent_vs_decoded"]}["0.0983"]
  assert gap["measured"] == pytest.approx(0.0) and gap["seed_spread"] == pytest.approx(4.0)
  assert gap["seeds"] == [2, 2]
  found = {c["id"]: c for c in claims.check_claims({"segmentation": summary},
                                                   published.load_paper_numbers(), "cpu")}
  assert found["segmentation_better_at_low_rate"]["verdict"] == "inconclusive (2 seeds per arm)"


def test_joint_arms_average_their_seeds_and_the_gap_to_the_control_has_a_spread(tmp_path):
  files = []
  for seed, (joint_top5, control_top5) in enumerate(((0.92, 0.90), (0.96, 0.91))):
    for arm, top5 in (("joint", joint_top5), ("classifier", control_top5)):
      files.append(_write(tmp_path / f"{arm}_{seed}" / "results.json", {
          "arm": arm, "operating_point": "0.0983", "complete": True, "config": {"seed": seed},
          "start": {"top1": 0.5, "top5": 0.9, "examples": 100},
          "final": {"top1": 0.5, "top5": top5},
          "base_classifier": {"final": {"top1": 0.4, "top5": 0.8}}}))
  summary = joint.joint_summary(files, published.load_paper_numbers())
  (point,) = summary["points"]
  assert point["joint_ft"]["top5"] == pytest.approx(94.0)
  assert point["joint_ft"]["top5_range"] == pytest.approx([92.0, 96.0])
  change = point["changes"]["joint_vs_compression_ft_top5_points"]
  assert change["value"] == pytest.approx(3.5) and change["seed_spread"] == pytest.approx(4.0)
  assert change["seeds"] == [2, 2]
  assert sorted(point["seed_sources"]["joint"]) == sorted(
      f for f in files if os.path.basename(os.path.dirname(f)).startswith("joint_"))


def test_seed_copies_are_named_apart_and_seed_zero_keeps_its_name(tmp_path):
  runs = tmp_path / "runs"
  for seed in (0, 2):
    _write(runs / f"s{seed}" / "results.json",
           _classifier("0.0983", "cresnet39", "latent", 0.5, 0.9, seed))
  copies = results.collect_results(
      str(runs), str(tmp_path / "out"),
      lambda r: f"{r['operating_point']}_{r['net']}_{r['input']}{results.seed_suffix(r)}")
  assert sorted(os.path.basename(c) for c in copies) == [
      "0.0983_cresnet39_latent.json", "0.0983_cresnet39_latent_seed2.json"]
  # Two runs that would land on one name are refused, not overwritten.
  _write(runs / "again" / "results.json", _classifier("0.0983", "cresnet39", "latent", 0.6, 0.9))
  with pytest.raises(ValueError, match="would both be collected"):
    results.collect_results(str(runs), str(tmp_path / "out2"),
                            lambda r: f"{r['net']}{results.seed_suffix(r)}")
