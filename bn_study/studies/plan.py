"""A study's planned runs, before any of them starts: every job of every sweep composed as the CLI would.

Used to check a study's claims against what its runs will be and log (an arm or a metric the runs do
not produce is refused before the first run), and by the tests to compare a study's quick and full sizes.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path
from typing import Iterable

import pandas as pd
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # noqa: PLC2701 (the sweeper's own job expansion)
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from bn_study import claims
from bn_study import config as config_lib
from bn_study.claims import sequential
from bn_study.config import CONF_DIR, RunConfig, flatten_config
from bn_study.probes import registry as probes
from bn_study.run import preflight, records
from bn_study.studies.registry import STUDY_DATASETS, Grid, Version


def conf_dir() -> str:
    return str(CONF_DIR)


def base(sweep: str | Grid, version: Version = Version()) -> list[str]:
    """The overrides that make `sweep` (an experiment file's name, or a study file's Grid) the given version: quick or
    full, and its dataset and training size, which replace the sweep's own only where that is an MNIST-like one (a sweep
    on circles stays on circles). A Grid's swept keys are among them, as `key=a,b`."""
    if isinstance(sweep, Grid):
        start = [f"experiment={sweep.experiment}"] if sweep.experiment else []
        overrides = [*start, f"quick={str(version.quick).lower()}", *sweep.overrides(version.quick)]
    else:
        overrides = [f"experiment={sweep}", f"quick={str(version.quick).lower()}"]
    if (version.data or version.train_size) and _dataset(*overrides) in STUDY_DATASETS:
        overrides += [f"data={version.data}"] if version.data else []
        overrides += [f"data.train_size={version.train_size}"] if version.train_size else []
    return overrides


@functools.lru_cache(maxsize=None)
def _dataset(*overrides: str) -> str:
    """The dataset these overrides compose to (composing takes a fifth of a second; the report asks hundreds of times)."""
    return _composed(tuple(o for o in overrides if not _swept(o))).data.name


def _swept(override: str) -> bool:
    return OverridesParser.create().parse_override(override).is_sweep_override()


def _composed(overrides: tuple[str, ...]) -> DictConfig:
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


def jobs(sweep: str | Grid, version: Version = Version(), extra: tuple[str, ...] = ()) -> list[list[str]]:
    """The override list of every job of the sweep, as the sweeper expands it: its file's grid, where the command line
    (a Grid's swept keys) sweeps or sets a key of it, as the command line gives it; `extra`: overrides given with the
    sweep's own (a selection from another study, `Study.selected`)."""
    given = OverridesParser.create().parse_overrides([*base(sweep, version), *extra])
    fixed = [o.input_line for o in given if not o.is_sweep_override()]
    cfg = _composed(tuple(fixed))
    params = OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=True) if cfg.hydra.sweeper.params else {}
    keys = {o.get_key_element() for o in given}
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items() if k not in keys])
    swept = [o for o in given if o.is_sweep_override()]
    return [[*fixed, *job] for chunk in BasicSweeper.split_arguments([*parsed, *swept], None) for job in chunk]


def configs(
    sweep: str | Grid, version: Version = Version(), extra: tuple[str, ...] = ()
) -> list[tuple[list[str], RunConfig]]:
    """Every job's overrides and validated config. Hydra composes once per distinct choice of config groups (the slow
    part); each job's plain `key=value` overrides are then set on a copy, as the sweeper's would be. The
    seed changes nothing else in a config, so jobs that differ only in it are validated once."""
    groups = {p.name for p in Path(conf_dir()).iterdir() if p.is_dir()}
    parser = OverridesParser.create()
    composed: dict[tuple, DictConfig] = {}
    validated: dict[tuple, RunConfig] = {}
    out = []
    planned_jobs = jobs(sweep, version, extra)
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        for job in planned_jobs:
            parsed = parser.parse_overrides(job)
            seed = next((int(o.value()) for o in parsed if o.key_or_group == "seed"), None)
            rest = tuple(o for o in parsed if o.key_or_group != "seed")
            key = tuple(o.input_line for o in rest)
            if key not in validated:
                chosen = tuple(o.input_line for o in rest if o.key_or_group.lstrip("+") in groups)
                if chosen not in composed:
                    composed[chosen] = compose(config_name="config", overrides=list(chosen))
                cfg = copy.deepcopy(composed[chosen])
                for o in rest:
                    if o.key_or_group.lstrip("+") not in groups:
                        OmegaConf.update(cfg, o.key_or_group, o.value(), merge=False)
                validated[key] = preflight.validated(cfg)
            run = validated[key]
            out.append((job, run if seed is None else dataclasses.replace(run, seed=seed)))
    return out


def splits(cfg: RunConfig) -> frozenset:
    """The (split, metric) pairs a run of `cfg` logs; (split, '*') where the metric names depend on the model."""
    out = {("train", "accuracy"), ("train", "loss"), ("test", "accuracy"), ("test", "loss")}
    if cfg.data.val_fraction > 0:
        out |= {("val", "accuracy"), ("val", "loss")}
    return frozenset(out | {(split, "*") for split in probes.splits(cfg)})


def subset_splits(cfg: RunConfig) -> frozenset:
    """The splits a run of `cfg` measures on trainer.eval_subset's subset before its last evaluation (none at 0)."""
    return frozenset({s for s in records.EVALUATED if cfg.trainer.subset_of(s)} | probes.subset_splits(cfg))


