"""Rate-distortion of a codec bundle measured from real .tfci files (never from the estimate).

Every image is compressed to bytes, the bytes are decoded by a fresh parse (exactly what
tfcdi-decompress does), and bpp comes from the byte count of the whole file, header included.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from tfcdi import imageio
from tfcdi import metrics
from tfcdi.codec import coding
from tfcdi.codec import registry
from tfcdi.data import images as images_lib


def evaluate_codec_on_images(codec, paths, log=print) -> dict:
  """Per-image and mean bpp / PSNR / SSIM / MS-SSIM from real files, plus coding checks.

  `codec` is a loaded codec of any family.
  """
  per_image = []
  for path in paths:
    image, _ = imageio.load_rgb(path)
    tick = time.time()
    data = coding.compress_image(codec, image)
    decoded = coding.decompress_bytes(data, codec)
    seconds = time.time() - tick
    # The payload against the symbols' information content under the shipped tables: the
    # range coder's overhead, which the format promises to keep within 1%.
    header, info_bits = codec.information_bits(data)
    height, width = image.shape[:2]
    per_image.append({
        "image": os.path.basename(path),
        "height": height,
        "width": width,
        "bytes": len(data),
        "bpp": metrics.bpp_from_bytes(len(data), height, width),
        "payload_bits": 8 * header.payload_length,
        "information_bits": float(info_bits),
        "psnr": float(metrics.psnr(image, decoded)),
        "ssim": float(metrics.ssim(image, decoded)),
        "ms_ssim": float(metrics.ms_ssim(image, decoded)),
        "seconds": seconds,
    })
    r = per_image[-1]
    log(f"  {r['image']}: {r['bpp']:.4f} bpp  PSNR {r['psnr']:.2f}  MS-SSIM {r['ms_ssim']:.4f}")
  keys = ("bpp", "psnr", "ssim", "ms_ssim")
  mean = {k: float(np.mean([r[k] for r in per_image])) for k in keys}
  overhead = (sum(r["payload_bits"] for r in per_image)
              / sum(r["information_bits"] for r in per_image) - 1.0)
  # Only a codec trained for a rate (the autoencoder's operating points) has a target.
  target = ({"bpp_relative_to_target": mean["bpp"] / codec.target_bpp - 1.0}
            if codec.target_bpp is not None else {})
  return {
      **codec.result_identity(),
      "codec": codec.name,
      "fingerprint": codec.fingerprint.hex(),
      "num_images": len(per_image),
      **mean,
      **target,
      "payload_overhead_vs_information": overhead,
      "measured_from": "real .tfci files (whole file, header included)",
      "images": per_image,
  }


def evaluate_bundle_on_folder(bundle_path: str, image_dir: str, workdir: str,
                              limit: int = 0, log=print) -> dict:
  """Evaluates a bundle on every image of a folder; cached in workdir/kodak_eval.json.

  The cache is keyed by the bundle's fingerprint, so a retrained bundle is evaluated again.
  """
  codec = registry.load(bundle_path)
  paths, _, _ = images_lib.list_images(image_dir)
  if limit:
    paths = paths[:limit]
  out_path = os.path.join(workdir, "kodak_eval.json")
  if os.path.exists(out_path):
    with open(out_path) as f:
      cached = json.load(f)
    if (cached.get("fingerprint") == codec.fingerprint.hex()
        and cached.get("num_images") == len(paths)):
      log(f"[codec {codec.label}] Kodak evaluation exists: {out_path}")
      return cached
  log(f"[codec {codec.label}] evaluating on {len(paths)} images from real files")
  result = evaluate_codec_on_images(codec, paths, log=log)
  os.makedirs(workdir, exist_ok=True)
  with open(out_path + ".tmp", "w") as f:
    json.dump(result, f, indent=2)
  os.replace(out_path + ".tmp", out_path)
  target = f" (target {codec.target_bpp})" if codec.target_bpp is not None else ""
  log(f"[codec {codec.label}] mean {result['bpp']:.4f} bpp{target}, PSNR {result['psnr']:.2f} "
      f"dB, SSIM {result['ssim']:.4f}, MS-SSIM {result['ms_ssim']:.4f}")
  return result
