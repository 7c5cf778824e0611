"""tfcdi beside the tools its users would otherwise pick, timed in one run on Kodak.

  python -m tools.peer_benchmark --compressai_python=/work/venvs/compressai/bin/python \
      --workdir=/work/runs/peers --output=reports/benchmarks/peers.json

Per Kodak image, the compress and decompress time of
- tfcdi's bmshj2018-hyperprior, imported (tfcdi-import-codec) from the very checkpoint that
- CompressAI runs itself (tools/compressai_timing.py, in CompressAI's own venv: it pins
  numpy<2; see tools/compressai_fixtures.py for that venv), at CompressAI's N and M;
- Pillow's JPEG (libjpeg, quality --jpeg_quality) and OpenJPEG (imagecodecs, fixed quality
  --jpeg2000_psnr dB) as the classical references.
Entropy coding is included, process start-up and file I/O are not: each side loads its model
once and codes each image once untimed first. The four run in turns, R rounds, each round
starting at the next codec, so that a change of this shared machine's load falls on all alike;
each image's time is its median over the rounds, and the ratios tfcdi / CompressAI are taken
per image and summarised by their median, min and max. tfcdi's decoded images are compared with
CompressAI's (PSNR), which shows that both ran the same model.

The weights: no CompressAI zoo weights can be fetched here, so the checkpoint is CompressAI's own
random initialisation (torch.manual_seed(quality), written by compressai_fixtures.py
--kodak_check). The transforms cost the same whatever the weights; the entropy coders code what
such a model produces (about 0.17 bpp on Kodak at quality 3).

The file-to-label side (entropy decoding + cResNet against JPEG decoding + ResNet-50) is the
runtime benchmark's (tfcdi-benchmark, reports/benchmarks/benchmark.json): its comparison rows
are copied into the output, with their source.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

from experiments import _cli
from tools import _tables

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHITECTURE = "bmshj2018-hyperprior"
CODECS = ("tfcdi", "compressai", "jpeg", "jpeg2000")
# The runtime benchmark's file-to-label comparisons: (path, baseline).
FILE_TO_LABEL = (("entropy+cresnet51", "jpeg+resnet50"), ("entropy+cresnet39", "jpeg+resnet50"),
                 ("entropy+cresnet51", "entropy+decoder+resnet50"))

_PYTHON = flags.DEFINE_string("compressai_python", None,
                              "The Python of a venv with torch and compressai 1.2.8.")
_KODAK = flags.DEFINE_string("kodak_dir", os.path.join(REPO, "..", "shared", "data", "kodak"),
                             "The Kodak PNGs.")
_IMAGES = flags.DEFINE_integer("images", 0, "Only the first N images (0: all).", lower_bound=0)
_QUALITY = flags.DEFINE_integer("quality", 3, "CompressAI's quality (fixes N and M).",
                                lower_bound=1, upper_bound=8)
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Timed rounds per codec.", lower_bound=1)
_THREADS = flags.DEFINE_integer("threads", os.cpu_count() or 1,
                                "torch's threads (TensorFlow uses every core by default).")
_JPEG_QUALITY = flags.DEFINE_integer("jpeg_quality", 75, "Pillow JPEG quality.")
_J2K_PSNR = flags.DEFINE_float("jpeg2000_psnr", 30.0, "OpenJPEG's fixed-quality target, dB.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoint, bundle and decoded images go here.")
_RUNTIME = flags.DEFINE_string(
    "runtime_benchmark", os.path.join(REPO, "reports", "benchmarks", "benchmark.json"),
    "The runtime benchmark's JSON, for the file-to-label rows.")
_OUTPUT = flags.DEFINE_string("output", None, "Where to write the JSON.")


class _CompressAI:
  """The CompressAI worker process: one 'round' line in, one JSON line of timings out."""

  def __init__(self, python, checkpoint, quality, threads, paths, decoded_dir):
    command = [python, os.path.join(REPO, "tools", "compressai_timing.py"),
               f"--checkpoint={checkpoint}", f"--architecture={ARCHITECTURE}",
               f"--quality={quality}", f"--threads={threads}", f"--decoded_dir={decoded_dir}",
               *paths]
    self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True)
    self.ready = self._read()

  def _read(self) -> dict:
    line = self.process.stdout.readline()
    if not line:
      raise RuntimeError("the CompressAI worker stopped (its error is printed above)")
    return json.loads(line)

  def round(self) -> dict:
    self.process.stdin.write("round\n")
    self.process.stdin.flush()
    return self._read()["images"]

  def close(self):
    self.process.stdin.close()
    self.process.wait(timeout=60)


def _timed(function, *args):
  start = time.perf_counter()
  value = function(*args)
  return time.perf_counter() - start, value


def _classical(images, jpeg_quality, j2k_psnr):
  """{codec: callable(image) -> {compress_s, decompress_s, bytes}} for JPEG and JPEG 2000."""
  import io  # pylint: disable=g-import-not-at-top
  import imagecodecs  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top

  def jpeg(image):
    def encode():
      buffer = io.BytesIO()
      Image.fromarray(image).save(buffer, format="JPEG", quality=jpeg_quality, optimize=True)
      return buffer.getvalue()
    compress_s, data = _timed(encode)
    decompress_s, _ = _timed(lambda: np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    return {"compress_s": compress_s, "decompress_s": decompress_s, "bytes": len(data)}

  def jpeg2000(image):
    compress_s, data = _timed(lambda: bytes(imagecodecs.jpeg2k_encode(
        image, level=j2k_psnr, codecformat="J2K", reversible=False)))
    decompress_s, _ = _timed(imagecodecs.jpeg2k_decode, data)
    return {"compress_s": compress_s, "decompress_s": decompress_s, "bytes": len(data)}

  for code in (jpeg, jpeg2000):  # untimed first calls, as for the learned codecs
    code(images[0][1])
  return {"jpeg": jpeg, "jpeg2000": jpeg2000}


def _ratio_summary(ratios) -> dict:
  return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def _file_to_label(path: str) -> dict:
  """The runtime benchmark's file-to-label comparisons, with where they come from."""
  try:
    with open(path) as f:
      result = json.load(f)
  except (OSError, ValueError):
    return {"source": path, "rows": [], "note": "no runtime benchmark JSON here"}
  rows = [row for row in result.get("comparisons", [])
          if (row.get("path"), row.get("baseline")) in FILE_TO_LABEL]
  return {"source": os.path.relpath(path, REPO), "command": result.get("command"),
          "device": result.get("device"), "rows": rows}


