"""The main job at its smoke preset, end to end, and its resume."""

import os

import pytest

from tfcdi import reproduce

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def test_unknown_preset_and_missing_data_are_clear_errors(tmp_path):
  with pytest.raises(ValueError, match="unknown preset"):
    reproduce.get_preset("huge")
  with pytest.raises(ValueError, match="must hold imagenette2_224"):
    reproduce.Pipeline(reproduce.get_preset("smoke"), str(tmp_path), str(tmp_path / "w"))


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(DATA), reason="shared data missing")
def test_smoke_preset_runs_to_a_report_and_resumes(tmp_path):
  lines = []
  pipeline = reproduce.Pipeline(reproduce.get_preset("smoke"), DATA, str(tmp_path),
                                log=lines.append)
  pipeline.run()
  text = open(tmp_path / "report" / "report.md").read()
  assert "Table 1" in text and "Codec operating points" in text
  # Every classification arm of Table 2 ran (tiny) and is reported beside the published row.
  assert "Table 2: classification" in text and "Not measured yet" not in text
  assert text.count("| done |") == 12
  assert os.path.exists(tmp_path / "report" / "rd_curve.png")
  # Section 6 at both of its points: all three arms, the figures, the directions of the changes.
  assert "Section 6: joint training" in text and "Arms not finished" not in text
  assert text.count("| joint_ft_top5_points |") == 2
  for figure in ("fig7_joint_accuracy.png", "fig11_joint_codec.png"):
    assert os.path.exists(tmp_path / "report" / figure)
  # A second run finds every step done and only re-renders the report.
  lines.clear()
  pipeline.run()
  assert sum(": done (" in line for line in lines) >= 8
  assert not any("finished in" in line for line in lines)
