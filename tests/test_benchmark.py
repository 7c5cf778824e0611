"""The runtime benchmark: the path table, the timing protocol, the ratio arithmetic, the binary.

Nothing here asserts a time: timings are the machine's business. The arithmetic is pinned with
fake timing tables and a fake clock; the real runs use nets at 1/16 width on 32x32 images with
batch 2, only to check that every part is built, counted, timed and written.
"""

import contextlib
import io
import json
import os
import subprocess
import sys

from absl import flags
from absl.testing import flagsaver
import pytest

from experiments import benchmark as benchmark_cli
from tfcdi import benchmark
from tfcdi.nets import specs
from tfcdi.reporting import published

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_FLAGS = ("--width_multiplier=0.0625", "--batch_size=2", "--seg_batch_size=2",
              "--repeats=2", "--warmup=1", "--input_size=32", "--num_files=2",
              "--operating_point=0.0983")


def _cli(*args):
  """Runs the binary's main in-process, with its flags parsed as from a command line."""
  with flagsaver.flagsaver():
    argv = flags.FLAGS(["benchmark", *map(str, args)])
    return benchmark_cli.main(argv)


# --- the table of paths ----------------------------------------------------------------------


def test_every_path_is_made_of_known_stages_and_every_comparison_of_known_paths():
  known = set(specs.NETS) | {f"{n}-d" for n in specs.NETS} | {
      benchmark.DECODER, benchmark.ENTROPY_DECODE, benchmark.JPEG_DECODE}
  for path in benchmark.PATHS.values():
    assert path.group in benchmark.GROUPS
    for stage in path.stages:
      assert set(benchmark.stage_components(stage)) <= known, stage
  for name, baseline in benchmark.COMPARISONS:
    assert name in benchmark.PATHS and baseline in benchmark.PATHS


def test_paths_are_selected_by_name_and_group_in_table_order():
  assert [p.name for p in benchmark.select_paths(["decoder+resnet50", "cresnet51"])] == [
      "cresnet51", "decoder+resnet50"]
  files = benchmark.select_paths(["files"])
  assert {p.group for p in files} == {"files"} and len(files) == 6
  assert len(benchmark.select_paths(["all"])) == len(benchmark.PATHS)
  with pytest.raises(benchmark.BenchmarkError, match="unknown path 'resnet99'"):
    benchmark.select_paths(["resnet99"])


# --- the timing protocol -----------------------------------------------------------------------


def test_round_robin_rotates_the_order_and_drops_the_warmup_rounds():
  now = [0.0]
  calls = []

  def stage(name, cost):
    def run():
      calls.append(name)
      now[0] += cost
    return run

  seconds = benchmark.time_round_robin(
      {"a": stage("a", 1.0), "b": stage("b", 2.0), "c": stage("c", 4.0)}, repeats=2, warmup=1,
      clock=lambda: now[0])
  # Round r starts at stage r mod 3: every stage runs at every position.
  assert calls == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
  assert seconds == {"a": [1.0, 1.0], "b": [2.0, 2.0], "c": [4.0, 4.0]}


# --- the arithmetic, on a fake timing table -----------------------------------------------------

# Seconds per call of each stage in three rounds, and what a call processes.
_FAKE_SECONDS = {
    "cresnet51": [1.0, 2.0, 1.5],
    "decoder+resnet50": [4.0, 4.0, 4.5],
    "entropy_decode": [0.5, 0.5, 1.0],
}
_FAKE_BATCH = {"cresnet51": 10, "decoder+resnet50": 10, "entropy_decode": 10}
_FAKE_COUNTS = {"cresnet51": {"cresnet51": 300}, "decoder+resnet50": {"decoder": 400,
                                                                       "resnet50": 500},
                "entropy_decode": {"entropy_decode": 0}}


def _fake_rows():
  paths = benchmark.select_paths(["cresnet51", "decoder+resnet50", "entropy+cresnet51",
                                  "entropy+decoder+resnet50"])
  return benchmark.path_results(paths, _FAKE_SECONDS, _FAKE_BATCH, _FAKE_COUNTS,
                                {"cresnet51": 3.83, "resnet50": 3.86, "decoder": 2.85})


