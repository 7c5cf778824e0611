"""The result-collecting tools run as a user runs them, files in, files out: their main with
flags parsed from a command line, in-process (a Python process per call would cost ~4 s of
TensorFlow import each; test_binaries and test_flops start the real entry points)."""

import contextlib
import dataclasses
import importlib
import io
import json
import os
import sys

from absl import app
from absl import flags
from absl.testing import flagsaver
import pytest

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PAPER_NUMBERS = os.path.join(_REPO_ROOT, "..", "shared", "reference", "paper_numbers.json")
pytestmark = pytest.mark.skipif(not os.path.exists(_PAPER_NUMBERS),
                                reason="shared/reference/paper_numbers.json missing")


@dataclasses.dataclass
class _Result:
  returncode: int
  stdout: str
  stderr: str


@contextlib.contextmanager
def _tool(module):
  """Imports a tool as in a process of its own: with absl's flags and its own only. The flags
  other modules defined (the binaries' --workdir, --json ...) are set aside meanwhile and put
  back after, and the tool's are removed again."""
  by_module = flags.FLAGS.flags_by_module_dict()
  others = {flag.name: (owner, flag) for owner, owned in by_module.items()
            if not owner.startswith("absl") for flag in owned}
  for name in others:
    delattr(flags.FLAGS, name)
  sys.modules.pop(module, None)
  try:
    yield importlib.import_module(module)
  finally:
    defined = {flag.name for owner, owned in flags.FLAGS.flags_by_module_dict().items()
               if not owner.startswith("absl") for flag in owned}
    for name in defined & set(flags.FLAGS):
      delattr(flags.FLAGS, name)
    for name, (owner, flag) in others.items():
      flags.FLAGS[name] = flag
      flags.FLAGS.register_flag_by_module(owner, flag)
    sys.modules.pop(module, None)


def _run(module, *args):
  """`python -m module args` in-process: what app.run does with main (a UsageError is exit 1
  and its message on stderr)."""
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _tool(module) as tool:
    with flagsaver.flagsaver():
      try:
        tool.main(flags.FLAGS([module, *args]))
        code = 0
      except app.UsageError as e:
        print(f"FATAL Flags parsing error: {e}", file=sys.stderr)
        code = 1
      except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
  return _Result(code, out.getvalue(), err.getvalue())


def _write(path, value):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(value, f)


def test_flops_table_segmentation_refuses_a_size_the_logits_do_not_divide():
  result = _run("tools.flops_table", "--segmentation", "--image_size=321")
  assert result.returncode == 1 and "multiple of 8" in result.stderr


def test_segmentation_table_collects_runs_beside_table_2(tmp_path):
  runs = tmp_path / "runs"
  for name, op, net, input_kind, miou in (("a", "0.0983", "cresnet51", "latent", 0.2),
                                          ("b", "0.0983", "resnet50", "decoded", 0.25),
                                          ("c", None, "resnet50", "original", 0.3)):
    _write(str(runs / name / "results.json"), {
        "operating_point": op, "net": f"{net}-d", "input": input_kind, "dataset": "camvid",
        "steps": 600, "miou": miou, "pixel_accuracy": 0.7, "config": {"num_steps": 600},
        "command": f"tfcdi-train-segmenter --net={net}"})
  out = tmp_path / "out"
  result = _run("tools.segmentation_table", f"--runs={runs}", f"--output_dir={out}")
  assert result.returncode == 0, result.stderr[-2000:]
  summary = json.load(open(out / "segmentation.json"))
  gap = {g["operating_point"]: g for g in summary["latent_vs_decoded"]}["0.0983"]
  assert gap["measured"] == pytest.approx(-5.0) and gap["same_direction"] is False
  # The committed copies keep each run's command, and the summary cites them.
  assert sorted(os.listdir(out / "runs")) == ["0.0983_cresnet51-d_latent.json",
                                              "0.0983_resnet50-d_decoded.json",
                                              "original_resnet50-d_original.json"]
  sources = [r["source"] for r in summary["rows"] if "source" in r]
  assert all(os.path.exists(out / s) for s in sources) and len(sources) == 3
  assert not (out / "fig5_masks.png").exists()  # no predictions.npz: no figure, not a fake one
  bad = _run("tools.segmentation_table", f"--runs={tmp_path / 'none'}")
  assert bad.returncode != 0 and "--runs must be a folder" in bad.stderr


