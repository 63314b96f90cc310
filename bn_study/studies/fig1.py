"""Figure 1 of Ioffe & Szegedy (2015) from a collected fig1 study.

Reads results/fig1/{runs,curves}.csv (one run per arm: model.bn none and before) and writes beside
them fig1.png / fig1.pdf in the paper's layout, fig1.csv (exactly the numbers plotted) and summary.md.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from .. import analysis, collect, plots
from ..claims import Claim, Final, Side, StepsTo, UnitDrift
from .registry import Study

WITH_BN, WITHOUT_BN = Side("with BN", {"model.bn": "before"}), Side("without BN", {"model.bn": "none"})
SOURCE = "Ioffe & Szegedy (2015), Section 4.1, Figure 1"
CLAIMS = (
    Claim("fig1.accuracy", SOURCE, "Figure 1(a): the BN network reaches higher test accuracy.", WITH_BN, WITHOUT_BN,
          Final("test", "accuracy"), "higher", margin=0.005),
    Claim("fig1.faster", SOURCE, "Figure 1(a): ... and gets there faster.", WITH_BN, WITHOUT_BN,
          StepsTo("test", "accuracy", threshold=0.9), "lower", margin=0.097),  # log10(1.25): 25% fewer steps
    Claim("fig1.stable_mean", SOURCE, "Figure 1(b, c): without BN the distribution drifts in mean ...; with BN it is much more stable.",
          WITH_BN, WITHOUT_BN, UnitDrift(name="median"), "lower", margin=0.05),
    Claim("fig1.stable_spread", SOURCE, "Figure 1(b, c): without BN the distribution drifts in ... variance; with BN it is much more stable.",
          WITH_BN, WITHOUT_BN, UnitDrift(name="spread"), "lower", margin=0.05),
)

ARMS = ("none", "before")
THRESHOLDS = (0.90, 0.95)
# Drift is also measured from this fraction of training on: from a tiny init every arm's input
# distribution first spreads out, and the paper's point is what happens after that.
SETTLED = 0.1


class StudyError(RuntimeError):
    pass


def _pick_arms(runs: pd.DataFrame) -> dict[str, pd.Series]:
    arms = {}
    for bn in ARMS:
        rows = runs[runs["model.bn"] == bn]
        if len(rows) != 1:
            raise StudyError(f"fig1 needs exactly one run with model.bn={bn}; the collected table has {len(rows)}")
        arms[bn] = rows.iloc[0]
    return arms


def figure_table(runs: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """step x arm -> test accuracy, test loss and the probe percentiles (the CSV behind the figure)."""
    arms = _pick_arms(runs)
    wanted = curves[curves["split"].isin(["test", "probe"])].copy()
    wanted["column"] = wanted["split"].map({"test": "test_"}).fillna("") + wanted["metric"]
    table = wanted.pivot_table(index=["run_id", "step"], columns="column", values="value", dropna=False).reset_index()
    table.columns.name = None
    ids = {row["run_id"]: bn for bn, row in arms.items()}
    table = table[table["run_id"].isin(ids)]
    table.insert(0, "bn", table.pop("run_id").map(ids))
    return table.sort_values(["bn", "step"], key=lambda c: c.map(ARMS.index) if c.name == "bn" else c).reset_index(drop=True)


def caption_for(arm: pd.Series) -> str:
    init = f"N(0, {arm['model.init_std']:g}^2)" if pd.notna(arm["model.init_std"]) else "Glorot-uniform"
    data = arm["data_used"]
    if isinstance(arm["data_fallback"], str):
        data += f" (data=mnist requested: {arm['data_fallback']})"
    return (
        f"MLP 784-{'-'.join(str(h) for h in json.loads(arm['model.hidden']))}-10, {arm['model.activation']}, {init} init, "
        f"SGD lr {arm['optimizer.lr']:g}, batch {arm['trainer.batch_size']}, seed {arm['seed']}. Data: {data}. "
        f"Probe: input of one unit of the last hidden sigmoid over a fixed batch of test images (BN in inference mode)."
    )


def draw(table: pd.DataFrame, caption: str, stem: Path) -> list[Path]:
    fig, (ax_acc, *ax_probe) = plots.new_figure(3)
    for bn in ARMS:
        arm = table[table["bn"] == bn]
        ax_acc.plot(arm["step"], arm["test_accuracy"], color=plots.BN_COLORS[bn], label=plots.BN_LABELS[bn])
    lowest = table.loc[table["step"] > 0, "test_accuracy"].quantile(0.05)
    ax_acc.set(title="(a) test accuracy", xlabel="training steps", ylabel="test accuracy", ylim=(max(0.0, math.floor(lowest * 10) / 10), 1.0))
    ax_acc.legend(loc="best")
    for ax, bn, letter in zip(ax_probe, ARMS, "bc"):
        arm = table[table["bn"] == bn]
        ax.plot(arm["step"], arm["p50"], color=plots.BN_COLORS[bn], label="50th percentile")
        for q in ("p15", "p85"):
            ax.plot(arm["step"], arm[q], color=plots.BN_COLORS[bn], lw=0.9, ls="--", label="15th / 85th" if q == "p15" else None)
        ax.set(title=f"({letter}) sigmoid input, {plots.BN_LABELS[bn]}", xlabel="training steps", ylabel="input to the sigmoid")
        ax.legend(loc="best")
    ax_probe[1].sharey(ax_probe[0])
    plots.caption(fig, caption)
    return plots.save(fig, stem)


def _fmt_steps(v: float) -> str:
    return f"{int(v):,}" if math.isfinite(v) else "not reached"


def summary(table: pd.DataFrame, arms: dict[str, pd.Series], caption: str) -> str:
    rows, facts = [], {}
    for bn in ARMS:
        arm = table[table["bn"] == bn].set_index("step")
        acc = arm["test_accuracy"]
        reach = {t: analysis.steps_to_reach(acc, t) for t in THRESHOLDS}
        settled = SETTLED * acc.index.max()
        p50, p50_late = analysis.drift(arm["p50"]), analysis.drift(arm["p50"], since=settled)
        spread = analysis.drift(arm["p85"] - arm["p15"], since=settled)
        facts[bn] = {"final": acc.iloc[-1], "reach": reach, "net": abs(p50_late["end"] - p50_late["start"]), "max": p50_late["max_abs_drift"]}
        rows.append(
            f"| {plots.BN_LABELS[bn]} | {arms[bn]['status']} | {acc.iloc[-1]:.4f} | {acc.max():.4f} | "
            + " | ".join(_fmt_steps(reach[t]) for t in THRESHOLDS)
            + f" | {p50['start']:+.3f} / {p50_late['start']:+.3f} / {p50['end']:+.3f} | {p50['max_abs_drift']:.3f} | {p50_late['max_abs_drift']:.3f}"
            + f" | {spread['start']:.3f} -> {spread['end']:.3f} |"
        )
    bn, no = facts["before"], facts["none"]

    def verdict(holds: bool) -> str:
        return "holds" if holds else "does not hold"

    reach_bn, reach_no = bn["reach"][THRESHOLDS[0]], no["reach"][THRESHOLDS[0]]
    faster = reach_bn < reach_no
    steadier = {(True, True): "holds", (False, False): "does not hold"}.get((bn["net"] < no["net"], bn["max"] < no["max"]), "is mixed")
    claims = [
        f"- Higher test accuracy with BN: {verdict(bn['final'] > no['final'])} (final {bn['final']:.4f} with BN, {no['final']:.4f} without).",
        f"- Reached faster with BN: {verdict(faster)} (90% at step {_fmt_steps(reach_bn)} with BN, {_fmt_steps(reach_no)} without).",
        f"- A more stable sigmoid input with BN: {steadier} (after the first {SETTLED:.0%} of training the median's net drift is "
        f"{bn['net']:.3f} with BN and {no['net']:.3f} without; its largest excursion {bn['max']:.3f} and {no['max']:.3f}).",
    ]
    steps = int(table["step"].max())
    return "\n".join([
        "# Figure 1 (Ioffe & Szegedy 2015, Section 4.1), reproduced",
        "",
        f"{caption} {steps:,} steps per arm, evaluated every {int(table['step'].iloc[1]):,} steps.",
        "",
        f"| arm | status | final test acc | max test acc | steps to 90% | steps to 95% | median sigmoid input at step 0 / {SETTLED:.0%} / end "
        f"| max drift of the median from step 0 | max drift of the median after {SETTLED:.0%} | 15th-85th spread, {SETTLED:.0%} -> end |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "The paper's claims, as measured here:",
        "",
        *claims,
        "",
        "Figure: fig1.png / fig1.pdf; the numbers plotted: fig1.csv; the runs: runs.csv, curves.parquet.",
        "",
    ])


def build(study_dir: Path) -> list[Path]:
    runs, curves = collect.load(study_dir)
    arms = _pick_arms(runs)
    table = figure_table(runs, curves)
    table.to_csv(study_dir / "fig1.csv", index=False)
    caption = caption_for(arms["before"])
    paths = draw(table, caption, study_dir / "fig1")
    (study_dir / "summary.md").write_text(summary(table, arms, caption))
    return [*paths, study_dir / "fig1.csv", study_dir / "summary.md"]


STUDY = Study("fig1", "Figure 1 (Ioffe & Szegedy 2015, Section 4.1)", "the paper's Figure 1: MLP accuracy and a sigmoid's input distribution, BN vs none, 10 seeds",
              sweeps=("fig1",), claims=CLAIMS, render=build, order=0)
