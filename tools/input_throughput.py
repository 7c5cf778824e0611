"""How many CPU cores keep an accelerator fed: each classifier input pipeline's examples/s per
core, and the encoder's images/s (issue 25).

  python -m tools.input_throughput --data_dir=../shared/data/imagenette2_224 \
      --store_dir=runs/store_0.0983 --output=reports/benchmarks/input_throughput.json

The pipelines are the training input of classification_input.train_input, exactly as a
classifier trains on it (shuffle, per-example stateless crop and flip, batches of --batch_size,
the paper's 64 by default):

  original        Imagenette JPEGs: decode, the 256-px square view, a random 224 crop, mirroring
  decoded         the store's decoded cache: raw uint8 views, random 224 crop, mirroring
  latent          the store's .tfci files, range-decoded on the fly (a numpy_function: Python
                  holds the GIL while constriction decodes), random 28 crop of the latent
  latent (cache)  the store's latent cache (latent_store.build_latent_cache, built here if the
                  store has none): the same symbols, decoded once

Each runs with tf.data's private thread pool at each --threads size. The pool bounds tf.data's
own threads, not the process (JPEG decoding and the iterating thread add to it), so per core is
examples per CPU-second of the whole process (time.process_time over the timed batches), which
another job on this shared machine also does not inflate the way it does wall time;
examples/s is wall time. A pool of 2 against 1 shows whether a pipeline scales with cores (a
GIL-bound step does not). The pipelines take turns over --rounds rounds.

The encoder: encoding 256-px views into .tfci files with the store's codec (transform, quantizer
and range coder, as tfcdi-encode-dataset does), and the encoder transform alone at the paper's
widths (randomly initialised: the multiply-adds are what cost), in images per CPU-second.

Cores to keep an accelerator fed = its examples/s / the per-core rate. No accelerator's
throughput is measured here, so the output gives cores per 1,000 examples/s; pass
--accelerator_images_per_second (your GPU's measured training throughput at the batch size) to
get the count for it.
"""

import dataclasses
import os
import statistics
import sys
import time

from absl import app
from absl import flags
import tensorflow as tf

from experiments import _cli
from tfcdi import configs
from tfcdi.codec import model as model_lib
from tfcdi.codec import operating_points
from tfcdi.codec import registry
from tfcdi.codec.interface import CodecError
from tfcdi.data import classification_input
from tfcdi.data import images as images_lib
from tfcdi.data import latent_store
from tools import _tables

PER_THOUSAND = 1000.0

_DATA_DIR = flags.DEFINE_string("data_dir", None, "An ImageFolder (train/<class>/*) for the "
                                "original arm and the encoder's images.")
_STORE_DIR = flags.DEFINE_string("store_dir", None, "An autoencoder latent store made with "
                                 "--decode (the decoded and latent arms).")
_OUTPUT = flags.DEFINE_string("output", None, "The JSON to write (a .md is written beside it).")
_BATCH = flags.DEFINE_integer("batch_size", configs.stage_presets("classifier")["paper"].batch_size,
                              "Examples per batch (the paper's classifiers: 64).", lower_bound=1)
_BATCHES = flags.DEFINE_integer("batches", 20, "Timed batches per pipeline and round.",
                                lower_bound=1)
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed batches first (the shuffle buffer fills).",
                               lower_bound=0)
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Rounds; the pipelines take turns.", lower_bound=1)
_THREADS = flags.DEFINE_list("threads", ["1", "2"], "tf.data thread-pool sizes to run each "
                             "pipeline with.")
_ENCODE_IMAGES = flags.DEFINE_integer("encode_images", 64, "Images the encoder codes per round "
                                      "(0: skip the encoder).", lower_bound=0)
_ACCELERATOR = flags.DEFINE_float("accelerator_images_per_second", None,
                                  "An accelerator's measured training examples/s: also say how "
                                  "many cores keep it fed.", lower_bound=0)


def _options(threads: int) -> tf.data.Options:
  options = tf.data.Options()
  options.threading.private_threadpool_size = threads
  options.threading.max_intra_op_parallelism = 1
  return options


