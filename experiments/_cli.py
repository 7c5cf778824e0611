"""What the command-line binaries share: quiet TensorFlow start-up, codec flags, one-line errors.

Nothing here imports TensorFlow at module level: `native_stderr_silenced` must be entered before
TensorFlow's first import to do its job.
"""

import contextlib
import os
import sys

from absl import flags

from tfcdi.train import precision  # light: imports TensorFlow only when "auto" is resolved

# Binaries define --operating_point with default None (flags of one name must agree across the
# binaries a test process imports); None means this point.
DEFAULT_OPERATING_POINT = "0.635"
# What --codec names when it is not a bundle path; --quality defaults to DEFAULT_QUALITY.
CODEC_FAMILIES = ("autoencoder", "hyperprior")
DEFAULT_QUALITY = 4


@contextlib.contextmanager
def native_stderr_silenced():
  """Points file descriptor 2 at /dev/null for the duration (unless the user asked for logs).

  TF 2.21 logs a few lines while its libraries load, before absl logging is initialized, and
  those go straight to fd 2 whatever TF_CPP_MIN_LOG_LEVEL says. A user who sets the variable to
  anything but 3 gets them.
  """
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  if os.environ["TF_CPP_MIN_LOG_LEVEL"] != "3":
    yield
    return
  sys.stderr.flush()
  saved = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  try:
    yield
  finally:  # an import error's traceback is printed after this, on the real stderr
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


def define_codec_flags(with_operating_point=True):
  """--operating_point and --codec, as every codec-using binary spells them.

  allow_override: several binaries define these, and a process that imports more than one (the
  test suite) must not fail on it; the definitions are identical, so which one wins is moot.
  Returns (operating_point holder or None, codec holder).
  """
  op = None
  if with_operating_point:
    op = flags.DEFINE_string(
        "operating_point", None,
        "Codec operating point: 0.0983, 0.330 or 0.635 (bpp; default 0.635).",
        allow_override=True)
  codec = flags.DEFINE_string(
      "codec", None, "The codec: a family (autoencoder, the default, or hyperprior; binaries "
      "that read files take the family from each file's header), or the path of a codec "
      "bundle (.npz) to use instead of the shipped one (same as --codec_path).",
      allow_override=True)
  return op, codec


def define_quality_flag():
  """--quality, the hyperprior codec's quality (same definition in each binary)."""
  return flags.DEFINE_integer(
      "quality", None, "Hyperprior codec quality, 1 (lowest rate) to 8 (highest); the trained "
      f"ones are 1, 4 and 8 (default {DEFAULT_QUALITY}).", allow_override=True)


def define_codec_path_flag():
  """--codec_path, a codec bundle of either family (same definition in each binary)."""
  return flags.DEFINE_string(
      "codec_path", None, "Path to a codec bundle (.npz) of either family, e.g. from a "
      "training workdir, instead of the shipped one.", allow_override=True)


def define_family_flags():
  """--quality and --codec_path; returns their holders."""
  return define_quality_flag(), define_codec_path_flag()


def resolve_codec_flag(codec, codec_path=None) -> tuple:
  """(family or None, bundle path or None) from --codec and --codec_path.

  --codec is a family name or, as before families existed, a bundle path.
  """
  if codec is None or codec in CODEC_FAMILIES:
    return codec, codec_path
  if codec_path is not None:
    raise ValueError(f"--codec={codec} is not a codec family ({', '.join(CODEC_FAMILIES)}); "
                     "give the bundle with --codec_path only")
  return None, codec


def define_precision_flag():
  """--precision for the training binaries (same definition in each; see define_codec_flags)."""
  return flags.DEFINE_enum(
      "precision", None, list(precision.CHOICES),
      "Overrides the preset's training precision. auto: mixed_bfloat16 on a CPU with bfloat16 "
      "units, else float32. Weights, exports and inference are float32 either way.",
      allow_override=True)


def define_strategy_flag():
  """--strategy of the classifier training (tfcdi-train-classifier, tfcdi-reproduce's classifier
  steps), one definition for both; see define_codec_flags."""
  from tfcdi.train import classifier  # pylint: disable=g-import-not-at-top  (TF: binaries only)
  return flags.DEFINE_enum("strategy", "default", list(classifier.STRATEGIES),
                           "tf.distribute strategy of the classifier training.",
                           allow_override=True)


