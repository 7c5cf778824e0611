"""Mutation score of the core modules, with cosmic-ray: resumable, one session per module.

  pip install -e '.[mutation]'
  nice -n 3 python tools/mutation_score.py --workdir=/tmp/tfcdi_mutation [--module=NAME ...]
      [--max_minutes=M]
  python tools/mutation_score.py --workdir=/tmp/tfcdi_mutation --report_only

Each module (MODULES) is a cosmic-ray session (an sqlite file in --workdir) whose test command
runs only the tests that cover it. The mutants are made and tested in a copy of the repository
inside --workdir (cosmic-ray edits the file on disk while a mutant is tested), so a run never
leaves a mutated file in the work tree, even when it is stopped. A session holds every mutant's
result: running the command again tests only the mutants not yet tested, so a run can be
stopped at any time (or bounded by --max_minutes) and continued. After a test was added,
--retest_survivors tests the surviving mutants again (with the work tree's current tests);
--fresh starts a module over.

What is mutated: the functions named per module (all of it when none are), with the operators
in KEPT_OPERATORS: cosmic-ray's full set replaces every binary operator by all eleven others
(a + b -> a << b ...), mostly mutants that die on a TypeError and that cost a test run each;
this keeps mutmut's kind of set (each operator's natural counterpart, boundary and negated
comparisons, numbers, booleans, decorators, exception handlers, loops). Mutants inside type
annotations of a module with `from __future__ import annotations` are left out: such an
annotation is never evaluated, so the mutant is the same program.

The score is killed / (tested - equivalent): a mutant is killed when its tests fail, time out
or cannot import it; EQUIVALENT lists the survivors that no test can kill (the mutated program
behaves the same), each with why.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PYTEST = "python -m pytest -x -q -p no:cacheprovider -o addopts= -m 'not slow'"


@dataclasses.dataclass(frozen=True)
class Module:
  name: str
  path: str  # relative to the repository
  tests: tuple  # pytest arguments: the tests that cover it
  functions: tuple = ()  # qualified names of the functions / classes mutated; () = the file
  timeout: float = 300.0  # seconds for one mutant's tests (a hang counts as killed)


MODULES = (
    Module("quantizer", "tfcdi/codec/quantizer.py", ("tests/test_quantizer.py",)),
    Module("bitstream", "tfcdi/codec/bitstream.py",
           ("tests/test_bitstream.py", "tests/test_hyperprior_bitstream.py"), timeout=120.0),
    # The hyperprior's entropy models: the factorized density of z, the Gaussian of y and the
    # integer tables both are coded with. The networks around them are not core here.
    Module("entropy_models", "tfcdi/codec/hyperprior.py", ("tests/test_entropy_models.py",),
           functions=("scale_table", "_probability_between", "FactorizedDensity",
                      "gaussian_likelihood", "_standard_upper_tail", "y_tables", "z_tables")),
    Module("metrics", "tfcdi/metrics.py", ("tests/test_metrics.py",)),
    # The losses, one session per file they live in.
    Module("loss_codec", "tfcdi/train/codec.py", ("tests/test_losses.py",),
           functions=("rate_entropy", "make_train_step")),
    Module("loss_hyperprior", "tfcdi/train/hyperprior.py", ("tests/test_losses.py",),
           functions=("rate_distortion_loss",)),
    Module("loss_segmenter", "tfcdi/train/segmenter.py", ("tests/test_losses.py",),
           functions=("segmentation_loss",)),
    Module("loss_classifier", "tfcdi/train/classifier.py", ("tests/test_losses.py",),
           functions=("_softmax_cross_entropy",)),
)

_BINARY = ("Add_Sub", "Sub_Add", "Mul_Div", "Div_Mul", "Div_FloorDiv", "FloorDiv_Div", "Pow_Mul",
           "Mod_FloorDiv", "BitAnd_BitOr", "BitOr_BitAnd", "BitXor_BitOr", "LShift_RShift",
           "RShift_LShift")
_COMPARISON = ("Eq_NotEq", "NotEq_Eq", "Lt_LtE", "LtE_Lt", "Gt_GtE", "GtE_Gt", "Lt_GtE", "GtE_Lt",
               "Gt_LtE", "LtE_Gt", "Is_IsNot", "IsNot_Is")
KEPT_OPERATORS = re.compile(
    r"core/(ReplaceBinaryOperator_(%s)|ReplaceComparisonOperator_(%s)|ReplaceUnaryOperator_Delete_"
    r"\w+|ReplaceUnaryOperator_USub_UAdd|AddNot|ReplaceTrueWithFalse|ReplaceFalseWithTrue|"
    r"ReplaceAndWithOr|ReplaceOrWithAnd|ReplaceBreakWithContinue|ReplaceContinueWithBreak|"
    r"NumberReplacer|ZeroIterationForLoop|RemoveDecorator|ExceptionReplacer)$"
    % ("|".join(_BINARY), "|".join(_COMPARISON)))

_BISECTION = ("200 halvings of any bracket of t* end on the same float (the least with a tail <= "
              "TABLE_TAIL_MASS); the tables see only ceil(scale * t* - 0.5)")
_FLOAT_TIE = "differs only where a float64 tail equals TABLE_TAIL_MASS (2^-21) exactly"

# (module, the mutant's line as its diff shows it, stripped) -> why it behaves as the original.
EQUIVALENT = {
    ("entropy_models", "lo, hi = 1.0, 40.0"): _BISECTION,
    ("entropy_models", "lo, hi = 0.0, 39.0"): _BISECTION,
    ("entropy_models", "lo, hi = (mid, hi) if _standard_upper_tail(mid) >= TABLE_TAIL_MASS "
                       "else (lo, mid)"): _FLOAT_TIE,
    ("entropy_models", "above = upper[c, :-1] >= TABLE_TAIL_MASS"): _FLOAT_TIE,
    ("entropy_models", "if last <= first:  # a density narrower than one integer"):
        "when last == first, that one value holds all but 2 * TABLE_TAIL_MASS of the mass, so "
        "the argmax of the masses is that value again",
    ("entropy_models", "r = max( 0, math.ceil(scale * t_star - 0.5))"):
        "the least scale (0.11) times t* (4.9) is above 0.5, so the ceiling is at least 1 and "
        "the max never binds",
    ("entropy_models", "logits = density.cdf_logits(x).numpy()[:, -1, :].astype(np.float64)"):
        "that axis has size 1: index 0 and -1 are the same",
    ("quantizer", "return tf.reduce_mean(tf.reshape(assign, [-1, tf.shape(centers)[ -1]]), "
                  "axis=0)"): "the centers are a vector: the last dimension is the first",
    ("bitstream", "if total & (total - 2) or total > 1 << rans.MAX_PRECISION:"):
        "for a total of 2 or more, t & (t - 2) is 0 exactly when t & (t - 1) is (a power of "
        "two); they differ only at 1, and _check_frequencies gives every table two or more "
        "entries of at least 1",
    ("bitstream", "below = value <= low"):
        "_escape_parts is only given values outside [low, high]: value == low never reaches it",
    ("entropy_models", "probs = np.clip(np.diff(cdf[c])[first:last + 1], -1.0, None)"):
        "the cumulative is a sigmoid of an increasing function (tested): its differences are "
        "never negative, so clipping at -1 or at 0 leaves them alike",
    ("loss_segmenter", "logits = deeplab.upsample_logits(logits, labels.shape[1: 4])"):
        "labels are [B, H, W]: a slice past the last dimension stops there, as [1:3] does",
    ("entropy_models", "first = int(np.argmax(cdf[c, 1:] >= TABLE_TAIL_MASS))"): _FLOAT_TIE,
    ("entropy_models", "lo, hi = -1.0, 40.0"): _BISECTION,
    ("entropy_models", "lo, hi = 0.0, 41.0"): _BISECTION,
    ("bitstream", "if 0.99 * min_bits * header.num_symbols >= 8 * header.payload_length + 64:"):
        "differs only where a float product equals the bound exactly",
    ("entropy_models", "for _ in range( 199):"):
        "the bracket [0, 40] is down to adjacent floats long before 199 halvings",
    ("entropy_models", "for _ in range( 201):"):
        "the bracket [0, 40] is down to adjacent floats long before 200 halvings",
    ("entropy_models", "escape = max(cdf[c, first], 0.0) + max(upper[c, last + 1], -1.0)"):
        "a tail mass is a probability, never below 0: max with -1 or with 0 is the same",
    ("entropy_models", "escape = max(cdf[c, first], -1.0) + max(upper[c, last + 1], 0.0)"):
        "a tail mass is a probability, never below 0: max with -1 or with 0 is the same",
    ("metrics", "return float(values.reshape(1)[0]) if single else values"):
        "a single image's values hold exactly one number: reshape(1) and reshape(-1) agree",
    ("metrics", "return float(values.reshape(+1)[0]) if single else values"):
        "a single image's values hold exactly one number: reshape(+1) and reshape(-1) agree",
    ("metrics", "return float(values.reshape(-1)[ -1]) if single else values"):
        "a single image's values hold exactly one number: it is the first and the last",
    ("metrics", "values = np.where(mse > 0, 10.0 * np.log10(MAX_VALUE**2 / "
                "np.maximum(mse, -1.0)), np.inf)"):
        "an MSE is never negative: where it is 0 the quotient is inf either way (the division "
        "warning is silenced) and np.where takes the inf branch",
}


def _function_lines(source: str, names) -> list:
  """[(first, last)] line ranges of the named top-level functions / classes (and methods)."""
  ranges = []
  for node in ast.parse(source).body:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names:
      first = min([node.lineno] + [d.lineno for d in node.decorator_list])
      ranges.append((first, node.end_lineno))
  missing = set(names) - {n.name for n in ast.parse(source).body if hasattr(n, "name")}
  if missing:
    raise SystemExit(f"mutation_score: no {', '.join(sorted(missing))} to mutate")
  return ranges


def _copy_repo(workdir: str) -> str:
  """A copy of the repository's tracked files in workdir/tree, with ../shared beside it."""
  tree = os.path.join(workdir, "tree")
  if not os.path.isdir(tree):
    files = subprocess.run(["git", "ls-files"], cwd=REPO, check=True, capture_output=True,
                           text=True).stdout.split()
    for name in files:
      os.makedirs(os.path.dirname(os.path.join(tree, name)) or tree, exist_ok=True)
      shutil.copy2(os.path.join(REPO, name), os.path.join(tree, name))
  shared = os.path.join(workdir, "shared")
  if not os.path.exists(shared):
    os.symlink(os.path.abspath(os.path.join(REPO, "..", "shared")), shared)
  return tree


