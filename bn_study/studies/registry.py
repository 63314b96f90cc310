"""The study registry: each study declared once, with its sweeps, its claims and its figure builder.

A study module declares `STUDY = Study(...)` (or `STUDIES = [...]`); `studies()` finds every one of them,
so a new study is its experiment file(s) plus one module. The registry drives `make <study>`, `QUICK=1`,
`DATA=...`, collect, the verdicts, the figures, the report and the tests.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from bn_study import studies as package
from bn_study.claims import Claim
from bn_study.config import CONF_DIR
from bn_study.data.datasets import DATASETS

if TYPE_CHECKING:  # declaration builds on this module: imported for the annotation only
    from bn_study.studies.declaration import Declared

# The datasets a study's MNIST sweeps can be rerun on (DATA=... make <study>): those registered with studies=True.
STUDY_DATASETS = tuple(name for name, entry in DATASETS.items() if entry.studies)


@dataclass(frozen=True)
class Version:
    """Which version of a study: the small one (quick: tests, CI) or the full one, the dataset its MNIST sweeps train on
    (None: the one its experiment files name), and how many of its training images they train on (data.train_size; None:
    all). Each version has a results folder of its own."""

    quick: bool = False
    data: str | None = None
    train_size: int | None = None

    def __post_init__(self):
        if self.data is not None and self.data not in STUDY_DATASETS:
            raise UnknownStudy(
                f"--data {self.data}: not a dataset a study can be rerun on; choose one of: {', '.join(STUDY_DATASETS)}"
            )
        if self.train_size is not None and (isinstance(self.train_size, bool) or self.train_size < 1):
            raise UnknownStudy(f"--train-size {self.train_size}: must be a whole number of training images >= 1")

    @property
    def suffix(self) -> str:
        """What the version adds to a folder's name: <study>[_<data>][_n<train size>][_quick]."""
        return (
            (f"_{self.data}" if self.data else "")
            + (f"_n{self.train_size}" if self.train_size else "")
            + ("_quick" if self.quick else "")
        )

    def command(self, target: str, launcher: tuple[str, ...] | list[str] = ()) -> str:
        """The make command for `target` in this version, on `launcher`'s settings where given:
        'QUICK=1 DATA=fashion_mnist make placement', 'LAUNCHER="hydra/launcher=submitit_slurm" make fig1'."""
        return " ".join(
            [
                *([f"LAUNCHER={shlex.quote(shlex.join(launcher))}"] if launcher else []),
                *(["QUICK=1"] if self.quick else []),
                *([f"DATA={self.data}"] if self.data else []),
                *([f"TRAIN_SIZE={self.train_size}"] if self.train_size else []),
                "make",
                target,
            ]
        )

    @classmethod
    def of_folder(cls, name: str, study: str) -> "Version":
        """The version whose results folder for `study` is called `name` (the full base version for a folder
        named otherwise)."""
        size = re.search(r"_n(\d+)(?:_quick)?$", name)
        sizes = (None, int(size.group(1))) if size else (None,)
        return next(
            (
                cls(q, d, n)
                for d in (None, *STUDY_DATASETS)
                for q in (False, True)
                for n in sizes
                if name == study + cls(q, d, n).suffix
            ),
            cls(),
        )


@dataclass(frozen=True)
class Grid:
    """A sweep a study file declares inline (bn_study.studies.declaration): the experiment file it starts from (None: the
    defaults), the keys it sets, the keys it sweeps (each a tuple of values) and what its quick version changes in
    either. Its runs go to results/<name>/, as an experiment file's do."""

    name: str
    experiment: str | None = None
    set: tuple = ()
    grid: tuple = ()
    quick: tuple = ()

    def overrides(self, quick: bool) -> list[str]:
        """The command line's overrides for it (its swept keys as `key=a,b`), the quick version's with `quick`."""
        values = {**dict(self.set), **dict(self.grid), **(dict(self.quick) if quick else {})}
        return [f"study={self.name}", *(f"{key}={_override(value)}" for key, value in values.items())]


