r"""Peak memory of tfcdi-compress and tfcdi-decompress on a large photo, measured.

  python -m tools.memory_check --sizes=4000x4000 --output=reports/codec/memory_check.json
  python -m tools.memory_check --codecs=0.635,q8 --sizes=1000x1000,4000x4000

For each codec (an autoencoder operating point: 0.0983, 0.330, 0.635; a hyperprior quality: q1,
q4, q8) and each size, the photo (a Kodak image upscaled, bicubic, to that size) is compressed
and the file decompressed, each by the binary (`python -m experiments.compress`, `...decompress`
of this checkout) in a process of its own. The peak resident set size of that process is what
the kernel reports for it when it ends (os.wait4: the child's own rusage, the figure
getrusage(RUSAGE_CHILDREN) gives for a single child). It includes everything the binary holds:
Python, TensorFlow, the model, the image, its latents and the file.

Prints one line per codec and size; --output writes them as JSON; the exit status is 1 if a
run fails or peaks above --budget_mb.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
from PIL import Image

from tools import _sizes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KODAK = os.path.join(REPO, "..", "shared", "data", "kodak")
SHIPPED = ("0.0983", "0.330", "0.635", "q1", "q4", "q8")
DEFAULT_SOURCE = os.path.join(KODAK, "kodim23.png")

_CODECS = flags.DEFINE_list("codecs", list(SHIPPED), "Shipped codecs to measure: autoencoder "
                            "operating points (0.0983, 0.330, 0.635) and hyperprior qualities "
                            "(q1, q4, q8).", allow_override=True)
_SIZES = flags.DEFINE_list("sizes", ["4000x4000"], "Photo sizes, WIDTHxHEIGHT.")
_SOURCE = flags.DEFINE_string("source", DEFAULT_SOURCE,
                              "The image upscaled to each size.")
_BUDGET_MB = flags.DEFINE_float("budget_mb", 1500.0, "The peak (MB, 10^6 bytes) above which a "
                                "run counts as a failure.")
# allow_override: the test process imports both tools, which share these flag names.
_OUTPUT = flags.DEFINE_string("output", None, "Where to write the JSON (optional).",
                              allow_override=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where the photos and files go (default: a "
                               "temporary folder, removed afterwards).")


def codec_flags(codec: str) -> list:
  """The compress binary's flags that pick a shipped codec ("0.635", "q4")."""
  if codec.startswith("q") and codec[1:].isdigit():
    return ["--codec=hyperprior", f"--quality={int(codec[1:])}"]
  try:
    float(codec)
  except ValueError:
    raise app.UsageError(f"--codecs: {codec!r} is neither an operating point (0.0983, 0.330, "
                         "0.635) nor a hyperprior quality (q1, q4, q8)") from None
  return ["--codec=autoencoder", f"--operating_point={codec}"]


def make_photo(source: str, size: tuple, path: str) -> None:
  """`source` resized (bicubic) to size = (width, height), saved as PNG at `path`."""
  with Image.open(source) as image:
    image.convert("RGB").resize(size, Image.Resampling.BICUBIC).save(path)


def peak_of(command: list) -> dict:
  """Runs `command` (from the repository's root) to its end: its status, seconds, peak RSS (MB)
  and the last line of its stderr."""
  start = time.monotonic()
  with tempfile.TemporaryFile() as err:
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)
    # wait4, not Popen.wait: it hands back the child's own resource usage.
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    err.seek(0)
    lines = err.read().decode(errors="replace").strip().splitlines()
  # Linux reports ru_maxrss in KiB.
  return {"status": process.returncode, "seconds": round(time.monotonic() - start, 1),
          "peak_mb": round(usage.ru_maxrss * 1024 / 1e6, 1),
          "stderr": lines[-1] if lines else ""}


