"""What the command-line binaries share: quiet TensorFlow start-up, codec flags, one-line errors.

Nothing here imports TensorFlow at module level: `native_stderr_silenced` must be entered before
TensorFlow's first import to do its job, and `run` answers --help and flag errors before
anything imports it. A binary therefore defines its flags from TF-free values (the choices
below), and reaches its TensorFlow modules through `lazy_import`, which imports them at first
use, inside main.
"""

import contextlib
import importlib
import os
import sys
import textwrap

from absl import app
from absl import flags

from tfcdi import configs  # no TensorFlow: flags and --set are checked before it loads

# Binaries define --operating_point with default None (flags of one name must agree across the
# binaries a test process imports); None means this point.
DEFAULT_OPERATING_POINT = "0.635"
# What --codec names when it is not a bundle path; --quality defaults to DEFAULT_QUALITY.
CODEC_FAMILIES = ("autoencoder", "hyperprior")
# Families whose codecs only come from other libraries' checkpoints (tfcdi-import-codec): none is
# shipped or trained here, so they are used through a bundle (--codec_path), never by name.
IMPORTED_FAMILIES = ("factorized", "meanscale")
DEFAULT_QUALITY = 4
# Flag choices the binaries offer, spelled out so that defining the flags imports no TensorFlow
# (the modules that own them do); tests/test_binaries.py checks each against its owner.
NETS = ("resnet50", "resnet71", "cresnet39", "cresnet51", "cresnet72")  # nets.specs.net_names()
STRATEGIES = ("default", "mirrored", "multi_worker_mirrored")  # train.classifier.STRATEGIES
CLASSIFIER_INPUTS = ("original", "decoded", "latent")  # train.classifier.INPUT_KINDS
LATENT_INPUTS = ("y_hat", "y_hat+sigma_hat")  # nets.classifier.LATENT_INPUTS
CLASSIFIER_PRESETS = tuple(configs.PRESETS["classifier"])
SEGMENTER_INPUTS = ("original", "decoded", "latent")  # train.segmenter.INPUTS
SEGMENTER_PRESETS = tuple(configs.PRESETS["segmenter"])
JOINT_ARMS = ("joint", "codec", "classifier")  # train.joint.ARMS
JOINT_PRESETS = tuple(configs.PRESETS["joint"])
CODEC_PRESETS = tuple(configs.PRESETS["codec"])
REPRODUCE_PRESETS = tuple(configs.PRESETS["reproduce"])
LATENT_POLICIES = ("resize", "crop")  # serving.LATENT_POLICIES
STORE_IMAGE_SIZE = configs.DEFAULT_IMAGE_SIZE
STORE_SHARD_SIZE = 1000  # data.latent_store.DEFAULT_SHARD_SIZE
# What --max_pixels defaults to: a 4900 x 3260 photo. The transforms run tile by tile
# (codec/tiling.py), so their memory does not grow with the image, but the image, its latents,
# its symbols and the time to code them do; tools/memory_check.py measures a 4000 x 4000 photo
# (README). A file's header announces its size, so a larger one (forged or real) is refused
# before anything is decoded: a forged file of a few hundred bytes cannot make a decoder
# allocate a 16384 x 16384 image's arrays.
DEFAULT_MAX_PIXELS = 16_000_000


class _LazyModule:
  """A module imported at its first attribute access (with TensorFlow's start-up logging
  silenced), so that a binary can name its modules at the top and still answer --help and flag
  errors without importing TensorFlow."""

  def __init__(self, name):
    self.__dict__["_name"] = name

  def _load(self):
    module = sys.modules.get(self._name)
    if module is None:
      with native_stderr_silenced():
        module = importlib.import_module(self._name)
    return module

  def __getattr__(self, attribute):
    return getattr(self._load(), attribute)

  def __setattr__(self, attribute, value):  # e.g. a test's monkeypatch: the real module's
    setattr(self._load(), attribute, value)

  def __repr__(self):
    return f"<lazy module {self._name}>"


def has_two_paths(argv, usage: str) -> bool:
  """Whether a compress / decompress command line names an input and an output; says what is
  wrong (one line, with the usage) when not."""
  if len(argv) == 3:
    return True
  error(f"expected an input and an output path, got {plural(len(argv) - 1, 'argument')}. "
        f"{usage.splitlines()[0]}")
  return False


def coded_line(job, width: int, height: int, num_bytes: int) -> str:
  """What compress and decompress print for a file: its paths, size and rate."""
  return (f"{job.source} -> {job.target}: {width}x{height} px, {num_bytes} bytes, "
          f"{8 * num_bytes / (height * width):.4f} bpp")


