"""A study's planned runs, before any of them starts: every job of every sweep composed as the CLI would.

Used to check a study's claims against what its runs will be and log (an arm or a metric the runs do
not produce is refused before the first run), and by the tests to compare a study's quick and full sizes.
"""

from __future__ import annotations

from typing import Iterable

import pandas as pd
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from . import config as config_lib
from .collect import flatten_config
from .config import Norm, RunConfig, validate


def conf_dir() -> str:
    from .app import CONF_DIR

    return str(CONF_DIR)


def jobs(experiment: str, quick: bool = False) -> list[list[str]]:
    """The override list of every job of `experiment`'s sweep, as the sweeper expands it."""
    base = [f"experiment={experiment}", f"quick={str(quick).lower()}"]
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        cfg = compose(config_name="config", overrides=base, return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params or {}, resolve=True)
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    return [[*base, *job] for chunk in BasicSweeper.split_arguments(parsed, None) for job in chunk]


def configs(experiment: str, quick: bool = False) -> list[RunConfig]:
    planned_jobs = jobs(experiment, quick)
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        return [validate(compose(config_name="config", overrides=job)) for job in planned_jobs]


def splits(cfg: RunConfig) -> frozenset:
    """The (split, metric) pairs a run of `cfg` logs; (split, '*') where the metric names depend on the model."""
    p = cfg.probe
    out = {("train", "accuracy"), ("train", "loss"), ("test", "accuracy"), ("test", "loss")}
    if cfg.data.val_fraction > 0:
        out |= {("val", "accuracy"), ("val", "loss")}
    if p.enabled:
        out |= {("probe", "*"), ("probe_units", "*")}
    if p.variance_shift and (cfg.model.bn.value != "none" or cfg.model.input_bn is not Norm.none):
        out.add(("probe", "*"))
    for flag, split in (("activations", "act"), ("gradients", "grad"), ("ics", "ics"), ("landscape", "landscape"), ("bn_modes", "bn_modes")):
        if getattr(p, flag):
            out.add((split, "*"))
    return frozenset(out)


def planned(experiments: Iterable[str], quick: bool = False) -> pd.DataFrame:
    """One row per planned run: runs.csv's config columns, plus `splits` (what it will log)."""
    config_lib.register()
    rows = []
    for experiment in experiments:
        for cfg in configs(experiment, quick):
            row = flatten_config(config_lib.to_dict(cfg))
            rows.append({**row, "splits": splits(cfg)})
    return pd.DataFrame(rows)