def test_hyperprior_table_needs_hyperprior_results(tmp_path):
  codec = {"codec_family": "hyperprior", "quality": 8, "bpp": 0.9, "psnr": 33.0, "ssim": 0.95,
           "ms_ssim": 0.985, "codec": "hp-q8-cpu", "fingerprint": "ab", "num_images": 24}
  _write(str(tmp_path / "q8.json"), codec)
  out = tmp_path / "out"
  result = _run("tools.hyperprior_table", f"--codec_results={tmp_path / 'q8.json'}",
                f"--output_dir={out}")
  assert result.returncode == 0, result.stderr[-2000:]
  summary = json.load(open(out / "hyperprior.json"))
  assert summary["points"][0]["quality"] == "q8" and summary["points"][0]["kodak"]["bpp"] == 0.9
  assert (out / "kodak_eval_q8.json").exists()
  # Collecting again from the committed copy itself (what the README's command does).
  again = _run("tools.hyperprior_table", f"--codec_results={out / 'kodak_eval_q8.json'}",
               f"--output_dir={out}")
  assert again.returncode == 0, again.stderr[-2000:]
  assert json.load(open(out / "kodak_eval_q8.json"))["bpp"] == 0.9
  _write(str(tmp_path / "ae.json"), {"operating_point": "0.635", "bpp": 0.6, "psnr": 29.0,
                                     "ssim": 0.8, "ms_ssim": 0.95})
  bad = _run("tools.hyperprior_table", f"--codec_results={tmp_path / 'ae.json'}",
             f"--output_dir={out}")
  assert bad.returncode != 0 and "not a hyperprior codec" in bad.stderr


def test_hyperprior_table_files_ms_ssim_codecs_beside_the_mse_ones(tmp_path):
  runs = tmp_path / "runs"
  for distortion, tag in (("mse", ""), ("ms-ssim", "-msssim")):
    _write(str(runs / distortion / "results.json"), {
        "operating_point": "q4", "net": "resnet50", "input": "decoded", "complete": True,
        "codec_family": "hyperprior", "final": {"top1": 0.5, "top5": 0.9},
        "config": {"epochs": 8, "seed": 0}, "epochs": [],
        "codec": {"name": f"hp-q4{tag}-cpu", "quality": 4, "distortion": distortion}})
    _write(str(tmp_path / f"{distortion}.json"), {
        "codec_family": "hyperprior", "quality": 4, "distortion": distortion, "bpp": 0.5,
        "ms_ssim": 0.96, "codec": f"hp-q4{tag}-cpu"})
  out = tmp_path / "out"
  result = _run("tools.hyperprior_table", f"--runs={runs}", f"--output_dir={out}",
                f"--codec_results={tmp_path / 'mse.json'}",
                f"--codec_results={tmp_path / 'ms-ssim.json'}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert sorted(os.listdir(out / "runs")) == ["q4_msssim_resnet50_decoded.json",
                                              "q4_resnet50_decoded.json"]
  assert (out / "kodak_eval_q4.json").exists() and (out / "kodak_eval_q4_msssim.json").exists()
  summary = json.load(open(out / "hyperprior.json"))
  assert [p["distortion"] for p in summary["points"]] == ["mse", "ms-ssim"]
  assert summary["by_distortion"][0]["arms"][2]["top1"] == {"mse": 50.0, "ms-ssim": 50.0}
  # Runs collected before stay in the table: another runs folder adds to it, and without
  # --runs the table is made again from the committed copies.
  os.makedirs(tmp_path / "more")
  for extra in ([f"--runs={tmp_path / 'more'}"], []):
    again = _run("tools.hyperprior_table", *extra, f"--output_dir={out}",
                 f"--codec_results={out / 'kodak_eval_q4.json'}",
                 f"--codec_results={out / 'kodak_eval_q4_msssim.json'}")
    assert again.returncode == 0, again.stderr[-2000:]
    summary = json.load(open(out / "hyperprior.json"))
    assert summary["by_distortion"][0]["arms"][2]["top1"] == {"mse": 50.0, "ms-ssim": 50.0}


