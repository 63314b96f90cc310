"""Statistics across seeds, in the analysis layer: median and bootstrap confidence intervals per configuration."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

# Columns of a collected runs table that describe a run's outcome or identity, not its configuration.
NOT_CONFIG = {"run_id", "status", "folder", "seed", "study", "quick", "test_accuracy", "test_loss", "val_accuracy", "val_loss", "steps",
              "diverged_at_step", "wall_seconds", "ms_per_step", "data_used", "data_fallback", "n_val", "n_test",
              "git_commit", "git_dirty", "cpu", "isa_level", "threads"}


def bootstrap_ci(values, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the median. +inf values (a threshold never reached) are kept: they are data."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return math.nan, math.nan
    medians = np.median(np.random.default_rng(seed).choice(x, size=(n_boot, len(x)), replace=True), axis=1)
    alpha = (1 - level) / 2
    # The empirical quantile never interpolates, so inf bounds stay inf instead of becoming inf - inf = NaN.
    return float(np.quantile(medians, alpha, method="inverted_cdf")), float(np.quantile(medians, 1 - alpha, method="inverted_cdf"))


def median_ci(values, level: float = 0.95, n_boot: int = 2000) -> tuple[float, float, float]:
    """Median of the non-NaN values (NaN if none) and its bootstrap CI: a diverged run's NaN is left out."""
    x = np.asarray(values, dtype=float)
    finite = x[~np.isnan(x)]
    return (float(np.median(finite)) if len(finite) else math.nan, *bootstrap_ci(x, level, n_boot))


def config_columns(runs: pd.DataFrame) -> list[str]:
    return [c for c in runs.columns if c not in NOT_CONFIG and not c.startswith("steps_to_")]


def varying_config_columns(runs: pd.DataFrame) -> list[str]:
    """The config columns that tell runs apart (at least one column, to group by)."""
    return [c for c in config_columns(runs) if runs[c].nunique(dropna=False) > 1] or config_columns(runs)[:1]


def by_config(runs: pd.DataFrame, level: float = 0.95, n_boot: int = 2000) -> pd.DataFrame:
    """One row per configuration (every config column but the seed): run counts by status, and for final
    test accuracy and each steps_to_* column the median with its bootstrap CI.

    A diverged run has NaN accuracy, so it is left out of the accuracy median but counted in n_diverged;
    a threshold never reached counts as +inf steps, so a median of inf means most seeds never got there.
    """
    metrics = ["test_accuracy", *[c for c in runs.columns if c.startswith("steps_to_")]]
    keys = varying_config_columns(runs)
    rows = []
    for key, group in runs.groupby(keys, dropna=False, sort=True):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row.update(n_runs=len(group), n_done=int((group["status"] == "done").sum()), n_diverged=int((group["status"] == "diverged").sum()))
        row["seeds"] = " ".join(str(s) for s in sorted(group["seed"]))
        for m in metrics:
            row[f"{m}_median"], row[f"{m}_ci_low"], row[f"{m}_ci_high"] = median_ci(group[m], level, n_boot)
        rows.append(row)
    return pd.DataFrame(rows)
