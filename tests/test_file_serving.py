"""SavedModels that classify .tfci bytes inside the graph (classify_file, decode_symbols).

A tiny cResNet-39 of each codec family is trained for a step on a tiny store and exported; a
fresh Python process that imports TensorFlow and not tfcdi loads it with tf.saved_model.load and
classifies a batch of version-2 files, damaged ones among them. Its answers must be the Python
path's (tfcdi-classify: constriction-free NumPy decoding, then the `classify` signature).
"""

import json
import os
import subprocess
import sys

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest
import tensorflow as tf

from experiments import compress

from tfcdi import serving
from tfcdi.codec import bitstream
from tfcdi.codec import graph_decode
from tfcdi.codec import pretrained
from tfcdi.data import latent_store
from tfcdi.train import classifier

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
IMAGENETTE = os.path.join(DATA, "imagenette2_224")
KODAK = os.path.join(DATA, "kodak")
SAMPLES = os.path.join(DATA, "imagenet_samples")
SIZE = 64

# Two tiny classifiers are trained and exported (tracing the in-graph decoder), and a fresh
# process loads them: about 4 minutes on 2 cores.
pytestmark = [pytest.mark.skipif(not os.path.isdir(IMAGENETTE),
                                 reason="the shared data is not beside the repo"),
              pytest.mark.slow]

# Run in a fresh interpreter: TensorFlow only. It prints, per file, status, message, top-5.
_FRESH = r"""
import json, sys
import tensorflow as tf
export_dir, paths = sys.argv[1], sys.argv[2:]
files = [open(p, "rb").read() for p in paths]
model = tf.saved_model.load(export_dir)
out = model.signatures["classify_file"](files=tf.constant(files))
assert not any(m.startswith("tfcdi") for m in sys.modules), "tfcdi was imported"
print(json.dumps({"status": out["status"].numpy().tolist(),
                  "message": [m.decode() for m in out["message"].numpy()],
                  "wnids": [[w.decode() for w in row] for row in out["top_k_wnids"].numpy()],
                  "probs": out["top_k_probabilities"].numpy().tolist()}))
"""


def _images(count, seed=0):
  rng = np.random.default_rng(seed)
  # Smooth random images: something a codec turns into a varied latent.
  small = rng.integers(0, 256, (count, 8, 8, 3)).astype(np.float32)
  return tf.cast(tf.image.resize(small, [SIZE, SIZE], "bicubic"), tf.uint8).numpy()


def _train_export(codec, tmp_path_factory, latent_inputs=None):
  store_dir = str(tmp_path_factory.mktemp("store"))
  for split, limit in (("train", 4), ("val", 2)):
    latent_store.encode_split(latent_store.ImageFolderSource(IMAGENETTE, split, limit=limit),
                              codec, store_dir, split, image_size=SIZE, shard_size=8,
                              batch_size=4, progress=False)
  workdir = str(tmp_path_factory.mktemp("workdir"))
  options = {} if latent_inputs is None else {"latent_inputs": latent_inputs}
  classifier.train("cresnet39", "latent", classifier.get_config("tiny", epochs=1),
                   workdir=workdir, store_dir=store_dir, log=lambda m: None, **options)
  return serving.export_latent_classifier(workdir, str(tmp_path_factory.mktemp("export") / "m"))


@pytest.fixture(scope="module", name="autoencoder_export")
def fixture_autoencoder_export(tiny_codec, tmp_path_factory):
  return _train_export(tiny_codec, tmp_path_factory)


@pytest.fixture(scope="module", name="hyperprior_export")
def fixture_hyperprior_export(tiny_hyperprior, tmp_path_factory):
  return _train_export(tiny_hyperprior, tmp_path_factory, "y_hat+sigma_hat")


def _damaged(good: bytes) -> dict:
  flipped = bytearray(good)
  flipped[-2] ^= 0x10
  return {"truncated": good[:-5], "flipped": bytes(flipped), "foreign": b"GIF89a not a tfci",
          "empty": b""}


def _python_top5(export_dir, data):
  loaded = serving.load_classifier(export_dir)
  _, symbols = serving.read_for_classification(data, loaded)
  top = loaded.top_k(*symbols) if isinstance(symbols, tuple) else loaded.top_k(symbols)
  return [w for w, _, _ in top], [p for _, _, p in top]