def _sync(tree: str, module: Module) -> None:
  """The copy gets the work tree's current module and tests (a new test, a fixed function)."""
  for name in (module.path,) + tuple(t.split("::")[0] for t in module.tests) + (
      "tests/conftest.py",):
    shutil.copy2(os.path.join(REPO, name), os.path.join(tree, name))


def _config(module: Module, tree: str) -> str:
  tests = " ".join(module.tests)
  return (f'[cosmic-ray]\nmodule-path = "{module.path}"\ntimeout = {module.timeout}\n'
          f'excluded-modules = []\ntest-command = "{PYTEST} {tests}"\n\n'
          '[cosmic-ray.distributor]\nname = "local"\n')


def _source_copy(session: str) -> str:
  # The module as it was when its session began: the tree's copy holds a mutant while one runs.
  return session[:-len(".sqlite")] + ".source.py"


def _annotation_spans(source: str) -> list:
  """[((line, col), (end line, end col))] of every type annotation, when the module has
  `from __future__ import annotations`: then annotations are strings nobody evaluates, and a
  mutant inside one (`int | None` -> `int & None`) is the same program."""
  tree = ast.parse(source)
  future = any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
               and any(alias.name == "annotations" for alias in node.names)
               for node in tree.body)
  if not future:
    return []
  spans = []
  for node in ast.walk(tree):
    found = []
    if isinstance(node, (ast.arg, ast.AnnAssign)):
      found.append(node.annotation)
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
      found.append(node.returns)
    spans += [((a.lineno, a.col_offset), (a.end_lineno, a.end_col_offset))
              for a in found if a is not None]
  return spans


