r"""Copies trained codec bundles and their Kodak evaluations into the package (tfcdi/pretrained).

  python -m tools.ship_codecs --runs=/path/to/codec_cpu     # holds <op>/codec_<op>.npz
  python -m tools.ship_codecs --hyperprior_runs=runs        # holds hyperprior_q<Q>[_msssim]/ runs

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
from tfcdi.codec import qualities
from tfcdi.train import hyperprior as hyperprior_train

_RUNS = flags.DEFINE_string("runs", None, "Folder with one sub-folder per operating point.")
_DEST = flags.DEFINE_string("dest", None, "Where to ship to (default: the package's "
                            "tfcdi/pretrained, which setup.py installs).")
_HYPERPRIOR_RUNS = flags.DEFINE_string(
    "hyperprior_runs", None, "Folder holding runs of tfcdi-train-codec --codec=hyperprior, "
    "each named after its bundle: hyperprior_q<Q>/ (MSE) or hyperprior_q<Q>_msssim/ (MS-SSIM); "
    "every finished one is shipped.")


def _ship(bundle: str, evaluation: str, bundle_to: str, evaluation_to: str, label: str):
  """Copies one bundle and its Kodak evaluation, refusing an evaluation of other weights."""
  meta = pretrained.read_metadata(bundle)
  with open(evaluation) as f:
    result = json.load(f)
  if result["fingerprint"] != meta["fingerprint"]:
    raise app.UsageError(f"{evaluation} was measured on another codec than {bundle}")
  shutil.copyfile(bundle, bundle_to)
  shutil.copyfile(evaluation, evaluation_to)
  print(f"{label}: shipped {meta['name']} ({meta['fingerprint']}), Kodak {result['bpp']:.4f} "
        f"bpp, PSNR {result['psnr']:.2f} dB, MS-SSIM {result['ms_ssim']:.4f}")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not (_RUNS.value or _HYPERPRIOR_RUNS.value):
    raise app.UsageError("give --runs (autoencoder codecs) and/or --hyperprior_runs")
  dest = _DEST.value or pretrained.PRETRAINED_DIR
  os.makedirs(dest, exist_ok=True)
  for op in operating_points.OPERATING_POINTS if _RUNS.value else ():
    bundle = os.path.join(_RUNS.value, op, f"codec_{op}.npz")
    evaluation = os.path.join(_RUNS.value, op, "kodak_eval.json")
    if not (os.path.exists(bundle) and os.path.exists(evaluation)):
      print(f"{op}: not finished (no bundle or no Kodak evaluation), skipped")
      continue
    _ship(bundle, evaluation, os.path.join(dest, os.path.basename(pretrained.shipped_path(op))),
          os.path.join(dest, f"kodak_eval_{op}.json"), op)
    # A recipe's run (tfcdi-train-codec --recipe) ships its milestones too: the codec's history.
    history = os.path.join(_RUNS.value, op, "history.json")
    if pretrained.read_metadata(bundle).get("recipe") and os.path.exists(history):
      shutil.copyfile(history, os.path.join(dest, f"history_{op}.json"))
  for quality in qualities.QUALITIES if _HYPERPRIOR_RUNS.value else ():
    for distortion in qualities.DISTORTIONS:
      bundle_file = hyperprior_train.bundle_name(quality, distortion)
      stem = bundle_file.removesuffix(".npz")  # hyperprior_q4, hyperprior_q4_msssim
      run_dir = os.path.join(_HYPERPRIOR_RUNS.value, stem)
      bundle = os.path.join(run_dir, bundle_file)
      evaluation = os.path.join(run_dir, "kodak_eval.json")
      if not (os.path.exists(bundle) and os.path.exists(evaluation)):
        continue  # qualities nobody trained are the common case: no line for each
      trained_for = pretrained.read_metadata(bundle).get("distortion", qualities.MSE)
      if trained_for != distortion:
        # The shipped name says what the codec was trained for: a misplaced bundle would lie.
        raise app.UsageError(f"{bundle} was trained for {trained_for}, not {distortion}")
      _ship(bundle, evaluation, os.path.join(dest, bundle_file),
            os.path.join(dest, f"kodak_eval_{stem}.json"),
            stem.replace("_", " ", 1))  # "hyperprior q4", "hyperprior q4_msssim"


def run():
  app.run(main)


if __name__ == "__main__":
  run()