def aggregate(times: dict, sizes: dict, pixels: dict) -> tuple:
  """(per_image, summary, ratios) of the rounds' timings.

  times[codec][image]: the rounds' (compress_s, decompress_s); sizes[(codec, image)]: bytes;
  pixels[image]: its pixel count. An image's time is its median over the rounds; the summary
  averages those over the images; a ratio tfcdi / compressai is taken per image, then summarised
  (median, min, max), so that one slow image cannot hide in a total.
  """
  codecs = list(times)
  per_image = {
      name: {codec_name: {
          "compress_s": statistics.median(c for c, _ in times[codec_name][name]),
          "decompress_s": statistics.median(d for _, d in times[codec_name][name]),
          "bpp": sizes[(codec_name, name)] * 8 / pixels[name]} for codec_name in codecs}
      for name in pixels}
  summary = {codec_name: {key: statistics.mean(per_image[n][codec_name][key] for n in per_image)
                          for key in ("compress_s", "decompress_s", "bpp")}
             for codec_name in codecs}
  ratios = {f"{step} tfcdi / compressai": _ratio_summary(
      [per_image[n]["tfcdi"][f"{step}_s"] / per_image[n]["compressai"][f"{step}_s"]
       for n in per_image]) for step in ("compress", "decompress")}
  return per_image, summary, ratios


