"""The report sets measured numbers beside published ones, read from JSON files only."""

import json
import os

import pytest

from tfcdi.reporting import claims
from tfcdi.reporting import classification
from tfcdi.reporting import hyperprior
from tfcdi.reporting import joint
from tfcdi.reporting import published
from tfcdi.reporting import report
from tfcdi.reporting import segmentation

PAPER = published.DEFAULT_PAPER_NUMBERS
pytestmark = pytest.mark.skipif(not os.path.exists(PAPER), reason="shared/reference missing")


def _write(path, value):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(value, f)


def test_codec_rows_are_measured_and_flag_the_15_percent_window(tmp_path):
  work = str(tmp_path)
  for op, bpp in (("0.635", 0.70), ("0.0983", 0.20)):
    _write(os.path.join(work, "codecs", op, "kodak_eval.json"),
           {"operating_point": op, "bpp": bpp, "psnr": 30.0, "ssim": 0.9, "ms_ssim": 0.95,
            "images": []})
  path = report.write_report(work, "test", os.path.join(work, "report"))
  text = open(path).read()
  rows = {line.split("|")[1].strip(): line for line in text.splitlines()
          if line.startswith("| 0.")}
  assert "0.7000" in rows["0.635"] and "| yes |" in rows["0.635"]  # +10%: inside the window
  assert "0.2000" in rows["0.0983"] and "| no |" in rows["0.0983"]  # +103%: outside
  assert "—" in rows["0.330"]  # not measured: shown as missing, never made up
  data = json.load(open(os.path.join(work, "report", "report.json")))
  assert data["codec"][0]["source"].endswith("kodak_eval.json")


def test_published_numbers_come_from_the_reference_file(tmp_path):
  paper = json.load(open(PAPER))
  _write(os.path.join(str(tmp_path), "flops", "flops.json"), {"rows": [
      {"model": "resnet50", "measured_1e9": 3.8, "published_1e9":
       paper["flops_1e9_at_224"]["resnet50"], "relative_difference": -0.016,
       "within_1pct": False}]})
  text = open(report.write_report(str(tmp_path), "t", str(tmp_path / "r"))).read()
  assert (f"| resnet50 | 3.8000 | {paper['flops_1e9_at_224']['resnet50']:.4f} | -1.60% | no |"
          in text)


def test_missing_reference_file_is_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match="published numbers not found"):
    published.load_paper_numbers(str(tmp_path / "nope.json"))


def _classifier_result(op, net, input_kind, top1, complete=True):
  return {"operating_point": op, "net": net, "input": input_kind, "complete": complete,
          "final": {"epoch": 8, "top1": top1, "top5": 0.99} if complete else None,
          "config": {"epochs": 8}, "command": ["tfcdi-train-classifier", f"--net={net}"],
          "codec": None if op == "original" else {"name": f"ae-{op}-cpu", "fingerprint": "ab"},
          "epochs": [{"epoch": 1, "val_examples": 3925, "step_seconds": 0.5}]}


def test_classification_rows_put_measured_arms_beside_table_2(tmp_path):
  paper = published.load_paper_numbers()
  files = []
  for name, result in (("a", _classifier_result("0.0983", "cresnet39", "latent", 0.5)),
                       ("b", _classifier_result("original", "resnet50", "original", 0.75)),
                       ("c", _classifier_result("0.330", "resnet50", "decoded", 0.6, False))):
    files.append(os.path.join(str(tmp_path), name, "results.json"))
    _write(files[-1], result)
  summary = classification.classification_summary(files, [], paper)
  rows = {(r["operating_point"], r["net"], r["input"]): r for r in summary["rows"]}
  measured = rows[("0.0983", "cresnet39", "latent")]
  assert measured["measured"]["top1"] == pytest.approx(50.0)
  table2 = {(str(r["bpp"]), r["net"]): r for r in paper["table2"]["rows"]}
  assert measured["published_imagenet"]["top1"] == table2[("0.0983", "cresnet39")]["top1"]
  assert rows[("original", "resnet50", "original")]["measured"]["top1"] == pytest.approx(75.0)
  unfinished = rows[("0.330", "resnet50", "decoded")]["measured"]
  assert unfinished["top1"] is None and not unfinished["complete"]
  # Arms of Table 2 with no run are listed as missing, never filled in.
  assert "measured" not in rows[("0.635", "cresnet51", "latent")]
  text = classification.classification_markdown(summary, "t")
  assert "- cresnet51 on latent at 0.635" in text and "1/8 epochs" in text