class PresetFlag:
  """--preset, defined alike in every binary (a string, default None) so that the binaries can
  share one process; each binary checks its own choices and supplies its own default."""

  def __init__(self, choices, default):
    self.choices = list(choices)
    self.default = default
    self._holder = flags.DEFINE_string(
        "preset", None, "The preset (training binaries: paper, cpu, tiny; tfcdi-reproduce: "
        "smoke, cpu, paper). Default: cpu for training, smoke for tfcdi-reproduce.",
        allow_override=True)

  name = "preset"

  @property
  def present(self) -> bool:
    return self._holder.present

  @property
  def value(self) -> str:
    """The chosen preset; ValueError if this binary has no such preset."""
    name = self._holder.value or self.default
    if name not in self.choices:
      raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(self.choices)}")
    return name


def define_preset_flag(choices, default="cpu") -> PresetFlag:
  return PresetFlag(choices, default)


def define_paper_numbers_flag():
  """--paper_numbers, the published numbers' file (same definition in each binary)."""
  return flags.DEFINE_string(
      "paper_numbers", None,
      "paper_numbers.json, the only source of published numbers (default: "
      "../shared/reference/ beside the repository, or $TFCDI_PAPER_NUMBERS).",
      allow_override=True)


def error(message) -> None:
  """Prints `error: ...` on one line of stderr (the binary then exits with status 1)."""
  print("error: " + " ".join(describe(message).split("\n")), file=sys.stderr, flush=True)


def clean_errors() -> tuple:
  """The exceptions a binary reports on one line rather than as a traceback.

  Besides our own (ValueError subclasses) and the file system's, TF's DataLossError: a damaged
  TFRecord (a store shard, a cache cut short) is found only while a tf.data pipeline reads it,
  deep inside TF. Called in an `except` clause, so TensorFlow is imported by then.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return (ValueError, OSError, tf.errors.DataLossError)


def describe(exc) -> str:
  """An exception (or a message) as the sentence `error` prints."""
  if type(exc).__name__ == "DataLossError":
    first = str(exc).split("\n")[0]
    return (f"a data file is damaged ({first}); make it again (a latent store with "
            "tfcdi-encode-dataset; a cache by deleting it)")
  return str(exc)


def load_codec(operating_point, codec_path, *, quality=None, family=None,
               families=("autoencoder",)):
  """The shipped codec of an operating point (or hyperprior quality), or the bundle at codec_path.

  With a bundle, an operating point or quality given explicitly must agree with it; when none is
  given the bundle's own is used. `codec_path` may also be a family name (the value of
  --codec; see resolve_codec_flag). `families` are those the calling binary can use; a codec of
  another family is refused with a ValueError.
  """
  from tfcdi.codec import registry  # pylint: disable=g-import-not-at-top
  named, codec_path = resolve_codec_flag(codec_path) if family is None else (family, codec_path)
  if named is not None and named not in families:
    raise ValueError(f"this binary reads {' and '.join(families)} codecs, not {named} codecs")
  # Each family's shipped codecs are picked by one flag (registry: the family's selector).
  selection = {"operating_point": operating_point, "quality": quality}
  given = [key for key, value in selection.items() if value is not None]
  chosen = registry.get(named) if named is not None else (
      registry.of_selector(given[0]) if given else registry.get(registry.DEFAULT_FAMILY))
  for key in given:
    if not chosen.selected_by(key):
      raise ValueError(f"--{key} is for the {registry.of_selector(key).name} codec; the "
                       f"{chosen.name} codec takes --{chosen.selector}")
  if codec_path is not None:
    codec = registry.load(codec_path, family=named, **selection)
  else:
    defaults = {"operating_point": DEFAULT_OPERATING_POINT, "quality": DEFAULT_QUALITY}
    codec = chosen.load(None, selection[chosen.selector] or defaults[chosen.selector])
  if codec.family not in families:
    raise ValueError(f"{codec.name} is a codec of the {codec.family} family; this binary reads "
                     f"{' and '.join(families)} codecs")
  return codec


def run_file_jobs(jobs, process) -> int:
  """Runs `process(job)` on each planned file, printing its line; returns the exit status.

  A job the planner already refused, or one that fails, is reported on one line and skipped:
  one bad file must not stop the others. The status is 1 if any failed.
  """
  failures = 0
  for job in jobs:
    try:
      if job.problem:
        raise ValueError(job.problem)
      print(process(job), flush=True)
    except (ValueError, OSError) as e:
      error(f"{job.source}: {e}")
      failures += 1
  return 1 if failures else 0
