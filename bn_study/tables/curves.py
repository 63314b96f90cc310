"""Numbers read off collected curves (long-form tables from `collect`)."""

from __future__ import annotations

import math

import pandas as pd


def series(curves: pd.DataFrame, run_id: str, split: str, metric: str) -> pd.Series:
    """One run's metric as a step-indexed series."""
    rows = curves[(curves["run_id"] == run_id) & (curves["split"] == split) & (curves["metric"] == metric)]
    return rows.set_index("step")["value"].sort_index()


def steps_to_reach(accuracy: pd.Series, threshold: float) -> float:
    """First evaluated step with accuracy >= threshold; +inf if never reached (a censored value, kept in statistics)."""
    hit = accuracy[accuracy >= threshold]
    return float(hit.index[0]) if len(hit) else math.inf


def drift(values: pd.Series, since: float = 0) -> dict:
    """How far a step-indexed statistic moves from its value at the first step >= `since`, to the end and at most."""
    values = values[values.index >= since]
    moved = values - values.iloc[0]
    return {"start": float(values.iloc[0]), "end": float(values.iloc[-1]), "max_abs_drift": float(moved.abs().max())}
