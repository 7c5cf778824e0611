"""Tests for tfcdi.baselines: real JPEG / JPEG 2000 round trips, sweeps and the comparison."""

import json
import math
import os

import numpy as np
import pytest

from tfcdi import baselines
from tfcdi import metrics

_DATA_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
_KODIM01 = os.path.join(_DATA_DIR, "kodak", "kodim01.png")


@pytest.fixture(scope="module")
def kodak_crop():
  if not os.path.exists(_KODIM01):
    pytest.skip(f"Kodak data not found at {os.path.abspath(_KODIM01)} (shared/data is missing).")
  images = baselines.load_images(os.path.dirname(_KODIM01), pattern="kodim01.png")
  # A textured 128 x 128 region (the wall and window): small enough to code in milliseconds.
  return np.ascontiguousarray(images[0][1][200:328, 300:428])


@pytest.mark.parametrize("codec_name, low, high", [("jpeg", 10, 80), ("jpeg2000", 26.0, 38.0)])
def test_round_trip_and_real_bpp(kodak_crop, codec_name, low, high):
  codec = baselines.CODECS[codec_name]
  bpps = []
  for setting in (low, high):
    data, decoded = codec.encode_decode(kodak_crop, setting)
    assert decoded.shape == kodak_crop.shape and decoded.dtype == np.uint8
    assert metrics.psnr(kodak_crop, decoded) > 20.0
    bpps.append(metrics.bpp_from_bytes(len(data), 128, 128))
    assert bpps[-1] == pytest.approx(8 * len(data) / (128 * 128))
  assert bpps[1] > bpps[0]


def test_jpeg_is_a_whole_jfif_file(kodak_crop):
  data, _ = baselines.jpeg_encode_decode(kodak_crop, 50)
  assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"  # SOI ... EOI


def test_jpeg2000_is_a_raw_codestream(kodak_crop):
  data, _ = baselines.jpeg2000_encode_decode(kodak_crop, 30.0)
  assert data[:4] == b"\xff\x4f\xff\x51"  # SOC + SIZ: no JP2 container boxes
  assert data[-2:] == b"\xff\xd9"  # EOC


def test_jpeg2000_reaches_its_target_psnr_at_medium_rates(kodak_crop):
  _, decoded = baselines.jpeg2000_encode_decode(kodak_crop, 32.0)
  assert metrics.psnr(kodak_crop, decoded) == pytest.approx(32.0, abs=1.0)


def test_bad_settings_raise(kodak_crop):
  with pytest.raises(ValueError):
    baselines.jpeg_encode_decode(kodak_crop, 0)
  with pytest.raises(ValueError):
    baselines.jpeg2000_encode_decode(kodak_crop, 0.0)  # would silently be lossless
  with pytest.raises(ValueError):
    baselines.jpeg_encode_decode(kodak_crop.astype(np.float32), 50)


class TestInterpolate:

  def test_inside(self):
    at = baselines.interpolate_at_bpp([0.5, 0.1, 1.0], [30.0, 20.0, 35.0], 0.3)
    assert at.in_range and at.reason == ""
    assert at.value == pytest.approx(25.0)

  def test_at_the_ends(self):
    assert baselines.interpolate_at_bpp([0.1, 1.0], [20.0, 35.0], 0.1).value == pytest.approx(20)
    assert baselines.interpolate_at_bpp([0.1, 1.0], [20.0, 35.0], 1.0).value == pytest.approx(35)

  def test_outside(self):
    below = baselines.interpolate_at_bpp([0.1, 1.0], [20.0, 35.0], 0.05)
    assert not below.in_range and math.isnan(below.value)
    assert below.reason == "below_lowest_bpp"
    above = baselines.interpolate_at_bpp([0.1, 1.0], [20.0, 35.0], 2.0)
    assert not above.in_range and above.reason == "above_highest_bpp"

  def test_duplicate_bpps_are_averaged(self):
    at = baselines.interpolate_at_bpp([0.1, 0.1, 1.0], [20.0, 22.0, 31.0], 0.1)
    assert at.value == pytest.approx(21.0)


def _curve(name, bpps, value):
  points = [{"bpp": b, "psnr": value(b), "ssim": value(b) / 100, "ms_ssim": value(b) / 50}
            for b in bpps]
  return {"codec": name, "num_images": 1, "points": points, "bpp_range": [bpps[0], bpps[-1]]}