def test_classification_refuses_duplicate_and_unknown_arms(tmp_path):
  paper = published.load_paper_numbers()
  one = os.path.join(str(tmp_path), "one", "results.json")
  two = os.path.join(str(tmp_path), "two", "results.json")
  _write(one, _classifier_result("0.635", "cresnet51", "latent", 0.5))
  _write(two, _classifier_result("0.635", "cresnet51", "latent", 0.6))
  with pytest.raises(ValueError, match="two results"):
    classification.classification_summary([one, two], [], paper)
  _write(two, _classifier_result("0.635", "cresnet39", "decoded", 0.6))
  with pytest.raises(ValueError, match="no row for"):
    classification.classification_summary([one, two], [], paper)


def _joint_result(arm, op, start, final, kodak_start=None, kodak_final=None, complete=True):
  kodak = {}
  if kodak_start:
    kodak["start"] = dict(zip(("bpp", "psnr", "ssim", "ms_ssim"), kodak_start))
  if kodak_final:
    kodak["final"] = dict(zip(("bpp", "psnr", "ssim", "ms_ssim"), kodak_final))
  result = {"arm": arm, "operating_point": op, "complete": complete, "command": [arm],
            "start": {"top1": start[0], "top5": start[1]},
            "final": None if final is None else {"top1": final[0], "top5": final[1]},
            "base_classifier": {"final": {"top1": 0.40, "top5": 0.80}}}
  if kodak:
    result["kodak"] = kodak
  return result


