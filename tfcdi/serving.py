"""SavedModel export with explicit serving signatures: the codec's encoder and latent classifiers.

tf.Modules with the signatures written down here (not Keras' model.save), so
`saved_model_cli show --dir DIR --all` lists exactly these:

Encoder (export_encoder):
  serving_default / encode:  images uint8 [B, H, W, 3] -> symbols int32 [B, ceil(H/8), ceil(W/8), C]
    Any H and W: the signature pads the batch to multiples of 8 by edge replication, as
    tfcdi-compress does, so its symbols are the ones a .tfci file of the image holds.

Latent classifier (export_latent_classifier):
  serving_default / classify:  symbols int32 [B, h, w, C] -> probabilities float32 [B, classes]
    The codec's centers turn symbols into z_hat, the training set's per-channel mean is
    subtracted (it lives in the model), and a latent larger than the training crop (28 x 28 in
    the paper) is center-cropped to it; a smaller one is classified as it is (the net is fully
    convolutional), though the caller should refuse it (see `check_latent`).
  labels:  () -> wnids, names  string [classes]

Hyperprior latent classifier (a run on a hyperprior store; the net reads y_hat, or y_hat and
sigma_hat for the two-branch net, never z):
  serving_default / classify:  y_symbols int32 [B, h, w, M] (and scale_indices int32 for the
      two-branch net, the index each y symbol was coded with) -> probabilities [B, classes];
      y_hat = y_symbols, sigma_hat = scale_table[scale_indices] (coding.read_hyperprior_symbols).
  classify_latents:  y_hat (and sigma_hat) float32 -> probabilities (Hyperprior.latents' output).
  labels:  as above.
  Both take any latent size: its central square resized to the training view (32 x 32,
  bilinear), then the central crop (28 x 28), exactly training's evaluation for store views.

Files in, labels out (every latent classifier export, of either family; README has the outputs):
  classify_file:  files string [B], .tfci files (format version 2) -> top-5 per file, and a
      status and message per file; decoding, checks and the `classify` path all in the graph
      (codec/graph_decode.py), one file at a time, so a bad file only fails itself.
  decode_symbols:  file string [] -> symbol arrays, image_size, status, message (the encoder
      export too). add_file_signatures adds both to an older export.

All keep the codec's identity (name, fingerprint) and the tables to read its files as
variables, so a file is checked against the codec a classifier was trained on, and decoded, with
nothing but the export. Class names also go to assets/labels.tsv.

Any family exports alike (codec interface): inputs are the symbol arrays the family names,
made latents by the codec's Reader; crop-trained nets take the central crop, view-trained ones
center_views. Scale: a net expects the latent scale it was trained on
(compress_for_classification); fit_latent resizes other files' symbols, refuses too small ones.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import tensorflow as tf

from tfcdi.codec import bitstream
from tfcdi.codec import coding
from tfcdi.codec import graph_decode
from tfcdi.codec import model as model_lib
from tfcdi.codec import pretrained
from tfcdi.codec import quantizer
from tfcdi.codec import registry
from tfcdi.data import imagenet_classes
from tfcdi.data import latent_pairs
from tfcdi.data import latent_store
from tfcdi.nets import classifier as classifier_net
from tfcdi.train import classifier as classifier_lib

EXPORT_INFO = "tfcdi_export.json"
LABELS_ASSET = "labels.tsv"
LATENT_POLICIES = ("resize", "crop")
# How many classes classify_file ranks per file (fewer if the classifier has fewer).
FILE_TOP_K = 5


class ServingError(ValueError):
  """An export cannot be made or used, or an input does not fit it."""


def _string_var(value, name):
  return tf.Variable(value, dtype=tf.string, trainable=False, name=name)


def _codec_variables(module: tf.Module, tables: latent_store.CodecTables) -> None:
  module.codec_name = _string_var(tables.name, "codec_name")
  module.codec_fingerprint = _string_var(tables.fingerprint.hex(), "codec_fingerprint")
  module.operating_point = _string_var(tables.operating_point, "operating_point")
  module.frequencies = tf.Variable(tables.frequencies, dtype=tf.int64, trainable=False,
                                   name="frequencies")
  module.centers = tf.Variable(tables.centers, dtype=tf.float32, trainable=False,
                               name="centers")
  module.channels = tf.Variable(tables.channels, dtype=tf.int32, trainable=False,
                                name="channels")


def _track_variables(module: tf.Module, functions) -> None:
  """Tracks the tf.Variables the signatures read, as a list on the module.

  A Keras 3 model held by a tf.Module saves its weights, but the TF1-style loader that
  saved_model_cli run (and TF Serving) use finds them only if the underlying tf.Variables are
  tracked directly; Keras' own ExportArchive does the same.
  """
  seen, variables = set(), []
  for function in functions:
    for var in function.get_concrete_function().variables:
      if id(var) not in seen:
        seen.add(id(var))
        variables.append(var)
  module.signature_variables = variables


def _identity_variables(module: tf.Module, tables) -> None:
  """The codec's identity and serving arrays as variables (Reader.to_json, serving_arrays)."""
  module.codec_name = _string_var(tables.name, "codec_name")
  module.codec_fingerprint = _string_var(tables.fingerprint.hex(), "codec_fingerprint")
  module.codec_family = _string_var(tables.family, "codec_family")
  module.codec_identity = _string_var(json.dumps(tables.to_json()), "codec_identity")
  module.channels = tf.Variable(tables.channels, dtype=tf.int32, trainable=False,
                                name="channels")
  module.coding_tables = {key: tf.Variable(value, trainable=False, name=key)
                          for key, value in tables.serving_arrays().items()}


