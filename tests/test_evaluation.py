"""Rate-distortion from real files: bpp from bytes, payload close to the information content."""

import os

import numpy as np
import pytest
from PIL import Image

from tfcdi import metrics
from tfcdi.codec import evaluation
from tfcdi.codec import registry

KODAK = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "kodak")


@pytest.mark.skipif(not os.path.isdir(KODAK), reason="the shared Kodak is not beside the repo")
def test_kodak_image_measured_from_its_file(tiny_codec_path, tmp_path):
  # A Kodak image cropped to an odd size (still above MS-SSIM's 161 px minimum).
  image = np.asarray(Image.open(os.path.join(KODAK, "kodim05.png")).convert("RGB"))[:203, :301]
  Image.fromarray(image).save(tmp_path / "crop.png")
  result = evaluation.evaluate_bundle_on_folder(tiny_codec_path, str(tmp_path),
                                                str(tmp_path / "out"), log=lambda m: None)
  row = result["images"][0]
  assert (row["height"], row["width"]) == (203, 301)
  assert row["bpp"] == pytest.approx(8 * row["bytes"] / (203 * 301))
  # The range coder's payload is within 1% of the symbols' information content (plus the
  # fixed end marker and word padding of a few bytes).
  assert row["information_bits"] <= row["payload_bits"] <= row["information_bits"] * 1.01 + 96
  assert 0 < result["ms_ssim"] <= 1 and np.isfinite(result["psnr"])
  # The numbers are those of the file the codec writes and of its decoding: recomputed here.
  codec = registry.load(tiny_codec_path)
  data = codec.compress(image)
  assert row["bytes"] == len(data)
  back = codec.decompress(data).astype(np.float64)
  mse = np.mean((image - back) ** 2)
  assert row["psnr"] == pytest.approx(10 * np.log10(255.0**2 / mse), abs=1e-6)
  assert row["ssim"] == pytest.approx(metrics.ssim(image, back), abs=1e-6)
  assert row["ms_ssim"] == pytest.approx(metrics.ms_ssim(image, back), abs=1e-6)
  for key in ("bpp", "psnr", "ssim", "ms_ssim"):  # the means of a single image
    assert result[key] == pytest.approx(row[key])
  # Cached by fingerprint: a second call reads the file back instead of recomputing.
  lines = []
  again = evaluation.evaluate_bundle_on_folder(tiny_codec_path, str(tmp_path),
                                               str(tmp_path / "out"), log=lines.append)
  assert again["bpp"] == result["bpp"] and "exists" in lines[0]
