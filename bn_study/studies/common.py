"""What every seeded study's figure needs: the median over seeds with its interval (bn_study.tables.stats: a CI
only where the seeds allow one), diverged runs marked (never dropped), the claims' verdicts, and small
markdown tables, all computed from the collected tables and verdicts.json."""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bn_study.claims import Context, verdicts
from bn_study.data.datasets import spec
from bn_study.render import plots
from bn_study.studies.registry import get
from bn_study.tables import collect, stats

SPLIT_NAMES = {"val": "validation", "test": "test", "train": "training"}


class StudyError(RuntimeError):
    pass


def _min_max(interval: stats.Interval, form: str) -> str:
    return form.format("the min to max") if interval.k == 1 else ""


@dataclass
class Tables:
    runs: pd.DataFrame
    curves: pd.DataFrame
    dir: Path  # the study folder: its collected tables
    out: Path  # where its rendered outputs go, verdicts.json first (bn_study.render.outputs stages them)

    @classmethod
    def load(cls, study_dir: Path, out: Path | None = None) -> "Tables":
        """A study folder's tables; `out` (default: the folder itself, as a notebook reads it) holds its verdicts.json."""
        runs, curves = collect.load(study_dir)
        if runs.empty:
            raise StudyError(f"{study_dir}: no runs collected")
        return cls(runs, curves, study_dir, out or study_dir)

    def select(self, where: dict | None = None) -> "Tables":
        """The same study narrowed to the runs matching `where` (see collect.select)."""
        return Tables(collect.select(self.runs, where), self.curves, self.dir, self.out)

    def data_note(self) -> str:
        used = sorted(self.runs["data_used"].unique())
        fallback = self.runs["data_fallback"].dropna().unique()
        note = f"Data: {', '.join(used)}"
        return note + (f" (data=mnist requested: {fallback[0]})" if len(fallback) else "")

    def epochs_note(self) -> str:
        """How many passes over its training split the longest run made: 'about 3 epochs of 3,600 training images'."""
        run = self.runs.loc[self.runs["steps"].idxmax()]
        images = spec(run["data_used"]).n_train - int(run["n_val"])
        return f"about {run['steps'] * run['trainer.batch_size'] / images:.3g} epochs of {images:,} training images"

    def eval_note(self) -> str:
        """What the curves before each run's last evaluation measured where trainer.eval_subset cut a split, as a
        sentence to append to another (its leading space included); '' where every evaluation was whole."""
        if "trainer.eval_subset" not in self.runs:
            return ""
        subset = self.runs["trainer.eval_subset"].fillna(0).max()
        if not subset > 0:  # NaN: no runs
            return ""
        subset = int(subset)
        splits = set().union(*map(ast.literal_eval, self.runs["trainer.subset_splits"]))  # collected with eval_subset
        cut = [SPLIT_NAMES[s] for s in ("test", "val") if s in splits and (self.runs[f"n_{s}"] > subset).any()]
        if not cut:
            return ""
        return (
            f" Before each run's last evaluation the curves measure a fixed, stratified {subset:,} images of the "
            f"{' and '.join(cut)} split{'s' if len(cut) > 1 else ''} (trainer.eval_subset"
            + (
                "; BN's batch-statistics accuracy too"
                if "test" in splits and self._switched_on("probe.bn_modes")
                else ""
            )
            + "); the last evaluation, which final numbers and claims read, measures the whole splits."
        )

    def _switched_on(self, column: str) -> bool:
        return column in self.runs and self.runs[column].astype(str).eq("True").any()

    def seeds_note(self) -> str:
        per = stats.by_configuration(self.runs)[0]["seed"].nunique()
        return f"{per.min()}" + (f"-{per.max()}" if per.max() != per.min() else "") + " seeds per configuration"

    def band_note(self) -> str:
        """What a band or a bracket around a median over seeds is, for this study's seed count."""
        per = stats.by_configuration(self.runs)[0]["seed"].nunique()
        n, most = int(per.min()), int(per.max())
        if most > n:  # seeds added for claims' later looks: each configuration's band is over its own seeds
            low, high = stats.median_interval(range(n)), stats.median_interval(range(most))
            return (
                f"median over seeds with its confidence interval over each configuration's seeds ({n} to {most}: "
                f"{low.coverage:.1%} coverage at {n}{_min_max(low, ' ({})')}, {high.coverage:.1%} at {most})"
            )
        i = stats.median_interval(range(n))
        what = (
            f"its {i.coverage:.1%} confidence interval (order statistics of {n} seeds{_min_max(i, ': {}')})"
            if i.is_ci
            else f"the range of {n} seeds ({i.coverage:.0%} coverage of the median: too few seeds for a confidence interval)"
        )
        return f"median over seeds with {what}"

    def verdicts(self) -> list[dict]:
        return verdicts.read(self.out)["claims"]

    def claims_section(self) -> list[str]:
        """The claims' verdicts as a markdown section (from verdicts.json)."""
        found = self.verdicts()
        if not found:
            return []
        study = get(self.dir.name)
        splits = {claim.metric_of(side).split for claim in study.claims for side in (claim.a, claim.b)} & set(
            verdicts.SPLIT_IMAGES
        ) or {"test"}
        return [
            "## Claims",
            "",
            f"Rule: {verdicts.RULE}. {verdicts.scope(verdicts.sampling_errors(self.runs, splits))}",
            "",
            markdown_table(verdicts.CLAIM_HEADER, verdicts.claim_rows(found)),
            "",
            *([f"Before these claims: {study.history}", ""] if study.history else []),
            self.made_note(),
            "",
            *([f"Reruns: {study.reruns}", ""] if study.reruns else []),
        ]

    def made_note(self) -> str:
        """Where and at which commit the runs were made, and their run time: results are bitwise identical on one host,
        not across hosts."""
        hosts = sorted(set(self.runs["cpu"].astype(str) + " " + self.runs["isa_level"].astype(str)))
        commits = sorted(self.runs["git_commit"].dropna().astype(str).str[:7].unique())
        dirty = int(self.runs["git_dirty"].astype(str).eq("True").sum())
        changes = f" ({dirty} of them recorded uncommitted changes)" if dirty else ""
        return (
            f"Runs: {len(self.runs)} on {', '.join(hosts)}, at commit {', '.join(commits)}{changes}; "
            f"{self.runs['wall_seconds'].sum() / 3600:.2f} h of run time (the sum of their wall_seconds)."
        )


