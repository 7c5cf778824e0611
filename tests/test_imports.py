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