def test_path_times_are_per_image_sums_of_their_stages_per_round():
  rows = {r["name"]: r for r in _fake_rows()}
  t = rows["entropy+cresnet51"]["per_image_seconds"]
  assert t["samples"] == pytest.approx([0.15, 0.25, 0.25])  # (cresnet51 + entropy) / 10
  assert t["median"] == pytest.approx(0.25) and t["min"] == pytest.approx(0.15)
  assert t["max"] == pytest.approx(0.25) and t["q1"] == pytest.approx(0.2)
  assert rows["decoder+resnet50"]["multiply_adds"] == 900
  assert rows["decoder+resnet50"]["multiply_adds_by_component"] == {"decoder": 400,
                                                                    "resnet50": 500}
  assert rows["entropy+cresnet51"]["multiply_adds"] == 300  # decoding files counts nothing
  assert rows["entropy+decoder+resnet50"]["published_multiply_adds_1e9"] == pytest.approx(6.71)


def test_speedups_and_multiply_add_ratios_from_a_fake_timing_table():
  comparisons = {(c["path"], c["baseline"]): c for c in benchmark.compare_paths(_fake_rows())}
  c = comparisons[("cresnet51", "decoder+resnet50")]
  assert c["speedup"] == pytest.approx(0.4 / 0.15)  # medians: 4.0 / 10 over 1.5 / 10
  assert c["speedup_min"] == pytest.approx(2.0) and c["speedup_max"] == pytest.approx(4.0)
  assert c["multiply_add_ratio"] == pytest.approx(3.0)
  assert c["published_ratio"] == pytest.approx(6.71 / 3.83)
  assert c["fraction_of_multiply_add_ratio"] == pytest.approx((0.4 / 0.15) / 3.0)
  assert c["meets_goal_multiply_add_ratio"] is False
  assert c["meets_goal_published_ratio"] is True
  # Comparisons with a path that did not run are left out, not reported as None.
  assert ("cresnet39", "decoder+resnet50") not in comparisons
  assert ("entropy+cresnet51", "entropy+decoder+resnet50") in comparisons


def test_published_ratios_come_from_paper_numbers():
  counts = published.load_paper_numbers()["flops_1e9_at_224"]
  cost = lambda name: benchmark.published_cost_1e9(name, counts)
  assert cost("decoder+resnet50") / cost("cresnet51") == pytest.approx(1.75, abs=0.005)
  assert cost("decoder+resnet50") / cost("cresnet39") == pytest.approx(2.27, abs=0.005)
  # Entropy decoding has no multiply-adds: from files, the ratios are the same.
  assert cost("entropy+decoder+resnet50") == pytest.approx(cost("decoder+resnet50"))
  assert cost("cresnet51-d") is None  # the paper gives no count for the -d segmenters


def test_config_refuses_bad_settings():
  with pytest.raises(benchmark.BenchmarkError, match="batch_size"):
    benchmark.BenchmarkConfig(batch_size=0).validate()
  with pytest.raises(benchmark.BenchmarkError, match="multiple of 8"):
    benchmark.BenchmarkConfig(image_size=30).validate()
  with pytest.raises(benchmark.BenchmarkError, match="operating point"):
    benchmark.BenchmarkConfig(operating_point="0.5").validate()
  assert benchmark.BenchmarkConfig(width_multiplier=0.5).resolved_decoder_filters == (32, 64)


# --- the binary, on tiny nets ----------------------------------------------------------------

# One path of each kind: latent, decoder + RGB, RGB, from files (both codecs), segmentation.
_RUN_PATHS = ("cresnet39", "decoder+resnet50", "entropy+cresnet39", "entropy+decoder+resnet50",
              "jpeg+resnet50", "cresnet39-d", "decoder+resnet50-d")


