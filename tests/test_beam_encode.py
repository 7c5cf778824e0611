"""Encoding a store on Apache Beam gives the single-process store, byte for byte.

Needs the optional `beam` extra (pip install -e '.[beam]'); without it these tests skip.
"""

import functools
import os
import subprocess
import sys

import pytest

from tfcdi.codec import pretrained
from tfcdi.data import latent_store

beam_encode = pytest.importorskip(
    "tfcdi.data.beam_encode", reason="expected: Apache Beam is the optional .[beam] extra, not installed here "
    "(.ci/run runs this file in a venv that has it)",
    exc_type=ImportError)

REPO = os.path.join(os.path.dirname(__file__), "..")
IMAGENETTE = os.path.join(REPO, "..", "shared", "data", "imagenette2_224")
SIZE = 64  # 8 x 8 latents: seconds per shard

pytestmark = pytest.mark.skipif(not os.path.isdir(IMAGENETTE),
                                reason="the shared Imagenette is not beside the repo")


def _store_files(store_dir) -> dict:
  """{relative path: bytes} of every file of a store."""
  files = {}
  for root, _, names in os.walk(store_dir):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        files[os.path.relpath(path, store_dir)] = f.read()
  return files


def _single_process_store(codec_path, store_dir, limit, shard_size):
  source = latent_store.ImageFolderSource(IMAGENETTE, "train", limit=limit)
  latent_store.encode_split(source, pretrained.load_codec(path=codec_path), str(store_dir),
                            "train", image_size=SIZE, shard_size=shard_size, batch_size=3,
                            progress=False)
  return _store_files(store_dir)


def test_two_threaded_workers_write_the_single_process_store(tmp_path, tiny_codec_path):
  # A shard of 4 images in batches of 3 ends on a partial batch: batching must restart at each
  # shard's first image in both engines.
  expected = _single_process_store(tiny_codec_path, tmp_path / "single", limit=10, shard_size=4)
  source = latent_store.ImageFolderSource(IMAGENETTE, "train", limit=10)
  entry, records = beam_encode.encode_split(
      source, functools.partial(pretrained.load_codec, path=tiny_codec_path),
      str(tmp_path / "beam"), "train", image_size=SIZE, shard_size=4, batch_size=3,
      options=["--runner=DirectRunner", "--direct_running_mode=multi_threading",
               "--direct_num_workers=2"], log=lambda _: None)
  assert sorted(r["shard"] for r in records) == [0, 1, 2]
  assert entry["complete"] and entry["count"] == 10
  got = _store_files(tmp_path / "beam")
  assert sorted(got) == sorted(expected)  # no file more or less (the run record is removed)
  for name, data in expected.items():
    assert got[name] == data, name


def test_a_resumed_pipeline_encodes_only_the_missing_shards(tmp_path, tiny_codec_path):
  expected = _single_process_store(tiny_codec_path, tmp_path / "single", limit=8, shard_size=4)
  beam_dir = tmp_path / "beam"
  load = functools.partial(pretrained.load_codec, path=tiny_codec_path)
  options = ["--runner=DirectRunner", "--direct_running_mode=in_memory"]
  source = latent_store.ImageFolderSource(IMAGENETTE, "train", limit=8)
  beam_encode.encode_split(source, load, str(beam_dir), "train", image_size=SIZE, shard_size=4,
                           batch_size=3, options=options, log=lambda _: None)
  os.remove(beam_dir / "train-00001-of-00002.tfrecord")  # as if killed before that shard
  _, records = beam_encode.encode_split(source, load, str(beam_dir), "train", image_size=SIZE,
                                        shard_size=4, batch_size=3, options=options,
                                        log=lambda _: None)
  assert [r["shard"] for r in records] == [1]
  assert _store_files(beam_dir) == expected


def test_a_worker_with_another_codec_is_refused(tmp_path, tiny_codec_path, make_tiny_codec):
  other = tmp_path / "other.npz"
  make_tiny_codec(other, name="other")
  calls = []

  def load():
    # The driver's codec plans the store; the workers' (second call on) must be the same one.
    calls.append(1)
    return pretrained.load_codec(path=tiny_codec_path if len(calls) == 1 else str(other))

  source = latent_store.ImageFolderSource(IMAGENETTE, "train", limit=4)
  with pytest.raises(latent_store.StoreError,
                     match=r"pipeline encoding 'train' failed \(StoreError: a worker loaded "
                           r"codec 'other', not the store's 'tiny'"):
    beam_encode.encode_split(source, load, str(tmp_path / "beam"), "train", image_size=SIZE,
                             shard_size=4, batch_size=4,
                             options=["--runner=DirectRunner", "--direct_running_mode=in_memory"],
                             log=lambda _: None)


@pytest.mark.slow
def test_two_worker_processes_of_the_binary_write_the_single_process_store(tmp_path,
                                                                           tiny_codec_path):
  """tfcdi-encode-dataset --beam, the DirectRunner's two worker processes, 40 images."""
  flags = [f"--data_dir={IMAGENETTE}", "--splits=train", "--limit=40", "--shard_size=10",
           f"--image_size={SIZE}", f"--codec={tiny_codec_path}", "--encoder_batch_size=4",
           "--noprogress"]
  env = {**os.environ, "PYTHONPATH": os.path.abspath(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}

  def run(*extra):
    return subprocess.run([sys.executable, "-m", "experiments.encode_dataset", *flags, *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
                          check=False)

  single = run(f"--store_dir={tmp_path / 'single'}")
  assert single.returncode == 0, single.stderr
  beam_run = run(f"--store_dir={tmp_path / 'beam'}", "--beam",
                 "--beam_option=--runner=DirectRunner",
                 "--beam_option=--direct_running_mode=multi_processing",
                 "--beam_option=--direct_num_workers=2")
  assert beam_run.returncode == 0, beam_run.stderr
  assert "4 shard(s) written by 2 worker process(es)" in beam_run.stdout, beam_run.stdout
  expected, got = _store_files(tmp_path / "single"), _store_files(tmp_path / "beam")
  assert sorted(got) == sorted(expected)
  for name, data in expected.items():
    assert got[name] == data, name
