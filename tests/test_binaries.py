"""The binaries' command line: every binary imports beside the others (one test process), and
answers --help and flag errors before TensorFlow is imported; one console script each."""

import importlib
import os
import runpy
import subprocess
import sys

from absl import flags
import pytest
import setuptools

from experiments import _cli

EXPERIMENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "experiments")
BINARIES = sorted(name[:-3] for name in os.listdir(EXPERIMENTS)
                  if name.endswith(".py") and not name.startswith("_"))
REPO_ROOT = os.path.dirname(os.path.normpath(EXPERIMENTS))
# Tools that tests import into the session's process (the others run as subprocesses): their
# flags must coexist with the binaries' too.
TOOLS_IMPORTED_BY_TESTS = ("decode_settings", "memory_check", "synthetic_paper_data")


def test_the_binaries_list_is_not_empty():
  assert {"compress", "train_classifier", "benchmark", "reproduce"} <= set(BINARIES)


_IN_PROCESS = ([f"experiments.{b}" for b in BINARIES]
               + [f"tools.{t}" for t in TOOLS_IMPORTED_BY_TESTS])


@pytest.mark.parametrize("name", _IN_PROCESS)
def test_every_binary_imports_beside_the_others(name):
  # absl refuses a second definition of a flag name unless both allow overriding, and a test
  # session imports every binary (and the tools tests import) into one process. A fresh
  # interpreter per module, importing it first and then all the others, tries every module's
  # definitions against the rest (in this process all but the first parameter would find the
  # modules imported already).
  others = [b for b in _IN_PROCESS if b != name]
  code = ("import importlib\n"
          f"for b in {[name] + others!r}:\n"
          "  module = importlib.import_module(b)\n"
          "  assert callable(getattr(module, 'run', None) or module.main), b\n"
          "from absl import flags\n"
          "print(len(list(flags.FLAGS)))\n")
  done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                        text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  # The flags of every binary are there, once each.
  assert int(done.stdout.split()[-1]) > 10 * len(BINARIES) // 2


# --- the command line, before TensorFlow ------------------------------------------------------


# Runs a binary's `run()` as its console script does (sys.argv as given), then reports on
# stderr whether TensorFlow was imported: --help and flag errors must be answered without it.
_RUN_AND_REPORT = """
import sys
sys.argv = sys.argv[1:]
import importlib
module = importlib.import_module("experiments." + sys.argv[0])
sys.argv[0] = "tfcdi-" + sys.argv[0].replace("_", "-")
try:
  module.run()
finally:
  print("TENSORFLOW IMPORTED" if "tensorflow" in sys.modules else "no tensorflow",
        file=sys.stderr)
"""


def _run_binary(name, *args):
  env = {**os.environ, "PYTHONPATH": REPO_ROOT}
  return subprocess.run([sys.executable, "-c", _RUN_AND_REPORT, name, *args],
                        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300,
                        check=False)


def _own_flags(name):
  module = importlib.import_module(f"experiments.{name}")
  return [flag.name for flag in _cli.binary_flags(vars(module))]


@pytest.mark.parametrize("name", BINARIES)
def test_help_lists_the_binarys_flags_and_exits_0_without_tensorflow(name):
  result = _run_binary(name, "--help")
  assert result.returncode == 0, result.stderr
  assert result.stderr == "no tensorflow\n"
  out = result.stdout
  program = "tfcdi-" + name.replace("_", "-")
  assert out.startswith(f"usage: {program}")
  assert importlib.import_module(f"experiments.{name}").__doc__.strip() in out  # its purpose
  flags_listed = [line.split()[0] for line in out.split("\nflags:\n")[1].splitlines()
                  if line.startswith("  --")]
  assert flags_listed == [f"--[no]{n}" if flags.FLAGS[n].boolean else f"--{n}"
                          for n in _own_flags(name)]
  # Not absl's, TensorFlow's or the test libraries' flags (what --helpfull used to list).
  for foreign in ("--tpu", "--test_srcdir", "--verbosity", "--pdb", "--only_check_args"):
    assert foreign not in out


def test_compress_help_lists_the_shared_codec_flags():
  result = _run_binary("compress", "-h")
  assert result.returncode == 0 and result.stderr == "no tensorflow\n"
  for flag in ("--operating_point", "--codec", "--quality", "--codec_path", "--max_pixels",
               "--[no]skip_existing"):
    assert f"\n  {flag}" in result.stdout
  assert "INPUT" in result.stdout.splitlines()[0] and "OUTPUT" in result.stdout.splitlines()[0]


@pytest.mark.parametrize("spelling", ["--helpfull", "--helpshort", "-help"])
def test_every_help_spelling_gets_the_binarys_help(spelling):
  result = _run_binary("decompress", spelling)
  assert result.returncode == 0 and result.stderr == "no tensorflow\n"
  assert result.stdout.startswith("usage: tfcdi-decompress")


def test_help_into_a_closed_pipe_is_no_traceback():
  # `tfcdi-compress --help | head -1`: the reader goes before the help is written.
  env = {**os.environ, "PYTHONPATH": REPO_ROOT}
  with subprocess.Popen([sys.executable, "-c", _RUN_AND_REPORT, "compress", "--help"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                        cwd=REPO_ROOT) as process:
    process.stdout.close()  # long before the child has imported absl
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=300) == 0
  assert stderr == "no tensorflow\n"


