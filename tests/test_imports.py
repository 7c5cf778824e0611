"""The package's structure: no import cycle, a reporting layer without TensorFlow or training
code, and no module too long to read."""

import ast
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO_ROOT, "tfcdi")
MAX_LINES = 800


def _modules() -> dict:
  """{dotted module name: path} of every module of tfcdi."""
  found = {}
  for root, _, files in os.walk(PACKAGE):
    for name in files:
      if name.endswith(".py"):
        path = os.path.join(root, name)
        dotted = os.path.relpath(path, REPO_ROOT)[:-3].replace(os.sep, ".")
        found[dotted.removesuffix(".__init__")] = path
  return found


def _imports(path: str, module: str, modules: dict) -> set:
  """The tfcdi modules `path` imports anywhere in it (top level or inside a function)."""
  package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
  found = set()
  for node in ast.walk(ast.parse(open(path).read())):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                        + ([base] if base else []))
      # `from a import b` imports a, and a.b too when b is a module.
      names = [base] + [f"{base}.{alias.name}" for alias in node.names]
    else:
      continue
    found |= {name for name in names if name in modules}
  # A module's own packages are imported before it, whatever it says: not a dependency of it.
  return {name for name in found if name != module and not module.startswith(name + ".")}


def _graph() -> dict:
  modules = _modules()
  return {name: _imports(path, name, modules) for name, path in modules.items()}


def _cycles(graph: dict) -> list:
  """Strongly connected components with more than one module (Tarjan)."""
  index, low, stack, on_stack, found = {}, {}, [], set(), []

  def visit(node):
    index[node] = low[node] = len(index)
    stack.append(node)
    on_stack.add(node)
    for nxt in graph[node]:
      if nxt not in index:
        visit(nxt)
        low[node] = min(low[node], low[nxt])
      elif nxt in on_stack:
        low[node] = min(low[node], index[nxt])
    if low[node] == index[node]:
      component = []
      while True:
        member = stack.pop()
        on_stack.discard(member)
        component.append(member)
        if member == node:
          break
      if len(component) > 1:
        found.append(sorted(component))

  for node in sorted(graph):
    if node not in index:
      visit(node)
  return found


def test_the_cycle_finder_finds_a_cycle_hidden_behind_a_function_level_import():
  assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
  assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_tfcdi_modules():
  graph = _graph()
  assert graph["tfcdi.reproduce"]  # the parser sees imports at all
  assert _cycles(graph) == []


def test_the_reporting_layer_imports_only_itself_and_the_operating_points():
  graph = _graph()
  # The operating points are plain dataclasses; their package's __init__ is empty (the
  # subprocess test below would catch it loading TensorFlow).
  allowed = {"tfcdi", "tfcdi.codec", "tfcdi.codec.operating_points"}
  for module in (m for m in graph if m.startswith("tfcdi.reporting")):
    outside = {m for m in graph[module] if not m.startswith("tfcdi.reporting")} - allowed
    assert not outside, f"{module} imports {sorted(outside)}"


def test_importing_the_reporting_layer_loads_no_tensorflow():
  code = ("import sys, pkgutil, importlib, tfcdi.reporting as r\n"
          "for m in pkgutil.iter_modules(r.__path__):\n"
          "  importlib.import_module(f'{r.__name__}.{m.name}')\n"
          "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
          "print(len(heavy)); print(heavy[:5])\n")
  done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                        text=True, timeout=300, check=True)
  count, sample = done.stdout.splitlines()[:2]
  assert count == "0", f"tfcdi.reporting loads {sample}"


def _length_cases():
  for path in sorted(_modules().values()):
    yield pytest.param(path, id=os.path.relpath(path, REPO_ROOT))


@pytest.mark.parametrize("path", _length_cases())
def test_no_module_is_longer_than_800_lines(path):
  with open(path) as f:
    assert sum(1 for _ in f) <= MAX_LINES


# --- nothing outside tfcdi/codec/ asks which family a codec is ---------------------------------

CODEC_DIR = os.path.join(PACKAGE, "codec")
# Where a family decision would be a leak: everything of the project but the codec package.
OUTSIDE_CODEC = [os.path.join(REPO_ROOT, d) for d in ("tfcdi", "experiments", "tools")]


def _codec_trees() -> dict:
  return {name: ast.parse(open(os.path.join(CODEC_DIR, name)).read())
          for name in sorted(os.listdir(CODEC_DIR)) if name.endswith(".py")}


