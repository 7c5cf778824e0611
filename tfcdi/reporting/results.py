"""Reading results JSON and writing the tables: what every part of the reporting layer shares.

A run's results file is the only thing the reporting layer knows about a run. This module reads
those files, indexes them by arm (and seed), copies them into committed folders under names
that say which run they are, and formats numbers into Markdown tables.
"""

from __future__ import annotations

import glob
import json
import os
import shutil


def read_json(path: str):
  """The JSON at `path`, or None if there is no such file."""
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def seed_of(result: dict) -> int:
  """The --seed of a run's results (0 for runs that predate the flag)."""
  return int((result.get("config") or {}).get("seed", 0))


def seed_suffix(result: dict) -> str:
  """"" for seed 0, "_seed<N>" otherwise: seed 0 keeps the name its arm always had, and every
  further seed of the arm gets a copy of its own beside it."""
  return suffix_of_seed(seed_of(result))


def suffix_of_seed(seed: int) -> str:
  """seed_suffix of a run of that seed (the pipeline names its seed folders with it)."""
  return f"_seed{seed}" if seed else ""


def collect_results(runs_dir: str, out_dir: str, name_of) -> list[str]:
  """Copies every `<runs_dir>/*/results.json` to `<out_dir>/<name_of(result)>.json`.

  The committed copies are what the tables cite, so they keep each run's exact command. Two runs
  that map to one name would overwrite each other silently, so that is an error.
  Returns the copies' paths.
  """
  os.makedirs(out_dir, exist_ok=True)
  copies = {}
  for path in sorted(glob.glob(os.path.join(runs_dir, "*", "results.json"))):
    result = read_json(path)
    copy = os.path.join(out_dir, f"{name_of(result)}.json")
    if copy in copies:
      raise ValueError(f"{copies[copy]} and {path} would both be collected as {copy}")
    copies[copy] = path
    shutil.copyfile(path, copy)
  return list(copies)


def index_runs(results_files: list[str], key_of, what: str) -> dict:
  """{key_of(result): {"file", "result"}} of run results; a missing file or a repeat is an error."""
  runs = {}
  for path in results_files:
    result = read_json(path)
    if result is None:
      raise ValueError(f"no {what} results at {path}")
    key = key_of(result)
    if key in runs:
      raise ValueError(f"two results for {key}: {runs[key]['file']} and {path}")
    runs[key] = {"file": path, "result": result}
  return runs


def group_seeds(runs: dict) -> dict:
  """{(arm key, seed): run} -> {arm key: [run, ...] in seed order}."""
  arms = {}
  for key in sorted(runs, key=lambda k: k[-1]):
    arms.setdefault(key[:-1], []).append(runs[key])
  return arms


def percent(fraction):
  return None if fraction is None else 100.0 * fraction


def direction(delta, tolerance=1e-9) -> str | None:
  if delta is None:
    return None
  return "up" if delta > tolerance else "down" if delta < -tolerance else "unchanged"


def fmt(value, digits=4):
  if value is None:
    return "—"
  if isinstance(value, bool):
    return "yes" if value else "no"
  if isinstance(value, float):
    return f"{value:.{digits}f}"
  return str(value)


def table(header, rows) -> str:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
  return "\n".join(lines)


def size_text(num_bytes) -> str:
  """Bytes in the largest binary unit that keeps a digit before the point: 812 bytes, 3.4 KiB,
  54.1 MiB. One fixed unit would print a small store as '0.0 MiB'."""
  if num_bytes is None:
    return "—"
  value = float(num_bytes)
  if value < 1024:
    return f"{int(value)} bytes"
  for unit in ("KiB", "MiB", "GiB"):
    value /= 1024.0
    if value < 1024 or unit == "GiB":
      return f"{value:.1f} {unit}"
  raise AssertionError("unreachable")


def demote_headings(markdown: str) -> list[str]:
  """A table's Markdown one heading level down: a section of the report, not a document."""
  return ["#" + line if line.startswith("#") else line for line in markdown.splitlines()] + [""]
