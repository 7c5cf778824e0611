r""".tfci format version 2 (interleaved rANS) against version 1: rate on Kodak, decoding speed.

  python -m tools.format_benchmark --json=reports/benchmarks/format_v2.json

Rate: every Kodak image is compressed by every shipped codec into a real version-1 file
(tfcdi-compress's path), its symbols are read back, and the version-2 file of the same symbols
is written (what --format_version=2 writes: checked byte for byte on the first image). The
overhead is the total size of the version-2 files over the version-1 files', whole files.

Speed, measured in one run, repeats interleaved so a shared machine's load falls on all alike:
per codec, the time to read a file's symbols with the Python path (version 1, constriction),
with the NumPy reference decoder (version 2), and with the in-graph decoder (version 2,
graph_decode.GraphReader in a tf.function, as a SavedModel runs it), on the 256 x 256
classification views of Kodak images (the files a classifier is served) and on one whole Kodak
image; and, for the shipped classifiers that have it, the SavedModel's classify_file
(file -> top-5, one file per call) against tfcdi-classify's Python path (constriction decoding,
then the `classify` signature).
"""

import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
import numpy as np
from PIL import Image
import tensorflow as tf

from tfcdi import serving
from tfcdi.codec import bitstream
from tfcdi.codec import graph_decode
from tfcdi.codec import registry
from tfcdi.data import latent_store

_KODAK = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "kodak")
_JSON = flags.DEFINE_string("json", None, "Also write the results here.")
_IMAGES = flags.DEFINE_integer("images", 24, "Kodak images for the rate (first N).")
_SPEED_IMAGES = flags.DEFINE_integer("speed_images", 3, "Kodak views timed per codec.")
_REPEATS = flags.DEFINE_integer("repeats", 2, "Timed reads per file and path.")
_CODECS = flags.DEFINE_list("codecs", ["0.0983", "0.330", "0.635", "q1", "q4", "q8"],
                            "Shipped codecs: operating points and hyperprior qualities (qN).")


def _load(name):
  if name.startswith("q"):
    return registry.load(quality=int(name[1:]))
  return registry.load(operating_point=name)


def _kodak(count):
  names = sorted(f for f in os.listdir(_KODAK) if f.endswith(".png"))[:count]
  return [(n, np.asarray(Image.open(os.path.join(_KODAK, n)).convert("RGB"))) for n in names]


def version_2_of(codec, tables, v1: bytes) -> bytes:
  """The version-2 file of the symbols a version-1 file holds."""
  header = bitstream.parse_header(v1)
  if hasattr(header, "z_offset"):  # a two-stream (hyperprior) file
    _, y, z, indices = tables.read_streams(v1)
    return bitstream.encode_hyperprior(
        y, indices, tables.y_tables, z, tables.z_tables, codec_name=tables.name,
        fingerprint=tables.fingerprint, image_size=header.image_size, format_version=2)
  _, symbols = tables.read_symbols(v1)
  return bitstream.encode(symbols["symbols"], tables.frequencies, codec_name=tables.name,
                          fingerprint=tables.fingerprint, image_size=header.image_size,
                          format_version=2)


def _lanes(data: bytes) -> list:
  header = bitstream.parse_header(data)
  if hasattr(header, "z_offset"):
    return [data[header.z_offset], data[header.y_offset]]
  return [data[header.payload_offset]]


def rate(codec, images) -> dict:
  tables = codec.tables()
  v1_bytes, v2_bytes, per_image, lanes = 0, 0, [], []
  for i, (_, image) in enumerate(images):
    v1 = codec.compress(image, format_version=1)
    v2 = version_2_of(codec, tables, v1)
    if i == 0 and codec.compress(image, format_version=2) != v2:
      raise AssertionError("--format_version=2 does not write the file of the symbols")
    v1_bytes += len(v1)
    v2_bytes += len(v2)
    per_image.append(len(v2) / len(v1) - 1)
    lanes.append(_lanes(v2))
  pixels = sum(image.shape[0] * image.shape[1] for _, image in images)
  return {"images": len(images), "bytes_v1": v1_bytes, "bytes_v2": v2_bytes,
          "bpp_v1": 8 * v1_bytes / pixels, "bpp_v2": 8 * v2_bytes / pixels,
          "overhead": v2_bytes / v1_bytes - 1, "max_image_overhead": max(per_image),
          "min_image_overhead": min(per_image),
          "mean_lanes": np.mean(lanes, axis=0).round(2).tolist()}


def _timed(function, *args) -> float:
  start = time.perf_counter()
  function(*args)
  return time.perf_counter() - start