def _tables_of(loaded):
  """The Reader an export kept (_identity_variables).

  Exports made before the identity was kept whole hold its fields as variables of their own: the
  autoencoder's its operating point, frequencies and centers (exactly its JSON identity), the
  hyperprior's its family, quality, N and tables digest beside coding_tables.
  """
  if hasattr(loaded, "codec_identity"):
    identity = json.loads(loaded.codec_identity.numpy().decode())
  else:
    identity = {"name": loaded.codec_name.numpy().decode(),
                "fingerprint": loaded.codec_fingerprint.numpy().decode()}
    for key in ("operating_point", "codec_family", "tables_digest"):
      if hasattr(loaded, key):
        identity["family" if key == "codec_family" else key] = getattr(loaded, key).numpy().decode()
    for key in ("channels", "quality", "num_filters"):
      if hasattr(loaded, key):
        identity[key] = int(getattr(loaded, key).numpy())
    for key in ("frequencies", "centers"):
      if hasattr(loaded, key):
        identity[key] = getattr(loaded, key).numpy().tolist()
  arrays = {key: var.numpy() for key, var in getattr(loaded, "coding_tables", {}).items()}
  return registry.of_json(identity).tables_from_serving(identity, arrays)


# --- the encoder ------------------------------------------------------------------------------


class _EncoderModule(tf.Module):
  """uint8 images -> symbols, with the codec's tables alongside."""

  def __init__(self, codec):
    super().__init__(name="tfcdi_encoder")
    self.encoder = codec.model.encoder  # the decoder stays behind: it is not part of the export
    _codec_variables(self, codec.tables())
    self.decode_symbols = decode_symbols_function(graph_decode.GraphReader(codec.tables()))

  @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
  def encode(self, images):
    padded, _ = model_lib.pad_to_multiple(tf.cast(images, tf.float32))
    y = self.encoder(padded, training=False)
    return {"symbols": quantizer.symbols_of(y, tf.convert_to_tensor(self.centers))}


def export_encoder(codec, export_dir: str) -> str:
  """Saves the codec's encoder as a SavedModel with an `encode` signature; returns the dir."""
  module = _EncoderModule(codec)
  _track_variables(module, [module.encode, module.decode_symbols])
  signatures = {"serving_default": module.encode, "encode": module.encode,
                "decode_symbols": module.decode_symbols}
  tf.saved_model.save(module, export_dir, signatures=signatures)
  write_info(export_dir, {"kind": "encoder", "codec": codec.tables().to_json()})
  return export_dir


# --- latent classifiers -----------------------------------------------------------------------


def _symbols_of_latents(tables, latent_names) -> list:
  """The symbol arrays the latents come from: the family's i-th symbols give its i-th latent."""
  symbol_of = dict(zip(tables.latent_names, tables.symbol_names))
  return [symbol_of[name] for name in latent_names]


def _named_function(names, channels: int, dtype, body):
  """A tf.function of [B, h, w, channels] tensors whose signature inputs are `names`; body gets
  them as a dict."""
  specs = [tf.TensorSpec([None, None, None, channels], dtype, name=n) for n in names]
  return tf.function(lambda *tensors: body(dict(zip(names, tensors))), input_signature=specs)


