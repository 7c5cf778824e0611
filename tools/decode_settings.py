r"""How far decoded pixels move between TensorFlow's kernel settings, measured.

  python -m tools.decode_settings --output=reports/codec/decode_settings.json
  python -m tools.decode_settings --images=kodim01,kodim23 --codecs=0.635,q4 --crop=256

A .tfci file's symbols are the same on every machine (integer tables, integer hyper-synthesis);
its pixels come out of a float synthesis transform, whose kernels sum in an order that depends
on the machine and on TensorFlow's settings. This compresses Kodak images with every shipped
codec, decodes each file in a fresh process under each setting
  default      TensorFlow's defaults on this machine (all cores);
  onednn_off   TF_ENABLE_ONEDNN_OPTS=0 (TensorFlow's own kernels);
  onednn_on    TF_ENABLE_ONEDNN_OPTS=1 (oneDNN's kernels);
  one_thread   intra- and inter-op parallelism of 1 thread,
and compares each setting's pixels with the default's: how many 8-bit samples differ, and by how
many grey levels at most. The README's statement is BOUND: at most MAX_LEVELS grey level, in
at most one sample in 1 / MAX_FRACTION; the exit status is 1 if a decode breaks it.
"""

import json
import os
import subprocess
import sys
import tempfile

from absl import app
from absl import flags
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KODAK = os.path.join(REPO, "..", "shared", "data", "kodak")
SHIPPED = ("0.0983", "0.330", "0.635", "q1", "q4", "q8")
# Each setting: the environment a decoding process gets, and its thread count (None: default).
SETTINGS = {
    "default": ({}, None),
    "onednn_off": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, None),
    # TensorFlow turns oneDNN on by default only on some CPUs (those with AVX-512 VNNI, bf16 or
    # AMX); elsewhere "default" is "onednn_off", so the oneDNN kernels are asked for explicitly.
    "onednn_on": ({"TF_ENABLE_ONEDNN_OPTS": "1"}, None),
    "one_thread": ({}, 1),
}
# What the README states, and the test checks: pixels differ between settings by at most
# MAX_LEVELS grey levels, in at most a MAX_FRACTION of the samples of any decoded image.
MAX_LEVELS = 1
MAX_FRACTION = 1e-4
BOUND = (f"at most {MAX_LEVELS} grey level, in at most one 8-bit sample in "
         f"{round(1 / MAX_FRACTION):,}")

_IMAGES = flags.DEFINE_list("images", ["kodim01", "kodim08", "kodim15", "kodim23"],
                            "Kodak images (names without .png) to code.")
_CODECS = flags.DEFINE_list("codecs", list(SHIPPED), "Shipped codecs: autoencoder operating "
                            "points (0.0983, 0.330, 0.635) and hyperprior qualities (q1, q4, q8).",
                            allow_override=True)
_CROP = flags.DEFINE_integer("crop", None, "Code only the top-left CROP x CROP pixels (default: "
                             "the whole image).")
# allow_override: the test process imports both tools, which share these flag names.
_OUTPUT = flags.DEFINE_string("output", None, "Where to write the JSON (optional).",
                              allow_override=True)
# The child process' side: decode the files given as arguments into this folder, as .npy.
_DECODE_TO = flags.DEFINE_string("decode_to", None, "Internal: decode the .tfci arguments into "
                                 "this folder (one process per setting).")
_THREADS = flags.DEFINE_integer("threads", None, "Internal: TensorFlow's intra- and inter-op "
                                "thread counts in a decoding process.")


def load_shipped(codec: str):
  """The shipped codec named "0.635" or "q4"."""
  from tfcdi.codec import pretrained  # pylint: disable=g-import-not-at-top  (TF: parent only)
  if codec.startswith("q") and codec[1:].isdigit():
    return pretrained.load_codec(path=os.path.join(pretrained.PRETRAINED_DIR,
                                                   f"hyperprior_{codec}.npz"))
  return pretrained.load_codec(codec)


def kodak_image(name: str, crop: int | None = None) -> np.ndarray:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(os.path.join(KODAK, f"{name}.png")) as f:
    image = np.asarray(f.convert("RGB"))
  return image[:crop, :crop] if crop else image


