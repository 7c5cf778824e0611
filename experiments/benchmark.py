r"""tfcdi-benchmark: multiply-adds and measured per-image time of every path, in one run.

  tfcdi-benchmark --json=reports/benchmarks/benchmark.json \
      --figure=reports/benchmarks/fig6_accuracy_vs_multiply_adds.png
  tfcdi-benchmark --paths=cresnet39,cresnet51,decoder+resnet50 --repeats=7
  tfcdi-benchmark --device=gpu ...                      # same output, on the GPU

Paths (--paths takes names, the groups classification / files / segmentation, or all):
cResNet-39/51/72 on the latent; decoder + ResNet-50/71 and ResNet-50/71 alone; from real files,
entropy decoding + cResNet, entropy decoding + decoder + ResNet, JPEG decoding (same bpp) +
ResNet-50; and the DeepLab "-d" segmenters likewise. Defaults are the paper's benchmark
(Appendix A.9): batch 256 for classification and 20 for segmentation, 224x224 RGB, 28x28 latent.
Every stage is traced and warmed up untimed, then all are timed round-robin, so that the load of
a shared machine falls on all alike; the speed-ups beside the multiply-add ratios (measured from
the graphs, and the paper's published counts) are the result, not the absolute times.

Also draws the Fig. 6 analog (accuracy against multiply-adds, with and without the decoder's
cost) from committed classification results (--accuracy_results), when they have measured rows.
The timing lives in tfcdi/benchmark.py; the arms' multiply-adds in tfcdi/nets/arm_costs.py, the
plot in tfcdi/reporting/paper_figures.py.
"""

import json
import os
import shlex

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

from experiments import _cli
from tfcdi import benchmark
from tfcdi.reporting import paper_figures
from tfcdi.reporting import published

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DEFAULT_IMAGE_DIR = os.path.join(_REPO_ROOT, "..", "shared", "data", "imagenette2_224", "val")
_DEFAULT_ACCURACY = os.path.join(_REPO_ROOT, "reports", "classification", "classification.json")

# Flags that other binaries define too (batch_size, width_multiplier, operating_point, codec,
# repeats) have the same type and default there and allow_override, so that tests can import the
# binaries into one process; None stands for this binary's default.
_PATHS = flags.DEFINE_list(
    "paths", ["all"], "Paths to run: names (e.g. cresnet51,decoder+resnet50), groups "
    f"({', '.join(benchmark.GROUPS)}) or all. Names: {', '.join(benchmark.PATHS)}.")
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", None, f"Images per call for classification and file decoding (default "
    f"{benchmark.PAPER_BATCH_SIZE}, the paper's).", allow_override=True)
_SEG_BATCH_SIZE = flags.DEFINE_integer(
    "seg_batch_size", benchmark.PAPER_SEG_BATCH_SIZE,
    "Images per call for segmentation (the paper's 20).")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed rounds (median and spread over these).",
                                allow_override=True)
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed rounds first (tracing is never timed).")
_WIDTH = flags.DEFINE_float("width_multiplier", None,
                            "Width of every ResNet / cResNet (default 1.0, the paper's nets).",
                            allow_override=True)
_DECODER_FILTERS = flags.DEFINE_list(
    "decoder_filters", None, "The decoder's two filter counts (default 64,128 times "
    "--width_multiplier).")
_OPERATING_POINT, _CODEC = _cli.define_codec_flags()
_DEVICE = flags.DEFINE_enum("device", "cpu", list(benchmark.DEVICES),
                            "Where to run; gpu fails if TensorFlow sees none.")
_JIT = flags.DEFINE_bool("jit_compile", False, "Compile every stage with XLA.")
_IMAGE_SIZE = flags.DEFINE_integer("input_size", benchmark.PAPER_IMAGE_SIZE,
                                   "Side of the RGB input (a multiple of 8).")
_IMAGE_DIR = flags.DEFINE_string(
    "image_dir", None, "Images to make the .tfci and JPEG files from (default: the shared "
    "Imagenette validation split if present, else synthetic images).")
