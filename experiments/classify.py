r"""tfcdi-classify: .tfci files -> top-5 ImageNet labels, without ever decoding them to RGB.

  tfcdi-classify photo.tfci more/*.tfci        # the shipped classifier of each file's codec
  tfcdi-classify --model=exports/cresnet51_0.635 photo.tfci
  tfcdi-classify --model=exports/cresnet51_0.635 --codec=codec_0.635.npz compressed/

Each file is entropy-decoded to its symbols (the codec's frequency table, no neural network)
and handed to an exported latent classifier (tfcdi-export --what=classifier), which turns them
into z_hat with the codec's centers and classifies them. The codec's decoder is never built.
The tables come from the export, which keeps the codec's; --codec reads them from the codec's
bundle instead (its weights are not loaded). Without --model, each file goes to the latent
classifier shipped with the package for the codec named in its header (tfcdi/pretrained/
classifiers); a file of a codec without one is refused.

Hyperprior files (tfcdi-compress --codec=hyperprior) go to a classifier trained on a hyperprior
store (the two-branch cResNet or the one on y_hat): both streams are entropy-decoded, the
codec's integer hyper-synthesis gives the scale indices (hence sigma_hat), and the synthesis
transform is never built. Such a classifier brings any latent to its training view (central
square, resized to 32 x 32, central 28 x 28; --latent_policy does not apply).

  tfcdi-classify --model=exports/cresnet39_two_branch_q4 photo_q4.tfci

Scale: the classifier learned on 256 x 256 views (32 x 32 latents, 28 x 28 crops). Files made
from such views (see serving.compress_for_classification) are classified as they are. For
files of photos compressed at their own size, --latent_policy=resize (the default) first
shrinks the latent, nearest neighbour on the symbols, to the training view's scale; =crop only
takes the central crop. Latents smaller than the crop are refused.

The shipped classifiers were trained on Imagenette, 10 ImageNet classes (tench, English
springer, cassette player, chain saw, church, French horn, garbage truck, gas pump, golf ball,
parachute): they score every file against those 10 only, so a photo of anything else still
comes back as one of them. Each classifier's label set is printed when it is first used.

Prints, per file, the top-k classes (wnid, name, probability), best first. Problems are one
`error: ...` line each on stderr (another codec's file, a latent with the wrong channels or too
small, a damaged file, an image larger than --max_pixels); the exit status is 1 if any file
failed.
"""

import os

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

from experiments import _cli

# TensorFlow's modules, imported at first use (in main): --help and flag errors need none.
tf = _cli.lazy_import("tensorflow")
serving = _cli.lazy_import("tfcdi.serving")
registry = _cli.lazy_import("tfcdi.codec.registry")
latent_store = _cli.lazy_import("tfcdi.data.latent_store")

_MODEL = flags.DEFINE_string(
    "model", None, "An exported latent classifier (SavedModel dir); default: the shipped "
    "classifier of each file's codec.")
_CODEC = flags.DEFINE_string(
    "codec", None, "Read the codec's tables from this bundle (.npz) instead of the export.",
    allow_override=True)
_LATENT_POLICY = flags.DEFINE_enum(
    "latent_policy", "resize", list(_cli.LATENT_POLICIES),
    "resize: shrink latents larger than the training view before the center crop; crop: "
    "center crop only.")
_TOP_K = flags.DEFINE_integer("top_k", 5, "How many classes to print per file.")
_MAX_PIXELS = _cli.define_max_pixels_flag()

USAGE = ("usage: tfcdi-classify [--model=EXPORT_DIR] [--codec=BUNDLE] FILE.tfci|FOLDER ...\n"
         "  FILE.tfci|FOLDER  .tfci files, or folders of them (their .tfci files)")

# Label sets this long are printed in full; a longer one is summarized.
_LISTED_CLASSES = 20


_error = _cli.error


