"""Claims as data: what a published source says, turned into a comparison the runs can decide.

A claim names its source and sentence, two sides (each a set of runs, picked by their config, and the
per-seed number a metric reads off them), the direction the source expects of side `a` against side
`b`, and a margin below which a difference does not matter in practice. Claims are declared with their
study (`bn_study.claims.ledger` says whether before its runs); `bn_study.claims.verdicts` judges every one of them by
the same rule.

A metric turns the runs of one side and one seed into one number: the final value of a curve, the steps
to a threshold, a grid summary over a swept key (how many learning rates train), and so on. What each
metric needs (the splits it reads, the keys it sweeps) is checked against the study's planned runs before
any of them starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from bn_study.tables.curves import series, steps_to_reach


def factor(x: float) -> float:
    """A margin for a log10 metric (steps to a target) as the factor it stands for: factor(1.5), half as many steps again.
    Exact, where a rounded 0.176 would let a ratio of exactly 2/3 (200 against 300 steps) pass as beyond it."""
    return math.log10(x)


DIRECTIONS = {
    "higher": "a exceeds b by more than the margin",
    "lower": "a falls below b by more than the margin",
    "not_lower": "a is no worse than b by more than the margin (a non-inferiority claim)",
}


class ClaimError(ValueError):
    """A malformed claim, or one naming an arm or a metric its study does not produce."""


def _curve(curves: pd.DataFrame, run_id: str, split: str, metric: str) -> pd.Series:
    return series(curves, run_id, split, metric)


@dataclass(frozen=True)
class Metric:
    """Base: the number read off one side's runs for one seed. `runs` holds one run unless `grid` is set."""

    split: str = "test"
    name: str = "accuracy"

    # Value for a diverged run, where a metric reads its final state (its curves stop where it blew up): an
    # accuracy is the worst possible; NaN means the pair cannot be compared and is reported as excluded.
    diverged = math.nan
    log10 = False
    grid: Optional[str] = None
    # The value that says the measure found nothing on that side (GridCount: no value trains); None: no such value.
    floor = None
    # Whether a diverged run is read off its curve as far as it got (a step at or before where it stopped, a maximum
    # over its evaluations, a threshold crossed before it blew up), rather than given `diverged`.
    reads_diverged = False
    # Whether a difference of this metric is a difference in images classified right (an accuracy at an evaluation).
    per_image = False
    # Whether it reads only the run's last evaluation, the one trainer.eval_subset leaves whole.
    final_only = False

    def needs(self) -> list[tuple[str, str]]:
        """(split, metric) pairs the runs must log."""
        return [(self.split, self.name)]

    def reads_also(self) -> dict | None:
        """Other runs whose curves it reads (a where filter), beside the side's own: None for none."""
        return None

    def baseline_runs(self) -> dict | None:
        """Runs whose median over seeds sets its target (a where filter): None for none."""
        return None

    def value(self, runs: pd.DataFrame, curves: pd.DataFrame, context: "Context") -> float:
        run = runs.iloc[0]
        if run["status"] == "diverged" and not self.reads_diverged:
            return self.diverged
        return self.of_curve(_curve(curves, run["run_id"], self.split, self.name), run, context)

    def bounds(self, runs: pd.DataFrame, curves: pd.DataFrame, context: "Context") -> tuple[float, float]:
        """(low, high) between which the number lies: the value itself, unless it is only known in part."""
        v = self.value(runs, curves, context)
        return v, v

    def of_curve(self, curve: pd.Series, run: pd.Series, context: "Context") -> float:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    @property
    def images(self) -> Optional[str]:
        """The split whose image count turns a difference of this metric into images (accuracies only)."""
        return self.split if self.per_image and self.name == "accuracy" and self.split in ("test", "val") else None


@dataclass(frozen=True)
class Final(Metric):
    """The value at the run's last evaluation."""

    per_image = True
    final_only = True

    @property
    def diverged(self):
        return -math.inf if self.name == "accuracy" else math.nan

    def of_curve(self, curve, run, context):
        return float(curve.iloc[-1])

    def describe(self) -> str:
        if self.split == "train":
            return f"training {self.name} over the last evaluation interval (training mode)"
        return f"final {self.split} {self.name}"


