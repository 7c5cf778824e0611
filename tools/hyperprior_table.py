r"""Collects the hyperprior follow-up's runs into committed results (issue: hyperprior latents).

  python -m tools.hyperprior_table --runs=runs/cls_hp \
      --codec_results=runs/hyperprior_q1/kodak_eval.json \
      --codec_results=runs/hyperprior_q4/kodak_eval.json \
      --codec_results=runs/hyperprior_q8/kodak_eval.json --output_dir=reports/hyperprior

Every `<runs>/*/results.json` (tfcdi-train-classifier on a hyperprior store) is copied to
`<output_dir>/runs/<quality>[_msssim]_<net>_<input>[_<latent inputs>][_seed<N>].json` (every
run in that folder makes the table, including those collected before), and each
codec's Kodak evaluation to `<output_dir>/kodak_eval_<quality>[_msssim].json` (`_msssim`: a codec
trained for MS-SSIM, `--recipe=hp-q4-msssim-cpu`); `hyperprior.json` / `hyperprior.md`
put the arms of each quality and codec side by side, the MSE and MS-SSIM codecs of a quality
beside each other, (an arm run with several --seed values as the mean
of its finished seeds, with their range) with its Kodak rate, beside the follow-up's published
numbers (other datasets, labelled published). For the rate-distortion plot against JPEG,
JPEG 2000 and the autoencoder's points, use tools/rd_curve.py with --curves_from. The logic lives
in tfcdi/reporting/.
"""

import glob
import json
import os
import shutil

from absl import app
from absl import flags

from tfcdi.reporting import hyperprior
from tfcdi.reporting import published
from tfcdi.reporting import results
from tools import _tables

_RUNS = flags.DEFINE_string("runs", None, "Folder whose subfolders are classifier workdirs of "
                            "hyperprior stores (may be absent: codecs only).")
_CODEC_RESULTS = flags.DEFINE_multi_string(
    "codec_results", [], "kodak_eval.json of a hyperprior codec; repeat the flag.")
_OUTPUT_DIR, _TITLE, _PAPER_NUMBERS = _tables.define_output_flags(
    "reports/hyperprior", "Hyperprior latents on Imagenette, cpu preset")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if _RUNS.value and not os.path.isdir(_RUNS.value):
    raise app.UsageError(f"--runs must be a folder of classifier workdirs, got {_RUNS.value!r}")
  if not _RUNS.value and not _CODEC_RESULTS.value:
    raise app.UsageError("give --runs, --codec_results or both")
  os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
  def name_of(r):
    return "_".join(str(p) for p in (f"{r['operating_point']}{hyperprior.file_tag(r)}",
                                     r["net"], r["input"], r.get("latent_inputs"))
                    if p) + results.seed_suffix(r)

  # The runs collected before (other runs folders, other sessions) stay part of the table, as
  # in the other result tables; without --runs the table is re-made from them and the codecs.
  try:
    copies = (_tables.collect_runs(_RUNS.value, "classifier", _OUTPUT_DIR.value, name_of)
              if _RUNS.value else
              sorted(glob.glob(os.path.join(_OUTPUT_DIR.value, "runs", "*.json"))))
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  codec_results = []
  for path in _CODEC_RESULTS.value:
    try:
      with open(path) as f:
        result = json.load(f)
    except (OSError, ValueError) as e:
      raise app.UsageError(f"--codec_results {path}: not readable JSON ({e})") from None
    codec_results.append(result)
    quality = hyperprior.codec_quality(result)
    if quality is not None:
      try:
        tag = hyperprior.file_tag(result)
      except ValueError as e:
        raise app.UsageError(f"--codec_results {path}: {e}") from None
      target = os.path.join(_OUTPUT_DIR.value, f"kodak_eval_q{quality}{tag}.json")
      # Re-collecting reads the committed copies themselves (the README's command does).
      if not (os.path.exists(target) and os.path.samefile(path, target)):
        shutil.copyfile(path, target)
  try:
    summary = hyperprior.hyperprior_summary(copies, codec_results,
                                            published.load_paper_numbers(_PAPER_NUMBERS.value))
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  for point in summary["points"]:
    for arm in point["arms"]:
      for entry in [arm, *arm.get("seed_runs", [])]:
        if "source" in entry:
          entry["source"] = os.path.relpath(entry["source"], _OUTPUT_DIR.value)
  _tables.write_summary(_OUTPUT_DIR.value, "hyperprior", summary,
                        hyperprior.hyperprior_markdown(summary, _TITLE.value))


if __name__ == "__main__":
  app.run(main)
