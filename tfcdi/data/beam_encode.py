"""Encoding a dataset into a latent store as an Apache Beam pipeline, shard by shard.

ImageNet's 1.28M images through the paper's encoder are about a day of one CPU machine; this
spreads the store's shards over the workers of any Beam runner (the DirectRunner's processes on
one machine; Dataflow, Flink or Spark on a cluster, by the standard pipeline options) and makes
the same store as latent_store.encode_split, byte for byte:

- the driver plans the split exactly as encode_split does (latent_store.plan_split: the
  source's fixed order cut into shards of shard_size), so the plan, and with it every shard's
  images and their order, is independent of the runner and of how many workers there are;
- the unit of work is a shard index: each worker loads the codec once (DoFn.setup) and writes
  whole shards with latent_store.encode_shard, the function the single process uses, batching
  from the shard's first image, so a shard's bytes do not depend on who wrote it;
- a shard appears under its final name only complete, so a retried or duplicated bundle (Beam
  may run one twice) rewrites identical bytes or skips it, and a killed pipeline resumes;
- the driver then sums the shards' stats into the metadata (latent_store.finish_split).

The store folder must be one file system every worker sees (the local disk for the
DirectRunner; a shared mount on a cluster), and the workers need tfcdi installed (a runner's
--setup_file / container options). The source and the codec loader are pickled to the workers:
the codec itself (a Keras model) is rebuilt in each from `load_codec`, a picklable function of
no arguments (e.g. functools.partial(pretrained.load_codec, path=bundle)).

Needs the optional `beam` extra: pip install -e '.[beam]'.
"""

from __future__ import annotations

import json
import os
import re
import time

import apache_beam as beam
from apache_beam.options import pipeline_options

from tfcdi.data import latent_store

# Without options: the DirectRunner's worker processes, one per core (0 = as many as cores).
DEFAULT_OPTIONS = ("--runner=DirectRunner", "--direct_running_mode=multi_processing",
                   "--direct_num_workers=0")


class _EncodeShards(beam.DoFn):
  """Shard index -> (index, worker pid, seconds, whether it wrote the shard)."""

  def __init__(self, source, load_codec, meta: dict, store_dir: str, split: str,
               batch_size: int):
    super().__init__()
    self._source, self._load_codec = source, load_codec
    self._meta, self._store_dir, self._split = meta, store_dir, split
    self._batch_size = batch_size
    self._to_files = None

  def setup(self):
    # Once per worker: building the codec's model costs seconds, a shard minutes.
    codec = self._load_codec()
    if not latent_store._same_identity(self._meta["codec"], codec):  # pylint: disable=protected-access
      raise latent_store.StoreError(
          f"a worker loaded codec {codec.name!r}, not the store's {self._meta['codec']['name']!r}")
    self._to_files = latent_store.file_writer(codec, self._meta["image_size"])

  def process(self, index):
    tick = time.time()
    wrote = latent_store.encode_shard(self._source, self._to_files, self._meta, self._store_dir,
                                      self._split, int(index), batch_size=self._batch_size,
                                      bar=latent_store.progress_bar(0, "", False))
    yield {"shard": int(index), "pid": os.getpid(), "seconds": time.time() - tick,
           "written": wrote}


# The last "module.SomeError: message" line of a worker's traceback, as a runner relays it.
_ERROR_LINE = re.compile(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception)): (.+)$", re.MULTILINE)


def _one_line(error: Exception) -> str:
  """A pipeline's failure in one line: the workers' own error, not the runner's traceback."""
  found = _ERROR_LINE.findall(str(error))
  if found:
    return f"{found[-1][0]}: {found[-1][1]}"
  lines = [line for line in str(error).splitlines() if line.strip()]
  return f"{type(error).__name__}: {lines[-1] if lines else ''}"


def _write_record(records, path):
  tmp = f"{path}.{os.getpid()}.tmp"
  with open(tmp, "w") as f:
    json.dump(sorted(records, key=lambda r: r["shard"]), f)
  os.replace(tmp, path)


def encode_split(source, load_codec, store_dir: str, split: str, *,
                 options: list[str] | tuple = (), image_size: int = latent_store.DEFAULT_IMAGE_SIZE,
                 shard_size: int = latent_store.DEFAULT_SHARD_SIZE, batch_size: int = 16,
                 log=print) -> tuple[dict, list[dict]]:
  """latent_store.encode_split on a Beam runner: the same store, its shards spread over workers.

  Args:
    source: a latent-store source (latent_store.ImageFolderSource, TfdsSource, ...); pickled
      to the workers.
    load_codec: a picklable function of no arguments returning the codec.
    store_dir: the store's folder, on a file system every worker sees.
    split, image_size, shard_size, batch_size: as latent_store.encode_split.
    options: Beam pipeline options, as on a Beam command line ("--runner=...", ...); none
      means DEFAULT_OPTIONS.
    log: where one-line messages go.

  Returns:
    (the split's metadata entry, one record per shard encoded in this run: shard, pid of the
    worker, seconds, whether it wrote it).

  Raises:
    StoreError: as latent_store.encode_split, or shards missing after the pipeline ran.
  """
  codec = load_codec()
  meta = latent_store.plan_split(source, codec, store_dir, split, image_size=image_size,
                                 shard_size=shard_size, batch_size=batch_size)
  del codec  # the driver only plans; the workers load their own
  num_shards = meta["splits"][split]["num_shards"]
  todo = [i for i in range(num_shards)
          if not os.path.exists(latent_store.shard_path(meta, store_dir, split, i))]
  records = []
  if todo:
    log(f"{split}: {len(todo)} of {num_shards} shard(s) to encode on Beam "
        f"({' '.join(options or DEFAULT_OPTIONS)})")
    record_path = os.path.join(store_dir, f".beam-{split}-{os.getpid()}.json")
    options = pipeline_options.PipelineOptions(list(options or DEFAULT_OPTIONS))
    try:
      with beam.Pipeline(options=options) as pipeline:
        _ = (pipeline
             | "shards" >> beam.Create(todo)
             # Breaks fusion with Create, so the runner spreads the indices over its workers.
             | "spread" >> beam.Reshuffle()
             | "encode" >> beam.ParDo(_EncodeShards(source, load_codec, meta, store_dir, split,
                                                    batch_size))
             | "collect" >> beam.combiners.ToList()
             | "record" >> beam.Map(_write_record, record_path))
    except Exception as e:  # pylint: disable=broad-except  (runners wrap workers' errors freely)
      raise latent_store.StoreError(
          f"the Beam pipeline encoding {split!r} failed ({_one_line(e)}); the shards it "
          "finished are kept, and the same command resumes") from None
    with open(record_path) as f:
      records = json.load(f)
    os.remove(record_path)
    workers = len({r["pid"] for r in records})
    log(f"{split}: {sum(r['written'] for r in records)} shard(s) written by {workers} worker "
        f"process(es)")
  return latent_store.finish_split(meta, store_dir, split), records