_NUM_FILES = flags.DEFINE_integer("num_files", 16, "Distinct images coded as files.")
_JSON = flags.DEFINE_string("json", None, "Write the results here (JSON).", allow_override=True)
_ACCURACY = flags.DEFINE_string(
    "accuracy_results", _DEFAULT_ACCURACY,
    "Classification results (tools/classification_table.py's classification.json) for the "
    "Fig. 6 analog; skipped when absent or without measured rows.")
_METRIC = flags.DEFINE_enum("accuracy_metric", "top5", ["top1", "top5"],
                            "Accuracy on the figure's y axis (the paper's Fig. 6: top-5).")
_FIGURE = flags.DEFINE_string("figure", None, "Draw the Fig. 6 analog here (PNG).")
_PAPER_NUMBERS = _cli.define_paper_numbers_flag()


def _config() -> benchmark.BenchmarkConfig:
  """The flags as a validated BenchmarkConfig (raises BenchmarkError / ValueError)."""
  filters = None
  if _DECODER_FILTERS.value is not None:
    try:
      filters = tuple(int(f) for f in _DECODER_FILTERS.value)
    except ValueError:
      raise benchmark.BenchmarkError(
          f"--decoder_filters must be two integers, got {_DECODER_FILTERS.value}") from None
  operating_point = _OPERATING_POINT.value
  if operating_point is None and _CODEC.value:
    # As the other codec binaries: a bundle given alone brings its own operating point.
    with _cli.native_stderr_silenced():
      from tfcdi.codec import pretrained
    operating_point = pretrained.read_metadata(_CODEC.value).get("operating_point")
  image_dir = _IMAGE_DIR.value
  if image_dir is None and os.path.isdir(_DEFAULT_IMAGE_DIR):
    image_dir = os.path.normpath(_DEFAULT_IMAGE_DIR)
  config = benchmark.BenchmarkConfig(
      paths=tuple(_PATHS.value),
      batch_size=(benchmark.PAPER_BATCH_SIZE if _BATCH_SIZE.value is None
                  else _BATCH_SIZE.value),
      seg_batch_size=_SEG_BATCH_SIZE.value, repeats=_REPEATS.value, warmup=_WARMUP.value,
      width_multiplier=1.0 if _WIDTH.value is None else _WIDTH.value,
      operating_point=operating_point or _cli.DEFAULT_OPERATING_POINT,
      decoder_filters=filters, image_size=_IMAGE_SIZE.value, num_files=_NUM_FILES.value,
      image_dir=image_dir, codec_path=_CODEC.value, device=_DEVICE.value,
      jit_compile=_JIT.value)
  return config.validate()


def _load_accuracy(path):
  """(summary or None, why not); a file that is there but unreadable is an error."""
  if not path:
    return None, "no --accuracy_results given"
  if not os.path.exists(path):
    return None, f"no accuracy results at {path}"
  try:
    with open(path) as f:
      summary = json.load(f)
  except (OSError, ValueError) as e:
    raise benchmark.BenchmarkError(f"{path} is not readable JSON ({e})") from None
  if not isinstance(summary, dict) or not isinstance(summary.get("rows"), list):
    raise benchmark.BenchmarkError(f"{path} has no 'rows' list; expected the classification.json "
                                   "of tools/classification_table.py")
  return summary, None


def _arm_results(summary: dict, summary_dir: str, default_width: float):
  """The results file behind each measured row (its width and class count are what Fig. 6
  counts), or, where a row cites none, a stand-in at default_width; with notes saying which."""
  results, notes = [], []
  for row in summary.get("rows", []):
    measured = row.get("measured") or {}
    if not measured:
      continue
    source = row.get("source")
    path = None if not source else (source if os.path.isabs(source)
                                    else os.path.join(summary_dir, source))
    try:
      with open(path) as f:
        results.append(json.load(f))
      continue
    except (TypeError, OSError, ValueError):
      pass
    results.append({"operating_point": row["operating_point"], "net": row["net"],
                    "input": row["input"], "config": {"width_multiplier": default_width},
                    "num_classes": 1000, "codec": {"name": measured.get("codec")}})
    notes.append(f"{row['operating_point']} {row['net']} {row['input']}: run file not found; "
                 f"counted at width {default_width:g}")
  return results, notes