def at_end(rows: pd.DataFrame) -> pd.DataFrame:
    """Each run's points at its last evaluated step (a diverged run's: where it stopped)."""
    return rows[rows["step"] == rows.groupby("run_id")["step"].transform("max")]


def median_by(table: pd.DataFrame, by: list[str], value: str = "value") -> pd.DataFrame:
    """Per group of `by` (a configuration, a step): the median of `value` over its rows (seeds) with its interval,
    and n, how many rows have a value."""
    return pd.DataFrame(
        [
            {**dict(zip(by, key)), **stats.median_ci(g[value]), "n": int(g[value].notna().sum())}
            for key, g in table.groupby(by, dropna=False, sort=True)
        ]
    )


# What runs pooled into one median curve must share: another dataset, network or evaluation grid makes the median a
# mixture of experiments (and a saw-tooth where the grids interleave), not a spread over seeds. The network is its
# architecture and what normalises it; a setting a study sweeps on one network (rate, init, dropout) is its to group.
SAME_CURVE = (
    "data_used",
    "data.train_size",
    "model.name",
    "model.hidden",
    "model.conv",
    "model.depth",
    "model.kernel_size",
    "model.activation",
    "model.bn",
    "model.norm",
    "model.input_bn",
    "model.output",
    "model.output_bn",
    "model.permute",
    "trainer.eval_every",
)


def pooled_differences(runs: pd.DataFrame, by: list[str]) -> dict[str, list]:
    """Of SAME_CURVE's columns not in `by`: each that takes several values within one group of `by`, and its values."""
    differ = {}
    for column in (c for c in SAME_CURVE if c in runs and c not in by):
        values = runs[column].astype(str)
        if (values.groupby([runs[b].astype(str) for b in by] if by else [0] * len(runs)).nunique() > 1).any():
            differ[column] = sorted(values.unique())
    return differ