def test_joint_summary_reports_each_change_with_its_measured_direction(tmp_path, saved_figures):
  paper = published.load_paper_numbers()
  files = []
  for arm, result in (
      ("joint", _joint_result("joint", "0.0983", (0.5, 0.9), (0.55, 0.88),
                              (0.10, 21.0, 0.60, 0.75), (0.11, 20.8, 0.61, 0.76))),
      ("codec", _joint_result("codec", "0.0983", (0.5, 0.9), (0.49, 0.9),
                              (0.10, 21.0, 0.60, 0.75), (0.10, 21.2, 0.60, 0.74))),
      ("classifier", _joint_result("classifier", "0.0983", (0.45, 0.85), (0.52, 0.9)))):
    files.append(os.path.join(str(tmp_path), arm, "results.json"))
    _write(files[-1], result)
  summary = joint.joint_summary(files, paper)
  (point,) = summary["points"]
  changes = point["changes"]
  # Joint: top-1 up 5 points, top-5 down 2; Kodak PSNR down 0.2 dB, MS-SSIM up.
  assert changes["joint_ft_top1_points"]["value"] == pytest.approx(5.0)
  assert changes["joint_ft_top5_points"]["direction"] == "down"
  assert changes["joint_ft_kodak_psnr"]["direction"] == "down"
  assert changes["joint_ft_kodak_ms_ssim"]["direction"] == "up"
  # The control's accuracy is the classifier arm's (from scratch, then fine-tuned), measured
  # against the baseline of the joint arm's starting point.
  assert point["compression_ft"]["top1"] == pytest.approx(52.0)
  assert point["compression_ft"]["from_scratch"]["top1"] == pytest.approx(40.0)
  assert changes["compression_ft_top5_points"]["direction"] == "unchanged"
  assert changes["joint_vs_compression_ft_top5_points"]["value"] == pytest.approx(-2.0)
  assert changes["joint_vs_compression_ft_top1_points"]["value"] == pytest.approx(
      point["joint_ft"]["top1"] - 52.0)
  assert summary["published"]["joint_vs_compression_ft_0.0983"]["classification_top5_points"] \
      == paper["claims"]["joint_training_gain_0.0983"]["classification_top5_points"]
  text = joint.joint_markdown(summary, "t")
  assert "## 0.0983 bpp" in text and "| joint_ft_top5_points | -2.0000 | — | down |" in text

  from tfcdi.reporting import figures  # pylint: disable=g-import-not-at-top
  written = figures.joint_figures(summary, str(tmp_path / "fig"))
  assert [os.path.basename(p) for p in written] == ["fig7_joint_accuracy.png",
                                                    "fig11_joint_codec.png"]
  assert all(os.path.getsize(p) > 1000 for p in written)
  # Fig. 7: each arm's top-5 at its Kodak rate; Fig. 11: the codec's start and end points.
  fig7, fig11 = (saved_figures[p] for p in written)
  (accuracy,) = fig7.axes
  assert accuracy.get_xlabel() == "rate on Kodak [bpp, real files]"
  assert accuracy.get_ylabel() == "top-5 accuracy [%]"
  drawn = saved_figures.series(accuracy)
  assert set(drawn) == {"cResNet-51 baseline", "compression ft.", "joint ft."}
  for key, label in (("baseline", "cResNet-51 baseline"), ("compression_ft", "compression ft."),
                     ("joint_ft", "joint ft.")):
    assert drawn[label] == ([point[key]["kodak"]["bpp"]], [point[key]["top5"]])
  assert [ax.get_ylabel() for ax in fig11.axes] == ["MS-SSIM", "SSIM", "PSNR [dB]"]
  for ax, metric in zip(fig11.axes, ("ms_ssim", "ssim", "psnr")):
    xy = [(list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()]
    for key in ("baseline", "compression_ft", "joint_ft"):
      kodak = point[key]["kodak"]
      assert ([kodak["bpp"]], [kodak[metric]]) in xy, (metric, key)
  for path in written:
    saved_figures.assert_drawn(path, colours=("tab:blue", "tab:red"), min_pixels=5)


def _joint_seeds(tmp_path, starts, finals):
  """Joint and classifier arms of one seed per (start, final) top-1 pair (seed 0 first)."""
  files = []
  for seed, (start, final) in enumerate(zip(starts, finals)):
    for arm in ("joint", "classifier"):
      result = _joint_result(arm, "0.0983", (start, 0.9), (final, 0.9))
      result["config"] = {"seed": seed}
      files.append(os.path.join(str(tmp_path), f"{arm}_{seed}", "results.json"))
      _write(files[-1], result)
  return joint.joint_summary(files, published.load_paper_numbers())["points"][0]


def test_joint_seeds_from_their_own_baselines_spread_the_baseline_too(tmp_path):
  # Seeds 0 and 1 started from classifiers of their own seeds (50 and 46 top-1).
  point = _joint_seeds(tmp_path / "own", (0.50, 0.46), (0.52, 0.50))
  assert point["baseline"]["top1"] == pytest.approx(48.0)
  assert point["baseline"]["num_seeds"] == 2
  change = point["changes"]["joint_ft_top1_points"]
  assert change["value"] == pytest.approx(3.0)  # 51 - 48
  assert change["seed_spread"] == pytest.approx(4.0)  # the baseline's range, the larger
  assert change["seeds"] == [2, 2]
  # Seeds from one shared classifier: the baseline does not spread, the fine-tunings do.
  point = _joint_seeds(tmp_path / "shared", (0.50, 0.50), (0.52, 0.55))
  assert point["baseline"]["top1"] == pytest.approx(50.0)
  assert point["changes"]["joint_ft_top1_points"]["seed_spread"] == pytest.approx(3.0)


def test_the_codecs_kodak_changes_carry_the_fine_tunings_seed_spread(tmp_path):
  files = []
  start = (0.10, 21.0, 0.60, 0.75)  # every seed starts from the same codec
  for seed, joint_ms_ssim, codec_ms_ssim in ((0, 0.76, 0.78), (1, 0.77, 0.775)):
    for arm, ms_ssim in (("joint", joint_ms_ssim), ("codec", codec_ms_ssim)):
      result = _joint_result(arm, "0.0983", (0.5, 0.9), (0.5, 0.9), start,
                             (0.11, 21.0, 0.60 + seed * 0.01, ms_ssim))
      result["config"] = {"seed": seed}
      files.append(os.path.join(str(tmp_path), f"{arm}_{seed}", "results.json"))
      _write(files[-1], result)
  changes = joint.joint_summary(files, published.load_paper_numbers())["points"][0]["changes"]
  assert changes["joint_ft_kodak_ms_ssim"]["value"] == pytest.approx(0.015)
  assert changes["joint_ft_kodak_ms_ssim"]["seed_spread"] == pytest.approx(0.01)
  assert changes["joint_ft_kodak_ssim"]["seed_spread"] == pytest.approx(0.01)
  gap = changes["joint_vs_compression_ft_kodak_ms_ssim"]
  assert gap["value"] == pytest.approx(0.765 - 0.7775)
  assert gap["seed_spread"] == pytest.approx(0.01)  # the larger of 0.01 and 0.005
  assert gap["seeds"] == [2, 2]


def test_joint_summary_takes_the_segmentation_step_by_arm(tmp_path):
  paper = published.load_paper_numbers()
  joint_file = os.path.join(str(tmp_path), "joint", "results.json")
  _write(joint_file, _joint_result("joint", "0.0983", (0.5, 0.9), (0.55, 0.88),
                              (0.10, 21.0, 0.60, 0.75), (0.11, 20.8, 0.61, 0.76)))
  seg = str(tmp_path / "seg")
  for name, miou, steps in (("baseline_0.0983", 0.40, 600), ("joint_ft_0.0983", 0.43, 600),
                            ("compression_ft_0.0983", 0.41, 300), ("other", 0.9, 600)):
    _write(os.path.join(seg, name, "results.json"),
           _segmenter_result("0.0983", "cresnet51", "latent", miou, steps=steps))
  files = joint.joint_segmentation_files(seg)
  assert sorted(files) == [("0.0983", "baseline"), ("0.0983", "compression_ft"),
                           ("0.0983", "joint_ft")]  # "other" names no arm: not picked up
  summary = joint.joint_summary([joint_file], paper, files)
  (point,) = summary["points"]
  assert point["joint_ft"]["miou"] == pytest.approx(43.0)
  assert point["compression_ft"]["miou"] is None  # unfinished: no number
  assert point["changes"]["joint_ft_miou_points"]["value"] == pytest.approx(3.0)
  assert point["changes"]["joint_vs_compression_ft_miou_points"]["value"] is None
  assert "| joint_ft_miou_points | 3.0000 | — | up |" in joint.joint_markdown(summary, "t")
  from tfcdi.reporting import figures  # pylint: disable=g-import-not-at-top
  assert len(figures.joint_figures(summary, str(tmp_path / "fig"))) == 2
  # A segmenter of another operating point in an arm's folder is refused, not mixed in.
  _write(files[("0.0983", "baseline")][0],
         _segmenter_result("0.635", "cresnet51", "latent", 0.4))
  with pytest.raises(ValueError, match="not 0.0983"):
    joint.joint_summary([joint_file], paper, files)


def test_joint_summary_lists_unfinished_arms_and_refuses_duplicates(tmp_path):
  paper = published.load_paper_numbers()
  one = os.path.join(str(tmp_path), "one", "results.json")
  _write(one, _joint_result("joint", "0.635", (0.5, 0.9), None, complete=False))
  summary = joint.joint_summary([one], paper)
  (point,) = summary["points"]
  assert point["joint_ft"]["top1"] is None and point["arms_done"] == []
  assert "Arms not finished: classifier, codec, joint." in joint.joint_markdown(summary, "t")
  two = os.path.join(str(tmp_path), "two", "results.json")
  _write(two, _joint_result("joint", "0.635", (0.5, 0.9), (0.5, 0.9)))
  with pytest.raises(ValueError, match=r"two results for \('0.635', 'joint', 0\)"):
    joint.joint_summary([one, two], paper)


def _segmenter_result(op, net, input_kind, miou, steps=600, num_steps=600):
  return {"operating_point": op, "net": f"{net}-d", "input": input_kind, "dataset": "camvid",
          "steps": steps, "miou": miou, "pixel_accuracy": 0.8, "eval_split": "val",
          "eval_images": 101, "config": {"num_steps": num_steps, "width_multiplier": 0.25},
          "codec": None if op is None else {"name": f"ae-{op}-cpu", "fingerprint": "ab"},
          "command": f"tfcdi-train-segmenter --net={net}"}


def test_segmentation_rows_and_the_latent_vs_decoded_gap_are_measured(tmp_path):
  paper = published.load_paper_numbers()
  files = []
  for name, result in (("a", _segmenter_result("0.0983", "cresnet51", "latent", 0.40)),
                       ("b", _segmenter_result("0.0983", "resnet50", "decoded", 0.43)),
                       ("c", _segmenter_result(None, "resnet50", "original", 0.5)),
                       ("d", _segmenter_result("0.330", "cresnet51", "latent", 0.45, steps=200)),
                       ("e", _segmenter_result("0.330", "resnet50", "decoded", 0.44))):
    files.append(os.path.join(str(tmp_path), name, "results.json"))
    _write(files[-1], result)
  summary = segmentation.segmentation_summary(files, paper)
  rows = {(r["operating_point"], r["net"], r["input"]): r for r in summary["rows"]}
  assert rows[("original", "resnet50-d", "original")]["measured"]["miou"] == pytest.approx(50.0)
  table2 = {(str(r["bpp"]), r["net"]): r["miou"] for r in paper["table2"]["rows"]}
  assert (rows[("0.0983", "cresnet51-d", "latent")]["published_voc_miou"]
          == table2[("0.0983", "cresnet51")])
  gaps = {g["operating_point"]: g for g in summary["latent_vs_decoded"]}
  # Measured: the latent arm loses 3 points here while the paper's wins; reported as measured.
  assert gaps["0.0983"]["measured"] == pytest.approx(-3.0)
  assert gaps["0.0983"]["measured_direction"] == "down"
  assert gaps["0.0983"]["published_voc"] == pytest.approx(
      table2[("0.0983", "cresnet51")] - table2[("0.0983", "resnet50")])
  assert gaps["0.0983"]["same_direction"] is False
  # An unfinished arm gives no gap and is listed as not finished.
  assert gaps["0.330"]["measured"] is None
  text = segmentation.segmentation_markdown(summary, "t")
  assert "200/600 steps" in text and "- cresnet51-d on latent at 0.330" in text
  assert "- cresnet39-d on latent at 0.635" in text


def test_segmentation_refuses_duplicate_and_unknown_arms(tmp_path):
  paper = published.load_paper_numbers()
  one = os.path.join(str(tmp_path), "one", "results.json")
  two = os.path.join(str(tmp_path), "two", "results.json")
  _write(one, _segmenter_result("0.635", "cresnet51", "latent", 0.5))
  _write(two, _segmenter_result("0.635", "cresnet51", "latent", 0.6))
  with pytest.raises(ValueError, match="two results"):
    segmentation.segmentation_summary([one, two], paper)
  _write(two, _segmenter_result("0.635", "resnet50", "latent", 0.6))
  with pytest.raises(ValueError, match="no row for"):
    segmentation.segmentation_summary([one, two], paper)


# A hyperprior store's codec as a classifier run records it (its quality is what places the run
# in the follow-up's table).
HP_Q4_CODEC = {"family": "hyperprior", "name": "hp-q4-cpu", "fingerprint": "ab", "quality": 4}


def test_hyperprior_summary_keeps_the_two_latent_arms_apart(tmp_path):
  paper = published.load_paper_numbers()
  files = []
  for name, latent_inputs, top1 in (("two", "y_hat+sigma_hat", 0.6), ("y", "y_hat", 0.5)):
    result = _classifier_result("q4", "cresnet39", "latent", top1)
    result.update(codec_family="hyperprior", latent_inputs=latent_inputs, codec=HP_Q4_CODEC)
    files.append(os.path.join(str(tmp_path), name, "results.json"))
    _write(files[-1], result)
  codec = {"codec_family": "hyperprior", "quality": 4, "bpp": 0.4, "psnr": 30.0, "ssim": 0.9,
           "ms_ssim": 0.97, "codec": "hp-q4-cpu", "fingerprint": "ab", "num_images": 24}
  summary = hyperprior.hyperprior_summary(files, [codec], paper)
  (point,) = summary["points"]
  assert point["quality"] == "q4" and point["kodak"]["bpp"] == 0.4
  arms = {(a["net"], a["latent_inputs"]): a for a in point["arms"]}
  assert arms[("cresnet39", "y_hat+sigma_hat")]["measured"]["top1"] == pytest.approx(60.0)
  assert arms[("cresnet39", "y_hat")]["measured"]["top1"] == pytest.approx(50.0)
  assert "measured" not in arms[("resnet50", None)]  # not run: listed, never filled in
  text = hyperprior.hyperprior_markdown(summary, "t")
  assert "- resnet50, decoded RGB at q4" in text
  assert "Published" in text and str(paper["hyperprior_followup"]["gupta_rsscn7_top1"]["8"]) in text
  # A second seed of an arm: the table shows the mean of the seeds and their range.
  second = _classifier_result("q4", "cresnet39", "latent", 0.7)
  second.update(codec_family="hyperprior", latent_inputs="y_hat+sigma_hat", codec=HP_Q4_CODEC)
  second["config"]["seed"] = 1
  _write(os.path.join(str(tmp_path), "two_seed1", "results.json"), second)
  seeded = hyperprior.hyperprior_summary(
      files + [os.path.join(str(tmp_path), "two_seed1", "results.json")], [codec], paper)
  arm = seeded["points"][0]["arms"][0]
  assert arm["measured"]["top1"] == pytest.approx(65.0)
  assert arm["measured"]["top1_range"] == pytest.approx([60.0, 70.0])
  assert arm["measured"]["seeds"] == [0, 1] and len(arm["seed_runs"]) == 2
  assert "65.00 (60.00-70.00, 2 seeds)" in hyperprior.hyperprior_markdown(seeded, "t")
  # An autoencoder run is refused rather than mixed into the follow-up's table.
  _write(files[0], _classifier_result("0.635", "cresnet39", "latent", 0.6))
  with pytest.raises(ValueError, match="not a run on a hyperprior store"):
    hyperprior.hyperprior_summary(files, [codec], paper)


def _hyperprior_run(quality, distortion, arm, top1, seed=0):
  net, input_kind, latent_inputs = arm
  result = _classifier_result(f"q{quality}", net, input_kind, top1)
  result.update(codec_family="hyperprior", latent_inputs=latent_inputs)
  result["config"]["seed"] = seed
  tag = "-msssim" if distortion == "ms-ssim" else ""
  result["codec"] = {"family": "hyperprior", "name": f"hp-q{quality}{tag}-cpu",
                     "quality": quality, "operating_point": f"q{quality}"}
  if distortion is not None:  # None: a result from before the field (an MSE codec's)
    result["codec"]["distortion"] = distortion
  return result


def test_hyperprior_summary_puts_mse_and_ms_ssim_codecs_side_by_side(tmp_path):
  paper = published.load_paper_numbers()
  two, y_hat, decoded = hyperprior.HYPERPRIOR_ARMS
  # Synthetic top-1s: under MSE codecs the two branches beat decoded RGB, under MS-SSIM ones
  # they lose to it; y_hat alone at q4 MS-SSIM is not run.
  runs = [(4, None, two, 0.60), (4, None, y_hat, 0.58), (4, None, decoded, 0.55),
          (4, "ms-ssim", two, 0.52), (4, "ms-ssim", decoded, 0.57),
          (4, "ms-ssim", two, 0.54, 1), (1, "mse", two, 0.50)]
  files = []
  for i, (quality, distortion, arm, top1, *seed) in enumerate(runs):
    files.append(os.path.join(str(tmp_path), str(i), "results.json"))
    _write(files[-1], _hyperprior_run(quality, distortion, arm, top1, *seed))
  codecs = [{"codec_family": "hyperprior", "quality": 4, "bpp": 0.57, "ms_ssim": 0.96,
             "codec": "hp-q4-cpu"},
            {"codec_family": "hyperprior", "quality": 4, "distortion": "ms-ssim", "bpp": 0.41,
             "ms_ssim": 0.97, "codec": "hp-q4-msssim-cpu"}]
  summary = hyperprior.hyperprior_summary(files, codecs, paper)
  assert [(p["quality"], p["distortion"]) for p in summary["points"]] == [
      ("q1", "mse"), ("q4", "mse"), ("q4", "ms-ssim")]
  assert summary["points"][2]["kodak"]["bpp"] == 0.41
  (row,) = summary["by_distortion"]  # q1 has no MS-SSIM codec: no side-by-side row
  assert row["quality"] == "q4" and row["kodak"]["ms-ssim"]["ms_ssim"] == 0.97
  arms = {a["latent_inputs"]: a for a in row["arms"]}
  assert arms["y_hat+sigma_hat"]["top1"] == pytest.approx({"mse": 60.0, "ms-ssim": 53.0})
  assert arms["y_hat+sigma_hat"]["difference"] == pytest.approx(-7.0)
  assert arms["y_hat"]["top1"]["ms-ssim"] is None and arms["y_hat"]["difference"] is None
  gaps = {g["gap"]: g for g in row["gaps"]}
  assert gaps["two branches - decoded RGB"]["top1"] == pytest.approx({"mse": 5.0,
                                                                      "ms-ssim": -4.0})
  assert gaps["two branches - decoded RGB"]["same_sign"] is False
  assert gaps["y_hat alone - decoded RGB"]["same_sign"] is None
  text = hyperprior.hyperprior_markdown(summary, "t")
  assert "## MSE and MS-SSIM codecs side by side" in text
  assert "| q4 | two branches - decoded RGB | +5.00 | -4.00 | no |" in text
  assert "| q4 | MS-SSIM | 0.4100 | 0.9700 |" in text
  assert "- cresnet39, y_hat alone at q4 (MS-SSIM codec)" in text
  # A result naming a distortion the table does not know is refused, not filed as MSE.
  bad = _hyperprior_run(4, "ssim", two, 0.5)
  _write(files[0], bad)
  with pytest.raises(ValueError, match="unknown distortion 'ssim'"):
    hyperprior.hyperprior_summary(files, codecs, paper)


def test_a_gap_inside_its_seed_spread_has_no_sign_under_either_codec(tmp_path):
  paper = published.load_paper_numbers()
  two, y_hat, decoded = hyperprior.HYPERPRIOR_ARMS
  # Under the MS-SSIM codec two branches lead y_hat alone by 1 point, but y_hat's two seeds
  # lie 8 points apart: that gap has no measured sign. Under MSE both gaps are single runs.
  runs = [(None, two, 0.60), (None, y_hat, 0.58), (None, decoded, 0.55),
          ("ms-ssim", two, 0.52), ("ms-ssim", two, 0.54, 1), ("ms-ssim", y_hat, 0.48),
          ("ms-ssim", y_hat, 0.56, 1), ("ms-ssim", decoded, 0.50)]
  files = []
  for i, (distortion, arm, top1, *seed) in enumerate(runs):
    files.append(os.path.join(str(tmp_path), str(i), "results.json"))
    _write(files[-1], _hyperprior_run(4, distortion, arm, top1, *seed))
  codecs = [{"codec_family": "hyperprior", "quality": 4, "bpp": 0.50, "codec": "hp-q4-cpu"},
            {"codec_family": "hyperprior", "quality": 4, "distortion": "ms-ssim", "bpp": 0.40,
             "codec": "hp-q4-msssim-cpu"}]
  (row,) = hyperprior.hyperprior_summary(files, codecs, paper)["by_distortion"]
  gaps = {g["gap"]: g for g in row["gaps"]}
  inside = gaps["two branches - y_hat alone"]
  assert inside["top1"] == pytest.approx({"mse": 2.0, "ms-ssim": 1.0})
  assert inside["seed_spread"]["mse"] is None
  assert inside["seed_spread"]["ms-ssim"] == pytest.approx(8.0)  # the larger range: y_hat's
  assert inside["same_sign"] == "inconclusive"
  # A single-seed arm has no spread: the gap is decided on its runs (+5 and +3).
  assert gaps["two branches - decoded RGB"]["same_sign"] is True
  text = hyperprior.hyperprior_markdown(hyperprior.hyperprior_summary(files, codecs, paper), "t")
  assert ("| q4 | two branches - y_hat alone | +2.00 | +1.00 (spread 8.00) | inside the seed "
          "spread |") in text
  assert "q4: the MS-SSIM codec codes Kodak at 0.80x the MSE codec's rate (0.400 vs 0.500 bpp)" \
      in text


def test_sizes_print_in_a_unit_that_keeps_a_digit():
  from tfcdi.reporting import results  # pylint: disable=g-import-not-at-top
  assert results.size_text(812) == "812 bytes"
  assert results.size_text(4700) == "4.6 KiB"
  assert results.size_text(54.1 * 2**20) == "54.1 MiB"
  assert results.size_text(None) == "—"


def test_a_small_store_shows_kib_not_zero_mib(tmp_path):
  store = tmp_path / "stores" / "0.635"
  _write(str(store / "metadata.json"), {
      "codec": {"operating_point": "0.635", "name": "ae-0.635-tiny"}, "image_size": 64,
      "totals": {"count": 24, "source_bytes": 253956, "store_bytes": 14138, "ratio": 17.96},
      "splits": {"val": {"complete": True, "count": 8, "source_bytes": 100864,
                         "store_bytes": 4427, "ratio": 22.78, "bpp": 0.793}}})
  summary = classification.classification_summary([], [str(store)],
                                                  published.load_paper_numbers())
  text = classification.classification_markdown(summary, "t")
  assert "| 0.635 | ae-0.635-tiny | val | 8 | 98.5 KiB | 4.3 KiB | 22.78x |" in text
  assert "0.0 MiB" not in text


def _report_with_one_classifier(tmp_path, preset, val_examples):
  work = str(tmp_path / preset)
  result = _classifier_result("original", "resnet50", "original", 0.5)
  result["epochs"][0]["val_examples"] = val_examples
  _write(os.path.join(work, "classification", "resnet50_original", "results.json"), result)
  path = report.write_report(work, preset, os.path.join(work, "report"))
  return open(path).read(), json.load(open(os.path.join(work, "report", "report.json")))


def test_a_smoke_report_says_first_that_it_only_checks_the_pipeline(tmp_path):
  text, data = _report_with_one_classifier(tmp_path, "smoke", 8)
  top = "\n".join(text.splitlines()[:4])
  assert "This is a smoke run" in top and "evaluations on 8 images" in top
  assert data["claims"] and all(c["verdict"].endswith("[smoke run: pipeline check only]")
                                and c["pipeline_check_only"] for c in data["claims"])
  # The cpu preset's report is the measurement: no such warning, no such mark.
  text, data = _report_with_one_classifier(tmp_path, "cpu", 3925)
  assert "smoke" not in text and not any("pipeline check" in c["verdict"]
                                         for c in data["claims"])


def test_a_dry_run_report_says_first_that_its_capped_runs_only_check_the_pipeline(tmp_path):
  # tfcdi-reproduce --max_steps leaves dry_run.json in the workdir: whatever the preset, and
  # when re-rendered from the workdir alone, the report says what its numbers are.
  work = tmp_path / "paper"
  _write(str(work / claims.DRY_RUN_FILE), {"max_steps": 1})
  text, data = _report_with_one_classifier(tmp_path, "paper", 8)
  top = "\n".join(text.splitlines()[:4])
  assert "This is a dry run (--max_steps=1)" in top
  assert "each run stopped after 1 training step(s)" in top
  assert data["dry_run"] == {"max_steps": 1}
  assert data["claims"] and all(
      c["verdict"].endswith("[dry run (--max_steps=1): pipeline check only]")
      for c in data["claims"])


def test_the_joint_baseline_row_says_whether_it_is_table_2s_number_and_why_not(tmp_path):
  paper = published.load_paper_numbers()
  cls = _write_and_list(tmp_path / "cls", [_classifier_result("0.0983", "cresnet51", "latent",
                                                               0.40)])
  rows = classification.classification_summary(cls, [], paper)["rows"]
  joint_file = os.path.join(str(tmp_path), "joint", "results.json")
  result = _joint_result("joint", "0.0983", (0.5, 0.9), (0.55, 0.88))
  result["config"] = {"view_size": 64, "crop": 48}
  result["start"]["examples"] = 8
  _write(joint_file, result)
  summary = joint.joint_summary([joint_file], paper)
  text = joint.joint_markdown(summary, "t", rows)
  assert "top-1 40.00 there, 50.00 here" in text
  assert "the 64-px view encoded whole and the central 48-px crop" in text
  # The same number in both places: said so, with no excuse.
  result["start"]["top1"] = 0.40
  _write(joint_file, result)
  text = joint.joint_markdown(joint.joint_summary([joint_file], paper), "t", rows)
  assert "top-1 40.00 in both" in text and "differ" not in text
  assert "mean over" not in text
  # A second seed started from its own classifier: seed 0 is still set beside Table 2's seed 0,
  # and the note says the row is the mean over the seeds' starting classifiers.
  seed1_file = os.path.join(str(tmp_path), "joint_seed1", "results.json")
  _write(seed1_file, {**result, "start": {**result["start"], "top1": 0.46},
                      "config": {**result["config"], "seed": 1}})
  summary = joint.joint_summary([joint_file, seed1_file], paper)
  assert summary["points"][0]["baseline"]["top1"] == pytest.approx(43.0)
  text = joint.joint_markdown(summary, "t", rows)
  assert "top-1 40.00 in both" in text and "mean over 2 seeds" in text


def _write_and_list(folder, results):
  paths = []
  for index, result in enumerate(results):
    paths.append(os.path.join(str(folder), str(index), "results.json"))
    _write(paths[-1], result)
  return paths


def test_the_storage_section_says_which_measurement_tests_the_claim(tmp_path):
  work = str(tmp_path)
  _write(os.path.join(work, "storage", "photos.json"), {
      "what": "full-size photos", "images_dir": "imagenet_samples", "operating_point": "0.635",
      "codec": {"name": "ae-0.635-cpu", "fingerprint": "86"},
      "totals": {"images": 53, "source_bytes": 5404635, "tfci_bytes": 795394, "ratio": 6.79,
                 "mean_tfci_bytes": 15007.4, "bpp": 0.722}})
  _write(os.path.join(work, "stores", "0.635", "metadata.json"), {
      "codec": {"operating_point": "0.635", "name": "ae-0.635-cpu"}, "image_size": 256,
      "totals": {"count": 13394, "source_bytes": 140e6, "store_bytes": 80e6, "ratio": 1.75},
      "splits": {}})
  path = report.write_report(work, "cpu", os.path.join(work, "report"))
  text = open(path).read()
  assert "| 53 full-size photos (imagenet_samples), each coded whole | 0.635 |" in text
  assert "| 6.79x | 14.7 KiB | 0.722 | yes |" in text
  assert "| 1.75x |" in text and "| no: small re-saved JPEGs, already at a low rate |" in text
  data = json.load(open(os.path.join(work, "report", "report.json")))
  storage = {c["id"]: c for c in data["claims"]}["storage"]
  assert storage["checks"] == [True] and storage["verdict"] == "reproduced"
  assert "6.79x" in storage["measured"] and "does not test it" in storage["measured"]
  assert data["storage"][0]["source"] == os.path.join("storage", "photos.json")
