"""The package's stages import downward only: (tensorflow_startup, files, interrupts) -> config -> (data, models, probes) -> run
-> sweep -> tables -> claims -> render -> studies -> cli -> api, read from every import in bn_study/, module-level and inside
functions alike. An import inside a function says why on its line or the line above (TensorFlow deferred, or another
heavy or optional import)."""

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "bn_study"
STAGES = [
    "tensorflow_startup",
    "files",
    "interrupts",
    "config",
    "data",
    "models",
    "probes",
    "run",
    "sweep",
    "tables",
    "claims",
    "render",
    "studies",
    "cli",
    "api",
]
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.stem not in ("__init__", "__main__"))


def _stage(dotted: str) -> str | None:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "bn_study" else None


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [f"bn_study.{a.name}" for a in node.names] if node.module == "bn_study" else [node.module]
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    return []


def _module(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")


def test_every_module_is_in_a_stage_and_at_most_a_few_stand_at_the_top():
    assert {_stage(_module(p)) for p in MODULES} <= set(STAGES)
    top = [p.name for p in PACKAGE.glob("*.py")]
    assert len(top) <= 8, top


@pytest.mark.parametrize("path", MODULES, ids=[_module(p) for p in MODULES])
def test_a_module_imports_only_from_its_own_stage_or_an_earlier_one(path):
    me = STAGES.index(_stage(_module(path)))
    tree = ast.parse(path.read_text())
    upward = [
        f"line {node.lineno}: {target}"
        for node in ast.walk(tree)
        for target in _imported(node)
        if _stage(target) in STAGES and STAGES.index(_stage(target)) > me
    ]
    assert not upward, f"{_module(path)} ({STAGES[me]}) imports from a later stage: {upward}"
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level], (
        "relative import: name the stage (bn_study.<stage>...)"
    )


@pytest.mark.parametrize("path", MODULES, ids=[_module(p) for p in MODULES])
def test_an_import_inside_a_function_says_why(path):
    lines = path.read_text().splitlines()
    tree = ast.parse("\n".join(lines))
    inside = [
        node
        for fn in ast.walk(tree)
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
        for node in ast.walk(fn)
        if isinstance(node, (ast.Import, ast.ImportFrom))
    ]
    silent = [
        f"line {n.lineno}"
        for n in inside
        if "#" not in lines[n.lineno - 1]
        and not lines[n.lineno - 2].strip().startswith("#")
        and not _in_a_commented_block(lines, n.lineno)
    ]
    assert not silent, f"{_module(path)}: imports inside functions without a word on why: {silent}"


def _in_a_commented_block(lines: list[str], lineno: int) -> bool:
    """An import in a run of imports whose first line, or the line above it, says why."""
    i = lineno - 1
    while i > 0 and (lines[i - 1].strip().startswith(("import ", "from ")) or not lines[i - 1].strip()):
        i -= 1
    return "#" in lines[i] or (i > 0 and lines[i - 1].strip().startswith("#"))


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("__init__.py")), ids=lambda p: _module(p))
def test_each_subpackage_says_what_it_owns(path):
    assert ast.get_docstring(ast.parse(path.read_text())), f"{_module(path)}: no docstring saying what it owns"