def test_ship_codecs_ships_a_hyperprior_quality_with_its_own_evaluation(
    tmp_path, make_tiny_hyperprior):
  run = tmp_path / "runs" / "hyperprior_q4"
  os.makedirs(run)
  fingerprint = make_tiny_hyperprior(run / "hyperprior_q4.npz").hex()
  evaluation = {"fingerprint": fingerprint, "bpp": 0.5, "psnr": 30.0, "ms_ssim": 0.95}
  _write(str(run / "kodak_eval.json"), {**evaluation, "fingerprint": "0" * 16})
  dest = tmp_path / "pretrained"
  refused = _run("tools.ship_codecs", f"--hyperprior_runs={tmp_path / 'runs'}", f"--dest={dest}")
  assert refused.returncode != 0 and "measured on another codec" in refused.stderr
  assert not (dest / "hyperprior_q4.npz").exists()
  _write(str(run / "kodak_eval.json"), evaluation)
  shipped = _run("tools.ship_codecs", f"--hyperprior_runs={tmp_path / 'runs'}", f"--dest={dest}")
  assert shipped.returncode == 0, shipped.stderr
  assert "hyperprior q4: shipped hp-tiny" in shipped.stdout
  assert (dest / "hyperprior_q4.npz").read_bytes() == (run / "hyperprior_q4.npz").read_bytes()
  assert json.load(open(dest / "kodak_eval_hyperprior_q4.json")) == evaluation
  assert _run("tools.ship_codecs", f"--dest={dest}").returncode != 0  # nothing to ship from


def test_ship_codecs_ships_an_ms_ssim_codec_beside_the_mse_one_and_refuses_a_misplaced_one(
    tmp_path, make_tiny_hyperprior):
  runs = tmp_path / "runs"
  dest = tmp_path / "pretrained"
  for stem, distortion, seed in (("hyperprior_q4", "mse", 0),
                                 ("hyperprior_q4_msssim", "ms-ssim", 1)):
    os.makedirs(runs / stem)
    fingerprint = make_tiny_hyperprior(runs / stem / f"{stem}.npz", seed=seed,
                                       distortion=distortion).hex()
    _write(str(runs / stem / "kodak_eval.json"),
           {"fingerprint": fingerprint, "bpp": 0.4 + seed, "psnr": 30.0, "ms_ssim": 0.95})
  shipped = _run("tools.ship_codecs", f"--hyperprior_runs={runs}", f"--dest={dest}")
  assert shipped.returncode == 0, shipped.stderr
  assert "hyperprior q4_msssim: shipped hp-tiny" in shipped.stdout
  for stem in ("hyperprior_q4", "hyperprior_q4_msssim"):
    assert (dest / f"{stem}.npz").read_bytes() == (runs / stem / f"{stem}.npz").read_bytes()
    assert (json.load(open(dest / f"kodak_eval_{stem}.json"))
            == json.load(open(runs / stem / "kodak_eval.json")))
  # An MSE bundle in the MS-SSIM run's place would ship under a name that lies: refused.
  misplaced = tmp_path / "misplaced" / "hyperprior_q1_msssim"
  os.makedirs(misplaced)
  fingerprint = make_tiny_hyperprior(misplaced / "hyperprior_q1_msssim.npz", quality=1).hex()
  _write(str(misplaced / "kodak_eval.json"),
         {"fingerprint": fingerprint, "bpp": 0.2, "psnr": 28.0, "ms_ssim": 0.9})
  refused = _run("tools.ship_codecs", f"--hyperprior_runs={misplaced.parent}",
                 f"--dest={tmp_path / 'other'}")
  assert refused.returncode != 0 and "trained for mse, not ms-ssim" in refused.stderr
  assert not (tmp_path / "other" / "hyperprior_q1_msssim.npz").exists()