class _LatentClassifierModule(tf.Module):
  """Symbol arrays (or latents) -> class probabilities: the net, its mean, the codec's identity
  and tables, the labels. `latent_inputs` None: a net on crops of the family's one latent, given
  the central crop; else the named latents it reads, given center_views."""

  def __init__(self, model, tables, latent_inputs: str | None, wnids, names, crop: int,
               view_size: int):
    super().__init__(name="tfcdi_latent_classifier")
    self.model = model
    _identity_variables(self, tables)
    self.class_wnids = _string_var(list(wnids), "class_wnids")
    self.class_names = _string_var(list(names), "class_names")
    self.crop_size = tf.Variable(crop, dtype=tf.int32, trainable=False, name="crop_size")
    self.view_size = tf.Variable(view_size, dtype=tf.int32, trainable=False, name="view_size")
    if latent_inputs is not None:
      self.latent_inputs = _string_var(latent_inputs, "latent_inputs")
    latents = latent_inputs.split("+") if latent_inputs else list(tables.latent_names[:1])
    symbols = _symbols_of_latents(tables, latents)
    family = tables.family_info

    def probabilities(values: dict):
      if latent_inputs is None:  # the training evaluation's central crop
        x = values[latents[0]]
        shape = tf.shape(x)
        inputs = latent_pairs.central_crop(x, tf.minimum(shape[1], self.crop_size),
                                           tf.minimum(shape[2], self.crop_size))
      else:
        views = center_views([values[name] for name in latents], view_size, crop)
        inputs = dict(zip(latents, views)) if len(latents) > 1 else views[0]
      return {"probabilities": tf.nn.softmax(self.model(inputs, training=False), axis=-1)}

    def from_symbols(given: dict):
      arrays = {symbol: given[family.serving_name(symbol)] for symbol in symbols}
      return probabilities(tables.latents_from_symbols(arrays))

    self.classify = _named_function([family.serving_name(s) for s in symbols], tables.channels,
                                    tf.int32, from_symbols)
    self.classify_file, self.decode_symbols = _file_functions(
        tables, latent_inputs, view_size, crop, from_symbols, self.class_wnids,
        self.class_names, len(wnids))
    functions = [self.classify, self.classify_file, self.decode_symbols]
    if latent_inputs is not None:
      self.classify_latents = _named_function(latents, tables.channels, tf.float32,
                                              probabilities)
      functions.append(self.classify_latents)

    @tf.function(input_signature=[])
    def labels():
      return {"wnids": tf.convert_to_tensor(self.class_wnids),
              "names": tf.convert_to_tensor(self.class_names)}

    self.labels = labels
    _track_variables(self, [*functions, labels])


def export_latent_classifier(workdir: str, export_dir: str, labels_file: str | None = None,
                             codec_path: str | None = None) -> str:
  """Saves the trained latent classifier of a training workdir as a SavedModel.

  Args:
    workdir: a tfcdi-train-classifier workdir (results.json + checkpoints) of a cResNet trained
      on latents (of either codec family).
    export_dir: where the SavedModel goes.
    labels_file: an optional TSV with wnid/name columns for class names beyond Imagenette's.
    codec_path: the codec's bundle, to take its coding tables from (by default they come from
      the store the run trained on, or from the run's results where they hold them).

  Raises:
    ServingError: the workdir holds an RGB classifier, or the codec's tables cannot be found.
    classifier_lib.TrainingError: no trained classifier in the workdir.
  """
  model, results = classifier_lib.restore_model(workdir)
  if results["input"] != "latent":
    raise ServingError(f"{workdir} holds a {results['net']} trained on {results['input']} "
                       "images; only latent classifiers are exported")
  wnids = results["classes"]
  names = imagenet_classes.class_names(wnids, labels_file)
  crop, view_size = results["input_shape"][0], results["view_size"]
  tables = _tables_for(results, codec_path)
  # Nets trained on named latents (the hyperprior stores' arms) record which; they take views.
  latent_inputs = results.get("latent_inputs")
  module = _LatentClassifierModule(model, tables, latent_inputs, wnids, names, crop, view_size)
  signatures = {"serving_default": module.classify, "classify": module.classify,
                "classify_file": module.classify_file, "decode_symbols": module.decode_symbols}
  if latent_inputs is not None:
    signatures["classify_latents"] = module.classify_latents
  signatures["labels"] = module.labels
  info = {"family": tables.family}
  if latent_inputs is not None:
    info["latent_inputs"] = latent_inputs
  with tempfile.TemporaryDirectory() as tmp:
    labels_path = os.path.join(tmp, LABELS_ASSET)
    with open(labels_path, "w") as f:
      f.write("index\twnid\tname\n")
      f.writelines(f"{i}\t{w}\t{n}\n" for i, (w, n) in enumerate(zip(wnids, names)))
    module.labels_asset = tf.saved_model.Asset(labels_path)
    tf.saved_model.save(module, export_dir, signatures=signatures)
  final = results.get("final") or {}
  write_info(export_dir, {
      "kind": "latent_classifier", "net": results["net"], **info, "classes": wnids,
      "names": names, "crop_size": crop, "view_size": view_size, "codec": tables.to_json(),
      "top1": final.get("top1"), "top5": final.get("top5"),
      "trained_epochs": len(results["epochs"]), "workdir": os.path.abspath(workdir)})
  return export_dir