def run(python, kodak_dir, workdir, quality, rounds, threads, jpeg_quality, j2k_psnr,
        num_images=0, runtime_benchmark=None) -> dict:
  """Measures the four codecs on Kodak (see the module docstring); returns the result."""
  from tfcdi import baselines  # pylint: disable=g-import-not-at-top  (TensorFlow)
  from tfcdi import metrics  # pylint: disable=g-import-not-at-top
  from tfcdi.codec import registry  # pylint: disable=g-import-not-at-top
  from tfcdi.codec.importers import compressai  # pylint: disable=g-import-not-at-top

  images = baselines.load_images(kodak_dir, max_images=num_images)
  paths = [os.path.join(kodak_dir, name) for name, _ in images]
  os.makedirs(workdir, exist_ok=True)
  checkpoint = os.path.join(workdir, f"{ARCHITECTURE}_q{quality}_init.pth")
  if not os.path.exists(checkpoint):  # CompressAI's own initialisation, saved by CompressAI
    subprocess.run([python, os.path.join(REPO, "tools", "compressai_fixtures.py"),
                    f"--kodak_check={workdir}", f"--architecture={ARCHITECTURE}",
                    f"--quality={quality}", f"--image={paths[0]}"], check=True)
  bundle = os.path.join(workdir, f"{ARCHITECTURE}_q{quality}_init.npz")
  if not os.path.exists(bundle):
    compressai.import_checkpoint(checkpoint, ARCHITECTURE, quality, bundle)
  codec = registry.load(bundle)

  def tfcdi_code(image):
    compress_s, data = _timed(codec.compress, image)
    decompress_s, decoded = _timed(codec.decompress, data)
    return {"compress_s": compress_s, "decompress_s": decompress_s, "bytes": len(data),
            "decoded": decoded}

  tfcdi_code(images[0][1])  # traces the graphs: never timed
  decoded_dir = tempfile.mkdtemp(dir=workdir, prefix="compressai_decoded_")
  worker = _CompressAI(python, checkpoint, quality, threads, paths, decoded_dir)
  classical = _classical(images, jpeg_quality, j2k_psnr)
  load_before = os.getloadavg()
  times = {codec_name: {name: [] for name, _ in images} for codec_name in CODECS}
  sizes, tfcdi_decoded = {}, {}
  try:
    for r in range(rounds):
      for codec_name in CODECS[r % len(CODECS):] + CODECS[:r % len(CODECS)]:
        if codec_name == "compressai":
          rows = worker.round()
        else:
          code = tfcdi_code if codec_name == "tfcdi" else classical[codec_name]
          rows = {name: code(image) for name, image in images}
        for name, row in rows.items():
          times[codec_name][name].append((row["compress_s"], row["decompress_s"]))
          sizes[(codec_name, name)] = row["bytes"]
          if "decoded" in row:
            tfcdi_decoded[name] = row["decoded"]
  finally:
    worker.close()
  load_after = os.getloadavg()

  from PIL import Image  # pylint: disable=g-import-not-at-top
  agreement = {name: float(metrics.psnr(tfcdi_decoded[name], np.asarray(
      Image.open(os.path.join(decoded_dir, name))))) for name, _ in images}
  pixels = {name: image.shape[0] * image.shape[1] for name, image in images}
  per_image, summary, ratios = aggregate(times, sizes, pixels)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return {
      "note": "Per-image seconds are medians over the rounds; summary rows average them over "
              "the images; ratios are per image (median, min, max). The weights are CompressAI's "
              "random initialisation (no zoo weights here): timing, not rate-distortion.",
      "model": {"architecture": ARCHITECTURE, "quality": quality,
                "num_filters": codec.model.num_filters,
                "latent_channels": codec.model.latent_channels,
                "tfcdi_codec": codec.name, "fingerprint": codec.fingerprint.hex(),
                "weights": "CompressAI's initialisation, torch.manual_seed(quality)"},
      "images": len(images), "rounds": rounds, "cpu_count": os.cpu_count(),
      "threads": {"torch": worker.ready["threads"],
                  "tensorflow_intra_op": tf.config.threading.get_intra_op_parallelism_threads()
                  or os.cpu_count()},
      "versions": {**worker.ready["versions"], "tensorflow": tf.__version__,
                   **baselines._library_versions()},  # pylint: disable=protected-access
      "settings": {"jpeg_quality": jpeg_quality, "jpeg2000_target_psnr_db": j2k_psnr},
      "load_average": {"before": load_before, "after": load_after},
      "summary": summary, "ratios": ratios,
      # Identical images have an infinite PSNR, which JSON cannot hold: they are counted.
      "decoded_tfcdi_vs_compressai": {
          "identical_images": int(sum(np.isinf(v) for v in agreement.values())),
          "lowest_psnr_db_of_the_others": min((v for v in agreement.values()
                                               if np.isfinite(v)), default=None)},
      "per_image": per_image,
      "file_to_label": _file_to_label(runtime_benchmark) if runtime_benchmark else None,
  }


def markdown(result: dict) -> str:
  """The side-by-side table of a result."""
  lines = [f"Kodak ({result['images']} images), {result['model']['architecture']} quality "
           f"{result['model']['quality']} (N={result['model']['num_filters']}, "
           f"M={result['model']['latent_channels']}), {result['rounds']} rounds, "
           f"{result['cpu_count']} cores; mean per-image seconds:", "",
           "| codec | compress s | decompress s | bpp |", "| --- | --- | --- | --- |"]
  names = {"tfcdi": "tfcdi (imported)", "compressai": "CompressAI " + result["versions"].get(
      "compressai", ""), "jpeg": "JPEG (Pillow)", "jpeg2000": "JPEG 2000 (OpenJPEG)"}
  for codec_name, row in result["summary"].items():
    lines.append(f"| {names[codec_name]} | {row['compress_s']:.3f} | {row['decompress_s']:.3f} "
                 f"| {row['bpp']:.4f} |")
  lines.append("")
  for name, r in result["ratios"].items():
    lines.append(f"- {name}: {r['median']:.2f}x (per image {r['min']:.2f}-{r['max']:.2f})")
  return "\n".join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if missing := _cli.missing_flags(_PYTHON, _WORKDIR, _OUTPUT):
    raise app.UsageError(missing)
  if not os.access(_PYTHON.value, os.X_OK):
    raise app.UsageError(f"--compressai_python: {_PYTHON.value} is not an executable; make the "
                         "venv as tools/compressai_fixtures.py says")
  result = run(_PYTHON.value, _KODAK.value, _WORKDIR.value, _QUALITY.value, _ROUNDS.value,
               _THREADS.value, _JPEG_QUALITY.value, _J2K_PSNR.value, _IMAGES.value,
               _RUNTIME.value)
  result["command"] = " ".join(["python -m tools.peer_benchmark", *sys.argv[1:]])
  _tables.write_beside(_OUTPUT.value, result, markdown(result) + "\n")
  return 0


if __name__ == "__main__":
  app.run(main)