def _in_annotation(spans: list, mutation) -> bool:
  position = tuple(mutation.start_pos)
  return any(first <= position < last for first, last in spans)


def _mutated_line(session: str, mutation) -> str:
  with open(_source_copy(session)) as f:
    return f.read().splitlines()[mutation.start_pos[0] - 1].strip()


def _mutant_line(result) -> str:
  """The mutated line, from the diff cosmic-ray records."""
  added = [line[1:].strip() for line in (result.diff or "").splitlines()
           if line.startswith("+") and not line.startswith("+++")]
  return added[0] if added else ""


def _equivalence(module: Module, session: str, mutation, result):
  """Why a surviving mutant is the same program, or None."""
  mutant = _mutant_line(result)
  # reshape(-1, ...) -> reshape(-2, ...), wherever it is: NumPy infers the size from any
  # negative one.
  if _mutated_line(session, mutation).replace("reshape(-1", "reshape(- 2") == mutant:
    return "NumPy infers a dimension from any negative size, not only -1"
  return EQUIVALENT.get((module.name, mutant))


def _init(module: Module, tree: str, config: str, session: str) -> None:
  """A new session holding only the mutants measured: kept operators, named functions."""
  from cosmic_ray.work_db import WorkDB, use_db  # pylint: disable=g-import-not-at-top
  from cosmic_ray.work_item import WorkResult, WorkerOutcome  # pylint: disable=g-import-not-at-top
  subprocess.run(["cosmic-ray", "init", config, session], cwd=tree, check=True)
  shutil.copy2(os.path.join(tree, module.path), _source_copy(session))
  with open(os.path.join(tree, module.path)) as f:
    source = f.read()
  ranges = _function_lines(source, module.functions) if module.functions else None
  annotations = _annotation_spans(source)
  with use_db(session, WorkDB.Mode.open) as db:
    for item in list(db.pending_work_items):
      mutation = item.mutations[0]
      line = mutation.start_pos[0]
      reason = None
      if not KEPT_OPERATORS.match(mutation.operator_name):
        reason = "operator not in KEPT_OPERATORS"
      elif ranges is not None and not any(a <= line <= b for a, b in ranges):
        reason = "outside the functions measured"
      elif _in_annotation(annotations, mutation):
        reason = "inside a type annotation (never evaluated)"
      if reason:
        db.set_result(item.job_id, WorkResult(output=reason,
                                              worker_outcome=WorkerOutcome.SKIPPED))


