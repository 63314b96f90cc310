"""The figures and summary of a study declared in a YAML file (bn_study.studies.declaration), drawn with no code of its
own: its arms' curves (median over seeds with its interval), each arm's final value (against the swept key the file's
`figure.x` names, if any), and its claims' effects against their margins (the report's forest plot, for this study)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bn_study.claims import select
from bn_study.render import plots
from bn_study.studies import forest
from bn_study.studies.common import (
    Tables,
    fmt_ci,
    mark_diverged,
    markdown_table,
    median_by,
)
from bn_study.studies.registry import get
from bn_study.tables import collect, stats

CLAIMS_FIGURE = "claims.png"


def build(study_dir: Path, out: Path) -> list[Path]:
    """<name>.png/.pdf (curves and final values per arm), <name>.csv (the curves drawn), claims.png (the claims'
    effects, where it has claims) and summary.md, into `out`."""
    study = get(study_dir.name)
    declared = study.declared
    tables = Tables.load(study_dir, out)
    figure = declared.figure
    final_column = f"{figure.split}_{figure.metric}"
    by_arm = {arm.name: select(tables.runs, arm.where) for arm in declared.arms}

    fig, (curves_ax, final_ax) = plots.new_figure(2, width=4.6, height=3.6)
    drawn, varied = [], set()
    for arm in declared.arms:
        runs = by_arm[arm.name]
        configurations = _configurations(runs, figure.x)
        for i, (key, group) in enumerate(configurations):
            points = collect.with_config(tables.curves, group, [], figure.split, figure.metric)
            if points.empty:
                continue
            curve = median_by(points, ["step"]).assign(arm=arm.name, configuration=key)
            # one legend entry per arm: its configurations' lines share its colour, the palest the first
            alpha = 0.35 + 0.65 * (i + 1) / len(configurations)
            curves_ax.plot(curve["step"], curve["median"], color=arm.color, alpha=alpha, label=None if i else arm.label)
            curves_ax.fill_between(curve["step"], curve["ci_low"], curve["ci_high"], color=arm.color, alpha=0.12, lw=0)
            drawn.append(curve)
            varied |= {part.split("=")[0] for part in key.split(", ") if key}
        mark_diverged(curves_ax, runs, arm.color)
    lines = f"\n(a line per {', '.join(sorted(varied))}, the palest the smallest)" if varied else ""
    curves_ax.set(
        title=f"{figure.split} {figure.metric} over training{lines}",
        xlabel="training steps",
        ylabel=f"{figure.split} {figure.metric}",
    )
    curves_ax.legend(fontsize=6, loc="best")
    finals = _final(final_ax, declared, by_arm, final_column, figure.x)
    plots.caption(
        fig,
        f"{study.title}. {tables.band_note().capitalize()}; x: a diverged run, where it stopped. {tables.data_note()}."
        + tables.eval_note(),
    )
    paths = plots.save(fig, out / study.name)
    table = pd.concat(drawn, ignore_index=True) if drawn else pd.DataFrame()
    table.to_csv(out / f"{study.name}.csv", index=False)
    paths.append(out / f"{study.name}.csv")

    records = tables.verdicts()
    if records:
        forest.draw(
            [(study.name, record["id"], [record]) for record in records],
            [", ".join(sorted(tables.runs["data_used"].unique()))],
            "Each claim's median paired difference and its interval in units of its margin, the claimed direction to "
            "the right: right of +1 it holds, left of -1 it is contradicted, inside (-1, +1) negligible.",
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
                [
                    "arm",
                    "runs",
                    *([figure.x] if figure.x else []),
                    f"final {figure.split} {figure.metric} ({tables.band_note()})",
                ],
                finals,
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


def _configurations(runs: pd.DataFrame, x: str | None) -> list[tuple[str, pd.DataFrame]]:
    """An arm's runs split by every configuration key that varies among them (the seed aside), so that a median curve
    never pools two configurations: one ('key=value, ...', runs) per configuration, in order ('' for one)."""
    varying = [
        c
        for c in stats.config_columns(runs)
        if c != "seed" and "." in c and runs[c].astype(str).nunique() > 1 and not c.startswith(_NOT_CURVE)
    ]
    if not varying:
        return [("", runs)]
    if x in varying:  # the swept key first: the lines read along it
        varying.remove(x)
        varying.insert(0, x)
    return [
        (
            ", ".join(f"{c}={_shown(v)}" for c, v in zip(varying, key if isinstance(key, tuple) else (key,))),
            group,
        )
        for key, group in runs.groupby(varying, sort=True)
    ]


# Columns that say where a run was written or how it was watched, not what it trained.
_NOT_CURVE = ("paths.", "logger.", "checkpoint.", "objective.")


def _final(ax, declared, by_arm: dict, column: str, x: str | None) -> list[list]:
    """Each arm's median final value with its interval: against `x` where given, else one point per arm. Returns the
    summary table's rows."""
    rows = []
    for i, arm in enumerate(declared.arms):
        runs = by_arm[arm.name]
        groups = list(runs.groupby(x, sort=True)) if x else [(None, runs)]
        points = []
        for value, group in groups:
            interval = stats.median_interval(group[column] if column in group else [])
            row = {
                "median": interval.median,
                "ci_low": interval.low,
                "ci_high": interval.high,
                "n": interval.n,
                "is_ci": interval.is_ci,
                "n_runs": len(group),
                "n_diverged": int((group["status"] == "diverged").sum()),
            }
            rows.append([arm.label, len(group), *([_shown(value)] if x else []), fmt_ci(row)])
            points.append((value if x else i, row))
        xs = [p for p, _ in points]
        medians = [r["median"] for _, r in points]
        errors = [
            [max(r["median"] - r["ci_low"], 0) if not math.isnan(r["median"]) else 0 for _, r in points],
            [max(r["ci_high"] - r["median"], 0) if not math.isnan(r["median"]) else 0 for _, r in points],
        ]
        ax.errorbar(
            xs,
            medians,
            yerr=errors,
            color=arm.color,
            marker="o",
            ms=4,
            capsize=3,
            label=arm.label,
            ls="-" if x else "none",
        )
    if x:
        values = [v for runs in by_arm.values() for v in pd.to_numeric(runs[x], errors="coerce").dropna()]
        if values and min(values) > 0 and max(values) / min(values) >= 20:
            ax.set_xscale("log")
        ax.set_xlabel(x)
    else:
        ax.set_xticks(range(len(declared.arms)))
        ax.set_xticklabels([arm.label for arm in declared.arms], rotation=20, ha="right", fontsize=7)
    ax.set(title=f"final {column.replace('_', ' ')} per arm", ylabel=column.replace("_", " "))
    if x:  # without it, the arms are the ticks
        ax.legend(fontsize=6, loc="best")
    return rows


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _shown_path(path: Path) -> str:
    """The file's path in this repository where it lies in it, else its name: a summary carries no machine's paths."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return path.name


REPO = Path(__file__).resolve().parents[2]
