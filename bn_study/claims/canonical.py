"""A claim's declaration in a canonical form, and its hash: what registration is checked on.

The declaration is what decides a verdict: the sentence tested, the two sides (label, the cells' filter, a side's own
metric), the metric with its parameters, the direction, the margin, the experiment files that plan the cells it
reads (their YAML content, comments and the swept seeds left out: more seeds of the same cells is no new claim), and,
where a study takes a setting from another study's runs (fig1's learning rate from its pilot: `Study.selected`),
the rule that selects it: as the study states it (`Rule.text`; before rules were stated so, the selecting function's
name), the code that applies it (the syntax tree of each function of its module it calls, docstrings left out, and
the values of the constants they read), and any experiment file one of those constants names (the pilot's grid). Not
in it: the claim's id (its name), the source it cites, its history notes and its handicap note (which other claim
compares fairly). Every field is in, defaults too: a field
added to a metric class re-registers the claims that use it (a registration later than need be, never earlier). The
one exception is the seed cap at its default: the looks it implies are the engine's (verdicts.json's `engine`, with
the verdict diff for any outcome an engine change moves), so a claim that keeps the default hashes as before caps.
The engine itself (claims.verdicts and claims.sequential, the metrics' code) is not in a declaration for the same
reason: a change to it is recorded in every verdicts.json (`engine`) and each outcome it moves is listed, old -> new,
by the verdict diff `make report` writes. Registration says that what a claim states came before its runs; the diff
says what the code that applies it has since changed.

This module needs nothing of bn_study: `python canonical.py` run inside any checkout of the repository since claims
became data (fcc0290) prints that checkout's {study: {claim id: hash}}, which is how the ledger's past is built
from git history (claims.ledger).
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import hashlib
import importlib
import inspect
import json
import math
import sys
import textwrap
from pathlib import Path

import yaml

# Where a sweep's experiment file has lived: the package's configs, and the top-level folder before them.
EXPERIMENT_FOLDERS = ("bn_study/conf/experiment", "experiments")
CLAIM_FIELDS_LEFT_OUT = ("id", "source", "history", "handicap", "fair_twin")
# Claim fields left out while they hold these values (see the module doc).
CLAIM_DEFAULTS_LEFT_OUT = {"seed_cap": 20}


def plain(value):
    """`value` as JSON-able data that depends on what it means, not on how Python holds it."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "type": type(value).__name__,
            **{f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)},
        }
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [plain(v) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, (set, frozenset)) else items
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # a numpy scalar
        return plain(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return repr(value)


def experiment(root: Path, sweep: str) -> dict | None:
    """A sweep's experiment file as data, without the seeds it sweeps; None where the checkout has no such file."""
    for folder in EXPERIMENT_FOLDERS:
        path = Path(root) / folder / f"{sweep}.yaml"
        if path.is_file():
            content = yaml.safe_load(path.read_text()) or {}
            params = ((content.get("hydra") or {}).get("sweeper") or {}).get("params") or {}
            params.pop("seed", None)
            return plain(content)
    return None


def grid(root: Path, sweep) -> dict:
    """A sweep a study file declares inline (registry.Grid) as data: the experiment file it starts from, as `experiment`
    reads it, and its own keys, without the seeds it sweeps."""
    return {
        "experiment": experiment(root, sweep.experiment) if sweep.experiment else None,
        **{part: plain({k: v for k, v in getattr(sweep, part) if k != "seed"}) for part in ("set", "grid", "quick")},
    }


def selection(study, root: Path) -> dict | None:
    """The rule by which `study` takes a setting from another study's runs; None where it takes none.

    Read off any checkout's `Study.selected`: a bound `Rule.rate` (functools.partial) states its rule in `text` and
    applies it with `rate` and `pick`; an older plain function is the rule by itself. Never a repr, which would hold
    a memory address."""
    selected = getattr(study, "selected", None)
    if selected is None:
        return None
    function = getattr(selected, "func", selected)
    rule = getattr(function, "__self__", None)
    text = getattr(rule, "text", None)
    code, constants = _code([function, getattr(rule, "pick", None)])
    sweeps = {v: found for v in constants.values() if isinstance(v, str) and (found := experiment(root, v))}
    return {
        "text": text if text is not None else f"{function.__module__}.{function.__qualname__}",
        "code": code,
        "constants": plain(constants),
        "sweeps": sweeps,
    }


def _tree(function) -> ast.Module:
    """A function's syntax tree; a lambda's read out of its module's, by its line (its own lines may not parse alone:
    they can hold part of the call it is an argument of)."""
    if function.__name__ != "<lambda>":
        return ast.parse(textwrap.dedent(inspect.getsource(function)))
    module = ast.parse(inspect.getsource(inspect.getmodule(function)))
    line = function.__code__.co_firstlineno
    return ast.Module(
        body=[ast.Expr(n) for n in ast.walk(module) if isinstance(n, ast.Lambda) and n.lineno == line], type_ignores=[]
    )


def _code(functions: list) -> tuple[list[str], dict]:
    """The syntax trees (docstrings left out) of `functions` and of every function of their modules they call, in
    turn; and the module-level constants (numbers, strings) they read, by name."""
    trees, constants = {}, {}
    todo = [getattr(f, "__func__", f) for f in functions if f is not None]
    while todo:
        function = todo.pop()
        key = f"{function.__module__}.{function.__qualname__}"
        if key in trees:
            continue
        tree = _tree(function)
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (
                isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
        trees[key] = ast.dump(tree)
        module = vars(inspect.getmodule(function))
        for name in sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}):
            value = module.get(name)
            if inspect.isfunction(value) and value.__module__ == function.__module__:
                todo.append(value)
            elif isinstance(value, (bool, int, float, str)):
                constants[name] = value
    return [trees[k] for k in sorted(trees)], dict(sorted(constants.items()))


def declaration(claim, sweeps: dict, selected: dict | None = None) -> dict:
    """The claim's canonical form; `sweeps`: {sweep: `experiment(...)`} of its study; `selected`: its `selection`."""
    fields = {
        f.name: getattr(claim, f.name)
        for f in dataclasses.fields(claim)
        if f.name not in CLAIM_FIELDS_LEFT_OUT
        and CLAIM_DEFAULTS_LEFT_OUT.get(f.name, object()) != getattr(claim, f.name)
    }
    # Only where there is a rule, so that every other claim's hash is the one it had before rules were in it.
    rule = {} if selected is None else {"selected": selected}
    return {"claim": plain(fields), "sweeps": plain(sweeps), **rule}


def digest(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def claim_hash(claim, sweeps: dict, selected: dict | None = None) -> str:
    return digest(declaration(claim, sweeps, selected))


def hashes(studies: dict, root: Path) -> dict[str, dict[str, str]]:
    """{study: {claim id: hash}} for a registry's studies, reading their experiment files under `root`."""
    out = {}
    for name, study in studies.items():
        sweeps = {s: experiment(root, s) for s in study.sweeps}
        sweeps.update({g.name: grid(root, g) for g in getattr(study, "grids", ())})
        selected = selection(study, root)
        out[name] = {c.id: claim_hash(c, sweeps, selected) for c in study.claims}
    return out


if __name__ == "__main__":  # inside a checkout: python path/to/canonical.py
    sys.path[0] = str(Path.cwd())  # the checkout, not this file's folder
    # The checkout's own registry, by name: an old checkout's, never this package's (which it may not match).
    registry = importlib.import_module("bn_study.studies.registry")
    print(json.dumps(hashes(registry.studies(), Path.cwd())))