@dataclass(frozen=True)
class At(Metric):
    """The value at the last evaluation at or before `step`: a run of that length, when nothing in the training
    depends on the planned run length (a constant learning rate); NaN for a run that diverged before it."""

    step: int = 0
    reads_diverged = True
    per_image = True

    def of_curve(self, curve, run, context):
        upto = curve[curve.index <= self.step]
        return float(upto.iloc[-1]) if len(upto) else math.nan

    def describe(self) -> str:
        return f"{self.split} {self.name} at step {self.step:,}"


@dataclass(frozen=True)
class Best(Metric):
    """The highest value over the run's evaluations (a maximum over evaluations: use the validation split);
    a diverged run's evaluations up to where it stopped count."""

    split: str = "val"
    reads_diverged = True
    per_image = True

    def of_curve(self, curve, run, context):
        return float(curve.max()) if curve.notna().any() else -math.inf

    def describe(self) -> str:
        return f"max {self.split} {self.name} over evaluations"


@dataclass(frozen=True)
class StepsTo(Metric):
    """The first evaluated step at which the curve reaches `threshold` (inf if never); with `target`, the
    threshold is, per seed, `fraction` of the best value the runs matching `target` reached on the same split
    (a target that follows the dataset). A diverged run counts as far as it got (it may have crossed before it
    blew up); no target run for the seed: NaN."""

    threshold: float = 0.9
    target: Optional[tuple] = None  # ((column, value), ...): the runs whose best value is the threshold
    fraction: float = 1.0
    log10 = True
    reads_diverged = True

    def reads_also(self) -> dict | None:
        return dict(self.target) if self.target is not None else None

    def of_curve(self, curve, run, context):
        threshold = (
            self.threshold
            if self.target is None
            else self.fraction * context.best(dict(self.target), run["seed"], self.split, self.name)
        )
        if math.isnan(threshold):
            return math.nan
        return math.log10(max(steps_to_reach(curve, threshold), 1.0))

    def bounds(self, runs, curves, context):
        """A run that ended without reaching the threshold would have needed more steps than it ran: at least
        its last evaluated step, not infinitely many (a diverged run never gets there: inf)."""
        v = self.value(runs, curves, context)
        run = runs.iloc[0]
        if v == math.inf and run["status"] != "diverged":
            last = _curve(curves, run["run_id"], self.split, self.name).index.max()
            return math.log10(max(float(last), 1.0)), math.inf
        return v, v

    def describe(self) -> str:
        share = "" if self.fraction == 1 else f"{self.fraction:.0%} of "
        what = (
            f"{self.threshold:g}"
            if self.target is None
            else share + "the best " + self.split + " " + self.name + " of " + where_text(dict(self.target))
        )
        return f"steps to reach {self.split} {self.name} {what} (log10)"


@dataclass(frozen=True)
class CurveMedian(Metric):
    """The median of a logged measure over the run's evaluations after `after` (a fraction of its steps)."""

    after: float = 0.0

    def of_curve(self, curve, run, context):
        return float(curve[curve.index > self.after * curve.index.max()].median())

    def describe(self) -> str:
        return f"median of {self.split}/{self.name} over the evaluations" + (
            f" after {self.after:.0%} of training" if self.after else " after step 0"
        )


@dataclass(frozen=True)
class LogCurveMedian(CurveMedian):
    """CurveMedian in log10: for measures that span orders of magnitude (a difference is a ratio)."""

    log10 = True

    def of_curve(self, curve, run, context):
        value = super().of_curve(curve, run, context)
        return math.log10(value) if value > 0 else -math.inf

    def describe(self) -> str:
        return super().describe() + " (log10)"


@dataclass(frozen=True)
class MeanGap(Metric):
    """The mean over evaluations after step 0 of (`split`/`name` - `split`/`minus`), within each run."""

    minus: str = ""

    def needs(self):
        return [(self.split, self.name), (self.split, self.minus)]

    def value(self, runs, curves, context):
        run = runs.iloc[0]
        if run["status"] == "diverged":
            return math.nan
        a, b = (_curve(curves, run["run_id"], self.split, m) for m in (self.name, self.minus))
        gap = (a - b)[lambda s: s.index > 0]
        return float(gap.mean())

    def describe(self) -> str:
        return f"mean over evaluations of {self.split}/{self.name} - {self.split}/{self.minus}"