def _override(value) -> str:
    """A value as Hydra's override grammar reads it back: a tuple as a sweep over its values."""
    if isinstance(value, tuple):
        return ",".join(_override(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    text = str(value)
    return text if re.fullmatch(r"[\w.+\-/${}:]*", text) and text else "'" + text.replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    # One line: what the study tests (make help, README, REPORT).
    about: str
    # Experiment files (experiments/<sweep>.yaml), run in this order; the first is the study's main sweep.
    sweeps: tuple[str, ...]
    # Judged by bn_study.claims.verdicts; registered (or not) before the runs they read, by bn_study.claims.ledger.
    claims: tuple[Claim, ...] = ()
    # Draws the figures and writes summary.md from results/<study>/'s tables and the verdicts.json in the output
    # folder (a staging folder: bn_study.render.outputs), into the output folder: (study folder, output folder) -> paths written.
    render: Callable[[Path, Path], list[Path]] | None = field(default=None, compare=False)
    # Overrides the study takes from another study's collected tables of the same version, selected there
    # on validation (fig1: its pilot's learning rate): (results root, version) -> overrides for every job.
    selected: Callable[[Path, "Version"], list[str]] | None = field(default=None, compare=False)
    # Other studies' files its figures or summary quote (fig1: its pilot's tables, the other fig1 study's verdicts), tied
    # to its rendered outputs as its own tables are (bn_study.render.outputs): (results root, version) -> paths.
    reads: Callable[[Path, "Version"], list[Path]] | None = field(default=None, compare=False)
    # Its place in the report.
    order: int = 100
    # What came before these claims: the rules earlier results were judged by, where they differ.
    history: str = ""
    # Each time the committed runs were replaced by new ones: when, why, and what moved.
    reruns: str = ""
    # The sweeps of `sweeps` it declares inline (a study file's), the others being experiment files.
    grids: tuple[Grid, ...] = ()
    # A study declared in a YAML file: the file, its arms and what its figures draw (declaration.Declared), which
    # bn_study.studies.generic draws its figures and summary from.
    declared: "Declared | None" = field(default=None, compare=False)

    def sweep(self, name: str) -> "Grid | str":
        """The sweep called `name`: its Grid where the study declares it inline, else the experiment file's name."""
        return next((g for g in self.grids if g.name == name), name)

    def folder(self, results: Path, version: Version = Version()) -> Path:
        return results / (self.name + version.suffix)


# What the reruns of 2026-12-05 changed for every study rerun then (each study's `reruns` adds its own numbers).
RERUN_2026_12_05 = (
    "2026-12-05, both datasets, on an AMD EPYC x86-64-v4 host (the runs replaced were made on an x86-64-v3 one, whose kernels "
    "round differently: most numbers moved), with a checkpoint at most once a minute instead of at every evaluation"
)


# Three studies' runs had recorded uncommitted changes in the package (git_dirty): made again as below.
CLEAN_RERUN_2026_12_05 = (
    "Those runs had recorded uncommitted changes in the package, so they were made again the same day at a clean commit, "
    "on an Intel Xeon x86-64-v4 with AMX"
)


class UnknownStudy(ValueError):
    pass


# The package's studies declared in YAML files (bn_study.studies.declaration), one per file.
DECLARED = Path(package.__file__).parent / "declared"
# Studies read from a file given by its path this process (`get`), by name: not registered, but found by name as the
# stages after the run look them up.
_FROM_FILES: dict[str, Study] = {}


@functools.lru_cache(maxsize=1)
def studies() -> dict[str, Study]:
    """Every registered study by name, in report order: the package's modules' and its study files'."""
    # declaration builds its studies from this module's Study: imported once this module is
    from bn_study.studies import declaration

    found: list[Study] = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        found += [getattr(module, "STUDY")] if hasattr(module, "STUDY") else list(getattr(module, "STUDIES", []))
    found += [declaration.load(path) for path in sorted(DECLARED.glob("*.yaml"))]
    by_name = {}
    for study in sorted(found, key=lambda s: (s.order, s.name)):
        if study.name in by_name:
            raise ValueError(f"study {study.name} is registered twice")
        by_name[study.name] = study
    return by_name


def get(name: str) -> Study:
    """The study named `name`, or whose version's folder is called `name` (`fig1_quick`, `fig1_fashion_mnist`), or the
    one a YAML file declares (`name` its path)."""
    # declaration builds its studies from this module's Study: imported once this module is
    from bn_study.studies import declaration

    if declaration.is_file(name):
        study = declaration.load(Path(name))
        if study not in studies().values():  # a package's study file is its own; another's names must be free
            for key, folder in [("name", study.name), *((f"sweeps[{i}]", s) for i, s in enumerate(study.sweeps))]:
                owner = _owner(folder)
                if owner is not None and (key == "name" or study.sweep(folder) != folder):
                    raise declaration.StudyFileError(
                        f"{name}: {key}: {folder} is the results folder of {owner}; choose another name"
                    )
        _FROM_FILES[study.name] = study
        return study
    known = {**_FROM_FILES, **studies()}
    study = next((s for s in known.values() if name == s.folder(Path(), Version.of_folder(name, s.name)).name), None)
    if study is None:
        raise UnknownStudy(
            f"study={name}: unknown study; choose one of: {', '.join(studies())}, or name a study file (path/to/study.yaml)"
        )
    return study


def _owner(folder: str) -> str | None:
    """What writes results/<folder>/ already, in some version: a registered study, or an experiment file's sweeps."""
    for other in studies().values():
        if folder == other.folder(Path(), Version.of_folder(folder, other.name)).name:
            return f"the registered study {other.name}"
    for path in (CONF_DIR / "experiment").glob("*.yaml"):
        if folder == path.stem + Version.of_folder(folder, path.stem).suffix:
            return f"the experiment file {path.stem}"
    return None
