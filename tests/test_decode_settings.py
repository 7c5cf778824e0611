"""Decoded pixels across TensorFlow's kernel settings (tools/decode_settings.py), and the peak
memory check (tools/memory_check.py): the README states what these measure.

The settings test decodes a Kodak file of every shipped codec in four fresh processes (the
defaults, TF_ENABLE_ONEDNN_OPTS=0 and =1, one thread) and checks the README's bound on their
pixels against the defaults'.
"""

import json
import os

import pytest

from tools import decode_settings
from tools import memory_check

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _readme() -> str:
  with open(os.path.join(REPO, "README.md")) as f:
    return " ".join(f.read().split())


@pytest.mark.slow  # four processes, each loading TensorFlow and six codecs: about a minute
def test_every_shipped_codecs_kodak_file_decodes_within_the_readmes_bound_under_each_setting(
    tmp_path):
  paths = decode_settings.write_files(decode_settings.SHIPPED, ["kodim23"], str(tmp_path))
  decode_settings.decode_under_settings(paths, str(tmp_path))
  rows = decode_settings.compare(paths, str(tmp_path))
  others = set(decode_settings.SETTINGS) - {"default"}
  assert others == {"onednn_off", "onednn_on", "one_thread"}
  assert {row["setting"] for row in rows} == others
  assert len(rows) == len(others) * len(decode_settings.SHIPPED)
  assert all(row["samples"] == 512 * 768 * 3 for row in rows)
  outside = [row for row in rows if not decode_settings.within_bound(row)]
  assert not outside, f"{decode_settings.BOUND} does not hold: {outside}"


def test_the_readme_states_the_bound_the_settings_test_checks():
  readme = _readme()
  assert decode_settings.BOUND in readme
  assert "decodes identically on every machine" not in readme  # pixels do not; symbols do


def test_within_bound_counts_both_the_levels_and_the_share_of_samples():
  samples = 1_000_000
  allowed = int(decode_settings.MAX_FRACTION * samples)
  row = {"samples": samples, "differing": allowed, "max_levels": decode_settings.MAX_LEVELS}
  assert decode_settings.within_bound(row)
  assert not decode_settings.within_bound({**row, "differing": allowed + 1})
  assert not decode_settings.within_bound({**row, "max_levels": decode_settings.MAX_LEVELS + 1})


# --- tools/memory_check.py -----------------------------------------------------------------------


@pytest.mark.parametrize("codec, expected", [
    ("0.635", ["--codec=autoencoder", "--operating_point=0.635"]),
    ("q8", ["--codec=hyperprior", "--quality=8"]),
])
def test_memory_check_picks_each_shipped_codec_by_its_binary_flags(codec, expected):
  assert memory_check.codec_flags(codec) == expected


@pytest.mark.parametrize("bad", ["jpeg", "q", "hyperprior"])
def test_memory_check_refuses_a_codec_it_cannot_name(bad):
  with pytest.raises(Exception, match="neither an operating point"):
    memory_check.codec_flags(bad)


def test_memory_check_counts_a_peak_over_budget_and_a_wrong_size_as_failures():
  ok = {"status": 0, "peak_mb": 900.0, "seconds": 1.0, "stderr": ""}
  result = {"codec": "q4", "width": 40, "height": 30, "compress": ok, "decompress": ok,
            "decoded_size": [40, 30]}
  assert memory_check.failures(result, 1500) == []
  assert memory_check.failures({**result, "decompress": {**ok, "peak_mb": 1600.0}}, 1500) == [
      "decompress peaked at 1600 MB, over 1500 MB"]
  assert memory_check.failures({**result, "decoded_size": [30, 40]}, 1500) == [
      "decoded to [30, 40]"]
  failed = {**ok, "status": 1, "stderr": "error: out of memory"}
  assert memory_check.failures({**result, "compress": failed}, 1500) == [
      "compress failed (error: out of memory)"]


@pytest.mark.slow  # two processes loading TensorFlow
def test_memory_check_measures_each_binary_in_a_process_of_its_own(tmp_path):
  result = memory_check.measure("0.635", (72, 40), str(tmp_path), memory_check.DEFAULT_SOURCE)
  assert result["compress"]["status"] == 0 and result["decompress"]["status"] == 0
  assert result["decoded_size"] == [72, 40]
  # Python, TensorFlow and a codec: hundreds of MB, whatever the image.
  for step in ("compress", "decompress"):
    assert 100 < result[step]["peak_mb"] < 1500


def test_the_readme_gives_every_shipped_codecs_measured_peaks_all_under_the_budget():
  with open(os.path.join(REPO, "reports", "codec", "memory_check.json")) as f:
    report = json.load(f)
  assert {r["codec"] for r in report["results"]} == set(memory_check.SHIPPED)
  readme = _readme()
  for result in report["results"]:
    assert memory_check.readme_row(result) in readme
    assert memory_check.failures(result, report["budget_mb"]) == []
  assert report["budget_mb"] <= 1500  # the README's "under 1.5 GB"
