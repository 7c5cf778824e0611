r"""Copies trained codec bundles and their Kodak evaluations into the package (tfcdi/pretrained).

  python -m tools.ship_codecs --runs=/path/to/codec_cpu     # holds <op>/codec_<op>.npz

Refuses a bundle whose Kodak evaluation was made with different weights (fingerprint mismatch),
so the shipped metrics always describe the shipped codec.
"""

import json
import os
import shutil

from absl import app
from absl import flags

from tfcdi.codec import operating_points
from tfcdi.codec import pretrained

_RUNS = flags.DEFINE_string("runs", None, "Folder with one sub-folder per operating point.")
flags.mark_flag_as_required("runs")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  os.makedirs(pretrained.PRETRAINED_DIR, exist_ok=True)
  for op in operating_points.OPERATING_POINTS:
    bundle = os.path.join(_RUNS.value, op, f"codec_{op}.npz")
    evaluation = os.path.join(_RUNS.value, op, "kodak_eval.json")
    if not (os.path.exists(bundle) and os.path.exists(evaluation)):
      print(f"{op}: not finished (no bundle or no Kodak evaluation), skipped")
      continue
    meta = pretrained.read_metadata(bundle)
    with open(evaluation) as f:
      result = json.load(f)
    if result["fingerprint"] != meta["fingerprint"]:
      raise app.UsageError(f"{evaluation} was measured on another codec than {bundle}")
    shutil.copyfile(bundle, pretrained.shipped_path(op))
    shutil.copyfile(evaluation, os.path.join(pretrained.PRETRAINED_DIR, f"kodak_eval_{op}.json"))
    print(f"{op}: shipped {meta['name']} ({meta['fingerprint']}), Kodak {result['bpp']:.4f} bpp, "
          f"PSNR {result['psnr']:.2f} dB, MS-SSIM {result['ms_ssim']:.4f}")


def run():
  app.run(main)


if __name__ == "__main__":
  run()