def _clocked(work) -> dict:
  """{"examples": what `work()` returns, "wall_s", "cpu_s"}: its wall and process CPU seconds."""
  wall, cpu = time.perf_counter(), time.process_time()
  examples = work()
  return {"examples": examples, "wall_s": time.perf_counter() - wall,
          "cpu_s": time.process_time() - cpu}


def _timed_batches(dataset: tf.data.Dataset, batches: int, warmup: int) -> dict:
  """Wall and process CPU seconds of `batches` batches, after `warmup` untimed ones."""
  iterator = iter(dataset)
  for _ in range(warmup):
    next(iterator)
  return _clocked(lambda: sum(int(tf.shape(tf.nest.flatten(next(iterator))[0])[0])
                              for _ in range(batches)))


def pipelines(data_dir: str | None, store_dir: str | None, batch_size: int) -> dict:
  """{name: a function () -> the training dataset of that arm}; arms without data are left
  out. Builds the store's latent cache if it has none (for the "latent (cache)" arm)."""
  config = dataclasses.replace(configs.stage_presets("classifier")["paper"],
                               batch_size=batch_size, cache_latents=False)
  arms = {}
  if data_dir:
    spec = classification_input.describe_data("original", data_dir=data_dir, store_dir=None,
                                              config=config)
    arms["original"] = lambda: classification_input.train_input(spec, config, epoch=0)
  if store_dir:
    decoded, latent = (classification_input.describe_data(kind, data_dir=None,
                                                          store_dir=store_dir, config=config)
                       for kind in ("decoded", "latent"))
    if latent.reads_pairs:
      raise ValueError(f"{store_dir} is a {latent.family} store; this tool reads the paper's "
                       "autoencoder stores")
    arms["decoded"] = lambda: classification_input.train_input(decoded, config, epoch=0)
    arms["latent"] = lambda: classification_input.train_input(latent, config, epoch=0)
    if not latent_store.has_latent_cache(store_dir, latent.train_split):
      latent_store.build_latent_cache(store_dir, latent.train_split, progress=False)
    cached = dataclasses.replace(config, cache_latents=True)
    arms["latent (cache)"] = lambda: classification_input.train_input(latent, cached, epoch=0)
  return arms


def _views(data_dir: str, count: int, size: int = latent_store.DEFAULT_IMAGE_SIZE):
  paths = images_lib.list_images(data_dir, "train")[0][:count]
  return tf.stack([tf.cast(latent_store.square_view(images_lib.decode_rgb(p), size), tf.float32)
                   for p in paths])


def encoders(data_dir: str, store_dir: str | None, count: int) -> dict:
  """{name: (a function () -> None that codes the images once, images)}."""
  views = _views(data_dir, count)
  size = int(views.shape[1])
  coders = {}
  if store_dir:
    meta = latent_store.read_metadata(store_dir)
    try:
      codec = registry.load(operating_point=meta["codec"].get("operating_point"))
      latent_store.check_codec(meta, codec, store_dir)  # the shipped codec made this store
    except (CodecError, latent_store.StoreError) as e:
      raise ValueError(f"the encoder rows code with the store's codec, a shipped one ({e}); "
                       "--encode_images=0 skips them") from None
    to_files = latent_store.file_writer(codec, size)
    coders[f"{codec.name} to .tfci files"] = (lambda: to_files(views), len(views))
  op = operating_points.get_operating_point("0.635")
  paper = model_lib.Autoencoder(op.channels, filters=operating_points.PAPER_FILTERS)
  transform = tf.function(lambda x: paper.encoder(x / 127.5 - 1.0))
  coders["paper-width encoder transform (0.635)"] = (lambda: transform(views).numpy(),
                                                     len(views))
  return coders