def lazy_import(name: str):
  """The module `name`, imported when first used (see _LazyModule)."""
  return _LazyModule(name)


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
  if codec in IMPORTED_FAMILIES:
    raise ValueError(f"no {codec} codec is shipped; import one with tfcdi-import-codec and give "
                     "its bundle with --codec_path")
  if codec_path is not None:
    raise ValueError(f"--codec={codec} is not a codec family ({', '.join(CODEC_FAMILIES)}); "
                     "give the bundle with --codec_path only")
  if not os.path.exists(codec):
    # A mistyped family ("jpeg", "hyperpior") is far likelier than a missing bundle.
    raise ValueError(f"--codec={codec} is neither a codec family ({', '.join(CODEC_FAMILIES)}) "
                     "nor an existing codec bundle (.npz)")
  return None, codec


def define_max_pixels_flag():
  """--max_pixels, the largest image a binary decodes or encodes (same definition in each)."""
  return flags.DEFINE_integer(
      "max_pixels", DEFAULT_MAX_PIXELS, "Refuse images (and .tfci files whose header announces "
      "images) of more pixels than this, before anything is decoded: a small forged file can "
      "otherwise announce an image that needs tens of GB. Raise it for larger images.",
      lower_bound=1, allow_override=True)


def check_pixels(height: int, width: int, max_pixels: int, what: str = "the image") -> None:
  """ValueError if height x width is more than max_pixels (--max_pixels)."""
  if height * width > max_pixels:
    raise ValueError(f"{what} is {width}x{height} pixels ({height * width / 1e6:.1f} "
                     f"megapixels), more than --max_pixels={max_pixels} (a larger --max_pixels "
                     "accepts it, at a cost in memory and time that grows with its size)")


def define_set_flag():
  """--set FIELD=VALUE, repeatable: the one way the training binaries override a config field
  (same definition in each; see define_codec_flags)."""
  return flags.DEFINE_multi_string(
      "set", [], "FIELD=VALUE: overrides one field of the preset's config; repeat it for more "
      "(e.g. --set=epochs=3 --set=lr_drop_epochs=2,3 --set=precision=float32). The fields, "
      "their types and the presets are tfcdi/configs.py's.", allow_override=True)


def config_from_flags(stage: str, preset: str, settings, **daily):
  """The stage's preset with the --set settings and the daily flags that are config fields
  (--seed; None: not given) applied. No TensorFlow is loaded.

  Raises:
    configs.ConfigError: a bad setting (one line naming the field), or a field given both ways.
  """
  parsed = configs.parse_settings(stage, settings, preset)
  both = sorted(k for k, v in daily.items() if v is not None and k in parsed)
  if both:
    raise configs.ConfigError(f"--{both[0]} and --set={both[0]}=... are both given; give one")
  return configs.get_config(stage, preset, **{**parsed, **daily})


