"""Two worker processes train one classifier under multi_worker_mirrored, killed and resumed.

The real thing, on the loopback address: two `python -m experiments.train_classifier`
processes with TF_CONFIG naming each other, gRPC collectives between them, the tiny preset.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tfcdi.data import latent_store
from tfcdi.train import classifier

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
IMAGENETTE = os.path.join(REPO, "..", "shared", "data", "imagenette2_224")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.isdir(IMAGENETTE),
                                 reason="the shared Imagenette is not beside the repo")]


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def _start_workers(workdir, store_dir, logs, attempt):
  cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
  workers = []
  for index in range(2):
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2",
           "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker",
                                                                 "index": index}})}
    out = open(logs / f"worker{index}.{attempt}.out", "w")  # pylint: disable=consider-using-with
    workers.append((subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-m", "experiments.train_classifier", "--net=cresnet39",
         "--input=latent", "--preset=tiny", "--set=epochs=3", f"--store_dir={store_dir}",
         f"--workdir={workdir}", "--strategy=multi_worker_mirrored"],
        cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT), out))
  return workers


def _read(logs, index, attempt):
  return (logs / f"worker{index}.{attempt}.out").read_text()


def _wait(workers, timeout=900):
  deadline = time.time() + timeout
  codes = []
  for process, out in workers:
    try:
      codes.append(process.wait(timeout=max(1, deadline - time.time())))
    finally:
      if process.poll() is None:
        process.kill()
      out.close()
  return codes


def test_two_workers_train_are_killed_resume_and_agree(tmp_path, tiny_codec):
  store_dir = str(tmp_path / "store")
  # Two store shards per split, eight validation images evaluated (the tiny preset's limit).
  for split in ("train", "val"):
    source = latent_store.ImageFolderSource(IMAGENETTE, split, limit=16)
    latent_store.encode_split(source, tiny_codec, store_dir, split, image_size=64, shard_size=8,
                              batch_size=8, progress=False)
  workdir, logs = tmp_path / "run", tmp_path / "logs"
  logs.mkdir()

  # Killed (SIGKILL, both) once the chief has checkpointed step 1 of epoch 2.
  workers = _start_workers(workdir, store_dir, logs, 1)
  deadline = time.time() + 900
  while "epoch 2/3 step 1/2" not in _read(logs, 0, 1):
    assert time.time() < deadline and all(p.poll() is None for p, _ in workers), (
        _read(logs, 0, 1) + _read(logs, 1, 1))
    time.sleep(0.1)
  for process, _ in workers:
    process.send_signal(signal.SIGKILL)
  _wait(workers)
  killed = classifier.read_results(str(workdir))
  assert not killed["complete"] and len(killed["epochs"]) == 1

  workers = _start_workers(workdir, store_dir, logs, 2)
  assert _wait(workers) == [0, 0], _read(logs, 0, 2) + _read(logs, 1, 2)
  out = [_read(logs, i, 2) for i in range(2)]
  resumed = [re.search(r"resuming at epoch (\d), step (\d)", o) for o in out]
  assert all(resumed), out
  # Both resume where the chief's checkpoint is, and run the same steps to the same end.
  assert resumed[0].groups() == resumed[1].groups()
  assert resumed[0].groups() in (("2", "1"), ("2", "2"), ("3", "0")), out[0]
  finals = [re.search(r"^final: .*", o, re.MULTILINE).group(0) for o in out]
  assert finals[0] == finals[1], finals

  results = classifier.read_results(str(workdir))
  assert results["complete"] and results["strategy"] == "multi_worker_mirrored"
  assert [e["epoch"] for e in results["epochs"]] == [1, 2, 3]
  assert results["epochs"][0] == killed["epochs"][0]
  # Each evaluation sees the preset's 8 examples once, not 8 per worker.
  assert [e["val_examples"] for e in results["epochs"]] == [8, 8, 8]

  # The non-chief writes its own copy of every checkpoint; the weights are the same numbers.
  chief = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(workdir / "checkpoints")))
  other = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(workdir / "worker_tmp_1")))
  names = [n for n in chief.get_variable_to_shape_map() if n.startswith("model/")]
  assert len(names) > 10
  for name in names:
    np.testing.assert_array_equal(chief.get_tensor(name), other.get_tensor(name), err_msg=name)
  assert int(chief.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE")) == 3
