r"""Exports a trained latent classifier into the package, so tfcdi-classify works out of the box.

  python -m tools.ship_classifier --workdir=/work/runs/cls/cresnet51_0.635
  python -m tools.ship_classifier --add_file_signatures   # upgrade the shipped ones in place

Writes tfcdi/pretrained/classifiers/<net>_<bpp>/ (a SavedModel with the `classify` and `labels`
signatures, and tfcdi_export.json). Refuses a classifier whose codec is not the shipped codec of
its operating point: its files could not be made with the installed tfcdi-compress. Replaces
an earlier shipped classifier of the same codec, so each codec has one.

--add_file_signatures re-exports every shipped classifier with the classify_file and
decode_symbols signatures (serving.add_file_signatures), from the shipped export itself: no
training workdir is needed, and the net's weights are the shipped ones, unchanged.
"""

import os
import shutil
import tempfile

from absl import app
from absl import flags

from tfcdi import serving
from tfcdi.codec import pretrained
from tfcdi.train import classifier

_WORKDIR = flags.DEFINE_string("workdir", None, "A finished tfcdi-train-classifier workdir.")
_ADD_FILE_SIGNATURES = flags.DEFINE_bool(
    "add_file_signatures", False, "Re-export the shipped classifiers with the classify_file "
    "and decode_symbols signatures, in place.")


def add_file_signatures():
  for export_dir, _ in serving.shipped_classifiers():
    with tempfile.TemporaryDirectory(dir=serving.SHIPPED_CLASSIFIERS_DIR) as tmp:
      upgraded = serving.add_file_signatures(export_dir, os.path.join(tmp, "export"))
      shutil.rmtree(export_dir)
      os.rename(upgraded, export_dir)
    print(f"{export_dir}: signatures classify_file and decode_symbols added")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if _ADD_FILE_SIGNATURES.value:
    add_file_signatures()
    return
  if _WORKDIR.value is None:
    raise app.UsageError("--workdir is required (or --add_file_signatures)")
  results = classifier.read_results(_WORKDIR.value)
  if results is None or not results.get("complete"):
    raise app.UsageError(f"{_WORKDIR.value} holds no finished classifier")
  if results["input"] != "latent":
    raise app.UsageError(f"{_WORKDIR.value} holds an RGB classifier; only latent ones ship")
  op = results["operating_point"]
  shipped = pretrained.read_metadata(pretrained.shipped_path(op))
  if shipped["fingerprint"] != results["codec"]["fingerprint"]:
    raise app.UsageError(
        f"the classifier reads latents of codec {results['codec']['name']} "
        f"({results['codec']['fingerprint']}), not of the shipped {op} codec "
        f"({shipped['fingerprint']}); retrain it on a store of the shipped codec")
  os.makedirs(serving.SHIPPED_CLASSIFIERS_DIR, exist_ok=True)
  target = os.path.join(serving.SHIPPED_CLASSIFIERS_DIR, f"{results['net']}_{op}")
  with tempfile.TemporaryDirectory(dir=serving.SHIPPED_CLASSIFIERS_DIR) as tmp:
    export_dir = serving.export_latent_classifier(_WORKDIR.value, os.path.join(tmp, "export"))
    for old_dir, info in serving.shipped_classifiers():
      if info["codec"]["fingerprint"] == shipped["fingerprint"] or old_dir == target:
        shutil.rmtree(old_dir)
    os.rename(export_dir, target)
  info = serving.read_info(target)
  info["workdir"] = None  # a path on the machine that trained it: meaningless once shipped
  serving.write_info(target, info)
  size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(target) for f in fs)
  print(f"shipped {results['net']} for codec {shipped['name']} ({shipped['fingerprint']}) at "
        f"{target}: {size / 2**20:.1f} MiB, top-1 {info['top1']:.4f}, top-5 {info['top5']:.4f}")


def run():
  app.run(main)


if __name__ == "__main__":
  run()
