"""Reproducible pseudo-random state dicts, in pure NumPy: the weights of the parity fixtures.

A full-size CompressAI model (N=192, M=320) has millions of weights: far too many to commit as a
fixture. Instead, tools/compressai_fixtures.py fills the CompressAI model with values this module
generates from a recipe (per tensor: its shape, a seed, a centre and a spread), runs it, and
commits only the recipe and the model's outputs on one small crop; the parity tests regenerate
the same weights from the recipe here, without torch. The generator is SplitMix64 on integer
arithmetic, so every NumPy version (the tool runs CompressAI's numpy<2, tfcdi numpy 2) makes the
same floats.

This module must import nothing but NumPy: the tool imports it inside CompressAI's environment.
"""

from __future__ import annotations

import json
import zlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
  with np.errstate(over="ignore"):
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniform(seed: int, name: str, shape) -> np.ndarray:
  """float32 values in [-1, 1) of `shape`, a function of (seed, name) alone."""
  count = int(np.prod(shape, dtype=np.int64))
  stream = (int(seed) * 0x1000193 + zlib.crc32(name.encode())) & 0xFFFFFFFFFFFFFFFF
  with np.errstate(over="ignore"):
    counters = np.arange(count, dtype=np.uint64) + np.uint64(stream) * _GOLDEN
  bits = _splitmix64(counters) >> np.uint64(11)  # 53 random bits
  unit = bits.astype(np.float64) * 2.0 ** -53
  return (2.0 * unit - 1.0).astype(np.float32).reshape(tuple(shape))


def tensor(entry: dict, seed: int) -> np.ndarray:
  """One tensor of a recipe: "values" verbatim, or loc + spread * uniform (+ diagonal * I)."""
  if "values" in entry:
    return np.asarray(entry["values"], entry.get("dtype", "float32")).reshape(entry["shape"])
  shape = tuple(entry["shape"])
  value = entry.get("loc", 0.0) + entry.get("spread", 0.0) * uniform(seed, entry["name"], shape)
  if entry.get("diagonal"):
    value = value + entry["diagonal"] * np.eye(shape[0], dtype=np.float32)
  return value.astype(entry.get("dtype", "float32"))


def state_dict(recipe: dict) -> dict:
  """{name: array} of a recipe {"seed": int, "tensors": [entry, ...]}."""
  return {entry["name"]: tensor(entry, recipe["seed"]) for entry in recipe["tensors"]}


def dumps(recipe: dict) -> bytes:
  return json.dumps(recipe, sort_keys=True).encode()


def loads(data) -> dict:
  return json.loads(bytes(data).decode())


def read_fixture(path: str) -> tuple:
  """A parity fixture (tools/compressai_fixtures.py): its arrays (CompressAI's outputs on the
  crop, and the recipe) and the state dict the recipe regenerates."""
  with np.load(path, allow_pickle=False) as data:
    arrays = {k: data[k] for k in data.files}
  return arrays, state_dict(loads(arrays["recipe"]))