def _forget_survivors(session: str) -> int:
  """Drops the surviving mutants' results, so that `cosmic-ray exec` tests them again."""
  import sqlite3  # pylint: disable=g-import-not-at-top
  with sqlite3.connect(session) as db:
    return db.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'").rowcount


def tally(module: Module, tree: str, session: str) -> dict:
  """Counts of the session's mutants, and the surviving ones (not known equivalent)."""
  from cosmic_ray.work_db import WorkDB, use_db  # pylint: disable=g-import-not-at-top
  from cosmic_ray.work_item import TestOutcome, WorkerOutcome  # pylint: disable=g-import-not-at-top
  counts = {"measured": 0, "tested": 0, "killed": 0, "equivalent": 0, "pending": 0}
  survivors = []
  with open(_source_copy(session)) as f:
    # Sessions begun before _init skipped annotations: their annotation mutants are left out
    # here the same way.
    annotations = _annotation_spans(f.read())
  with use_db(session, WorkDB.Mode.open) as db:
    results = dict(db.results)
    for item in db.work_items:
      result = results.get(item.job_id)
      if result is not None and result.worker_outcome == WorkerOutcome.SKIPPED:
        continue
      if _in_annotation(annotations, item.mutations[0]):
        continue
      counts["measured"] += 1
      mutation = item.mutations[0]
      if result is None:
        counts["pending"] += 1
        continue
      counts["tested"] += 1
      if result.test_outcome != TestOutcome.SURVIVED:  # killed, timed out or incompetent
        counts["killed"] += 1
      elif _equivalence(module, session, mutation, result):
        counts["equivalent"] += 1
      else:
        survivors.append(f"{module.path}:{mutation.start_pos[0]} {mutation.operator_name} "
                         f"(occurrence {mutation.occurrence}): {_mutated_line(session, mutation)}"
                         f"  ->  {_mutant_line(result)}")
  scored = counts["tested"] - counts["equivalent"]
  counts["score"] = round(counts["killed"] / scored, 4) if scored else None
  return {"counts": counts, "survivors": survivors}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", default="/tmp/tfcdi_mutation")
  parser.add_argument("--module", action="append", choices=[m.name for m in MODULES],
                      help="the modules to run (repeatable); default: all")
  parser.add_argument("--max_minutes", type=float, default=0.0,
                      help="stop starting modules after this long (0: no limit); a stopped "
                           "module continues where it was on the next run")
  parser.add_argument("--report_only", action="store_true")
  parser.add_argument("--fresh", action="store_true", help="start the modules' sessions over")
  parser.add_argument("--retest_survivors", action="store_true",
                      help="test the surviving mutants again (after tests were added)")
  parser.add_argument("--json", help="also write the report here (its other modules kept)")
  args = parser.parse_args(argv)
  try:
    import cosmic_ray  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    print("mutation_score: cosmic-ray is not installed (pip install -e '.[mutation]')",
          file=sys.stderr)
    return 2
  os.makedirs(args.workdir, exist_ok=True)
  tree = _copy_repo(args.workdir)
  chosen = [m for m in MODULES if not args.module or m.name in args.module]
  start = time.time()
  report = {}
  for module in chosen:
    session = os.path.abspath(os.path.join(args.workdir, f"{module.name}.sqlite"))
    config = os.path.abspath(os.path.join(args.workdir, f"{module.name}.toml"))
    stopped = args.max_minutes and time.time() - start > 60 * args.max_minutes
    if not args.report_only and not stopped:
      _sync(tree, module)
      if args.fresh and os.path.exists(session):
        os.remove(session)
      with open(config, "w") as f:
        f.write(_config(module, tree))
      if not os.path.exists(session):
        _init(module, tree, config, session)
      elif args.retest_survivors:
        print(f"mutation_score: {module.name}: {_forget_survivors(session)} survivors to retest")
      left = 60 * args.max_minutes - (time.time() - start) if args.max_minutes else None
      pristine = open(os.path.join(tree, module.path)).read()
      try:
        subprocess.run(["cosmic-ray", "exec", config, session], cwd=tree, check=False,
                       timeout=left, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
      except subprocess.TimeoutExpired:
        print(f"mutation_score: {module.name} stopped after --max_minutes; run again to go on")
      finally:  # a stopped cosmic-ray can leave its last mutant on disk
        with open(os.path.join(tree, module.path), "w") as f:
          f.write(pristine)
    if os.path.exists(session):
      try:
        report[module.name] = tally(module, tree, session)
      except Exception as e:  # pylint: disable=broad-except
        if "locked" not in str(e):
          raise
        print(f"{module.name:16s} (its session is being written; report it later)")
  total = {"tested": 0, "killed": 0, "equivalent": 0, "pending": 0}
  for name, entry in report.items():
    c = entry["counts"]
    for key in total:
      total[key] += c[key]
    score = "-" if c["score"] is None else f"{100 * c['score']:.1f}%"
    print(f"{name:16s} {score:>7s} killed {c['killed']}/{c['tested'] - c['equivalent']} "
          f"(equivalent {c['equivalent']}, pending {c['pending']})")
    for line in entry["survivors"]:
      print(f"    survived: {line}")
  scored = total["tested"] - total["equivalent"]
  if scored:
    print(f"{'all':16s} {100 * total['killed'] / scored:6.1f}% killed {total['killed']}/{scored} "
          f"(equivalent {total['equivalent']}, pending {total['pending']})")
  if args.json:
    write_report(args.json, report)
  return 0


def write_report(path: str, report: dict) -> None:
  """Writes report's modules into the JSON at path, keeping the modules it does not hold.

  A module's session can be run again alone (a fresh run after its tests moved, on a new
  machine without the other sessions), and the committed report then keeps the others.
  """
  merged = {}
  if os.path.exists(path):
    with open(path) as f:
      merged = json.load(f)
  merged.update(report)
  ordered = {m.name: merged[m.name] for m in MODULES if m.name in merged}
  with open(path, "w") as f:
    json.dump(ordered, f, indent=1)


if __name__ == "__main__":
  sys.exit(main())