def _tables_for(results: dict, codec_path: str | None):
  """The Reader of a run's codec: from its bundle, from its store, or from its results."""
  wanted = results["codec"]
  store_dir = results.get("store_dir")
  try:
    if codec_path is not None:
      tables = registry.read_tables(codec_path)
    elif store_dir and os.path.exists(os.path.join(store_dir, latent_store.METADATA_FILE)):
      tables = latent_store.store_tables(latent_store.read_metadata(store_dir), store_dir)
    else:
      try:  # a family whose JSON identity holds its tables (the autoencoder's) needs no store
        tables = registry.tables_from_json(wanted)
      except ValueError:
        raise ServingError(f"the store the classifier trained on ({store_dir}) is gone; give "
                           "the codec's bundle (--codec_path=BUNDLE.npz) for its tables") from None
  except (pretrained.CodecError, latent_store.StoreError) as e:
    raise ServingError(str(e)) from None
  if (tables.name, tables.fingerprint.hex()) != (wanted["name"], wanted["fingerprint"]):
    raise ServingError(f"the classifier reads latents of codec {wanted['name']!r} "
                       f"({wanted['fingerprint']}), not of {tables.name!r} "
                       f"({tables.fingerprint.hex()})")
  return tables


def _file_functions(tables, latent_inputs, view_size: int, crop: int, from_symbols, wnids,
                    names, num_classes: int) -> tuple:
  """(classify_file, decode_symbols): a classifier's `classify` path (from_symbols: {input
  name: int32 [1, h, w, C]} -> {"probabilities"}) behind the in-graph reader of its codec's
  files."""
  reader = graph_decode.GraphReader(tables)
  family = tables.family_info
  latents = latent_inputs.split("+") if latent_inputs else list(tables.latent_names[:1])
  symbols = _symbols_of_latents(tables, latents)

  def classify_one(file):
    """One file -> (probabilities [classes], status): the `classify` path, from the bytes."""
    read, _, status = reader.read(file)
    if latent_inputs is None:  # what read_for_classification's "resize" policy does
      read = {symbols[0]: fit_latent_tensor(read[symbols[0]], view_size)}
      shape = tf.shape(read[symbols[0]])
      small = tf.minimum(shape[0], shape[1]) < crop
      status = tf.where(tf.equal(status, graph_decode.OK) & small, graph_decode.TOO_SMALL,
                        status)
    given = {family.serving_name(s): read[s][None] for s in symbols}
    probs = tf.cond(tf.equal(status, graph_decode.OK),
                    lambda: from_symbols(given)["probabilities"][0],
                    lambda: tf.zeros([num_classes], tf.float32))
    return probs, status

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="files")])
  def classify_file(files):
    # One file at a time (files may differ in size); a bad one only sets its own status.
    probs, status = tf.map_fn(classify_one, files, fn_output_signature=(
        tf.TensorSpec([num_classes], tf.float32), tf.TensorSpec([], tf.int32)))
    return ranked_outputs(probs, status, wnids, names)

  return classify_file, decode_symbols_function(reader)


class _FileSignaturesModule(tf.Module):
  """An existing latent classifier export, its signatures passed through, plus classify_file
  and decode_symbols (add_file_signatures)."""

  def __init__(self, loaded, tables, latent_inputs):
    super().__init__(name="tfcdi_latent_classifier")
    self.loaded = loaded
    for name in ("codec_name", "codec_fingerprint", "codec_family", "codec_identity",
                 "operating_point", "frequencies", "centers", "channels", "class_wnids",
                 "class_names", "crop_size", "view_size", "latent_inputs", "coding_tables",
                 "labels_asset", "quality", "num_filters", "tables_digest"):
      if hasattr(loaded, name):
        setattr(self, name, getattr(loaded, name))
    self.codec_identity = _string_var(json.dumps(tables.to_json()), "codec_identity")
    self.coding_tables = {key: tf.Variable(value, trainable=False, name=key)
                          for key, value in tables.serving_arrays().items()}
    signatures = loaded.signatures

    def wrap(name):
      function = signatures[name]
      specs = function.structured_input_signature[1]
      names = sorted(specs)
      return tf.function(lambda *tensors: function(**dict(zip(names, tensors))),
                         input_signature=[specs[n] for n in names])

    self.classify = wrap("classify")
    self.labels = wrap("labels")
    self.passed = {name: wrap(name) for name in signatures
                   if name not in ("serving_default", "classify", "labels", "classify_file",
                                   "decode_symbols")}
    classify = signatures["classify"]
    self.classify_file, self.decode_symbols = _file_functions(
        tables, latent_inputs, int(loaded.view_size.numpy()), int(loaded.crop_size.numpy()),
        lambda given: classify(**given), loaded.class_wnids, loaded.class_names,
        int(loaded.class_wnids.shape[0]))
    _track_variables(self, [self.classify, self.labels, self.classify_file, self.decode_symbols,
                            *self.passed.values()])