def summarize(samples: list) -> dict:
  """Rates of one row from its rounds: medians of examples/s (wall) and per CPU-second."""
  wall = [s["examples"] / s["wall_s"] for s in samples]
  cpu = [s["examples"] / s["cpu_s"] for s in samples if s["cpu_s"] > 0]
  per_core = statistics.median(cpu) if cpu else None
  return {"examples_per_s": statistics.median(wall), "examples_per_s_range": [min(wall), max(wall)],
          "per_cpu_second": per_core,
          "cores_per_1000_per_s": PER_THOUSAND / per_core if per_core else None,
          "rounds": len(samples)}


def with_accelerator(rows: dict, images_per_second: float | None) -> dict:
  """Each row's cores to feed an accelerator consuming `images_per_second` (if given)."""
  if not images_per_second:
    return rows
  return {name: {**row, "cores_for_accelerator": images_per_second / row["per_cpu_second"]
                 if row["per_cpu_second"] else None} for name, row in rows.items()}


def run(data_dir, store_dir, batch_size, batches, warmup, rounds, threads, encode_images):
  arms = pipelines(data_dir, store_dir, batch_size)
  coders = encoders(data_dir, store_dir, encode_images) if data_dir and encode_images else {}
  samples = {}
  for r in range(rounds):
    keys = [(name, t) for name in arms for t in threads] + [(name, None) for name in coders]
    for name, t in keys[r % len(keys):] + keys[:r % len(keys)]:
      if t is None:
        code, count = coders[name]
        code()  # traced and warm
        sample = _clocked(lambda: (code(), count)[1])
        label = name
      else:
        sample = _timed_batches(arms[name]().with_options(_options(t)), batches, warmup)
        label = f"{name}, {t} thread{'s' if t > 1 else ''}"
      samples.setdefault(label, []).append(sample)
  rows = {label: summarize(s) for label, s in samples.items()}
  return {"batch_size": batch_size, "batches": batches, "warmup": warmup, "rounds": rounds,
          "threads": list(threads), "cpu_count": os.cpu_count(), "data_dir": data_dir,
          "store_dir": store_dir, "load_average": list(os.getloadavg()), "rows": rows,
          "samples": samples}


def markdown(result: dict) -> str:
  accelerator = result.get("accelerator_images_per_second")
  head = ["input", "examples/s (wall)", "per CPU-second", "cores per 1,000 /s"]
  if accelerator:
    head.append(f"cores for {accelerator:g} /s")
  lines = [f"Batches of {result['batch_size']}, {result['rounds']} rounds; "
           f"{result['cpu_count']} cores, load average {result['load_average'][0]:.1f} at the "
           "end.", "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
  for name, row in result["rows"].items():
    cells = [name, f"{row['examples_per_s']:.0f}", f"{row['per_cpu_second']:.0f}",
             f"{row['cores_per_1000_per_s']:.1f}"]
    if accelerator:
      cells.append(f"{row['cores_for_accelerator']:.1f}")
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if missing := _cli.missing_flags(_OUTPUT):
    raise app.UsageError(missing)
  if not (_DATA_DIR.value or _STORE_DIR.value):
    raise app.UsageError("give --data_dir, --store_dir or both")
  try:
    threads = [int(t) for t in _THREADS.value]
  except ValueError:
    raise app.UsageError(f"--threads: whole numbers, got {','.join(_THREADS.value)}") from None
  if not threads or min(threads) < 1:
    raise app.UsageError("--threads: sizes of at least 1")
  try:
    result = run(_DATA_DIR.value, _STORE_DIR.value, _BATCH.value, _BATCHES.value, _WARMUP.value,
                 _ROUNDS.value, threads, _ENCODE_IMAGES.value)
  except (classification_input.TrainingError, latent_store.StoreError, CodecError,
          ValueError) as e:
    raise app.UsageError(str(e)) from None
  result["rows"] = with_accelerator(result["rows"], _ACCELERATOR.value)
  result["accelerator_images_per_second"] = _ACCELERATOR.value
  result["command"] = " ".join(["python -m tools.input_throughput", *sys.argv[1:]])
  _tables.write_beside(_OUTPUT.value, result, markdown(result) + "\n")
  return 0


if __name__ == "__main__":
  app.run(main)