def _accuracy_file(tmp_path, measured=True):
  rows = [
      {"operating_point": "0.0983", "net": "cresnet39", "input": "latent",
       "measured": {"top1": 60.0, "top5": 90.0, "codec": "ae-0.0983-cpu"}},
      {"operating_point": "0.0983", "net": "resnet50", "input": "decoded",
       "measured": {"top1": 62.0, "top5": 91.0, "codec": "ae-0.0983-cpu"}},
      {"operating_point": "original", "net": "resnet50", "input": "original",
       "measured": {"top1": 70.0, "top5": 95.0}},
  ]
  if not measured:
    for row in rows:
      del row["measured"]
  path = tmp_path / "classification.json"
  path.write_text(json.dumps({"rows": rows}))
  return path


@pytest.fixture(scope="module", name="cli_run")
def fixture_cli_run(tmp_path_factory, figure_recorder):
  """One real run of the binary: (exit status, stdout, the JSON, the figure's path, the figures
  it saved)."""
  tmp_path = tmp_path_factory.mktemp("benchmark")
  accuracy = _accuracy_file(tmp_path)
  out_json, out_png = tmp_path / "benchmark.json", tmp_path / "fig6.png"
  # A module-scoped fixture cannot use capsys; the binary prints through sys.stdout.
  stdout = io.StringIO()
  with contextlib.redirect_stdout(stdout), figure_recorder() as saved:
    status = _cli(*TINY_FLAGS, f"--paths={','.join(_RUN_PATHS)}", f"--json={out_json}",
                  f"--accuracy_results={accuracy}", f"--figure={out_png}")
  return status, stdout.getvalue(), json.loads(out_json.read_text()), out_png, saved


def test_the_json_has_every_path_with_multiply_adds_and_median_and_spread(cli_run):
  status, _, result, _, _ = cli_run
  assert status == 0
  rows = {r["name"]: r for r in result["paths"]}
  assert set(rows) == set(_RUN_PATHS)
  for row in rows.values():
    assert row["multiply_adds"] > 0
    t = row["per_image_seconds"]
    assert len(t["samples"]) == 2
    assert t["min"] <= t["q1"] <= t["median"] <= t["q3"] <= t["max"]
  # The same nets, counted once: from files costs what the net costs.
  assert rows["entropy+cresnet39"]["multiply_adds"] == rows["cresnet39"]["multiply_adds"]
  assert rows["decoder+resnet50"]["multiply_adds_by_component"]["decoder"] > 0
  assert rows["cresnet39-d"]["batch_size"] == 2
  assert result["inputs"]["latent_shape"] == [4, 4, 8]
  assert result["files"]["count"] == 2 and result["files"]["tfci_mean_bpp"] > 0
  assert 1 <= result["files"]["jpeg_quality"] <= 95
  assert result["command"].startswith("tfcdi-benchmark --paths=cresnet39,")
  # Each net was traced once, before the timing: no timed call paid for tracing.
  traces = {name: s["traces"] for name, s in result["stages"].items()}
  assert traces.pop("entropy_decode") is None and traces.pop("jpeg_decode") is None
  assert set(traces.values()) == {1}


def test_the_json_compares_latent_paths_with_decoding_paths(cli_run):
  _, stdout, result, _, _ = cli_run
  comparisons = {(c["path"], c["baseline"]): c for c in result["comparisons"]}
  assert set(comparisons) == {
      ("cresnet39", "decoder+resnet50"), ("entropy+cresnet39", "entropy+decoder+resnet50"),
      ("entropy+cresnet39", "jpeg+resnet50"), ("cresnet39-d", "decoder+resnet50-d")}
  c = comparisons[("cresnet39", "decoder+resnet50")]
  assert c["published_ratio"] == pytest.approx(2.27, abs=0.005)
  assert c["multiply_add_ratio"] > 1 and c["speedup"] > 0
  assert comparisons[("cresnet39-d", "decoder+resnet50-d")]["published_ratio"] is None
  assert "speed-up" in stdout and "decoder+resnet50" in stdout