def test_make_report_renders_a_workdir_without_running_a_step(tmp_path):
  from tfcdi import reproduce  # pylint: disable=g-import-not-at-top
  data = os.path.join(_REPO_ROOT, "..", "shared", "data")
  if not os.path.isdir(os.path.join(data, "kodak")):
    pytest.skip("shared data missing")
  # A workdir holding only the committed results of the cpu run.
  workdir = tmp_path / "w"
  reproduce.Pipeline(reproduce.get_preset("cpu"), data, str(workdir)).restore(
      os.path.join(_REPO_ROOT, "reports"))
  out = tmp_path / "out"
  result = _run("tools.make_report", f"--workdir={workdir}", "--preset=cpu",
                f"--output_dir={out}")
  assert result.returncode == 0, result.stderr
  text = (out / "report.md").read_text()
  assert "Table 2: classification" in text and "Section 6: joint training" in text
  with open(os.path.join(_REPO_ROOT, "reports", "classification", "runs",
                         "0.635_cresnet39_latent.json")) as f:
    top1 = json.load(f)["final"]["top1"]
  assert f"| 0.635 | cresnet39 | latent | {100 * top1:.2f} |" in text
  assert json.loads((out / "report.json").read_text())["preset"] == "cpu"
  assert not (workdir / "report").exists()  # rendered where asked, no step run
  bad = _run("tools.make_report", f"--workdir={tmp_path / 'none'}", "--preset=cpu")
  assert bad.returncode != 0 and "--workdir must be a tfcdi-reproduce workdir" in bad.stderr


def _classifier_run(op, net, input_kind, top1, seed):
  return {"operating_point": op, "net": net, "input": input_kind, "complete": True,
          "final": {"epoch": 8, "top1": top1, "top5": 0.9},
          "config": {"epochs": 8, "seed": seed, "width_multiplier": 0.125},
          "command": ["tfcdi-train-classifier", f"--seed={seed}"],
          "codec": {"name": f"ae-{op}-cpu", "fingerprint": "ab"},
          "epochs": [{"epoch": 8, "val_examples": 3925, "val_top1": top1, "val_top5": 0.9}]}


def test_classification_table_adds_seeds_collected_later_to_their_arms(tmp_path):
  # Fabricated runs (never committed): seed 0 first, then seeds 1 and 2 from another folder.
  out = tmp_path / "out"
  first, later = tmp_path / "first", tmp_path / "later"
  _write(str(first / "c51" / "results.json"),
         _classifier_run("0.0983", "cresnet51", "latent", 0.50, 0))
  assert _run("tools.classification_table", f"--runs={first}", f"--output_dir={out}").returncode \
      == 0
  summary = json.load(open(out / "classification.json"))
  summary["stores"] = [{"operating_point": "0.635", "codec": "ae-0.635-cpu", "image_size": 256,
                        "splits": {}, "totals": {"ratio": 1.75}, "store_dir": "stores/0.635"}]
  (out / "classification.json").write_text(json.dumps(summary))
  for seed, top1 in ((1, 0.54), (2, 0.52)):
    _write(str(later / f"s{seed}" / "results.json"),
           _classifier_run("0.0983", "cresnet51", "latent", top1, seed))
  result = _run("tools.classification_table", f"--runs={later}", f"--output_dir={out}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert sorted(os.listdir(out / "runs")) == ["0.0983_cresnet51_latent.json",
                                              "0.0983_cresnet51_latent_seed1.json",
                                              "0.0983_cresnet51_latent_seed2.json"]
  summary = json.load(open(out / "classification.json"))
  row = next(r for r in summary["rows"] if r["net"] == "cresnet51" and r.get("measured"))
  assert row["measured"]["top1"] == pytest.approx(52.0) and row["measured"]["num_seeds"] == 3
  assert row["measured"]["top1_range"] == pytest.approx([50.0, 54.0])
  assert summary["stores"][0]["totals"]["ratio"] == 1.75  # kept: no --stores this time
  assert "| 52.00 (50.00-54.00) |" in (out / "classification.md").read_text()