@dataclass(frozen=True)
class UnitDrift(Metric):
    """Figure 1's stability, over every unit of the probed layer: the mean over units of how far a unit's
    percentile statistic (the median p50, or the 15-85 spread) moves from `settled` of training to the end."""

    split: str = "probe_units"
    name: str = "median"  # or "spread"
    settled: float = 0.1

    def needs(self):
        return [(self.split, "u0.p50")]

    def value(self, runs, curves, context):
        run = runs.iloc[0]
        if run["status"] == "diverged":
            return math.nan
        rows = curves[(curves["run_id"] == run["run_id"]) & (curves["split"] == self.split)]
        wide = rows.pivot_table(index="step", columns="metric", values="value").sort_index()
        wide = wide[wide.index >= self.settled * wide.index.max()]
        units = sorted({c.split(".")[0] for c in wide.columns})
        if self.name == "median":
            stat = wide[[f"{u}.p50" for u in units]].to_numpy()
        else:
            stat = wide[[f"{u}.p85" for u in units]].to_numpy() - wide[[f"{u}.p15" for u in units]].to_numpy()
        return float(np.mean(np.abs(stat[-1] - stat[0])))

    def describe(self) -> str:
        what = "median (p50)" if self.name == "median" else "15th-85th spread"
        return f"mean over the probed layer's units of the net drift of each unit's input {what}, from {self.settled:.0%} of training to the end"


def gradient_growth(norms: pd.Series) -> float:
    """Per-layer growth of the gradient norm towards the input: the least-squares slope of log10(norm) against
    how many blocks a layer sits below the last one (`norms` indexed by block number, 1 = next to the input).
    0: flat; log10(2) = 0.30: each block's gradient twice the norm of the block above it. The first block is
    left out: its kernel reads the raw inputs (784 pixels, not a block's 100 units), so its norm is on
    another scale. NaN with fewer than two blocks left, or a zero norm."""
    norms = norms[norms.index >= 2]
    if len(norms) < 2 or not (norms > 0).all():
        return math.nan
    return float(-np.polyfit(norms.index.to_numpy(dtype=float), np.log10(norms.to_numpy(dtype=float)), 1)[0])


@dataclass(frozen=True)
class GradientGrowth(Metric):
    """`gradient_growth` of the hidden dense blocks' kernel-gradient norms (the gradients probe) at evaluation `step`."""

    split: str = "grad"
    name: str = "dense1.grad_norm"
    step: int = 0
    log10 = True  # a slope of log10 norms: a difference of two is the log10 of a ratio of per-layer factors

    def value(self, runs, curves, context):
        run = runs.iloc[0]
        rows = curves[
            (curves["run_id"] == run["run_id"]) & (curves["split"] == self.split) & (curves["step"] == self.step)
        ]
        found = rows["metric"].str.extract(r"^dense(\d+)\.grad_norm$")[0]
        rows = rows[found.notna()]
        return gradient_growth(
            pd.Series(rows["value"].to_numpy(), index=found.dropna().astype(int).to_numpy()).sort_index()
        )

    def describe(self) -> str:
        return (
            f"growth of the hidden layers' gradient norm per layer towards the input at step {self.step:,} (log10 slope; "
            "0.1 = x1.26 per layer)"
        )


@dataclass(frozen=True)
class _GridReaching(Metric):
    """Base of the grid metrics that ask which values of the swept `grid` key train: final `split` accuracy
    at least `threshold`; with `of_best`, at least that fraction of the `baseline` runs' best configuration
    (the highest median over seeds along the grid): a target that follows the dataset, set by one arm for
    both. A diverged run does not train."""

    split: str = "val"
    threshold: float = 0.9
    grid: Optional[str] = "optimizer.lr"
    final_only = True  # runs.csv's final columns
    of_best: Optional[float] = None
    baseline: tuple = ()  # ((column, value), ...): the runs whose best median sets the target

    def target(self, context: "Context") -> float:
        return (
            self.threshold
            if self.of_best is None
            else self.of_best * context.best_median(dict(self.baseline), self.grid, f"{self.split}_accuracy")
        )

    def baseline_runs(self) -> dict | None:
        return dict(self.baseline) if self.of_best is not None else None

    def value(self, runs, curves, context):
        if not _complete(runs, self.grid, context):
            return math.nan
        return self.of_values(
            runs.loc[runs[f"{self.split}_accuracy"].fillna(-math.inf) >= self.target(context), self.grid]
        )

    def reaches(self) -> str:
        if self.of_best is None:
            return f"{self.threshold:g}"
        return f"{self.of_best:.0%} of the best median final {self.split} accuracy over {self.grid} of {where_text(dict(self.baseline))}"

    def of_values(self, trained: pd.Series) -> float:
        raise NotImplementedError


