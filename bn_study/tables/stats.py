"""Statistics across seeds: the median and a confidence interval for it that is honest for the number of
seeds, per configuration and per paired comparison (bn_study.claims.verdicts).

The interval is distribution-free: the sign test inverted, i.e. the order statistics x(k) and x(n+1-k) of
the n values, whose exact coverage of the true median is 1 - 2 P(Binomial(n, 1/2) <= k - 1). k is the
largest with coverage >= CONFIDENCE: at n = 5 that is [min, max] with 93.8% coverage, at n = 10 the 2nd
smallest to the 2nd largest with 97.9%. Below 5 values no such interval exists; the range is returned and
labelled as a range with its (lower) coverage, never as a 95% CI. Infinite values (a threshold never
reached, a diverged run's accuracy in a paired comparison) are ordered like any other; NaN is left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from bn_study.config import RunConfig, comparable, flatten_config, recorded, to_dict
from bn_study.run.provenance import PROVENANCE

CONFIDENCE = 0.90

# Columns of a collected runs table that describe a run's outcome or identity, not its configuration.
NOT_CONFIG = {
    "run_id",
    "status",
    "folder",
    "seed",
    "study",
    "quick",
    "test_accuracy",
    "test_loss",
    "val_accuracy",
    "val_loss",
    "steps",
    "diverged_at_step",
    "wall_seconds",
    "ms_per_step",
    "data_used",
    "data_fallback",
    "n_val",
    "n_test",
    *PROVENANCE,
    # where a run was written and how it was watched (config.NOT_IDENTITY): never an arm
    "paths.results",
    "logger.tensorboard",
    "logger.mlflow",
    "logger.mlflow_uri",
    "checkpoint.enabled",
    "checkpoint.keep",
}


@dataclass(frozen=True)
class Interval:
    median: float
    low: float
    high: float
    coverage: float  # the exact coverage of [low, high] for the median, for n values
    n: int
    # Where values are only known to lie in a range (censored), the median lies in [median, median_high].
    median_high: float | None = None
    # The order statistic the bounds are (1: the min and max); where the interval is one of a sequence of looks
    # (claims.sequential), which look of how many, so that its coverage is read as the sequence's.
    k: int = 0
    look: tuple[int, int] | None = None

    @property
    def is_ci(self) -> bool:
        """Whether [low, high] is a confidence interval at CONFIDENCE, rather than a mere range."""
        return self.n > 0 and self.coverage >= CONFIDENCE - 1e-12

    @property
    def is_min_max(self) -> bool:
        """Whether [low, high] is the whole range of the values (at n = 5 the only interval that reaches CONFIDENCE): a
        claim then holds only if every value clears its margin."""
        return self.n > 0 and (self.k == 1 if self.k else abs(self.coverage - (1 - 2 * 0.5**self.n)) < 1e-12)

    def label(self) -> str:
        if self.n == 0:
            return "no pairs"
        over = f" (look {self.look[0]} of {self.look[1]})" if self.look and self.look[1] > 1 else ""
        kind = (
            f"{self.coverage:.1%} CI{over}" + (" = min to max" if self.is_min_max else "")
            if self.is_ci
            else "range"
            + (f", {self.coverage:.0%} coverage" if self.coverage > 0 else "")
            + f": too few seeds for a {CONFIDENCE:.0%} CI"
        )
        return f"{kind}, n={self.n}"


def _binomial_cdf(k: int, n: int) -> float:
    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


def _median(x: list[float]) -> float:
    n = len(x)
    if n % 2:
        return x[n // 2]
    lo, hi = x[n // 2 - 1], x[n // 2]
    return lo if lo == hi else (lo + hi) / 2  # equal infinities stay infinite; opposite ones give NaN


def median_interval(values, confidence: float = CONFIDENCE) -> Interval:
    """The median of `values` (NaN left out) and the order-statistic interval for it (see the module doc)."""
    numbers = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").astype(
        float
    )  # None (a split a run lacks) -> NaN
    return bounded_interval(numbers, numbers, confidence)


def bounded_interval(lows, highs, confidence: float = CONFIDENCE, k: int | None = None, **sequence) -> Interval:
    """The same interval for values known only to lie in [low, high] each (a threshold not reached by the end
    of a run: at least the run's length). The true values' order statistics lie between those of the lows
    and of the highs, so [k-th smallest low, k-th largest high] covers the median at least as often as the
    interval of the true values would. Pairs with a NaN are left out. Given `k` (a sequential look's order statistic,
    with its `coverage` and `look` in `sequence`), those bounds, else the largest k whose coverage reaches `confidence`."""
    kept = [
        (float(lo), float(hi)) for lo, hi in zip(lows, highs) if not (math.isnan(float(lo)) or math.isnan(float(hi)))
    ]
    lo, hi = sorted(p[0] for p in kept), sorted(p[1] for p in kept)
    n = len(kept)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0.0, 0)
    median_high = None if lo == hi else _median(hi)
    if k is not None and 1 <= k <= n // 2 + n % 2:
        return Interval(_median(lo), lo[k - 1], hi[n - k], sequence["coverage"], n, median_high, k, sequence["look"])
    for k in range(n // 2, 0, -1) if k is None else ():
        coverage = 1 - 2 * _binomial_cdf(k - 1, n)
        if coverage >= confidence - 1e-12:
            return Interval(_median(lo), lo[k - 1], hi[n - k], coverage, n, median_high, k)
    return Interval(_median(lo), lo[0], hi[-1], 1 - 2 * 0.5**n, n, median_high, 1)


def sign_p(count: int, n: int) -> float:
    """The sign test's one-sided p-value: P(Binomial(n, 1/2) >= count), the chance that `count` or more of n values fall
    on one side of a point that is their true median."""
    return 1.0 if count <= 0 else 1 - _binomial_cdf(count - 1, n)


@lru_cache(maxsize=None)
def _rank_sum_counts(m: int, n: int) -> tuple[int, ...]:
    """How many of the C(m + n, m) orderings of two samples of sizes m and n give each Mann-Whitney count U = 0..mn."""
    if m == 0 or n == 0:
        return (1,)
    counts = [0] * (m * n + 1)
    for u, c in enumerate(_rank_sum_counts(m - 1, n)):  # the largest value is from the first sample: it beats all n
        counts[u + n] += c
    for u, c in enumerate(_rank_sum_counts(m, n - 1)):
        counts[u] += c
    return tuple(counts)


def shift_interval(x_lows, x_highs, y_lows, y_highs, confidence: float = CONFIDENCE) -> Interval:
    """The difference between two independent samples' locations (x - y), unpaired: the Hodges-Lehmann estimate (the median
    of the m x n differences x_i - y_j) and the Mann-Whitney interval for it, order statistics of those differences whose
    exact coverage comes from the distribution of U (distribution-free under a shift of one distribution against the
    other). Values known only within bounds (censored) give the k-th smallest of the lowest differences and the k-th
    largest of the highest, as `bounded_interval` does. Values with a NaN are left out; an infinite bound is kept (a
    censored value is information, and leaving it out would bias the shift), and a difference of two infinities, which
    is undefined, counts as anywhere (-inf to +inf)."""

    def kept(lows, highs):
        return [
            (float(lo), float(hi))
            for lo, hi in zip(lows, highs)
            if not (math.isnan(float(lo)) or math.isnan(float(hi)))
        ]

    def defined(value: float, otherwise: float) -> float:
        return otherwise if math.isnan(value) else value

    x, y = kept(x_lows, x_highs), kept(y_lows, y_highs)
    m, n = len(x), len(y)
    if not m or not n:
        return Interval(math.nan, math.nan, math.nan, 0.0, 0)
    lows = sorted(defined(a[0] - b[1], -math.inf) for a in x for b in y)
    highs = sorted(defined(a[1] - b[0], math.inf) for a in x for b in y)
    counts, total = _rank_sum_counts(m, n), math.comb(m + n, m)
    size = m * n
    median_high = None if lows == highs else _median(highs)
    for k in range(size // 2, 0, -1):
        coverage = 1 - 2 * sum(counts[:k]) / total
        if coverage >= confidence - 1e-12:
            return Interval(_median(lows), lows[k - 1], highs[size - k], coverage, size, median_high)
    return Interval(_median(lows), lows[0], highs[-1], 1 - 2 * counts[0] / total, size, median_high)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment: the family-wise error over all the tests stays at most the level each adjusted p-value is
    compared with."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [1.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini and Hochberg's step-up adjustment: the expected share of false discoveries among the tests called
    decided stays at most the level each adjusted p-value is compared with."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i], reverse=True)
    adjusted, running = [1.0] * m, 1.0
    for rank, i in enumerate(order):
        running = min(running, m / (m - rank) * p_values[i])
        adjusted[i] = running
    return adjusted


def median_ci(values) -> dict:
    """{median, ci_low, ci_high} of median_interval: the columns a figure's band and a table's cell read."""
    i = median_interval(values)
    return {"median": i.median, "ci_low": i.low, "ci_high": i.high}


def config_columns(runs: pd.DataFrame) -> list[str]:
    return [c for c in runs.columns if c not in NOT_CONFIG and not c.startswith("steps_to_")]


def config_values(runs: pd.DataFrame) -> pd.DataFrame:
    """The config columns with each value as a run record and runs.csv both give it back, and a run that predates a
    column at its default (config.recorded): a table that merges runs read back from runs.csv with seeds added since
    holds one configuration once, not once per kind of record."""
    defaults = config_defaults()
    return pd.DataFrame(
        {c: [comparable(recorded({c: v}, c, defaults)) for v in runs[c]] for c in config_columns(runs)},
        index=runs.index,
        dtype=object,
    )


@lru_cache(maxsize=1)
def config_defaults() -> dict:
    """Every config key's default, flat (the value of a key a run predates)."""
    return flatten_config(to_dict(RunConfig()))