def add_file_signatures(export_dir: str, target: str) -> str:
  """Writes to `target` the latent classifier export at `export_dir` with the classify_file
  and decode_symbols signatures added (exports made before they existed; no training workdir
  needed). Its other signatures and tfcdi_export.json are kept. Returns `target`.

  Raises:
    ServingError: not a tfcdi latent classifier export.
  """
  classifier = load_classifier(export_dir)
  loaded = classifier._loaded  # pylint: disable=protected-access
  module = _FileSignaturesModule(loaded, classifier.tables, classifier.latent_inputs)
  signatures = {"serving_default": module.classify, "classify": module.classify,
                "labels": module.labels, "classify_file": module.classify_file,
                "decode_symbols": module.decode_symbols, **module.passed}
  tf.saved_model.save(module, target, signatures=signatures)
  info = read_info(export_dir)
  if info is not None:
    write_info(target, info)
  return target


def ranked_outputs(probs, status, wnids, names, k: int = FILE_TOP_K) -> dict:
  """classify_file's outputs of probabilities [B, classes] and statuses [B] (see README)."""
  k = min(k, probs.shape[-1])
  top_probs, top_indices = tf.math.top_k(probs, k)
  ok = tf.equal(status, graph_decode.OK)[:, None]
  # A failed file ranks nothing: index -1, probability 0, empty names.
  top_indices = tf.where(ok, top_indices, -1)
  return {"probabilities": probs, "top_k_indices": top_indices,
          "top_k_probabilities": tf.where(ok, top_probs, 0.0),
          "top_k_wnids": tf.where(ok, tf.gather(wnids, tf.maximum(top_indices, 0)), ""),
          "top_k_names": tf.where(ok, tf.gather(names, tf.maximum(top_indices, 0)), ""),
          "status": status,
          "message": tf.gather(tf.constant(graph_decode.STATUS_MESSAGES), status)}


def decode_symbols_function(reader: graph_decode.GraphReader):
  """The decode_symbols signature: one .tfci file (scalar tf.string) -> its symbol arrays
  (named as the `classify` inputs), the image size, a status and its message."""
  family = reader.family_info

  @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="file")])
  def decode_symbols(file):
    symbols, image_size, status = reader.read(file)
    out = {family.serving_name(name): value for name, value in symbols.items()}
    out.update(image_size=image_size, status=status,
               message=tf.gather(tf.constant(graph_decode.STATUS_MESSAGES), status))
    return out

  return decode_symbols


def fit_latent_tensor(symbols, view_size: int):
  """fit_latent in graph ops, the same numbers: symbols [h, w, C] -> shorter side view_size."""
  shape = tf.shape(symbols, out_type=tf.int64)
  height, width = shape[0], shape[1]
  short = tf.minimum(height, width)

  def pick(size, new):
    # ((i + 0.5) * size / new), floored, as NumPy computes it in float64.
    at = (tf.range(new, dtype=tf.float64) + 0.5) * tf.cast(size, tf.float64) / tf.cast(
        new, tf.float64)
    return tf.minimum(tf.cast(at, tf.int64), size - 1)

  def shrink():
    # Python's round() and tf.round both round half to even.
    scale = lambda size: tf.maximum(tf.constant(view_size, tf.int64), tf.cast(tf.round(  # noqa: E731
        tf.cast(size * view_size, tf.float64) / tf.cast(short, tf.float64)), tf.int64))
    rows = pick(height, scale(height))
    cols = pick(width, scale(width))
    return tf.gather(tf.gather(symbols, rows, axis=0), cols, axis=1)

  return tf.cond(short > view_size, shrink, lambda: tf.identity(symbols))


def center_views(tensors, view_size: int, crop: int) -> list:
  """Batched evaluation views of same-shaped latents [B, h, w, M]: each's central square,
  resized to view_size (bilinear, antialiased), then its central crop x crop.

  The same numbers as latent_pairs.center_pair (followed by the same crop) for square latents:
  one resize of the tensors stacked along channels, which treats every channel alike.
  """
  stacked = tf.concat(tensors, axis=-1)
  shape = tf.shape(stacked)
  stacked = latent_pairs.central_crop(stacked, tf.minimum(shape[1], shape[2]))
  stacked = tf.image.resize(stacked, [view_size, view_size], method="bilinear", antialias=True)
  # The crop the classifier was evaluated with in training (one function for both).
  stacked = latent_pairs.central_crop(stacked, crop)
  return tf.split(stacked, len(tensors), axis=-1)


# Latent classifiers shipped with the package, one SavedModel folder each (tools/ship_classifier).
SHIPPED_CLASSIFIERS_DIR = os.path.join(pretrained.PRETRAINED_DIR, "classifiers")


