"""The width study's table and figure: arms per width, the gap with its spread, its trend."""

import json

import pytest

from tfcdi.reporting import published
from tfcdi.reporting import width

REP, DEC, ORIG = ("cresnet51", "latent", "0.0983"), ("resnet50", "decoded", "0.0983"), (
    "resnet50", "original", "original")


def _write(folder, arm, width_multiplier, seed, top1, top5=90.0, complete=True):
  net, kind, point = arm
  result = {"net": net, "input": kind, "operating_point": point, "complete": complete,
            "config": {"width_multiplier": width_multiplier, "seed": seed},
            "final": {"epoch": 8, "top1": top1 / 100.0, "top5": top5 / 100.0}}
  path = folder / f"{point}_{net}_{kind}_{width_multiplier}_{seed}.json"
  path.write_text(json.dumps(result))
  return str(path)


@pytest.fixture(name="study")
def fixture_study(tmp_path):
  files = [_write(tmp_path, REP, 0.125, s, t) for s, t in enumerate((56.0, 55.0, 54.0))]
  files += [_write(tmp_path, DEC, 0.125, s, t, 89.0) for s, t in enumerate((50.0, 51.0, 52.0))]
  files += [_write(tmp_path, REP, 0.25, s, t) for s, t in enumerate((58.0, 60.0))]
  files += [_write(tmp_path, DEC, 0.25, s, t, 89.0) for s, t in enumerate((57.0, 58.0))]
  files += [_write(tmp_path, REP, 0.5, 0, 62.0), _write(tmp_path, DEC, 0.5, 0, 62.5, 89.0)]
  files += [_write(tmp_path, ORIG, 0.125, 0, 58.0)]
  # Not part of the study: another operating point and another net; skipped.
  files += [_write(tmp_path, ("cresnet51", "latent", "0.635"), 0.125, 0, 70.0),
            _write(tmp_path, ("cresnet39", "latent", "0.0983"), 0.125, 0, 70.0)]
  return width.width_summary(files, published.load_paper_numbers())


def test_the_gap_per_width_is_the_mean_difference_with_the_larger_seed_range_as_spread(study):
  assert study["widths"] == [0.125, 0.25, 0.5]
  gaps = {g["width"]: g for g in study["gaps"]}
  assert gaps[0.125]["top1"] == pytest.approx(4.0) and gaps[0.125]["top1_spread"] == pytest.approx(2.0)
  assert gaps[0.25]["top1"] == pytest.approx(1.5) and gaps[0.25]["top1_spread"] == pytest.approx(2.0)
  assert gaps[0.125]["seeds"] == [3, 3] and gaps[0.25]["seeds"] == [2, 2]
  # One seed per arm: a gap, but no spread measured.
  assert gaps[0.5]["top1"] == pytest.approx(-0.5) and gaps[0.5]["top1_spread"] is None
  assert all(g["top5"] == pytest.approx(1.0) for g in study["gaps"])
  # Least squares over log2 widths -3, -2, -1 and gaps 4, 1.5, -0.5: -2.25 per doubling.
  assert study["gap_per_doubling"]["top1"] == pytest.approx(-2.25)
  assert study["gap_per_doubling"]["top5"] == pytest.approx(0.0)
  # Published: Table 2 at 0.0983, cResNet-51 minus ResNet-50.
  assert study["published_gap"]["top1"] == pytest.approx(55.18 - 55.3)
  assert study["published_gap"]["top5"] == pytest.approx(78.2 - 78.52)
  arms = {(a["width"], a["net"], a["input"]) for a in study["arms"]}
  assert (0.125, "resnet50", "original") in arms and len(arms) == 7


def test_the_table_names_each_width_and_the_published_gap(study):
  text = width.width_markdown(study, "Width")
  assert "| 1/8 | cResNet-51 on the representation | 55.00 (54.00-56.00) |" in text
  assert "| 1/4 | +1.50 | 2.00 | +1.00 | 0.00 | 2 / 2 |" in text
  assert "| 1/2 | -0.50 |  | +1.00 |  | 1 / 1 |" in text
  assert "-0.12 top-1, -0.32 top-5 (published)" in text
  assert "-2.25 top-1, +0.00 top-5 points, over 3 widths" in text


def test_a_seed_given_twice_and_a_run_outside_the_study_are_refused(tmp_path):
  files = [_write(tmp_path, REP, 0.25, 1, 58.0)]
  (tmp_path / "again").mkdir()
  files.append(_write(tmp_path / "again", REP, 0.25, 1, 59.0))
  with pytest.raises(ValueError, match="two runs of .* with seed 1"):
    width.width_summary(files, published.load_paper_numbers())
  with pytest.raises(ValueError, match="not an arm of the width study"):
    width.run_name({"net": "cresnet39", "input": "latent", "operating_point": "0.0983",
                    "config": {"width_multiplier": 0.25}})
  assert width.run_name(json.loads(open(files[0]).read())) == (
      "0.0983_cresnet51_latent_w4_seed1")


def test_the_figure_draws_each_arm_and_both_gaps_beside_the_published_ones(study, tmp_path,
                                                                           saved_figures):
  path = str(tmp_path / "width_gap.png")
  assert width.width_figure(study, path) == path
  left, right = saved_figures[path].axes
  drawn = {c.get_label(): list(c.lines[0].get_ydata()) for c in left.containers}
  assert drawn["cResNet-51 on the representation"] == pytest.approx([55.0, 59.0, 62.0])
  assert drawn["ResNet-50 on original RGB"] == pytest.approx([58.0])
  gaps = {c.get_label(): list(c.lines[0].get_ydata()) for c in right.containers}
  assert gaps["measured gap, top-1"] == pytest.approx([4.0, 1.5, -0.5])
  published_lines = {line.get_label(): line.get_ydata()[0] for line in right.get_lines()
                     if line.get_label().startswith("published")}
  assert published_lines["published gap, top-5 (ImageNet, full width)"] == pytest.approx(-0.32)
  assert [t.get_text() for t in right.get_xticklabels()] == ["1/8", "1/4", "1/2"]
  saved_figures.assert_drawn(path, colours=("tab:blue", "tab:red", "tab:orange"))
  # Without a width where both gap arms ran there is no gap to draw.
  assert width.width_figure({**study, "gaps": []}, str(tmp_path / "none.png")) is None
