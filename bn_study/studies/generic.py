"""The figures and summary of a study declared in a YAML file (bn_study.studies.declaration), drawn with no code of its
own: its arms' curves (median over seeds with its interval), each arm's final value (against the swept key the file's
`figure.x` names, if any), and its claims' effects against their margins (the report's forest plot, for this study).
A median never pools two configurations: an arm that spans several gets a line, and a point, per configuration."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pandas as pd

from bn_study.claims import select
from bn_study.render import plots
from bn_study.studies import forest
from bn_study.studies.common import Tables, fmt_ci, mark_diverged, markdown_table, median_by
from bn_study.studies.registry import get
from bn_study.tables import collect, stats

CLAIMS_FIGURE = "claims.png"
REPO = Path(__file__).resolve().parents[2]
# Columns that say where a run was written or how it was watched, not what it trained.
_NOT_CONFIGURATION = ("paths.", "logger.", "checkpoint.", "objective")


def build(study_dir: Path, out: Path) -> list[Path]:
    """<name>.png/.pdf (curves and final values per arm), <name>.csv (the curves drawn), claims.png (the claims'
    effects, where it has claims) and summary.md, into `out`."""
    study = get(study_dir.name)
    declared, figure = study.declared, study.declared.figure
    tables = Tables.load(study_dir, out)
    by_arm = {arm.name: select(tables.runs, arm.where) for arm in declared.arms}

    fig, (curves_ax, final_ax) = plots.new_figure(2, width=4.6, height=3.6)
    drawn = _curves(curves_ax, tables, declared, by_arm)
    rows = _finals(final_ax, declared, by_arm, f"{figure.split}_{figure.metric}", figure.x)
    lines = _targets(final_ax, study, figure.x)
    plots.caption(
        fig,
        " ".join(
            part
            for part in (
                f"{study.title}.",
                figure.caption,
                f"{tables.band_note().capitalize()}; x: a diverged run, where it stopped.{lines}",
                f"{tables.data_note()}.{tables.eval_note()}",
            )
            if part
        ),
    )
    paths = plots.save(fig, out / study.name)
    pd.concat(drawn, ignore_index=True).to_csv(out / f"{study.name}.csv", index=False)
    paths.append(out / f"{study.name}.csv")

    records = tables.verdicts()
    if records:
        forest.draw(
            [(study.name, record["id"], [record]) for record in records],
            [", ".join(sorted(tables.runs["data_used"].unique()))],
            "Each claim's median paired difference (dot; hollow: post hoc) and its interval in units of its margin, the "
            "claimed direction to the right: right of +1 it holds (right of -1 for a 'no worse than' claim), left of -1 "
            "it is contradicted, between negligible or undecided.",
            out / CLAIMS_FIGURE,
            width=6.5,
            row_height=0.35,
        )
        paths.append(out / CLAIMS_FIGURE)

    summary = "\n".join(
        [
            f"# {study.title}",
            "",
            f"{study.about}. Declared in `{_shown_path(declared.path)}`; {tables.seeds_note()}. {tables.data_note()}."
            + tables.eval_note(),
            "",
            markdown_table(
                ["arm", "configuration", "runs", f"final {figure.split} {figure.metric} ({tables.band_note()})"], rows
            ),
            "",
            *tables.claims_section(),
            f"Figures: {study.name}.png / .pdf (the curves plotted: {study.name}.csv)"
            + (f"; {CLAIMS_FIGURE}, each claim against its margin" if records else "")
            + ".",
            "",
        ]
    )
    (out / "summary.md").write_text(summary)
    return [*paths, out / "summary.md"]


def _curves(ax, tables: Tables, declared, by_arm: dict) -> list[pd.DataFrame]:
    """Each arm's median curve per configuration (of the runs `figure.curves_where` selects), one legend entry per arm;
    returns the curves drawn."""
    figure = declared.figure
    drawn, varied = [], set()
    for arm in declared.arms:
        runs = select(by_arm[arm.name], dict(figure.curves_where))
        configurations = _configurations(runs, figure.x)
        for i, (label, group) in enumerate(configurations):
            points = collect.with_config(tables.curves, group, [], figure.split, figure.metric)
            if points.empty:
                continue
            curve = median_by(points, ["step"]).assign(arm=arm.name, configuration=label)
            # an arm's configurations share its colour, the first the palest
            alpha = 0.35 + 0.65 * (i + 1) / len(configurations)
            ax.plot(curve["step"], curve["median"], color=arm.color, alpha=alpha, label=None if i else arm.label)
            ax.fill_between(curve["step"], curve["ci_low"], curve["ci_high"], color=arm.color, alpha=0.12, lw=0)
            drawn.append(curve)
            varied |= {part.split("=")[0] for part in label.split(", ") if label}
        mark_diverged(ax, runs, arm.color)
    shown = f" ({', '.join(f'{k}={v}' for k, v in figure.curves_where)})" if figure.curves_where else ""
    per = f"a line per {', '.join(sorted(varied))}, the palest the first" if varied else ""
    ax.set(
        title="\n".join([f"{figure.split} {figure.metric} over training{shown}", *textwrap.wrap(per, 60)]),
        xlabel="training steps",
        ylabel=f"{figure.split} {figure.metric}",
    )
    ax.legend(fontsize=6, loc="best")
    return drawn


def _configurations(runs: pd.DataFrame, x: str | None, split_x: bool = True) -> list[tuple[str, pd.DataFrame]]:
    """An arm's runs split by every configuration key that varies among them (the seed aside; `x` first, or not at all
    without `split_x`): one ('key=value, ...', runs) per configuration, in order ('' where there is one)."""
    varying = [
        c
        for c in stats.config_columns(runs)
        if c != "seed" and "." in c and not c.startswith(_NOT_CONFIGURATION) and runs[c].astype(str).nunique() > 1
    ]
    if x in varying:
        # what changes with x alone (batch_size's steps) is part of x: a line along x, not a configuration of its own
        varying = [c for c in varying if c != x and runs.groupby(x)[c].nunique(dropna=False).max() > 1]
        varying[:0] = [x] if split_x else []
    if not varying:
        return [("", runs)]
    return [
        (", ".join(f"{c}={_shown(v)}" for c, v in zip(varying, key if isinstance(key, tuple) else (key,))), group)
        for key, group in runs.groupby(varying, sort=True)
    ]


def _finals(ax, declared, by_arm: dict, column: str, x: str | None) -> list[list]:
    """Each arm's median final value with its interval per configuration: along `x` where given (a line per arm and
    other configuration), else a point each; a point's diverged runs counted beside it. Returns the summary's rows."""
    rows, ticks = [], []
    for arm in declared.arms:
        for others, group in _configurations(by_arm[arm.name], x, split_x=False):
            along = list(group.groupby(x, sort=True)) if x else [(len(ticks), group)]
            points = []
            for value, runs in along:
                interval = stats.median_interval(runs[column] if column in runs else [])
                cell = {
                    "median": interval.median,
                    "ci_low": interval.low,
                    "ci_high": interval.high,
                    "n": interval.n,
                    "is_ci": interval.is_ci,
                    "n_runs": len(runs),
                    "n_diverged": int((runs["status"] == "diverged").sum()),
                }
                shown = ", ".join(filter(None, [f"{x}={_shown(value)}" if x else "", others])) or "-"
                rows.append([arm.label, shown, len(runs), fmt_ci(cell)])
                points.append((value, cell))
            if not x:
                ticks.append(arm.label + (f"\n{others}" if others else ""))
            _draw_points(ax, points, arm.color, f"{arm.label} ({others})" if others else arm.label, line=bool(x))
    if x:
        values = [v for runs in by_arm.values() for v in pd.to_numeric(runs[x], errors="coerce").dropna()]
        if values and min(values) > 0 and max(values) / min(values) >= 20:
            ax.set_xscale("log")
        ax.set_xlabel(x)
        ax.legend(fontsize=6, loc="best")
    else:
        ax.set_xticks(range(len(ticks)))
        ax.set_xticklabels(ticks, rotation=20, ha="right", fontsize=7)
    ax.set(title=f"final {column.replace('_', ' ')}", ylabel=column.replace("_", " "))
    return rows


def _draw_points(ax, points: list[tuple], color: str, label: str, line: bool) -> None:
    xs, cells = [p for p, _ in points], [c for _, c in points]
    medians = [c["median"] for c in cells]
    errors = [
        [0 if math.isnan(c["median"]) else max(c["median"] - c["ci_low"], 0) for c in cells],
        [0 if math.isnan(c["median"]) else max(c["ci_high"] - c["median"], 0) for c in cells],
    ]
    ax.errorbar(
        xs, medians, yerr=errors, color=color, marker="o", ms=4, capsize=3, label=label, ls="-" if line else "none"
    )
    for value, cell in points:
        if cell["n_diverged"]:
            ax.annotate(
                f"{cell['n_diverged']}/{cell['n_runs']} div.",
                (value, 0.03),
                color=color,
                fontsize=6,
                ha="center",
                xycoords=("data", "axes fraction"),
            )


def _targets(ax, study, x: str | None) -> str:
    """The fixed thresholds the study's grid claims along `x` read (a value 'trains' when its final accuracy reaches
    it), dotted on the final panel; the caption's words for them."""
    thresholds = sorted(
        {
            claim.metric.threshold
            for claim in study.claims
            if x is not None
            and claim.metric.grid == x
            and getattr(claim.metric, "of_best", None) is None
            and hasattr(claim.metric, "threshold")
        }
    )
    for threshold in thresholds:
        ax.axhline(threshold, color="0.5", lw=0.8, ls=":")
    return (
        f" Dotted: {', '.join(f'{t:g}' for t in thresholds)}, what its claims count as training." if thresholds else ""
    )


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _shown_path(path: Path) -> str:
    """The file's path in this repository where it lies in it, else its name: a summary carries no machine's paths."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return path.name
