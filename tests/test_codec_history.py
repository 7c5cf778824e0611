"""tfcdi/codec_history.py and tools/codec_history.py: a recipe's milestones beside
JPEG at their own rates."""

import pytest

from tfcdi import codec_history

# JPEG's curve: MS-SSIM 0.90 -> 0.96 and PSNR 28 -> 32 dB between 0.5 and 1.0 bpp.
CURVES = {"jpeg": {"points": [
    {"bpp": 0.5, "ms_ssim": 0.90, "psnr": 28.0}, {"bpp": 1.0, "ms_ssim": 0.96, "psnr": 32.0}]}}
HISTORY = {"recipe": "ae-0.635-cpu", "operating_point": "0.635", "milestones": [
    {"step": 1000, "bpp": 0.75, "ms_ssim": 0.92, "psnr": 29.0},
    {"step": 2000, "bpp": 1.2, "ms_ssim": 0.97, "psnr": 33.0},  # beyond JPEG's curve
    {"step": 3000, "bpp": 0.5, "ms_ssim": 0.95, "psnr": 27.5}]}


def test_each_milestone_meets_jpeg_at_its_own_rate_and_none_is_extrapolated():
  rows = codec_history.history_against(HISTORY, CURVES)["milestones"]
  assert [r["step"] for r in rows] == [1000, 2000, 3000]
  # Halfway along the curve: JPEG 0.93 / 30 dB.
  assert rows[0]["jpeg_ms_ssim"] == pytest.approx(0.93)
  assert rows[0]["ms_ssim_margin"] == pytest.approx(-0.01)
  assert rows[0]["psnr_margin"] == pytest.approx(-1.0)
  assert rows[1]["jpeg_ms_ssim"] is None and rows[1]["ms_ssim_margin"] is None
  assert rows[2]["ms_ssim_margin"] == pytest.approx(0.05)
  assert rows[2]["psnr_margin"] == pytest.approx(-0.5)
  with pytest.raises(ValueError, match="no 'jpeg2000' curve"):
    codec_history.history_against(HISTORY, CURVES, "jpeg2000")


def test_the_table_and_figure_show_each_measured_margin(tmp_path, saved_figures):
  summary = codec_history.history_against(HISTORY, CURVES)
  text = codec_history.history_markdown(summary, "t")
  assert "| 1000 | 0.7500 | 0.9200 | 0.9300 | -0.0100 | 29.00 | 30.00 |" in text
  assert "| 2000 | 1.2000 | 0.9700 |  |  | 33.00 |  |" in text
  path = str(tmp_path / "h.png")
  assert codec_history.history_figure(summary, path) == path
  left, right = saved_figures[path].axes
  drawn = {line.get_label(): list(line.get_ydata()) for line in left.get_lines()}
  assert drawn["recipe ae-0.635-cpu"] == pytest.approx([0.92, 0.95])  # step 2000 has no JPEG
  assert drawn["JPEG at the same bpp"] == pytest.approx([0.93, 0.90])
  assert list(right.get_lines()[0].get_ydata()) == pytest.approx([-0.01, 0.05])
  saved_figures.assert_drawn(path, colours=("tab:blue", "tab:red"))


def test_the_comparison_gives_each_recipe_its_last_and_best_margin_and_its_curve(
    tmp_path, saved_figures):
  later = {"recipe": "ae-0.635-cpu-wide", "operating_point": "0.635", "milestones": [
      {"step": 4000, "bpp": 0.75, "ms_ssim": 0.935, "psnr": 30.5},
      {"step": 5000, "bpp": 0.75, "ms_ssim": 0.925, "psnr": 30.0}]}
  never = {"recipe": "r", "operating_point": "0.635", "milestones": [
      {"step": 1, "bpp": 1.5, "ms_ssim": 0.99, "psnr": 40.0}]}  # beyond JPEG's curve
  # A replicate of the first recipe (another seed) is told apart from it by its seed.
  replicate = {**HISTORY, "config": {"seed": 2}}
  summaries = [codec_history.history_against(h, CURVES)
               for h in (HISTORY, later, never, replicate)]
  text = codec_history.comparison_markdown(summaries, "t")
  # The last measured milestone (step 2000 has no JPEG) and the best one.
  assert "| `ae-0.635-cpu` | 3000 | 0.5000 | +0.0500 | -0.50 | +0.0500 | 3000 |" in text
  assert "| `ae-0.635-cpu-wide` | 5000 | 0.7500 | -0.0050 | +0.00 | +0.0050 | 4000 |" in text
  assert "| `r` |  |  |  |  |  |  |" in text
  assert "| `ae-0.635-cpu seed 2` | 3000 |" in text
  path = str(tmp_path / "c.png")
  assert codec_history.comparison_figure(summaries, path) == path
  (axis,) = saved_figures[path].axes
  drawn = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
           for line in axis.get_lines() if not line.get_label().startswith("_")}
  assert drawn["ae-0.635-cpu"] == ([1000, 3000], pytest.approx([-0.01, 0.05]))
  assert drawn["ae-0.635-cpu-wide"] == ([4000, 5000], pytest.approx([0.005, -0.005]))
  assert drawn["r"] == ([], [])
  assert drawn["ae-0.635-cpu seed 2"] == drawn["ae-0.635-cpu"]