def read_info(export_dir: str) -> dict | None:
  """An export's tfcdi_export.json, or None where there is none."""
  path = os.path.join(export_dir, EXPORT_INFO)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def shipped_classifiers(root: str | None = None) -> list[tuple[str, dict]]:
  """(export_dir, info) of each shipped latent classifier, in name order."""
  root = root or SHIPPED_CLASSIFIERS_DIR
  if not os.path.isdir(root):
    return []
  found = []
  for name in sorted(os.listdir(root)):
    info = read_info(os.path.join(root, name))
    if info is not None and info.get("kind") == "latent_classifier":
      found.append((os.path.join(root, name), info))
  return found


def shipped_classifier_for(header: bitstream.Header, root: str | None = None) -> str:
  """The shipped latent classifier that reads the latents of the file's codec.

  Raises:
    ServingError: none of the shipped classifiers reads that codec's latents.
  """
  shipped = shipped_classifiers(root)
  for export_dir, info in shipped:
    if bytes.fromhex(info["codec"]["fingerprint"]) == header.fingerprint:
      return export_dir
  have = ", ".join(f"{info['net']} for codec {info['codec']['name']!r}" for _, info in shipped)
  raise ServingError(
      f"no shipped classifier reads latents of codec {header.codec_name!r} "
      f"({header.fingerprint.hex()}); shipped: {have or 'none'}. Give --model=EXPORT_DIR")


def write_info(export_dir: str, info: dict) -> None:
  # For people and tools that do not load TensorFlow; the SavedModel itself is authoritative.
  with open(os.path.join(export_dir, EXPORT_INFO), "w") as f:
    json.dump(info, f, indent=2)


def _load_export(classifier, export_dir: str, what: str) -> None:
  """What both loaded exports keep: the codec's Reader, the labels, the sizes, `classify`."""
  if not tf.saved_model.contains_saved_model(export_dir):
    raise ServingError(f"{export_dir} is not a SavedModel directory")
  try:
    loaded = tf.saved_model.load(export_dir)
    classifier.wnids = [w.decode() for w in loaded.class_wnids.numpy()]
    classifier.names = [n.decode() for n in loaded.class_names.numpy()]
    classifier.crop_size = int(loaded.crop_size.numpy())
    classifier.view_size = int(loaded.view_size.numpy())
    classifier._classify = loaded.signatures["classify"]  # pylint: disable=protected-access
    classifier.latent_inputs = (loaded.latent_inputs.numpy().decode()
                                if hasattr(loaded, "latent_inputs") else None)
    tables = _tables_of(loaded)
  except (AttributeError, KeyError) as e:
    raise ServingError(f"{export_dir} is not a tfcdi {what} export ({e})") from None
  except pretrained.CodecError as e:
    raise ServingError(f"{export_dir}: {e}") from None
  classifier.tables = tables
  classifier._loaded = loaded  # pylint: disable=protected-access  (keeps the variables alive)


class _LoadedClassifier:
  """What both kinds of loaded latent classifier export share: the codec's identity (`tables`),
  its labels, and the checks and ranking that do not depend on what the net reads."""

  @property
  def family(self) -> str:
    return self.tables.family

  @property
  def channels(self) -> int:
    return self.tables.channels

  def _check_codec(self, header) -> None:
    if not self.tables.same_codec(_Identity(header.codec_name, header.fingerprint)):
      raise ServingError(
          f"the file was made by codec {header.codec_name!r} ({header.fingerprint.hex()}); this "
          f"classifier reads latents of codec {self.tables.name!r} "
          f"({self.tables.fingerprint.hex()})")

  def _best(self, probs: np.ndarray, k: int) -> list[tuple[str, str, float]]:
    order = np.argsort(-probs, kind="stable")[:k]
    return [(self.wnids[i], self.names[i], float(probs[i])) for i in order]