def measure(codec: str, size: tuple, folder: str, source: str) -> dict:
  """Compresses then decompresses a photo of `size` with a shipped codec; both peaks."""
  width, height = size
  photo = os.path.join(folder, f"photo_{width}x{height}.png")
  if not os.path.exists(photo):
    make_photo(source, size, photo)
  coded = os.path.join(folder, f"photo_{width}x{height}_{codec}.tfci")
  decoded = os.path.join(folder, f"photo_{width}x{height}_{codec}.png")
  common = [f"--max_pixels={width * height}", "--overwrite"]
  result = {"codec": codec, "width": width, "height": height}
  result["compress"] = peak_of([sys.executable, "-m", "experiments.compress",
                                *codec_flags(codec), *common, photo, coded])
  if result["compress"]["status"] == 0:
    result["file_bytes"] = os.path.getsize(coded)
    result["decompress"] = peak_of([sys.executable, "-m", "experiments.decompress", *common,
                                    coded, decoded])
    if result["decompress"]["status"] == 0:
      with Image.open(decoded) as image:
        result["decoded_size"] = list(image.size)
  return result


def failures(result: dict, budget_mb: float) -> list:
  """What went wrong in a measurement: failed steps, peaks over budget, a wrong output size."""
  problems = []
  for step in ("compress", "decompress"):
    run = result.get(step)
    if run is None:
      continue
    if run["status"] != 0:
      problems.append(f"{step} failed ({run['stderr']})")
    elif run["peak_mb"] > budget_mb:
      problems.append(f"{step} peaked at {run['peak_mb']:.0f} MB, over {budget_mb:.0f} MB")
  if "decoded_size" in result and result["decoded_size"] != [result["width"], result["height"]]:
    problems.append(f"decoded to {result['decoded_size']}")
  return problems


def line(result: dict) -> str:
  parts = [f"{result['codec']:>6} {result['width']}x{result['height']}"]
  for step in ("compress", "decompress"):
    run = result.get(step)
    if run is not None and run["status"] == 0:
      parts.append(f"{step} {run['peak_mb']:.0f} MB in {run['seconds']:.0f} s")
  if "file_bytes" in result:
    bpp = 8 * result["file_bytes"] / (result["width"] * result["height"])
    parts.append(f"{result['file_bytes']} bytes ({bpp:.3f} bpp)")
  return ", ".join(parts)


def readme_row(result: dict) -> str:
  """A measurement as the README's table row: codec, size, both peaks (GB), file size."""
  peaks = [f"{result[step]['peak_mb'] / 1000:.2f} GB" for step in ("compress", "decompress")]
  return (f"| {result['codec']} | {result['width']} x {result['height']} | {peaks[0]} | "
          f"{peaks[1]} | {8 * result['file_bytes'] / (result['width'] * result['height']):.3f} |")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  codecs = list(_CODECS.value)
  for codec in codecs:
    codec_flags(codec)
  sizes = [_sizes.parse_size(s) for s in _SIZES.value]
  if not os.path.isfile(_SOURCE.value):
    raise app.UsageError(f"--source: {_SOURCE.value}: no such file")
  results, failed = [], False
  with tempfile.TemporaryDirectory() as scratch:
    folder = _WORKDIR.value or scratch
    os.makedirs(folder, exist_ok=True)
    for size in sizes:
      for codec in codecs:
        result = measure(codec, size, folder, _SOURCE.value)
        problems = failures(result, _BUDGET_MB.value)
        result["problems"] = problems
        results.append(result)
        print(line(result) + "".join(f"; {p}" for p in problems), flush=True)
        failed = failed or bool(problems)
        if _OUTPUT.value:  # after each measurement: a run takes minutes per codec
          write_results(_OUTPUT.value, results, _SOURCE.value, _BUDGET_MB.value)
  return 1 if failed else 0


def write_results(path: str, results: list, source: str, budget_mb: float) -> None:
  """Writes `results` to the JSON at `path`, keeping its other codecs' and sizes' results (so
  that codecs can be measured one run at a time)."""
  key = lambda r: (r["codec"], r["width"], r["height"])  # noqa: E731
  kept = []
  if os.path.exists(path):
    with open(path) as f:
      kept = json.load(f)["results"]
  new = {key(r) for r in results}
  merged = [r for r in kept if key(r) not in new] + results
  order = {codec: i for i, codec in enumerate(SHIPPED)}
  merged.sort(key=lambda r: (r["width"] * r["height"], order.get(r["codec"], len(order))))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump({"source": os.path.basename(source), "budget_mb": budget_mb,
               "cpu_count": os.cpu_count(), "results": merged}, f, indent=1)


if __name__ == "__main__":
  app.run(main)