@pytest.mark.parametrize("name, args", [
    ("compress", ["--no_such_flag", "a.png", "a.tfci"]),
    ("classify", ["--top_k=many", "a.tfci"]),
    ("train_classifier", ["--net=resnet18"]),
    ("benchmark", ["--device=tpu"]),
])
def test_a_flag_error_is_one_line_before_tensorflow(name, args):
  result = _run_binary(name, *args)
  assert result.returncode == 1
  error, report = result.stderr.splitlines()
  assert error.startswith("error: ") and error.endswith("--help lists the flags)")
  assert report == "no tensorflow"
  assert result.stdout == ""


def test_a_wrong_argument_count_is_one_line_before_tensorflow():
  result = _run_binary("compress", "a.png")
  assert result.returncode == 1
  assert result.stderr.splitlines() == [
      "error: expected an input and an output path, got 1 argument. " + compress_usage(),
      "no tensorflow"]


def compress_usage():
  return importlib.import_module("experiments.compress").USAGE.splitlines()[0]


def test_running_out_of_memory_is_one_line_not_a_traceback():
  code = ("from experiments import _cli\n"
          "def main(argv):\n"
          "  raise MemoryError()\n"
          "_cli.run(main)\n")
  env = {**os.environ, "PYTHONPATH": REPO_ROOT}
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT, timeout=300, check=False)
  assert result.returncode == 1
  assert result.stderr == f"error: {_cli.OUT_OF_MEMORY}\n"


def test_tensorflows_out_of_memory_error_is_recognized_as_one():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  assert _cli.is_out_of_memory(tf.errors.ResourceExhaustedError(None, None, "OOM"))
  assert _cli.is_out_of_memory(MemoryError())
  assert not _cli.is_out_of_memory(ValueError("OOM"))
  # A oneDNN kernel that cannot allocate under a memory limit aborts its op instead.
  assert _cli.is_out_of_memory(tf.errors.AbortedError(
      None, None, "Operation received an exception: could not create a memory object"))
  assert not _cli.is_out_of_memory(tf.errors.AbortedError(None, None, "the queue was closed"))
  assert _cli.describe(tf.errors.ResourceExhaustedError(None, None, "OOM")) == _cli.OUT_OF_MEMORY


def test_each_binary_is_installed_once_as_tfcdi_dash_name(monkeypatch):
  captured = {}
  monkeypatch.setattr(setuptools, "setup", lambda **kwargs: captured.update(kwargs))
  runpy.run_path(os.path.join(REPO_ROOT, "setup.py"))
  scripts = captured["entry_points"]["console_scripts"]
  assert sorted(scripts) == sorted(
      f"tfcdi-{name.replace('_', '-')}=experiments.{name}:run" for name in BINARIES)


def test_the_flag_choices_spelled_out_for_the_command_line_are_the_librarys():
  # _cli repeats them so that defining flags needs no TensorFlow; they must not drift.
  from tfcdi import reproduce, serving  # pylint: disable=g-import-not-at-top
  from tfcdi.data import latent_store  # pylint: disable=g-import-not-at-top
  from tfcdi.nets import classifier as classifier_net  # pylint: disable=g-import-not-at-top
  from tfcdi.nets import specs  # pylint: disable=g-import-not-at-top
  from tfcdi.train import classifier, codec, joint, segmenter  # pylint: disable=g-import-not-at-top
  assert _cli.NETS == tuple(specs.net_names())
  assert _cli.STRATEGIES == tuple(classifier.STRATEGIES)
  assert _cli.CLASSIFIER_INPUTS == tuple(classifier.INPUT_KINDS)
  assert _cli.LATENT_INPUTS == tuple(classifier_net.LATENT_INPUTS)
  assert _cli.CLASSIFIER_PRESETS == tuple(classifier.PRESETS)
  assert _cli.SEGMENTER_INPUTS == tuple(segmenter.INPUTS)
  assert _cli.SEGMENTER_PRESETS == tuple(segmenter.PRESETS)
  assert _cli.JOINT_ARMS == tuple(joint.ARMS)
  assert _cli.JOINT_PRESETS == tuple(joint.PRESETS)
  assert _cli.CODEC_PRESETS == tuple(codec.PRESETS)
  assert _cli.REPRODUCE_PRESETS == tuple(reproduce.PRESETS)
  assert _cli.LATENT_POLICIES == tuple(serving.LATENT_POLICIES)
  assert _cli.STORE_IMAGE_SIZE == latent_store.DEFAULT_IMAGE_SIZE
  assert _cli.STORE_SHARD_SIZE == latent_store.DEFAULT_SHARD_SIZE


def test_a_mistyped_codec_family_lists_the_families():
  with pytest.raises(ValueError, match=r"--codec=jpeg is neither a codec family \(autoencoder, "
                     r"hyperprior\) nor an existing codec bundle"):
    _cli.resolve_codec_flag("jpeg")