def _figure(summary, skipped, config, paper, log=print) -> dict:
  """Draws the Fig. 6 analog if there are measured rows and --figure; returns what it did."""
  out = {"path": None, "metric": _METRIC.value, "points": [], "published_points": [],
         "notes": [], "skipped": skipped}
  if summary is not None:
    results, notes = _arm_results(summary, os.path.dirname(os.path.abspath(_ACCURACY.value)),
                                  config.width_multiplier)
    from tfcdi.nets import arm_costs  # pylint: disable=g-import-not-at-top
    costs = arm_costs.count_arm_costs(results,
                                      default_decoder_filters=config.resolved_decoder_filters)
    points, more_notes = paper_figures.fig6_points(summary, costs, _METRIC.value)
    out.update(points=points, notes=notes + more_notes)
    if not points:
      out["skipped"] = f"{_ACCURACY.value} has no measured {_METRIC.value} rows"
    elif not _FIGURE.value:
      out["skipped"] = "give --figure=PATH to draw it"
  if out["skipped"]:
    log(f"Fig. 6 analog skipped: {out['skipped']}")
    return out
  out["published_points"] = published.fig6_points(paper, _METRIC.value)
  paper_figures.plot_accuracy_vs_multiply_adds(out["points"], _FIGURE.value, _METRIC.value,
                                           out["published_points"])
  out["path"] = os.path.abspath(_FIGURE.value)
  for note in out["notes"]:
    log(f"note: {note}")
  log(f"Fig. 6 analog: {_FIGURE.value} ({len(out['points'])} measured arms)")
  return out


def main(argv):
  if len(argv) > 1:
    _cli.error(f"unexpected arguments: {' '.join(argv[1:])}")
    return 1
  try:
    config = _config()
    summary, skipped = _load_accuracy(_ACCURACY.value)
    with _cli.native_stderr_silenced():
      paper = published.load_paper_numbers(_PAPER_NUMBERS.value)
      benchmark.device_name(config.device)  # fails now, not after the files are made
  except ValueError as e:  # BenchmarkError included
    _cli.error(e)
    return 1
  try:
    result = benchmark.run_benchmark(config, paper["flops_1e9_at_224"],
                                     log=lambda message: print(message, flush=True))
  except ValueError as e:
    _cli.error(e)
    return 1
  print()
  print(benchmark.format_table(result))
  print()
  result["published_source"] = os.path.abspath(
      _PAPER_NUMBERS.value or published.DEFAULT_PAPER_NUMBERS)
  result["figure"] = _figure(summary, skipped, config, paper)
  result["command"] = _command_line()
  if _JSON.value:
    os.makedirs(os.path.dirname(os.path.abspath(_JSON.value)), exist_ok=True)
    with open(_JSON.value, "w") as f:
      json.dump(result, f, indent=2)
    print(f"wrote {_JSON.value}")
  return 0


def _command_line() -> str:
  """The invocation, rebuilt from the flags given explicitly (recorded in the JSON)."""
  holders = (_PATHS, _BATCH_SIZE, _SEG_BATCH_SIZE, _REPEATS, _WARMUP, _WIDTH, _DECODER_FILTERS,
             _OPERATING_POINT, _CODEC, _DEVICE, _JIT, _IMAGE_SIZE, _IMAGE_DIR, _NUM_FILES, _JSON,
             _ACCURACY, _METRIC, _FIGURE, _PAPER_NUMBERS)
  given = []
  for holder in holders:
    if holder.present:
      value = holder.value
      given.append(f"--{holder.name}={','.join(value) if isinstance(value, list) else value}")
  return shlex.join(["tfcdi-benchmark", *given])


def run():
  _cli.run(main)


if __name__ == "__main__":
  run()