def _fresh_process(export_dir, paths):
  out = subprocess.run([sys.executable, "-c", _FRESH, export_dir, *map(str, paths)],
                       capture_output=True, text=True, timeout=600, cwd="/", check=False)
  assert out.returncode == 0, out.stderr[-2000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("family", ["autoencoder", "hyperprior"])
def test_fresh_tensorflow_process_classifies_files_as_the_python_path_does(
    family, autoencoder_export, hyperprior_export, tiny_codec, tiny_hyperprior, tmp_path):
  export_dir, codec = ((autoencoder_export, tiny_codec) if family == "autoencoder"
                       else (hyperprior_export, tiny_hyperprior))
  files = [codec.compress(image, format_version=2) for image in _images(2)]
  bad = _damaged(files[0])
  # The bad files sit between the good ones: each is answered on its own.
  batch = [files[0], bad["truncated"], bad["flipped"], files[1], bad["foreign"], bad["empty"],
           codec.compress(_images(1, seed=3)[0], format_version=1)]
  paths = []
  for i, data in enumerate(batch):
    paths.append(tmp_path / f"{i}.tfci")
    paths[-1].write_bytes(data)
  got = _fresh_process(export_dir, paths)
  assert got["status"] == [graph_decode.OK, graph_decode.TRUNCATED, graph_decode.CORRUPTED,
                           graph_decode.OK, graph_decode.NOT_TFCI, graph_decode.NOT_TFCI,
                           graph_decode.VERSION_1]
  assert "truncated" in got["message"][1] and "checksum" in got["message"][2]
  for row, data in ((0, files[0]), (3, files[1])):
    wnids, probs = _python_top5(export_dir, data)
    assert got["wnids"][row] == wnids
    np.testing.assert_allclose(got["probs"][row], probs, rtol=1e-5, atol=1e-6)
  assert got["wnids"][1] == [""] * 5 and got["probs"][2] == [0.0] * 5


def test_decode_symbols_signature_gives_the_numpy_decoders_symbols(hyperprior_export,
                                                                   tiny_hyperprior):
  loaded = tf.saved_model.load(hyperprior_export)
  data = tiny_hyperprior.compress(_images(1, seed=5)[0], format_version=2)
  out = loaded.signatures["decode_symbols"](file=tf.constant(data))
  _, y, _, indices = tiny_hyperprior.tables().read_streams(data)
  assert int(out["status"]) == graph_decode.OK
  np.testing.assert_array_equal(out["y_symbols"].numpy(), y)
  np.testing.assert_array_equal(out["scale_indices"].numpy(), indices)
  np.testing.assert_array_equal(out["image_size"].numpy(), [SIZE, SIZE])


def test_classify_file_refuses_another_codecs_file_and_a_too_small_latent(
    autoencoder_export, tiny_codec, make_tiny_codec, tmp_path):
  make_tiny_codec(tmp_path / "other.npz", name="other")
  other = pretrained.load_codec(path=str(tmp_path / "other.npz"))
  loaded = tf.saved_model.load(autoencoder_export)
  small = tiny_codec.compress(_images(1)[0][:40, :48], format_version=2)  # 5 x 6 latent < 7
  foreign = other.compress(_images(1)[0], format_version=2)
  out = loaded.signatures["classify_file"](files=tf.constant([small, foreign]))
  assert out["status"].numpy().tolist() == [graph_decode.TOO_SMALL, graph_decode.OTHER_CODEC]
  assert out["top_k_indices"].numpy().tolist() == [[-1] * 5, [-1] * 5]


def test_the_signature_input_is_the_file_not_the_symbols(autoencoder_export, tiny_codec):
  loaded = tf.saved_model.load(autoencoder_export)
  spec = loaded.signatures["classify_file"].structured_input_signature[1]["files"]
  assert spec.dtype == tf.string
  data = tiny_codec.compress(_images(1)[0], format_version=2)
  assert bitstream.parse_header(data).version == bitstream.RANS_VERSION


def _compress(*args):
  with flagsaver.flagsaver():
    return compress.main(flags.FLAGS(["compress", *map(str, args)]))


@pytest.mark.parametrize("operating_point", ["0.0983", "0.635"])
def test_a_shipped_classifier_labels_tfcdi_compress_files_as_tfcdi_classify_does(
    operating_point, tmp_path):
  export_dir = os.path.join(serving.SHIPPED_CLASSIFIERS_DIR, f"cresnet39_{operating_point}")
  photos = sorted(os.path.join(SAMPLES, f) for f in os.listdir(SAMPLES) if f.endswith(".JPEG"))
  paths = []
  for i, photo in enumerate(photos[:3]):
    paths.append(tmp_path / f"{i}.tfci")
    # A whole photo (its latent shrunk in the graph) and classification views.
    view = ["--classification_view"] if i else []
    assert _compress(f"--operating_point={operating_point}", "--format_version=2", *view,
                     photo, paths[-1]) == 0
  got = _fresh_process(export_dir, paths)
  assert got["status"] == [graph_decode.OK] * len(paths)
  for row, path in enumerate(paths):
    wnids, probs = _python_top5(export_dir, path.read_bytes())
    assert got["wnids"][row] == wnids
    np.testing.assert_allclose(got["probs"][row], probs, rtol=1e-5, atol=1e-6)


def test_the_encoder_export_decodes_files_in_the_graph(tiny_codec, tmp_path):
  loaded = tf.saved_model.load(serving.export_encoder(tiny_codec, str(tmp_path / "encoder")))
  data = tiny_codec.compress(_images(1, seed=7)[0], format_version=2)
  out = loaded.signatures["decode_symbols"](file=tf.constant(data))
  _, expected = tiny_codec.read_symbols(data)
  assert int(out["status"]) == graph_decode.OK and out["message"].numpy() == b"ok"
  np.testing.assert_array_equal(out["symbols"].numpy(), expected["symbols"])
  damaged = loaded.signatures["decode_symbols"](file=tf.constant(data[:-1]))
  assert int(damaged["status"]) == graph_decode.TRUNCATED