def define_strategy_flag():
  """--strategy of the classifier training (tfcdi-train-classifier, tfcdi-reproduce's classifier
  steps), one definition for both; see define_codec_flags."""
  return flags.DEFINE_enum("strategy", "default", list(STRATEGIES),
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


def missing_flags(*holders) -> str:
  """'--a, --b are required' for those of these flags (holders or FLAGS[name]) left unset; ''."""
  missing = [f"--{holder.name}" for holder in holders if holder.value is None]
  if not missing:
    return ""
  return f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required"


def error(message) -> None:
  """Prints `error: ...` on one line of stderr (the binary then exits with status 1)."""
  print("error: " + " ".join(describe(message).split("\n")), file=sys.stderr, flush=True)


def plural(count: int, noun: str) -> str:
  """'1 argument', '2 arguments'."""
  return f"{count} {noun}" + ("" if count == 1 else "s")


def is_out_of_memory(exc) -> bool:
  """Whether an exception means the machine ran out of memory (Python's or TensorFlow's)."""
  # By name: TensorFlow may not be imported (and must not be imported just to ask).
  if isinstance(exc, MemoryError) or type(exc).__name__ == "ResourceExhaustedError":
    return True
  # Under a memory limit, a oneDNN kernel whose buffer cannot be allocated aborts its op instead
  # (issue 21 saw AbortedError tracebacks); other aborts are not memory's.
  return type(exc).__name__ == "AbortedError" and any(
      word in str(exc).lower() for word in ("alloc", "out of memory", "memory object"))


OUT_OF_MEMORY = ("out of memory (a smaller image, or a smaller --max_pixels or batch, needs "
                 "less)")


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
  if is_out_of_memory(exc):
    return OUT_OF_MEMORY
  if isinstance(exc, OSError) and exc.strerror:
    # The file system's errors in the words the binaries use elsewhere, not "[Errno 2] ...".
    reason = _OS_REASONS.get(type(exc), exc.strerror)
    return f"{exc.filename}: {reason}" if exc.filename else reason
  return str(exc)


_OS_REASONS = {
    FileNotFoundError: "no such file or folder",
    IsADirectoryError: "a folder, not a file",
    NotADirectoryError: "a file is in the way of a folder in this path",
    FileExistsError: "already exists",
    PermissionError: "permission denied",
}


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


def run_file_jobs(jobs, process, summary: bool = False) -> int:
  """Runs `process(job)` on each planned file, printing its line; returns the exit status.

  A job the planner skipped is named with its reason; one it refused, or one that fails, is
  reported on one `error:` line and the run goes on: one bad file must not stop the others.
  With `summary` (a folder run), a closing line counts what was written, failed and skipped.
  The status is 1 if any failed.
  """
  written = failed = skipped = 0
  for job in jobs:
    if job.skipped:
      print(f"skipped {job.source}: {job.skipped}", flush=True)
      skipped += 1
      continue
    try:
      if job.problem:
        raise ValueError(job.problem)
      print(process(job), flush=True)
      written += 1
    except (ValueError, OSError) as e:
      error(f"{job.source}: {describe(e)}")
      failed += 1
    except Exception as e:  # pylint: disable=broad-except
      if not is_out_of_memory(e):
        raise
      error(f"{job.source}: {OUT_OF_MEMORY}")
      failed += 1
  if summary:
    print(f"{written} written, {failed} failed, {skipped} skipped", flush=True)
  return 1 if failed else 0


# --- running a binary ---------------------------------------------------------------------------

# Every spelling of absl's help flags: answered by `run`, never by absl (whose help lists the
# flags of absl, TensorFlow and the test libraries, and exits with status 1).
_HELP_ARGS = ("-h", "-?", "-help", "--help", "-helpshort", "--helpshort", "-helpfull",
              "--helpfull")


def program_name(namespace: dict) -> str:
  """tfcdi-NAME, the console script of experiments/NAME.py (also under `python -m`), from the
  binary's module namespace (its globals)."""
  spec = namespace.get("__spec__")
  name = spec.name if spec is not None else os.path.splitext(os.path.basename(sys.argv[0]))[0]
  return "tfcdi-" + name.rsplit(".", 1)[-1].replace("_", "-")


def binary_flags(namespace: dict) -> list:
  """The flags a binary defines (its own and the shared ones), in the order it defines them:
  those it holds in its module namespace."""
  names = []
  for value in namespace.values():
    if isinstance(value, (flags.FlagHolder, PresetFlag)) and value.name not in names:
      names.append(value.name)
  return [flags.FLAGS[name] for name in names]


def _default_text(flag) -> str:
  if flag.default is None:
    return ""
  if flag.boolean:
    return "true" if flag.default else "false"
  if isinstance(flag.default, (list, tuple)):
    return ",".join(map(str, flag.default))
  return str(flag.default)


def help_text(namespace: dict) -> str:
  """What `--help` prints: usage, the binary's docstring and its flags (namespace: its globals)."""
  prog = program_name(namespace)
  usage = namespace.get("USAGE") or f"usage: {prog} [flags]"
  lines = [usage, "", (namespace.get("__doc__") or "").strip(), "", "flags:"]
  wrap = textwrap.TextWrapper(width=96, initial_indent="      ", subsequent_indent="      ")
  for flag in binary_flags(namespace):
    name = f"--[no]{flag.name}" if flag.boolean else f"--{flag.name}"
    default = _default_text(flag)
    lines.append(f"  {name}" + (f" (default: {default})" if default else ""))
    lines.extend(wrap.wrap(" ".join(flag.help.split())))
  return "\n".join(lines)


def _stdout_to_devnull() -> None:
  # Python would otherwise fail again, with a traceback, flushing stdout at exit.
  os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def run(main) -> None:
  """Runs a binary's `main` under absl, the way every tfcdi binary answers its command line.

  The binary is the module `main` is defined in (its globals: docstring, USAGE, flags).

  --help (any spelling) prints `help_text` to stdout and exits 0; a flag error is one `error:`
  line and exit status 1. Both happen before TensorFlow is imported (the binary's flags are
  TF-free; see the module docstring). In main, an app.UsageError is one `error:` line too, and
  running out of memory is one line, not a traceback.
  """
  namespace = main.__globals__
  prog = program_name(namespace)

  def parse(argv):
    args = argv[1:argv.index("--")] if "--" in argv else argv[1:]
    if any(arg in _HELP_ARGS or arg.startswith(("--help=", "-help=")) for arg in args):
      try:
        print(help_text(namespace), flush=True)
      except BrokenPipeError:  # `--help | head`: what the reader did not want is no error
        _stdout_to_devnull()
      sys.exit(0)
    try:
      return flags.FLAGS(argv)
    except flags.Error as e:
      error(f"{e} ({prog} --help lists the flags)")
      sys.exit(1)

  def guarded_main(argv):
    try:
      return main(argv)
    except app.UsageError as e:
      error(f"{e} ({prog} --help lists the flags)")
      return 1
    except BrokenPipeError:  # the reader of stdout has gone (`| head`): stop, quietly
      _stdout_to_devnull()
      return 1
    except Exception as e:  # pylint: disable=broad-except
      if not is_out_of_memory(e):
        raise
      error(OUT_OF_MEMORY)
      return 1

  app.run(guarded_main, flags_parser=parse)