def test_compare_with_baselines():
  curves = {"jpeg": _curve("jpeg", [0.1, 1.0], lambda b: 20 + 10 * b),
            "jpeg2000": _curve("jpeg2000", [0.02, 1.0], lambda b: 22 + 10 * b)}
  low = {"operating_point": "0.0983", "bpp": 0.05, "psnr": 30.0, "ssim": 0.1, "ms_ssim": 0.1}
  result = baselines.compare_with_baselines(low, curves)
  assert result["jpeg_cannot_reach"] and not result["jpeg2000_cannot_reach"]
  assert result["baselines"]["jpeg"]["psnr"] is None
  assert result["baselines"]["jpeg2000"]["psnr"] == pytest.approx(22.5)
  assert result["baselines"]["jpeg2000"]["learned_better"] == {
      "ms_ssim": False, "ssim": False, "psnr": True}
  with pytest.raises(ValueError, match="lacks"):
    baselines.compare_with_baselines({"operating_point": "x", "bpp": 0.5}, curves)


def test_hyperprior_results_compare_by_quality():
  curves = {"jpeg": _curve("jpeg", [0.1, 1.0], lambda b: 20 + 10 * b)}
  point = {"codec_family": "hyperprior", "quality": 4, "bpp": 0.5, "psnr": 30.0, "ssim": 0.9,
           "ms_ssim": 0.97}
  result = baselines.compare_with_baselines(point, curves)
  assert result["quality"] == 4 and result["baselines"]["jpeg"]["psnr"] == pytest.approx(25.0)
  assert baselines.result_label(point) == "hyperprior, quality 4"
  # A hyperprior result must say which quality it is; an operating point does not stand in.
  with pytest.raises(ValueError, match=r"hyperprior.*lacks \['quality'\]"):
    baselines.compare_with_baselines({**{k: v for k, v in point.items() if k != "quality"},
                                      "operating_point": "0.635"}, curves)


def test_load_codec_results_object_or_list(tmp_path):
  point = {"operating_point": "0.635", "bpp": 0.6, "psnr": 29.0, "ssim": 0.8, "ms_ssim": 0.95}
  (tmp_path / "one.json").write_text(json.dumps(point))
  (tmp_path / "two.json").write_text(json.dumps([point, {**point, "operating_point": "0.330"}]))
  results = baselines.load_codec_results([str(tmp_path / "one.json"), str(tmp_path / "two.json")])
  assert [r["operating_point"] for r in results] == ["0.635", "0.635", "0.330"]


def test_tiny_report_and_plot(kodak_crop, tmp_path, saved_figures):
  # MS-SSIM needs >= 161 pixels, so tile the crop to 192 x 192; two settings per codec.
  image = np.ascontiguousarray(np.tile(kodak_crop, (2, 2, 1))[:192, :192])
  point = {"operating_point": "0.635", "bpp": 0.6, "psnr": 29.0, "ssim": 0.8, "ms_ssim": 0.95}
  report = baselines.rd_report([("crop", image)], [point],
                               settings={"jpeg": [10, 60], "jpeg2000": [26.0, 34.0]})
  for curve in report["curves"].values():
    bpps = [p["bpp"] for p in curve["points"]]
    assert bpps == sorted(bpps) and len(bpps) == 2
    assert curve["points"][1]["ms_ssim"] > curve["points"][0]["ms_ssim"]
  assert report["lowest_bpp"]["jpeg"] == report["curves"]["jpeg"]["bpp_range"][0]
  json.dumps(report, allow_nan=False)  # strictly valid JSON
  baselines.plot_rd_curves(report["curves"], [point], str(tmp_path / "rd.png"))
  assert (tmp_path / "rd.png").stat().st_size > 10_000
  # A panel per metric: each baseline's measured curve, and the learned point as a marker.
  axes = saved_figures[tmp_path / "rd.png"].axes
  assert [ax.get_ylabel() for ax in axes] == ["MS-SSIM", "SSIM", "PSNR [dB]"]
  for ax, metric in zip(axes, baselines.QUALITY_METRICS):
    assert ax.get_xlabel() == "bits per pixel"
    drawn = saved_figures.series(ax)
    for name, label in (("jpeg", "JPEG"), ("jpeg2000", "JPEG 2000")):
      points = report["curves"][name]["points"]
      assert drawn[label] == ([p["bpp"] for p in points], [p[metric] for p in points])
    assert drawn[baselines.result_label(point)] == ([0.6], [point[metric]])
  assert [t.get_text() for t in axes[0].get_legend().get_texts()] == list(drawn)
  saved_figures.assert_drawn(tmp_path / "rd.png", colours=("tab:blue", "tab:orange", "tab:green"))