def test_the_figure_is_drawn_from_the_measured_rows(cli_run):
  _, stdout, result, png, saved = cli_run
  assert png.exists() and png.stat().st_size > 0
  points = {(p["net"], p["input"]): p for p in result["figure"]["points"]}
  assert set(points) == {("cresnet39", "latent"), ("resnet50", "decoded"),
                         ("resnet50", "original")}
  assert points[("resnet50", "decoded")]["decoder_multiply_adds"] > 0
  assert points[("resnet50", "original")]["decoder_multiply_adds"] == 0
  assert result["figure"]["published_points"]  # the paper's Fig. 6 panel, labelled published
  assert "Fig. 6 analog:" in stdout
  # A measured panel at the benchmark's point, then the paper's; each arm at its multiply-adds
  # (a decoded arm twice: the net alone, and with the decoder's cost).
  measured, paper = saved[png].axes
  op = result["config"]["operating_point"]
  assert measured.get_title() == f"measured, {op} bpp"
  assert paper.get_title().startswith("published (paper, ImageNet), ")
  assert measured.get_xscale() == "log" and paper.get_xscale() == "linear"
  drawn = saved.series(measured)
  latent, decoded = points[("cresnet39", "latent")], points[("resnet50", "decoded")]
  original = points[("resnet50", "original")]
  assert drawn == {
      "compressed representation (cResNet)": ([latent["net_multiply_adds"] / 1e9],
                                              [latent["accuracy"]]),
      "decoded RGB (ResNet), inference only": ([decoded["net_multiply_adds"] / 1e9],
                                               [decoded["accuracy"]]),
      "decoded RGB (ResNet), with decoding": (
          [(decoded["net_multiply_adds"] + decoded["decoder_multiply_adds"]) / 1e9],
          [decoded["accuracy"]]),
      "original RGB (ResNet)": ([original["net_multiply_adds"] / 1e9], [original["accuracy"]])}
  assert [t.get_text() for t in measured.get_legend().get_texts()] == list(drawn)
  assert len(saved.series(paper)) >= 2
  saved.assert_drawn(png, colours=("tab:blue", "tab:orange", "tab:green", "tab:red"),
                     min_pixels=5)


@pytest.mark.parametrize("case", ["no measured rows", "no file"])
def test_the_figure_is_skipped_with_a_message_without_measured_rows(tmp_path, capsys, case):
  accuracy = (_accuracy_file(tmp_path, measured=False) if case == "no measured rows"
              else tmp_path / "missing.json")
  out_json, out_png = tmp_path / "benchmark.json", tmp_path / "fig6.png"
  status = _cli(*TINY_FLAGS, "--paths=cresnet39", f"--json={out_json}",
                f"--accuracy_results={accuracy}", f"--figure={out_png}")
  assert status == 0
  assert not out_png.exists()
  skipped = json.loads(out_json.read_text())["figure"]["skipped"]
  assert skipped and f"Fig. 6 analog skipped: {skipped}" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (("--batch_size=0",), "batch_size must be a positive integer"),
    (("--paths=cresnet39,resnet99",), "unknown path 'resnet99'"),
    (("--operating_point=0.5",), "unknown operating point"),
    (("--decoder_filters=64,x",), "--decoder_filters must be two integers"),
    (("--input_size=100",), "multiple of 8"),
    (("stray",), "unexpected arguments: stray"),
    (("--codec=/nonexistent/codec.npz",), "not a readable tfcdi codec bundle"),
])
def test_bad_flags_give_a_one_line_error(capsys, args, message):
  assert _cli(*args) == 1
  err = capsys.readouterr().err
  assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_gpu_asked_for_without_one_is_a_one_line_error(capsys):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if tf.config.list_physical_devices("GPU"):
    pytest.skip("expected: on a machine with a GPU there is nothing to refuse")
  assert _cli("--device=gpu", "--paths=cresnet39") == 1
  err = capsys.readouterr().err
  assert err.startswith("error: --device=gpu") and err.count("\n") == 1


def test_an_unparsable_flag_is_a_one_line_error_from_the_command_line():
  done = subprocess.run([sys.executable, "-m", "experiments.benchmark", "--device=tpu"],
                        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                        check=False)
  assert done.returncode == 1
  assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
  assert "device" in done.stderr
