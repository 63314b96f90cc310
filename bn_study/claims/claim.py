"""A claim: what a published source says, as two sides, a metric, a direction and a margin, checked against a study's
planned runs before any of them starts (`bn_study.claims.verdicts` judges it)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import pandas as pd

from bn_study.claims import sequential
from bn_study.claims.metrics import DIRECTIONS, ClaimError, Metric, matches, select, where_text

# A planned row's columns beside its config (`Claim.check`): what the run will log and the overrides that launch it,
# not what makes it the run it is.
LOGGED = ("splits", "subset_splits", "job")


@dataclass(frozen=True)
class Side:
    label: str
    where: dict = field(default_factory=dict)
    metric: Optional[Metric] = None  # the claim's metric unless given


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    sentence: str
    a: Side
    b: Side
    metric: Metric
    direction: str
    margin: float
    # Where the rule was changed after results existed: what it was, and why it changed.
    history: str = ""
    # The most seeds the claim may be judged on (claims.sequential: looks at 5, 10, 20, ... and the cap).
    seed_cap: int = sequential.DEFAULT_CAP
    # Where this comparison handicaps one side (BN read on moving averages that lag after a short run): why, and the id
    # of the claim that compares fairly, which the report shows beside it. A note, not part of the rule.
    handicap: str = ""
    fair_twin: str = ""

    def metric_of(self, side: Side) -> Metric:
        return side.metric or self.metric

    def reads(self) -> list[dict]:
        """The where filters of the runs its verdict reads seed by seed: each side's, and the runs its metric reads beside
        them (a target set by another arm's run of the same seed). A look needs each of its seeds in all of them."""
        return [
            where
            for side in (self.a, self.b)
            for where in (side.where, self.metric_of(side).reads_also())
            if where is not None
        ]

    def depends_on(self) -> list[dict]:
        """The where filters of every run that can move its verdict: `reads`, and the runs a target's median over their
        seeds comes from (a baseline's best configuration). Its registration must predate them all."""
        baselines = [self.metric_of(side).baseline_runs() for side in (self.a, self.b)]
        return [*self.reads(), *(where for where in baselines if where is not None)]

    def check_twin(self, ids) -> None:
        """A handicapped claim names its reason and a fair twin among its study's claims (`ids`)."""
        if bool(self.fair_twin) != bool(self.handicap) or (self.fair_twin and self.fair_twin not in ids):
            raise ClaimError(
                f"claims.{self.id}.fair_twin={self.fair_twin or None}: a handicapped claim names the handicap and a claim of its "
                f"study that compares fairly, one of {', '.join(i for i in ids if i != self.id)}"
            )

    def check(self, planned: pd.DataFrame) -> None:
        """Refuse a malformed claim, or one whose sides match none of the study's planned runs (one row per
        planned run, runs.csv's config columns plus `splits`, the set of (split, metric) it will log, and `subset_splits`, the
        splits it measures on a subset before its last evaluation)."""
        if self.direction not in DIRECTIONS:
            raise ClaimError(f"claims.{self.id}.direction={self.direction}: must be one of {', '.join(DIRECTIONS)}")
        if not (self.margin >= 0 and math.isfinite(self.margin)):
            raise ClaimError(f"claims.{self.id}.margin={self.margin}: must be a finite number >= 0")
        sequential.check_cap(self.id, self.seed_cap)
        if not self.source or not self.sentence:
            raise ClaimError(f"claims.{self.id}: needs a source and the sentence it tests")
        for name, side in (("a", self.a), ("b", self.b)):
            key = f"claims.{self.id}.{name}"
            for column, value in side.where.items():
                if column not in planned.columns:
                    raise ClaimError(
                        f"{key}.where: no column {column}; the study's runs have {', '.join(c for c in planned.columns if c not in LOGGED)}"
                    )
                if not matches(planned[column], value).any():
                    values = ", ".join(sorted({str(v) for v in planned[column]}))
                    raise ClaimError(
                        f"{key}.where: {column}={value} matches none of the study's runs; it runs {column} in {{{values}}}"
                    )
            rows = select(planned, side.where)
            if rows.empty:
                raise ClaimError(f"{key}.where: {where_text(side.where)} matches none of the study's runs")
            metric = self.metric_of(side)
            if metric.grid is not None:
                if metric.grid not in planned.columns or rows[metric.grid].nunique() < 2:
                    raise ClaimError(
                        f"{key}.metric: {metric.grid} is not swept in these runs, so {type(metric).__name__} has no grid to read"
                    )
                # A grid metric reads runs.csv's final columns, which every run has.
                continue
            for split, name in metric.needs():
                missing = rows[[(split, name) not in s and (split, "*") not in s for s in rows["splits"]]]
                if len(missing):
                    raise ClaimError(
                        f"{key}.metric: {type(metric).__name__} needs {split}/{name}, which "
                        f"{len(missing)} of its {len(rows)} runs do not log (switch on the probe that logs it)"
                    )
                read = rows if metric.reads_also() is None else pd.concat([rows, select(planned, metric.reads_also())])
                subset = read[[split in s for s in read["subset_splits"]]]
                if not metric.final_only and len(subset):
                    raise ClaimError(
                        f"{key}.metric: {type(metric).__name__} reads {split}/{name} before the runs' last evaluation, which "
                        f"{len(subset)} of the {len(read)} runs it reads measure on a subset (set trainer.eval_subset=0 for them)"
                    )