def write_files(codecs, images, folder: str, crop: int | None = None) -> list:
  """Compresses each image with each codec into `folder`; the paths, grouped by codec (so a
  decoding process builds each codec once)."""
  paths = []
  for name in codecs:
    codec = load_shipped(name)
    for image_name in images:
      path = os.path.join(folder, f"{image_name}_{name}.tfci")
      with open(path, "wb") as f:
        f.write(codec.compress(kodak_image(image_name, crop)))
      paths.append(path)
  return paths


def start_decoding(paths: list, setting: str, folder: str) -> subprocess.Popen:
  """A fresh process decoding `paths` into folder/<setting>/ under a setting (SETTINGS)."""
  env, threads = SETTINGS[setting]
  out = os.path.join(folder, setting)
  os.makedirs(out, exist_ok=True)
  command = [sys.executable, "-m", "tools.decode_settings", f"--decode_to={out}", *paths]
  if threads is not None:
    command.insert(3, f"--threads={threads}")
  return subprocess.Popen(command, cwd=REPO, env={**os.environ, **env},
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def decode_under_settings(paths: list, folder: str) -> None:
  """Decodes `paths` under every setting, one process each (run side by side)."""
  processes = {s: start_decoding(paths, s, folder) for s in SETTINGS}
  for setting, process in processes.items():
    _, err = process.communicate()
    if process.returncode != 0:
      last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
      raise RuntimeError(f"decoding under setting {setting} failed: {last[0]}")


def compare(paths: list, folder: str) -> list:
  """Per file and setting: samples, differing samples and the largest difference (grey levels)
  against the default setting's decode."""
  rows = []
  for path in paths:
    stem = os.path.splitext(os.path.basename(path))[0]
    reference = np.load(os.path.join(folder, "default", stem + ".npy")).astype(np.int16)
    for setting in SETTINGS:
      if setting == "default":
        continue
      pixels = np.load(os.path.join(folder, setting, stem + ".npy")).astype(np.int16)
      difference = np.abs(pixels - reference)
      rows.append({"file": stem, "setting": setting, "samples": int(difference.size),
                   "differing": int(np.count_nonzero(difference)),
                   "max_levels": int(difference.max())})
  return rows


def within_bound(row: dict) -> bool:
  return row["max_levels"] <= MAX_LEVELS and row["differing"] <= MAX_FRACTION * row["samples"]


def decode_files(paths: list, out: str, threads: int | None) -> None:
  """The child's work: each .tfci file -> out/<stem>.npy, decoded with the codec it names."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if threads is not None:  # before anything runs an op
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
  from tfcdi.codec import coding  # pylint: disable=g-import-not-at-top
  for path in paths:
    with open(path, "rb") as f:
      pixels = coding.decompress_bytes(f.read())
    np.save(os.path.join(out, os.path.splitext(os.path.basename(path))[0] + ".npy"), pixels)


def main(argv):
  if _DECODE_TO.value:
    decode_files(argv[1:], _DECODE_TO.value, _THREADS.value)
    return 0
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  unknown = sorted(set(_CODECS.value) - set(SHIPPED))
  if unknown:
    raise app.UsageError(f"--codecs: not a shipped codec: {', '.join(unknown)} (the shipped: "
                         f"{', '.join(SHIPPED)})")
  with tempfile.TemporaryDirectory() as folder:
    paths = write_files(_CODECS.value, _IMAGES.value, folder, _CROP.value)
    decode_under_settings(paths, folder)
    rows = compare(paths, folder)
  for row in rows:
    print(f"{row['file']:>16} {row['setting']:>10}: {row['differing']} of {row['samples']} "
          f"samples differ, by at most {row['max_levels']}", flush=True)
  worst = max(rows, key=lambda r: r["differing"] / r["samples"])
  print(f"bound: {BOUND}; the worst decode: {worst['differing']} of {worst['samples']} samples "
        f"({worst['file']}, {worst['setting']}), by at most "
        f"{max(r['max_levels'] for r in rows)} grey level", flush=True)
  if _OUTPUT.value:
    os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
    with open(_OUTPUT.value, "w") as f:
      json.dump({"bound": BOUND, "max_levels": MAX_LEVELS, "max_fraction": MAX_FRACTION,
                 "crop": _CROP.value, "rows": rows}, f, indent=1)
  return 0 if all(within_bound(r) for r in rows) else 1


if __name__ == "__main__":
  app.run(main)