def _family_markers() -> tuple[set, set]:
  """(the families' names, the names of the family-specific types).

  Names: what a Family subclass in tfcdi/codec/ sets `name` to. Types: every class the codec
  package defines but the interface's and the errors, and what other modules call them
  (`Codec = autoencoder.AutoencoderCodec` makes `pretrained.Codec` one).
  """
  names, types = set(), set()
  trees = _codec_trees()
  for module, tree in trees.items():
    for node in ast.walk(tree):
      if not isinstance(node, ast.ClassDef):
        continue
      if any(getattr(base, "attr", getattr(base, "id", None)) == "Family" for base in node.bases):
        for stmt in node.body:
          if (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant)
              and any(getattr(t, "id", None) == "name" for t in stmt.targets)):
            names.add(stmt.value.value)
      if module != "interface.py" and not node.name.endswith("Error"):
        types.add(node.name)
  for path in _python_files([PACKAGE]):
    for node in ast.walk(ast.parse(open(path).read())):
      if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute)
          and node.value.attr in types):
        module = os.path.basename(path)[:-3]
        types |= {f"{module}.{t.id}" for t in node.targets if isinstance(t, ast.Name)}
  return names, types


def _python_files(roots) -> list:
  return sorted(os.path.join(root, name) for top in roots for root, _, files in os.walk(top)
                for name in files if name.endswith(".py"))


def _dotted(node) -> str | None:
  if isinstance(node, ast.Name):
    return node.id
  if isinstance(node, ast.Attribute):
    inner = _dotted(node.value)
    return f"{inner}.{node.attr}" if inner else None
  return None


def _family_questions(source: str, names: set, types: set) -> list:
  """(line, what) of each comparison with a family's name or type, and each isinstance /
  issubclass against a family's type, in `source`."""

  def is_type(node) -> bool:
    dotted = _dotted(node) or ""
    return dotted in types or dotted.rpartition(".")[2] in types

  def mentions(node) -> bool:
    elements = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return any((isinstance(e, ast.Constant) and e.value in names) or is_type(e)
               for e in elements)

  found = []
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Compare) and any(mentions(n) for n in [node.left, *node.comparators]):
      found.append((node.lineno, ast.unparse(node)))
    elif (isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("isinstance",
                                                                             "issubclass")
          and len(node.args) == 2 and mentions(node.args[1])):
      found.append((node.lineno, ast.unparse(node)))
  return found


def test_the_family_question_finder_finds_names_and_types():
  names, types = {"hyperprior"}, {"HyperpriorCodec", "pretrained.Codec"}
  source = ("if codec.family == 'hyperprior': pass\n"
            "if r.get('codec_family') in ('autoencoder', 'hyperprior'): pass\n"
            "if isinstance(c, pretrained.Codec): pass\n"
            "if type(c) is hyperprior_codec.HyperpriorCodec: pass\n"
            "if isinstance(c, (int, HyperpriorCodec)): pass\n"
            "if isinstance(c, interface.Codec) and c.name == 'q4': pass\n"
            "TRAINERS = {'hyperprior': print}\n")
  assert [line for line, _ in _family_questions(source, names, types)] == [1, 2, 3, 4, 5]


def test_the_markers_know_both_built_in_families():
  names, types = _family_markers()
  assert {"autoencoder", "hyperprior"} <= names
  assert {"AutoencoderCodec", "HyperpriorTables", "pretrained.Codec",
          "pretrained.HyperpriorCodec"} <= types
  assert "Codec" not in types and "Reader" not in types  # the interface itself may be asked


def test_nothing_outside_the_codec_package_asks_which_family_a_codec_is():
  names, types = _family_markers()
  leaks = []
  for path in _python_files(OUTSIDE_CODEC):
    if path.startswith(CODEC_DIR + os.sep):
      continue
    leaks += [f"{os.path.relpath(path, REPO_ROOT)}:{line}: {what}"
              for line, what in _family_questions(open(path).read(), names, types)]
  assert not leaks, "ask the codec interface instead:\n" + "\n".join(leaks)


def test_the_paper_codec_widths_are_stated_once():
  stated = []
  for path in _python_files(OUTSIDE_CODEC):
    for node in ast.walk(ast.parse(open(path).read())):
      if (isinstance(node, (ast.Tuple, ast.List)) and len(node.elts) == 2
          and [getattr(e, "value", None) for e in node.elts] == [64, 128]):
        stated.append(os.path.relpath(path, REPO_ROOT))
  assert stated == [os.path.join("tfcdi", "codec", "operating_points.py")]