def test_width_table_joins_new_widths_to_the_committed_runs_and_refuses_runs_outside_it(
    tmp_path):
  runs, committed, out = tmp_path / "runs", tmp_path / "committed", tmp_path / "out"
  for name, (net, kind, top1) in {"c51": ("cresnet51", "latent", 0.60),
                                  "r50": ("resnet50", "decoded", 0.58)}.items():
    run = _classifier_run("0.0983", net, kind, top1, 1)
    run["config"]["width_multiplier"] = 0.25
    _write(str(runs / name / "results.json"), run)
    # The cpu preset's 1/8-width runs, as the classification table commits them.
    _write(str(committed / f"0.0983_{net}_{kind}.json"),
           _classifier_run("0.0983", net, kind, top1 - 0.05, 0))
  _write(str(committed / "0.330_cresnet39_latent.json"),  # not in the study: skipped
         _classifier_run("0.330", "cresnet39", "latent", 0.7, 0))
  result = _run("tools.width_table", f"--runs={runs}", f"--include={committed}",
                f"--output_dir={out}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert sorted(os.listdir(out / "runs")) == ["0.0983_cresnet51_latent_w4_seed1.json",
                                              "0.0983_resnet50_decoded_w4_seed1.json"]
  summary = json.load(open(out / "width.json"))
  assert [g["width"] for g in summary["gaps"]] == [0.125, 0.25]
  assert all(g["top1"] == pytest.approx(2.0) for g in summary["gaps"])
  assert "![the gap against the width](width_gap.png)" in (out / "width.md").read_text()
  assert (out / "width_gap.png").stat().st_size > 0
  _write(str(tmp_path / "bad" / "x" / "results.json"),
         _classifier_run("0.330", "cresnet39", "latent", 0.7, 0))
  refused = _run("tools.width_table", f"--runs={tmp_path / 'bad'}",
                 f"--output_dir={tmp_path / 'out2'}")
  assert refused.returncode == 1 and "not an arm of the width study" in refused.stderr