def median_curves(study: Tables, by: list[str], split: str = "test", metric: str = "accuracy") -> pd.DataFrame:
    """Per configuration (`by`) and evaluated step: median over seeds, its interval, seeds still running. Refused
    (StudyError) where a configuration would pool runs of another dataset, network or evaluation grid."""
    differ = pooled_differences(study.runs, by)
    if differ:
        named = "; ".join(f"{column} ({', '.join(values)})" for column, values in differ.items())
        raise StudyError(
            f"median_curves by {by or 'nothing'}: would pool runs that differ in {named} into one median; add "
            f"{' and '.join(differ)} to `by`, or select one value"
        )
    return median_by(collect.with_config(study.curves, study.runs, by, split, metric), [*by, "step"])


def first_reach(curves: pd.DataFrame, by: list[str], share: float = 0.95) -> tuple[float, dict[tuple, str]]:
    """For median curves (`median_curves`' output, one per group of `by`): a bar every group's curve ends above,
    `share` of the lowest final median, and the first step at which each group's median reaches it ('never' if none)."""
    ends = curves.sort_values("step").groupby(by, sort=False).tail(1)
    bar = share * float(ends["median"].min())
    reached = {}
    for key, group in curves.groupby(by, sort=True):
        above = group.loc[group["median"] >= bar, "step"]
        reached[key if isinstance(key, tuple) else (key,)] = f"{int(above.min()):,}" if len(above) else "never"
    return bar, reached


def draw_band(ax, table: pd.DataFrame, x: str, color, name: str, logx: bool = False, ls: str = "-") -> None:
    ax.plot(table[x], table["median"], color=color, label=name, marker="o" if logx else None, ms=3, ls=ls)
    ax.fill_between(table[x], table["ci_low"], table["ci_high"], color=color, alpha=0.2, lw=0)
    if logx:
        ax.set_xscale("log")


def mark_diverged(ax, subset: pd.DataFrame, color, y: float = 0.02) -> int:
    """An x at the step where each diverged run of `subset` stopped; returns how many there were."""
    diverged = subset[subset["status"] == "diverged"]
    if len(diverged):
        ax.scatter(
            diverged["diverged_at_step"],
            [y] * len(diverged),
            marker="x",
            color=color,
            zorder=5,
            transform=ax.get_xaxis_transform(),
        )
    return len(diverged)


def final_by(study: Tables, by: list[str], metric: str = "test_accuracy") -> pd.DataFrame:
    """Per configuration: median of a final metric over seeds with its interval (over the runs that have the
    number: a diverged run has none, and is counted in n_diverged), and how many values it rests on."""
    out = []
    for key, group in study.runs.groupby(by, dropna=False, sort=True):
        i = stats.median_interval(group[metric])
        out.append(
            {
                **dict(zip(by, key if isinstance(key, tuple) else (key,))),
                "median": i.median,
                "ci_low": i.low,
                "ci_high": i.high,
                "n": i.n,
                "is_ci": i.is_ci,
                "n_runs": len(group),
                "n_diverged": int((group["status"] == "diverged").sum()),
            }
        )
    return pd.DataFrame(out)


def steps_summary(study: Tables, runs: pd.DataFrame, metric) -> tuple[str, str]:
    """A StepsTo metric over `runs` (one run per seed), its target looked up among the study's runs: the median steps
    to the target ('not reached' where the median run never got there), and how many of the runs reached it."""
    context = Context(study.runs, study.curves)
    steps = [10 ** metric.value(runs.loc[[i]], study.curves, context) for i in runs.index]
    median = float(np.median(steps)) if steps else math.nan
    return (
        f"{median:,.0f}" if math.isfinite(median) else "not reached (median)"
    ), f"{sum(math.isfinite(s) for s in steps)}/{len(steps)}"


def fmt_ci(row) -> str:
    if math.isnan(row["median"]):
        return "diverged" if row.get("n_diverged") else "n/a"
    text = f"{row['median']:.4f} [{row['ci_low']:.4f}, {row['ci_high']:.4f}]"
    if "is_ci" in row and not row["is_ci"]:
        text += f" (range of {row['n']}: no CI)"
    return text + (f", {row['n_diverged']}/{row['n_runs']} diverged" if row.get("n_diverged") else "")


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write(study: Tables, name: str, fig, table: pd.DataFrame, summary: str) -> list[Path]:
    """The figure (PNG + PDF), the CSV behind it and summary.md, side by side in the study folder."""
    paths = plots.save(fig, study.out / name)
    table.to_csv(study.out / f"{name}.csv", index=False)
    (study.out / "summary.md").write_text(summary)
    return [*paths, study.out / f"{name}.csv", study.out / "summary.md"]