def label_set(where: str, classifier) -> str:
  """The line that says which classes a classifier scores against (and so which it cannot)."""
  names = list(classifier.names)
  if len(names) <= _LISTED_CLASSES:
    listed = ", ".join(names)
  else:
    listed = ", ".join(names[:_LISTED_CLASSES // 2]) + ", ..."
  return (f"classifier {where}: scores {len(names)} classes only ({listed}); anything else "
          "comes back as the nearest of these")


def _inputs(args) -> list[str]:
  files = []
  for arg in args:
    if os.path.isdir(arg):
      files.extend(sorted(os.path.join(arg, f) for f in os.listdir(arg)
                          if f.lower().endswith(".tfci")))
    else:
      files.append(arg)
  return files


def _load(model_dir: str):
  """The classifier and the tables to decode with; checked against each other."""
  with _cli.native_stderr_silenced():
    classifier = serving.load_classifier(model_dir)
  print(label_set(model_dir, classifier), flush=True)
  tables = None
  if _CODEC.value:
    tables = latent_store.load_codec_tables(_CODEC.value)
    if tables.channels != classifier.channels:
      raise serving.ServingError(
          f"codec {tables.name!r} makes {tables.channels}-channel latents; the classifier reads "
          f"{classifier.channels}-channel latents of codec {classifier.tables.name!r}")
    if not tables.same_codec(classifier.tables):
      raise serving.ServingError(
          f"--codec is codec {tables.name!r} ({tables.fingerprint.hex()}); the classifier reads "
          f"latents of codec {classifier.tables.name!r} ({classifier.tables.fingerprint.hex()})")
  return classifier, tables


class _Shipped:
  """Loads the shipped classifier a file's codec needs, once per classifier."""

  def __init__(self):
    self._loaded = {}

  def __call__(self, data: bytes):
    export_dir = serving.shipped_classifier_for(registry.parse_header(data))
    if export_dir not in self._loaded:
      self._loaded[export_dir] = _load(export_dir)
    return self._loaded[export_dir]


def classify_file(load, path: str) -> str:
  """The lines to print for one file; `load(data)` gives the classifier and tables for it."""
  with open(path, "rb") as f:
    data = f.read()
  header = registry.parse_header(data)  # any family's layout
  _cli.check_pixels(*header.image_size, _MAX_PIXELS.value, what="the image the file announces")
  classifier, tables = load(data)
  header, symbols = serving.read_for_classification(data, classifier, tables,
                                                    _LATENT_POLICY.value)
  lines = [f"{path}: {header.image_size[1]}x{header.image_size[0]} image, "
           f"{classifier.describe_input(header, symbols)}"]
  lines.extend(f"  {rank}. {prob:.4f}  {wnid}  {name}"
               for rank, (wnid, name, prob) in enumerate(classifier.ranked(symbols, _TOP_K.value),
                                                         1))
  return "\n".join(lines)


def main(argv):
  if len(argv) < 2:
    _error(f"give at least one .tfci file. {USAGE.splitlines()[0]}")
    return 1
  if _TOP_K.value < 1:
    _error("--top_k must be at least 1")
    return 1
  if _MODEL.value is None:
    load = _Shipped()
  else:
    try:
      chosen = _load(_MODEL.value)
    except (ValueError, OSError) as e:
      _error(e)
      return 1
    load = lambda data: chosen  # noqa: E731
  failures = 0
  for path in _inputs(argv[1:]):
    try:
      print(classify_file(load, path), flush=True)
    except (ValueError, OSError) as e:  # one bad file must not stop the others
      # The path is said once, as in the other binaries: not again by an OSError.
      _error(f"{path}: {_cli.describe(e).removeprefix(f'{path}: ')}")
      failures += 1
    except tf.errors.InvalidArgumentError as e:  # e.g. symbols beyond the codec's centers
      _error(f"{path}: {e.message.splitlines()[0]}")
      failures += 1
  return 1 if failures else 0


def run():
  _cli.run(main)


if __name__ == "__main__":
  run()