class LatentClassifier(_LoadedClassifier):
  """A loaded latent classifier export of a net on crops of one latent (the autoencoder's
  z_hat): checks inputs, then calls its `classify` signature."""

  def __init__(self, export_dir: str):
    _load_export(self, export_dir, "latent classifier")
    if self.latent_inputs is not None:
      raise ServingError(f"{export_dir} is a classifier of {self.latent_inputs}, not of crops "
                         "of one latent (load_classifier loads either)")
    self.symbol_name = _symbols_of_latents(self.tables, self.tables.latent_names[:1])[0]

  def check_header(self, header) -> None:
    """Refuses a file whose latent this classifier cannot read.

    Raises:
      ServingError: another number of channels, or another codec's file.
    """
    channels = header.latent_shape[-1]
    if channels != self.channels:
      raise ServingError(
          f"the file holds a {channels}-channel latent; this classifier reads "
          f"{self.channels}-channel latents of codec {self.tables.name!r}")
    self._check_codec(header)

  def check_latent(self, symbols: np.ndarray) -> None:
    """Refuses symbols of the wrong rank, channels or a size below the training crop."""
    if symbols.ndim != 3 or symbols.shape[-1] != self.channels:
      raise ServingError(f"expected symbols [h, w, {self.channels}], got {symbols.shape}")
    height, width = symbols.shape[:2]
    if min(height, width) < self.crop_size:
      pixels = self.crop_size * self.tables.downsampling
      raise ServingError(
          f"the latent is {height}x{width}; this classifier needs at least "
          f"{self.crop_size}x{self.crop_size} (an image of at least {pixels} pixels per side)")

  def read(self, data: bytes, header, tables=None, policy: str = "resize"):
    """The file's symbols for this classifier, checked and scale-matched (fit_latent)."""
    _, symbols = (tables or self.tables).read_symbols(data)
    symbols = symbols[self.symbol_name]
    if policy == "resize":
      symbols = fit_latent(symbols, self.view_size)
    self.check_latent(symbols)
    return symbols

  def probabilities(self, symbols_batch: np.ndarray) -> np.ndarray:
    """symbols int32 [B, h, w, C] (all the same size) -> probabilities [B, classes]."""
    name = self.tables.family_info.serving_name(self.symbol_name)
    out = self._classify(**{name: tf.convert_to_tensor(symbols_batch, tf.int32)})
    return out["probabilities"].numpy()

  def describe_input(self, header, symbols: np.ndarray) -> str:
    """What it reads of a file (`symbols`: what `read` gave), as tfcdi-classify prints it."""
    h, w, c = header.latent_shape
    crop = min(self.crop_size, symbols.shape[0], symbols.shape[1])
    scale = "" if symbols.shape[:2] == (h, w) else f" -> {symbols.shape[0]}x{symbols.shape[1]}"
    return f"latent {h}x{w}x{c}{scale}, central {crop}x{crop}"

  def ranked(self, symbols: np.ndarray, k: int = 5) -> list[tuple[str, str, float]]:
    """top_k of what `read` gave: the same call for every kind of classifier."""
    return self.top_k(symbols, k)

  def top_k(self, symbols: np.ndarray, k: int = 5) -> list[tuple[str, str, float]]:
    """[(wnid, name, probability)] of the k most probable classes, best first."""
    self.check_latent(symbols)
    return self._best(self.probabilities(symbols[None])[0], k)


class _Identity:
  def __init__(self, name, fingerprint):
    self.name, self.fingerprint = name, fingerprint


class HyperpriorClassifier(_LoadedClassifier):
  """A loaded latent classifier export of a net on named latents brought to its training view
  (the hyperprior's y_hat, or y_hat and sigma_hat): checks files, calls `classify`.

  Attributes:
    tables: the codec's identity and integer tables, from the export (read no bundle).
    latent_inputs: the latents the net reads, "+"-joined: "y_hat+sigma_hat" (two-branch net)
      or "y_hat".
  """

  def __init__(self, export_dir: str):
    _load_export(self, export_dir, "latent classifier (of named latents)")
    if self.latent_inputs is None:
      raise ServingError(f"{export_dir} is not a tfcdi classifier export of named latents (it "
                         "reads crops of one latent: LatentClassifier)")
    self.symbol_names = _symbols_of_latents(self.tables, self.latent_inputs.split("+"))

  @property
  def two_branch(self) -> bool:
    return self.latent_inputs == classifier_net.TWO_BRANCH

  def check_header(self, header) -> None:
    """Refuses a file of another family, another codec, or with other channels.

    Raises:
      ServingError: the file cannot be read by this classifier.
    """
    if not self.tables.same_family(header):
      raise ServingError(
          f"the file is an {registry.name_of(header.codec_family)} file "
          f"(codec {header.codec_name!r}); this classifier reads {self.family} latents of codec "
          f"{self.tables.name!r}")
    self._check_codec(header)
    if header.latent_shape[-1] != self.channels:
      raise ServingError(f"the file holds a {header.latent_shape[-1]}-channel latent; this "
                         f"classifier reads {self.channels}-channel latents")

  def read(self, data: bytes, header, tables=None, policy: str = "resize") -> tuple:
    """The file's symbol arrays, in the family's order (y symbols, scale indices); `policy`
    does not apply (the signature brings every latent to the training view)."""
    _, symbols = (tables or self.tables).read_symbols(data)
    return tuple(symbols[name] for name in self.tables.symbol_names)

  def probabilities(self, *symbols) -> np.ndarray:
    """The family's symbol arrays, int32 [B, h, w, M] each (all the same size; y symbols and
    scale indices) -> probabilities [B, classes]. Those the net does not read are ignored."""
    given = dict(zip(self.tables.symbol_names, symbols))
    family = self.tables.family_info
    return self._classify(**{family.serving_name(name): tf.convert_to_tensor(given[name],
                                                                             tf.int32)
                             for name in self.symbol_names})["probabilities"].numpy()

  def describe_input(self, header, symbols: tuple) -> str:
    """What it reads of a file (`symbols`: what `read` gave), as tfcdi-classify prints it."""
    h, w, m = symbols[0].shape
    side, view, crop = min(h, w), self.view_size, self.crop_size
    square = f"{h}x{w}" if h == w else f"{h}x{w} -> central {side}x{side}"
    inputs = " and ".join(self.latent_inputs.split("+"))
    return f"{inputs} {square}x{m} -> {view}x{view}, central {crop}x{crop}"

  def ranked(self, symbols: tuple, k: int = 5) -> list[tuple[str, str, float]]:
    """top_k of what `read` gave: the same call for every kind of classifier."""
    return self.top_k(*symbols, k=k)

  def top_k(self, y_symbols: np.ndarray, scale_indices: np.ndarray,
            k: int = 5) -> list[tuple[str, str, float]]:
    """[(wnid, name, probability)] of the k most probable classes of one file, best first."""
    if y_symbols.ndim != 3 or y_symbols.shape != scale_indices.shape:
      raise ServingError(f"expected y symbols and scale indices [h, w, {self.channels}], got "
                         f"{y_symbols.shape} and {scale_indices.shape}")
    return self._best(self.probabilities(y_symbols[None], scale_indices[None])[0], k)