@dataclass(frozen=True)
class GridCount(_GridReaching):
    """How many values of the swept `grid` key train."""

    floor = 0.0

    def of_values(self, trained):
        return float(len(trained))

    def describe(self) -> str:
        return f"number of {self.grid} values whose final {self.split} accuracy reaches {self.reaches()}"


@dataclass(frozen=True)
class GridLargest(_GridReaching):
    """The largest value of the swept `grid` key that trains, log10 (-inf if none does)."""

    log10 = True

    def of_values(self, trained):
        return math.log10(trained.max()) if len(trained) else -math.inf

    def describe(self) -> str:
        return f"largest {self.grid} whose final {self.split} accuracy reaches {self.reaches()} (log10)"


@dataclass(frozen=True)
class GridChange(Metric):
    """Final `split` accuracy at `grid` = `to` minus at `grid` = `start`: what moving along the grid costs."""

    grid: Optional[str] = "trainer.batch_size"
    start: float = 0.0
    to: float = 0.0
    final_only = True  # runs.csv's final columns

    def value(self, runs, curves, context):
        def at(v):
            rows = runs[np.isclose(runs[self.grid].astype(float), v)]
            if len(rows) != 1:
                return math.nan
            return (
                -math.inf if rows.iloc[0]["status"] == "diverged" else float(rows.iloc[0][f"{self.split}_{self.name}"])
            )

        return difference(at(self.to), at(self.start))

    def describe(self) -> str:
        return f"final {self.split} {self.name} at {self.grid}={self.to:g} minus at {self.grid}={self.start:g}"


def _complete(runs: pd.DataFrame, grid: str, context: "Context") -> bool:
    """Whether one seed's runs cover every value of the grid their sweep ran (a missing run would silently
    lower a count: the seed is excluded instead). The grid is the sweep's, not the study's: another sweep of
    the study may run the same key at other values."""
    swept = context.runs
    if "study" in runs.columns and "study" in swept.columns:
        swept = swept[swept["study"].isin(set(runs["study"]))]
    return set(runs[grid]) == set(swept[grid].dropna())


def difference(a: float, b: float) -> float:
    """a - b where either may be -inf/+inf (a diverged run, a threshold never reached): two equal infinities
    are a tie (0), not NaN."""
    if math.isinf(a) and math.isinf(b) and a == b:
        return 0.0
    return a - b


def where_text(where: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in where.items())


def matches(column: pd.Series, value) -> pd.Series:
    if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
        numeric = pd.to_numeric(column, errors="coerce")
        return pd.Series(np.isclose(numeric.astype(float), float(value), rtol=1e-9, atol=0), index=column.index)
    return column.astype(str) == str(value)


def select(runs: pd.DataFrame, where: dict) -> pd.DataFrame:
    mask = pd.Series(True, index=runs.index)
    for column, value in where.items():
        mask &= matches(runs[column], value)
    return runs[mask]


class Context:
    """What a metric may look up beyond its own runs: the study's other runs (a target set by the baseline)."""

    def __init__(self, runs: pd.DataFrame, curves: pd.DataFrame):
        self.runs, self.curves = runs, curves

    def best_median(self, where: dict, grid: str, column: str) -> float:
        """The highest median over seeds, along `grid`, of a final-value column of the runs matching `where`
        (a diverged run counts as the worst)."""
        rows = select(self.runs, where)
        return (
            float(rows.assign(v=rows[column].fillna(-math.inf)).groupby(grid)["v"].median().max())
            if len(rows)
            else math.nan
        )

    def best(self, where: dict, seed: int, split: str, metric: str) -> float:
        rows = select(self.runs, where)
        rows = rows[rows["seed"] == seed]
        if len(rows) != 1:
            return math.nan
        curve = _curve(self.curves, rows.iloc[0]["run_id"], split, metric)
        return float(curve.max()) if curve.notna().any() else math.nan