def _varying(values: pd.DataFrame) -> list[str]:
    return [c for c in values.columns if values[c].astype(str).nunique() > 1] or list(values.columns[:1])


def varying_config_columns(runs: pd.DataFrame) -> list[str]:
    """The config columns that tell runs apart (at least one column, to group by)."""
    return _varying(config_values(runs))


def by_configuration(runs: pd.DataFrame):
    """`runs` grouped by configuration (varying_config_columns, compared as config_values), and those columns."""
    values = config_values(runs)
    keys = _varying(values)
    return runs.groupby([values[k].astype(str) for k in keys], sort=True), keys


def by_config(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration (every config column but the seed): run counts by status, and for final
    test and validation accuracy and each steps_to_* column the median with its interval and that
    interval's coverage (a CI only where the coverage reaches CONFIDENCE).

    A diverged run has NaN accuracy, so it is left out of the accuracy median but counted in n_diverged;
    a threshold never reached counts as +inf steps, so a median of inf means most seeds never got there.
    """
    metrics = [m for m in ("test_accuracy", "val_accuracy") if m in runs.columns] + [
        c for c in runs.columns if c.startswith("steps_to_")
    ]
    groups, keys = by_configuration(runs)
    rows = []
    for _, group in groups:
        first = group.iloc[0]
        row = {c: recorded(first, c, config_defaults()) for c in keys}
        row.update(
            n_runs=len(group),
            n_done=int((group["status"] == "done").sum()),
            n_diverged=int((group["status"] == "diverged").sum()),
        )
        row["seeds"] = " ".join(str(s) for s in sorted(group["seed"]))
        for m in metrics:
            i = median_interval(group[m])
            row[f"{m}_median"], row[f"{m}_low"], row[f"{m}_high"], row[f"{m}_coverage"] = (
                i.median,
                i.low,
                i.high,
                round(i.coverage, 4),
            )
        rows.append(row)
    table = pd.DataFrame(rows)
    try:
        return table.sort_values(keys, na_position="first", kind="stable", ignore_index=True)
    except TypeError:  # a column of mixed kinds (a number and a name): the grouping's order
        return table