def load_classifier(export_dir: str):
  """The latent classifier export at export_dir: a LatentClassifier (a net on crops of one
  latent) or a HyperpriorClassifier (a net on named latents, `latent_inputs` in its info).

  Raises:
    ServingError: not a tfcdi latent classifier export.
  """
  info = read_info(export_dir)
  if info is None:  # an export without its info file: try both
    try:
      return LatentClassifier(export_dir)
    except ServingError:
      return HyperpriorClassifier(export_dir)
  if info.get("latent_inputs"):
    return HyperpriorClassifier(export_dir)
  return LatentClassifier(export_dir)


def fit_latent(symbols: np.ndarray, view_size: int) -> np.ndarray:
  """Nearest-neighbour resize of symbols [h, w, C] so the shorter side is `view_size`.

  Only ever shrinks: a latent whose shorter side is at most `view_size` comes back unchanged.
  Picking symbols (not interpolating z_hat) keeps every value one of the codec's centers.
  """
  height, width = symbols.shape[:2]
  short = min(height, width)
  if short <= view_size:
    return symbols
  new_h = max(view_size, round(height * view_size / short))
  new_w = max(view_size, round(width * view_size / short))
  rows = np.minimum(((np.arange(new_h) + 0.5) * height / new_h).astype(np.int64), height - 1)
  cols = np.minimum(((np.arange(new_w) + 0.5) * width / new_w).astype(np.int64), width - 1)
  return symbols[rows][:, cols]


def read_for_classification(data: bytes, classifier, tables=None, policy: str = "resize"):
  """A .tfci file's header and the symbols to classify: checked, decoded, scale-matched.

  Entropy decoding only (the codec's Reader): no decoder is built or run.

  Args:
    data: the file's bytes.
    classifier: the loaded export; its codec tables are used unless `tables` is given.
    tables: tables from the codec bundle instead (they must be the classifier's codec).
    policy: "resize" (fit_latent, then the signature's center crop) or "crop" (center crop
      only, for files compressed at the classifier's scale).

  A HyperpriorClassifier gets (header, (y symbols, scale indices)): the entropy decoding
  of both streams and the integer hyper-synthesis, no transform; `policy` does not apply (its
  signature brings every latent to the training view, see the module docstring).

  Raises:
    ServingError, bitstream.BitstreamError, pretrained.CodecError: the file cannot be
      classified by this classifier.
  """
  if policy not in LATENT_POLICIES:
    raise ServingError(f"unknown latent policy {policy!r}; choose one of "
                       f"{', '.join(LATENT_POLICIES)}")
  header = registry.parse_header(data)
  classifier.check_header(header)
  return header, classifier.read(data, header, tables, policy)


def compress_for_classification(codec, image: np.ndarray,
                                size: int = latent_store.DEFAULT_IMAGE_SIZE,
                                format_version: int | None = None) -> bytes:
  """The .tfci bytes of the square view a classifier trained on a store expects.

  The view is latent_store.square_view (shorter side to `size`, central square), so its
  latent is exactly the store's, e.g. 32 x 32 for size 256.
  """
  view = latent_store.square_view(np.asarray(image, np.uint8), size).numpy()
  return coding.compress_image(codec, view, format_version=format_version)
