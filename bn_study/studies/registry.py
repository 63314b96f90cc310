"""The study registry: each study declared once, with its sweeps, its claims and its figure builder.

A study module declares `STUDY = Study(...)` (or `STUDIES = [...]`); `studies()` finds every one of them,
so a new study is its experiment file(s) plus one module. The registry drives `make <study>`, `QUICK=1`,
collect, the verdicts, the figures, the report and the tests.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..claims import Claim


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    # One line: what the study tests (make help, README, REPORT).
    about: str
    # Experiment files (experiments/<sweep>.yaml), run in this order; the first is the study's main sweep.
    sweeps: tuple[str, ...]
    # Declared before the study's runs; judged by bn_study.verdicts.
    claims: tuple[Claim, ...] = ()
    # Draws the figures and writes summary.md from results/<study>/ (tables and verdicts.json).
    render: Callable[[Path], list[Path]] | None = field(default=None, compare=False)
    # Its place in the report.
    order: int = 100
    # What came before these claims: the rules earlier results were judged by, where they differ.
    history: str = ""

    def folder(self, results: Path, quick: bool = False) -> Path:
        return results / (self.name + ("_quick" if quick else ""))


class UnknownStudy(ValueError):
    pass


@functools.lru_cache(maxsize=1)
def studies() -> dict[str, Study]:
    """Every registered study by name, in report order."""
    from .. import studies as package

    found: list[Study] = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        found += [getattr(module, "STUDY")] if hasattr(module, "STUDY") else list(getattr(module, "STUDIES", []))
    by_name = {}
    for study in sorted(found, key=lambda s: (s.order, s.name)):
        if study.name in by_name:
            raise ValueError(f"study {study.name} is registered twice")
        by_name[study.name] = study
    return by_name


def get(name: str) -> Study:
    """The study named `name` (or `<name>_quick`, its quick version's folder name)."""
    known = studies()
    study = known.get(name.removesuffix("_quick"))
    if study is None:
        raise UnknownStudy(f"study={name}: unknown study; choose one of: {', '.join(known)}")
    return study
