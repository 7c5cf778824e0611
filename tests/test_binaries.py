"""Every binary imports into one process: their flags must not clash (the tests need it)."""

import importlib
import os

import pytest

EXPERIMENTS = os.path.join(os.path.dirname(__file__), "..", "experiments")
BINARIES = sorted(name[:-3] for name in os.listdir(EXPERIMENTS)
                  if name.endswith(".py") and not name.startswith("_"))


def test_the_binaries_list_is_not_empty():
  assert {"compress", "train_classifier", "benchmark", "reproduce"} <= set(BINARIES)


@pytest.mark.parametrize("name", BINARIES)
def test_every_binary_imports_beside_the_others(name):
  # absl refuses a second definition of a flag name unless both allow overriding; importing
  # them all here, in any order the test runner picks, is what a test session does anyway.
  for other in BINARIES:
    importlib.import_module(f"experiments.{other}")
  importlib.import_module(f"experiments.{name}")
