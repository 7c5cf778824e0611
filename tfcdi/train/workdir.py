"""A training run's folder, as every training loop keeps it: checkpoints, resume, results JSON.

Layout, the same for the five loops (classifier, codec, hyperprior, segmenter, joint):

  WORKDIR/checkpoints/   tf.train.CheckpointManager's files (ckpt-N.*, `checkpoint`), the two
                         latest kept. One tf.train.Checkpoint holds the loop's objects (model,
                         optimizers, ...) and its integer counters, each under its own name:
                         "epoch" and "step_in_epoch" (classifier), "epoch" and "step" (joint),
                         "step" (codec, hyperprior, segmenter; files numbered by it).
  WORKDIR/results.json   what the run measured, rewritten atomically as it goes, so a killed run
                         leaves the previous version whole (the reports read only these).
  WORKDIR/run.json       what the run trains (the codec loops: operating point or quality,
                         widths, loss, seed), so that a resume with other settings is refused.

A killed run started again with the same command restores the latest checkpoint and goes on.
The names above are what runs already on disk hold: changing one would leave those runs unable
to resume, so tests/test_workdir.py pins them on a checkpoint written the way the loops wrote
theirs before this module existed.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from tfcdi import imageio

RESULTS_FILE = "results.json"
CHECKPOINTS = "checkpoints"
RUN_FILE = "run.json"


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(workdir, CHECKPOINTS)


# Writes JSON beside the path and renames it there: readers see the old or the new file whole,
# and two processes writing one file (the workers of a multi-worker run) never rename each
# other's half-written copy.
write_json = imageio.write_json


def read_json(path: str):
  """The JSON at `path`, or None where there is no such file."""
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def read_results(workdir: str) -> dict | None:
  """A run's results.json, or None before its first write."""
  return read_json(os.path.join(workdir, RESULTS_FILE))


def write_results(workdir: str, results: dict) -> str:
  """Writes a run's results.json atomically; returns its path."""
  path = os.path.join(workdir, RESULTS_FILE)
  write_json(path, results)
  return path


def check_run(workdir: str, identity: dict, what: str, recorded_defaults: dict | None = None):
  """Records what a workdir trains (workdir/run.json) and refuses to resume it as something else.

  A checkpoint holds weights, not the settings that made them: resuming a run with another
  loss, width or seed would silently make a model of neither. `recorded_defaults` are what runs
  from before a key was recorded used.
  """
  identity = json.loads(json.dumps(identity))  # tuples as the JSON file will hold them (lists)
  path = os.path.join(workdir, RUN_FILE)
  recorded = read_json(path)
  if recorded is None:
    write_json(path, identity)  # atomic: a kill never leaves half a file
    return
  recorded = {**(recorded_defaults or {}), **recorded}
  different = [f"{k} {recorded.get(k)!r}, not {v!r}" for k, v in identity.items()
               if recorded.get(k) != v]
  if different:
    raise ValueError(f"{workdir} holds a {what} run with {'; '.join(different)}: give it the "
                     "settings it was started with, or another --workdir")


class Checkpointing:
  """A loop's objects and integer counters in one tf.train.Checkpoint, restored if there is one.

  Args:
    directory: where the CheckpointManager keeps its files (checkpoint_dir(workdir)).
    counters: the names of the int64 counters, in the order restore() returns and save() takes
      them; each is a checkpoint entry of its name and `counters[name]`.
    number_by: the counter that numbers the checkpoint files (ckpt-<step>), or None for the
      manager's own save count.
    max_to_keep: how many checkpoints the manager keeps.
    restore_from: the directory restore() reads (default: `directory`). Multi-worker training
      restores every worker from the chief's checkpoints: the others write copies only because
      saving is collective, so a worker that lost its copy resumes with the rest.
    **objects: the trackable objects to save (model=..., optimizer=..., ...).
  """

  def __init__(self, directory: str, counters: tuple = ("step",), number_by: str | None = None,
               max_to_keep: int = 2, restore_from: str | None = None, **objects):
    self.counters = {name: tf.Variable(0, dtype=tf.int64, trainable=False, name=name)
                     for name in counters}
    self.number_by = number_by
    self.ckpt = tf.train.Checkpoint(**objects, **self.counters)
    self.manager = tf.train.CheckpointManager(self.ckpt, directory, max_to_keep=max_to_keep)
    self.restore_from = restore_from

  def restore(self) -> tuple:
    """The counters' values from the latest checkpoint (its objects restored too); zeros
    without one."""
    latest = (self.manager.latest_checkpoint if self.restore_from is None
              else tf.train.latest_checkpoint(self.restore_from))
    if latest:
      self.ckpt.restore(latest).expect_partial()
    return tuple(int(v.numpy()) for v in self.counters.values())

  def save(self, *values) -> str:
    """Sets the counters to `values` (in their order) and writes a checkpoint; its path."""
    for variable, value in zip(self.counters.values(), values, strict=True):
      variable.assign(value)
    number = None if self.number_by is None else int(self.counters[self.number_by].numpy())
    return self.manager.save(checkpoint_number=number)


def restore_latest(workdir: str, error=ValueError, **objects) -> str:
  """Restores `objects` (e.g. model=...) from a finished run's latest checkpoint, leaving out
  what else it holds (optimizer, counters); returns the checkpoint's path.

  Raises:
    error: the workdir has no checkpoint.
  """
  directory = checkpoint_dir(workdir)
  latest = tf.train.latest_checkpoint(directory)
  if latest is None:
    raise error(f"no checkpoint in {directory}")
  tf.train.Checkpoint(**objects).restore(latest).expect_partial()
  return latest