def speed(codec, images, classifier_dir) -> dict:
  tables = codec.tables()
  read = tf.function(graph_decode.GraphReader(tables).read)
  views = [latent_store.square_view(image, latent_store.DEFAULT_IMAGE_SIZE).numpy()
           for _, image in images]
  cases = {"view": [(codec.compress(v, format_version=1), codec.compress(v, format_version=2))
                    for v in views]}
  whole = codec.compress(images[0][1], format_version=1)
  cases["kodak"] = [(whole, version_2_of(codec, tables, whole))]
  out = {}
  for case, files in cases.items():
    times = {"python_v1": [], "numpy_v2": [], "graph_v2": []}
    for v1, v2 in files:
      _, graph_symbols, _ = (None, *read(tf.constant(v2))[:2])  # warm-up (traces once)
      _, reference = tables.read_symbols(v2)
      if not all(np.array_equal(graph_symbols[k].numpy(), reference[k]) for k in reference):
        raise AssertionError("the graph decoder disagrees with the NumPy decoder")
      for _ in range(_REPEATS.value):
        times["python_v1"].append(_timed(tables.read_symbols, v1))
        times["numpy_v2"].append(_timed(tables.read_symbols, v2))
        times["graph_v2"].append(_timed(lambda d: read(tf.constant(d))[2].numpy(), v2))
    mean = {k: float(np.mean(v)) for k, v in times.items()}
    header = bitstream.parse_header(files[0][1])
    symbol_bytes = 4 * int(np.prod(header.latent_shape)) * len(tables.symbol_names)
    out[case] = {"files": len(files), "seconds": mean,
                 "graph_over_python_v1": mean["graph_v2"] / mean["python_v1"],
                 "graph_over_numpy_v2": mean["graph_v2"] / mean["numpy_v2"],
                 "file_bytes_v2": float(np.mean([len(v2) for _, v2 in files])),
                 "symbol_tensor_bytes": symbol_bytes, "lanes": _lanes(files[0][1])}
  if classifier_dir is not None:
    out["classify_file"] = _serving(classifier_dir, [v for v, _ in cases["view"]],
                                    [v for _, v in cases["view"]])
  return out


def _serving(export_dir, v1_files, v2_files) -> dict:
  """Seconds per file: the SavedModel's classify_file on version-2 bytes, against the Python
  path (tfcdi-classify: parse, constriction, fit, `classify`) on version-1 files."""
  loaded = tf.saved_model.load(export_dir)
  classify_file = loaded.signatures["classify_file"]
  classifier = serving.load_classifier(export_dir)

  def python_path(data):
    _, symbols = serving.read_for_classification(data, classifier)
    return classifier.top_k(symbols)

  classify_file(files=tf.constant(v2_files[:1]))  # warm-up
  graph, python, agree = [], [], True
  for v1, v2 in zip(v1_files, v2_files):
    python_path(v1)
    for _ in range(_REPEATS.value):
      graph.append(_timed(lambda d: classify_file(files=tf.constant([d]))["status"].numpy(), v2))
      python.append(_timed(python_path, v1))
    top = classify_file(files=tf.constant([v2]))["top_k_wnids"].numpy()[0]
    agree &= [w.decode() for w in top] == [w for w, _, _ in python_path(v1)]
  return {"export": os.path.basename(export_dir), "seconds_per_file_graph": float(np.mean(graph)),
          "seconds_per_file_python": float(np.mean(python)),
          "graph_over_python": float(np.mean(graph) / np.mean(python)),
          "same_top5": bool(agree)}


def main(argv):
  del argv
  images = _kodak(_IMAGES.value)
  shipped = {info["codec"]["name"]: d for d, info in serving.shipped_classifiers()
             if "classify_file" in tf.saved_model.load(d).signatures}
  results = {"measured_from": "real .tfci files of the Kodak images (whole files, header "
                              "included); times on this machine, repeats interleaved",
             "lanes_rule_bytes_per_lane": bitstream.rans.BYTES_PER_LANE,
             "jit_compile": graph_decode.JIT_COMPILE, "codecs": {}}
  for name in _CODECS.value:
    codec = _load(name)
    entry = {"codec": codec.name, "family": codec.family, "rate": rate(codec, images)}
    print(f"{name}: overhead {entry['rate']['overhead']:+.4%} "
          f"({entry['rate']['bpp_v1']:.4f} -> {entry['rate']['bpp_v2']:.4f} bpp)", flush=True)
    entry["speed"] = speed(codec, images[:_SPEED_IMAGES.value], shipped.get(codec.name))
    for case in ("view", "kodak"):
      s = entry["speed"][case]["seconds"]
      print(f"  {case}: python v1 {s['python_v1']:.4f} s, numpy v2 {s['numpy_v2']:.3f} s, "
            f"graph v2 {s['graph_v2']:.3f} s per file", flush=True)
    if "classify_file" in entry["speed"]:
      c = entry["speed"]["classify_file"]
      print(f"  classify_file {c['seconds_per_file_graph']:.3f} s/file, python path "
            f"{c['seconds_per_file_python']:.3f} s/file, same top-5: {c['same_top5']}",
            flush=True)
    results["codecs"][name] = entry
    if _JSON.value:  # after every codec: a long run keeps what it has measured
      os.makedirs(os.path.dirname(os.path.abspath(_JSON.value)), exist_ok=True)
      with open(_JSON.value, "w") as f:
        json.dump(results, f, indent=2)
  worst = max(e["rate"]["overhead"] for e in results["codecs"].values())
  print(f"largest overhead of version 2 on Kodak: {worst:+.4%}")


if __name__ == "__main__":
  app.run(main)