LOGGED = claims.LOGGED


def planned(sweeps: Iterable[str | Grid], version: Version = Version(), extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per planned run of the sweeps (experiment files' names, or a study file's Grids: `Study.sweep`):
    runs.csv's config columns, plus `splits` (what it will log), `subset_splits` (which of them it measures on a subset
    before its last evaluation) and `job` (the overrides that launch it)."""
    rows = []
    for sweep in sweeps:
        for job, cfg in configs(sweep, version, tuple(extra)):
            row = flatten_config(config_lib.to_dict(cfg))
            rows.append({**row, "splits": splits(cfg), "subset_splits": subset_splits(cfg), "job": tuple(job)})
    return pd.DataFrame(rows)


def identity_columns(planned: pd.DataFrame) -> list[str]:
    """The planned configuration's columns that make a run the run it is (not where it was written or how watched)."""
    return [c for c in planned.columns if c not in LOGGED and c.split(".")[0] not in config_lib.NOT_IDENTITY]


def _keys(planned: pd.DataFrame, seed: bool = True):
    """The identity columns (without the seed: `seed` False), and a row's key over them: a key added to the schema after
    a run was made has its default."""
    columns = [c for c in identity_columns(planned) if seed or c != "seed"]
    defaults = flatten_config(config_lib.to_dict(RunConfig()))
    return columns, lambda row: tuple(config_lib.comparable(config_lib.recorded(row, c, defaults)) for c in columns)


def unplanned(runs: pd.DataFrame, planned: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The runs (runs.csv rows, or collect's) whose configuration is none of the planned ones, and for the first of them
    how it differs from the nearest planned run ('trainer.steps=2000 (planned: 50000)'). Any seed of a planned
    configuration below the largest seed cap is planned: the seeds its claims' later looks add (`more_seeds`); the judge
    reads seeds in order and stops at a claim's first decisive look, so a seed run by hand cannot change where it stops."""
    columns, key = _keys(planned, seed=False)
    wanted = {key(row) for row in planned.to_dict("records")}
    out = [
        i
        for i, row in zip(runs.index, runs.to_dict("records"))
        if key(row) not in wanted or not 0 <= float(row.get("seed", 0)) < sequential.CAP_RANGE[1]
    ]
    if not out:
        return runs.iloc[:0], ""
    first = key(runs.loc[out[0]].to_dict())
    nearest = min(wanted, key=lambda k: sum(a != b for a, b in zip(k, first)))
    differs = [f"{c}={_shown(a)} (planned: {_shown(b)})" for c, a, b in zip(columns, first, nearest) if a != b]
    return runs.loc[out], ", ".join(differs[:3]) + (f" and {len(differs) - 3} more" if len(differs) > 3 else "")


def missing(runs: pd.DataFrame, planned: pd.DataFrame) -> tuple[int, str]:
    """How many planned runs `runs` lacks, and the first of them by the values its plan varies ('seed=7 model.bn=none')."""
    columns, key = _keys(planned)
    have = {key(row) for row in runs.to_dict("records")}
    lacking = [row for row in planned.to_dict("records") if key(row) not in have]
    varying = [c for c in columns if planned[c].astype(str).nunique() > 1]
    return len(lacking), " ".join(
        f"{c}={_shown(config_lib.comparable(lacking[0][c]))}" for c in varying
    ) if lacking else ""


def first_look(planned: pd.DataFrame) -> int:
    """The seed count a study's plan gives every configuration (fig1: 10, most: 5): its claims' first look."""
    columns = [c for c in identity_columns(planned) if c != "seed"]
    return int(planned.groupby(columns, dropna=False)["seed"].nunique().min()) if len(planned) else 0


def more_seeds(planned: pd.DataFrame, runs: pd.DataFrame, wanted: list[tuple[dict, int]]) -> dict[str, list[list[str]]]:
    """The jobs that give every planned configuration a claim side selects its seeds 0 .. n - 1, for each (where, n) of
    `wanted` (a side's filter and the seed count its claim's next look needs), by experiment; runs already made count."""
    _, key = _keys(planned)
    have = {key(row) for row in runs.to_dict("records")}
    jobs: dict[tuple, tuple[list[str], int]] = {}
    for where, n in wanted:
        for row in claims.select(planned, where).to_dict("records"):
            cell = tuple(o for o in row["job"] if not o.startswith("seed="))
            for seed in range(n):
                if key({**row, "seed": seed}) not in have:
                    jobs.setdefault((*cell, f"seed={seed}"), (cell, seed))
    return _by_experiment(list(jobs))


def lacking_jobs(planned: pd.DataFrame, runs: pd.DataFrame) -> dict[str, list[list[str]]]:
    """The planned jobs `runs` lacks (whatever seed counts the plan gives each configuration), by experiment."""
    _, key = _keys(planned)
    have = {key(row) for row in runs.to_dict("records")}
    return _by_experiment([row["job"] for row in planned.to_dict("records") if key(row) not in have])


def _by_experiment(jobs) -> dict[str, list[list[str]]]:
    """Jobs by the sweep they belong to: a Grid's name (its `study=`), else their experiment file's."""
    out: dict[str, list[list[str]]] = {}
    for job in jobs:
        named = dict(o.split("=", 1) for o in job if o.startswith(("study=", "experiment=")))
        out.setdefault(named.get("study") or named["experiment"], []).append(list(job))
    return out


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