def test_storage_check_codes_each_photo_whole_and_sums_the_real_file_sizes(tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  photos = tmp_path / "photos"
  os.makedirs(photos)
  rng = np.random.default_rng(0)
  for name, (height, width) in (("a.JPEG", (75, 100)), ("b.jpg", (64, 48))):
    Image.fromarray(rng.integers(0, 255, (height, width, 3), np.uint8)).save(photos / name,
                                                                             quality=90)
  (photos / "labels.tsv").write_text("not an image\n")
  out, tfci = tmp_path / "storage.json", tmp_path / "tfci"
  result = _run("tools.storage_check", f"--images={photos}", f"--output={out}",
                f"--tfci_dir={tfci}")
  assert result.returncode == 0, result.stderr[-2000:]
  measured = json.load(open(out))
  by_file = {e["file"]: e for e in measured["images"]}
  assert sorted(by_file) == ["a.JPEG", "b.jpg"]
  # Each photo at its own size, and the sizes are those of the files written.
  assert (by_file["a.JPEG"]["width"], by_file["a.JPEG"]["height"]) == (100, 75)
  assert by_file["a.JPEG"]["tfci_bytes"] == os.path.getsize(tfci / "a.tfci")
  assert by_file["b.jpg"]["source_bytes"] == os.path.getsize(photos / "b.jpg")
  totals = measured["totals"]
  assert totals["ratio"] == pytest.approx(
      sum(e["source_bytes"] for e in by_file.values()) /
      sum(e["tfci_bytes"] for e in by_file.values()))
  assert measured["operating_point"] == "0.635" and measured["codec"]["fingerprint"]


def test_peer_benchmark_takes_each_images_median_and_its_ratio_per_image():
  with _tool("tools.peer_benchmark") as peer_benchmark:
    _check_peer_aggregation(peer_benchmark)


def _check_peer_aggregation(peer_benchmark):
  # Three rounds; image a's third tfcdi round is an outlier the median must drop.
  times = {"tfcdi": {"a": [(1, 2), (3, 4), (100, 100)], "b": [(2, 2)] * 3},
           "compressai": {"a": [(2, 2), (2, 8), (2, 8)], "b": [(1, 1)] * 3}}
  sizes = {("tfcdi", "a"): 100, ("tfcdi", "b"): 300, ("compressai", "a"): 200,
           ("compressai", "b"): 100}
  per_image, summary, ratios = peer_benchmark.aggregate(times, sizes, {"a": 800, "b": 1200})
  assert per_image["a"]["tfcdi"] == {"compress_s": 3, "decompress_s": 4, "bpp": 1.0}
  assert summary["tfcdi"] == {"compress_s": 2.5, "decompress_s": 3, "bpp": 1.5}
  # Per image: compress 3/2 and 2/1, decompress 4/8 and 2/1.
  assert ratios["compress tfcdi / compressai"] == {"median": 1.75, "min": 1.5, "max": 2.0}
  assert ratios["decompress tfcdi / compressai"] == {"median": 1.25, "min": 0.5, "max": 2.0}
  text = peer_benchmark.markdown({
      "images": 2, "rounds": 3, "cpu_count": 2, "summary": summary, "ratios": ratios,
      "model": {"architecture": "bmshj2018-hyperprior", "quality": 3, "num_filters": 128,
                "latent_channels": 192}, "versions": {"compressai": "1.2.8"}})
  assert "| tfcdi (imported) | 2.500 | 3.000 | 1.5000 |" in text
  assert "- compress tfcdi / compressai: 1.75x (per image 1.50-2.00)" in text


def test_peer_benchmark_says_how_to_get_the_compressai_python(tmp_path):
  result = _run("tools.peer_benchmark", f"--compressai_python={tmp_path}/none",
                f"--workdir={tmp_path}", f"--output={tmp_path}/p.json")
  assert result.returncode == 1 and "is not an executable" in result.stderr
  assert "compressai_fixtures.py" in result.stderr
  result = _run("tools.peer_benchmark", f"--workdir={tmp_path}")
  assert result.returncode == 1 and "--compressai_python, --output are required" in result.stderr
  assert not os.path.exists(tmp_path / "p.json")


_IMAGENETTE = os.path.join(_REPO_ROOT, "..", "shared", "data", "imagenette2_224")


def test_input_throughput_times_every_arm_per_thread_count_and_counts_cores(tmp_path,
                                                                          tiny_codec):
  from tfcdi.data import latent_store  # pylint: disable=g-import-not-at-top
  from tfcdi.data import rgb_arms  # pylint: disable=g-import-not-at-top
  store = str(tmp_path / "store")
  latent_store.encode_split(latent_store.ImageFolderSource(_IMAGENETTE, "train", limit=8),
                            tiny_codec, store, "train", image_size=256, shard_size=4,
                            batch_size=4, progress=False)
  rgb_arms.build_decoded_cache(store, "train", tiny_codec, progress=False)
  output = tmp_path / "throughput.json"
  result = _run("tools.input_throughput", f"--data_dir={_IMAGENETTE}", f"--store_dir={store}",
                f"--output={output}", "--batch_size=2", "--batches=2", "--warmup=1",
                "--rounds=2", "--threads=1,2", "--encode_images=0",
                "--accelerator_images_per_second=500")
  assert result.returncode == 0, result.stderr
  measured = json.loads(output.read_text())
  arms = ("original", "decoded", "latent", "latent (cache)")
  expected = {f"{arm}, {t} thread{'s' if t > 1 else ''}" for arm in arms for t in (1, 2)}
  assert set(measured["rows"]) == expected
  assert latent_store.has_latent_cache(store, "train")  # built for the cached arm
  for label, row in measured["rows"].items():
    samples = measured["samples"][label]
    assert len(samples) == 2 and all(s["examples"] == 4 for s in samples)
    assert row["examples_per_s"] > 0 and row["per_cpu_second"] > 0
    assert row["cores_per_1000_per_s"] == pytest.approx(1000 / row["per_cpu_second"])
    assert row["cores_for_accelerator"] == pytest.approx(500 / row["per_cpu_second"])
  assert "| latent (cache), 2 threads |" in (tmp_path / "throughput.md").read_text()


def test_input_throughput_takes_the_median_of_its_rounds():
  with _tool("tools.input_throughput") as tool:
    row = tool.summarize([{"examples": 10, "wall_s": 1, "cpu_s": 2},
                          {"examples": 10, "wall_s": 2, "cpu_s": 4},
                          {"examples": 10, "wall_s": 100, "cpu_s": 1}])
  assert row["examples_per_s"] == 5 and row["examples_per_s_range"] == [0.1, 10]
  assert row["per_cpu_second"] == 5 and row["cores_per_1000_per_s"] == 200


def test_input_throughput_refuses_a_missing_store_in_one_line(tmp_path):
  result = _run("tools.input_throughput", f"--store_dir={tmp_path}/none",
                f"--output={tmp_path}/t.json", "--encode_images=0")
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert str(tmp_path / "none") in result.stderr
  assert not os.path.exists(tmp_path / "t.json")
  result = _run("tools.input_throughput", f"--output={tmp_path}/t.json")
  assert result.returncode == 1 and "give --data_dir, --store_dir or both" in result.stderr


def test_mutation_score_leaves_out_mutants_inside_type_annotations():
  # Under `from __future__ import annotations` an annotation is a string nobody evaluates, so
  # `int | None` -> `int & None` is the same program; the default value after it is not.
  from tools import mutation_score  # pylint: disable=g-import-not-at-top
  source = ("from __future__ import annotations\n"
            "def f(a: int | None = 3, *, b: tuple[int, int] = (1, 2)) -> int | None:\n"
            "  x: int | None = a\n"
            "  return x\n")
  spans = mutation_score._annotation_spans(source)

  def at(line, text, nth=0):
    col = -1
    for _ in range(nth + 1):
      col = source.splitlines()[line - 1].index(text, col + 1)
    return mutation_score._in_annotation(spans, dataclasses.make_dataclass(
        "M", ["start_pos"])((line, col)))

  assert at(2, "|") and at(2, "|", nth=1) and at(3, "|")  # a, the return, x
  assert at(2, "int, int")  # inside b's annotation
  assert not at(2, "3") and not at(2, "1, 2") and not at(3, "= a")  # defaults, values
  # Without the future import annotations are evaluated: nothing is left out.
  assert mutation_score._annotation_spans(source.split("\n", 1)[1]) == []


def test_mutation_report_json_keeps_the_modules_a_run_did_not_hold(tmp_path):
  from tools import mutation_score  # pylint: disable=g-import-not-at-top
  path = tmp_path / "mutation_score.json"
  mutation_score.write_report(str(path), {"metrics": {"counts": {"killed": 1}},
                                          "quantizer": {"counts": {"killed": 2}}})
  mutation_score.write_report(str(path), {"metrics": {"counts": {"killed": 3}}})
  report = json.loads(path.read_text())
  assert report == {"quantizer": {"counts": {"killed": 2}}, "metrics": {"counts": {"killed": 3}}}
  assert list(report) == ["quantizer", "metrics"]  # MODULES' order, whatever ran last


def test_codec_history_writes_json_table_and_figure_and_refuses_a_missing_or_corrupt_history(
    tmp_path):
  history = {"recipe": "r", "milestones": [{"step": 5, "bpp": 0.75, "ms_ssim": 0.92,
                                            "psnr": 29.0}]}
  curves = {"jpeg": {"points": [{"bpp": 0.5, "ms_ssim": 0.90, "psnr": 28.0},
                                {"bpp": 1.0, "ms_ssim": 0.96, "psnr": 32.0}]}}
  _write(str(tmp_path / "history.json"), history)
  _write(str(tmp_path / "rd.json"), {"curves": curves})
  out = tmp_path / "out" / "against_jpeg.json"
  args = [f"--curves={tmp_path / 'rd.json'}", f"--output={out}"]
  result = _run("tools.codec_history", f"--history={tmp_path / 'history.json'}", *args)
  assert result.returncode == 0, result.stderr
  assert json.loads(out.read_text())["milestones"][0]["ms_ssim_margin"] == pytest.approx(-0.01)
  table = (tmp_path / "out" / "against_jpeg.md").read_text()
  assert "| 5 | 0.7500 | 0.9200 | 0.9300 | -0.0100 |" in table
  assert (tmp_path / "out" / "against_jpeg.png").stat().st_size > 0
  result = _run("tools.codec_history", f"--history={tmp_path / 'none.json'}", *args)
  assert result.returncode == 1 and "--history: no recipe history" in result.stderr
  (tmp_path / "bad.json").write_text("{not json")
  result = _run("tools.codec_history", f"--history={tmp_path / 'bad.json'}", *args)
  assert result.returncode == 1 and "bad.json' is not JSON" in result.stderr


def test_codec_history_compares_recipes_of_one_point_and_refuses_mixed_points(tmp_path):
  curves = {"jpeg": {"points": [{"bpp": 0.5, "ms_ssim": 0.90, "psnr": 28.0},
                                {"bpp": 1.0, "ms_ssim": 0.96, "psnr": 32.0}]}}
  _write(str(tmp_path / "rd.json"), {"curves": curves})
  for name, point, ms_ssim in (("a", "0.635", 0.92), ("b", "0.635", 0.94), ("c", "0.330", 0.9)):
    _write(str(tmp_path / f"{name}.json"), {"recipe": name, "operating_point": point,
                                            "milestones": [{"step": 5, "bpp": 0.75,
                                                            "ms_ssim": ms_ssim, "psnr": 29.0}]})
  out = tmp_path / "recipes.json"
  args = [f"--curves={tmp_path / 'rd.json'}", f"--output={out}"]
  result = _run("tools.codec_history", f"--history={tmp_path / 'a.json'},{tmp_path / 'b.json'}",
                *args)
  assert result.returncode == 0, result.stderr
  recipes = json.loads(out.read_text())["recipes"]
  assert [r["milestones"][0]["ms_ssim_margin"] for r in recipes] == pytest.approx([-0.01, 0.01])
  assert "| `b` | 5 | 0.7500 | +0.0100 |" in (tmp_path / "recipes.md").read_text()
  assert (tmp_path / "recipes.png").stat().st_size > 0
  result = _run("tools.codec_history", f"--history={tmp_path / 'a.json'},{tmp_path / 'c.json'}",
                *args)
  assert result.returncode == 1 and "different operating points (0.330, 0.635)" in result.stderr
