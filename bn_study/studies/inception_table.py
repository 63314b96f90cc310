"""The paper's Figure 3 table (steps to reach the baseline's best accuracy, max accuracy, speedup) and its
Figure 2 (accuracy vs steps), for the `inception` variants on a small CNN."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from bn_study.claims import Best, Claim, Context, Side, StepsTo, factor
from bn_study.render import plots
from bn_study.studies.common import (
    Tables,
    draw_band,
    final_by,
    fmt_ci,
    mark_diverged,
    markdown_table,
    median_curves,
    write,
)
from bn_study.studies.registry import CLEAN_RERUN_2026_12_05, RERUN_2026_12_05, Study
from bn_study.tables import stats

TITLE = "The paper's Inception protocol (Section 4.2) on a small CNN"
# The BN variants' second evaluation (experiment inception_table_precise): statistics recomputed over this many batches.
PRECISE_KEY, PRECISE = "trainer.precise_bn", 50
ORDER = ["Inception", "BN-Baseline", "BN-x5", "BN-x30", "BN-x5-Sigmoid", "Baseline-Sigmoid", "x5-no-BN"]
# Figure 3 of the paper: steps (millions) to reach Inception's 72.2%, and max accuracy.
PUBLISHED = {
    "Inception": ("31.0M", "72.2%"),
    "BN-Baseline": ("13.3M", "72.7%"),
    "BN-x5": ("2.1M", "73.0%"),
    "BN-x30": ("2.7M", "74.8%"),
    "BN-x5-Sigmoid": ("-", "69.8%"),
    "Baseline-Sigmoid": ("-", "< 0.1%"),
    "x5-no-BN": ("not run", "'machine infinity'"),
}
COLORS = dict(
    zip(
        ORDER,
        [
            plots.BN_COLORS["none"],
            plots.BN_COLORS["before"],
            plots.CYCLE[0],
            plots.CYCLE[1],
            plots.CYCLE[2],
            plots.CYCLE[4],
            plots.CYCLE[3],
        ],
    )
)


def per_run(study: Tables) -> pd.DataFrame:
    """Per run: its best validation accuracy, and the steps it took to reach its seed's baseline target (the
    best validation accuracy of that seed's Inception run), both on the validation split."""
    runs = study.runs.copy()
    context = Context(study.runs, study.curves)
    runs["max_val_accuracy"] = [Best("val", "accuracy").value(runs.loc[[i]], study.curves, context) for i in runs.index]
    runs["target"] = [context.best({"tag": "Inception"}, seed, "val", "accuracy") for seed in runs["seed"]]
    runs["steps_to_target"] = [10 ** TO_BASELINE.value(runs.loc[[i]], study.curves, context) for i in runs.index]
    return runs


def _label(tag: str, precise: int) -> str:
    return f"{tag}, recomputed statistics" if precise else tag


def _arm(table: pd.DataFrame, tag: str, precise: int) -> pd.DataFrame:
    return table[(table["tag"] == tag) & (table[PRECISE_KEY] == precise)]


def takeaway(runs: pd.DataFrame, arms: list) -> str:
    """The figure's point in one line: each variant's median steps to its seed's Inception best (what the claims read)."""
    said = []
    for tag, precise in arms:
        steps = float(np.median(_arm(runs, tag, precise)["steps_to_target"]))
        said.append(f"{_label(tag, precise)} {f'{steps:,.0f}' if math.isfinite(steps) else 'not reached'}")
    return "Median steps to the seed's Inception best: " + "; ".join(said) + "."


def build(study_dir: Path, out: Path) -> list[Path]:
    study = Tables.load(study_dir, out)
    arms = [(t, p) for t in ORDER for p in (0, PRECISE) if len(_arm(study.runs, t, p))]
    curves = median_curves(study, ["tag", PRECISE_KEY], split="val")
    runs = per_run(study)

    fig, ax = plots.new_figure(1, width=6.0, height=3.8)
    for tag, precise in arms:
        draw_band(
            ax, _arm(curves, tag, precise), "step", COLORS[tag], _label(tag, precise), ls="--" if precise else "-"
        )
        mark_diverged(ax, _arm(study.runs, tag, precise), COLORS[tag])
    target = float(np.median(runs.loc[runs["tag"] == "Inception", "target"]))
    ax.axhline(target, color="0.4", lw=0.8, ls=":")
    ax.annotate(
        f"Inception's best, median over seeds: {target:.4f}",
        (0.99, target),
        xycoords=("axes fraction", "data"),
        ha="right",
        va="bottom",
        fontsize=7,
        color="0.3",
    )
    ax.set(
        title="validation accuracy vs training steps (cf. the paper's Figure 2)",
        xlabel="training steps",
        ylabel="validation accuracy",
        ylim=(0, 1),
    )
    ax.legend(loc="lower right", fontsize=7)
    plots.caption(
        fig,
        f"{takeaway(runs, arms)} Keras-blog CNN, SGD momentum 0.9, batch 32, eta 0.01; {study.band_note()}; x: a diverged run. BN evaluated on its "
        f"moving averages (solid) or on statistics recomputed over {PRECISE} training batches before each evaluation (dashed). "
        f"{study.data_note()}.",
    )

    final = final_by(study, ["tag", PRECISE_KEY])
    rows = []
    for tag, precise in arms:
        group = _arm(runs, tag, precise)
        steps = stats.median_interval(group["steps_to_target"])
        reach = (
            f"{steps.median:,.0f} [{steps.low:,.0f}, {steps.high:,.0f}]"
            if math.isfinite(steps.median)
            else "not reached (median)"
        )
        best = stats.median_interval(group["max_val_accuracy"])
        rows.append(
            [
                _label(tag, precise),
                reach,
                f"{best.median:.4f} [{best.low:.4f}, {best.high:.4f}]",
                fmt_ci(_arm(final, tag, precise).iloc[0]),
                *(("", "") if precise else PUBLISHED[tag]),
            ]
        )
    summary = "\n".join(
        [
            f"# {TITLE}",
            "",
            f"Keras-blog CNN, SGD momentum 0.9, batch 32, {int(study.runs['steps'].max()):,} steps, eta = 0.01, lr x0.94 every 100 steps "
            f"(every 17 for BN-x5/x30: the paper's 6x faster decay); dropout 0.2 and L2 5e-4 in the baseline, none and 1e-4 from BN-x5 on. "
            f"x5-no-BN (not in the paper) is BN-x5's whole package without BN, so that BN's own part of BN-x5's speed can be told from the package's. "
            f"{study.seeds_note()}. {study.data_note()}. 1,000 steps: shortened so that `make studies` fits in about an hour here (on mnist5k).",
            "",
            "Each seed's target is the best validation accuracy its Inception run reached (the paper's 72.2% is Inception's maximum); "
            "steps and maxima are read on the validation split, and the test split is only reported."
            + study.eval_note(),
            "",
            f"BN is evaluated, as Keras does, on moving averages of its batch statistics (momentum "
            f"{study.runs['model.bn_momentum'].iloc[0]:g}): averages over roughly the last hundred steps' weights, which lag a network "
            f"that is still changing fast, as it is here early in a {int(study.runs['steps'].max()):,}-step run at rates up to x5. "
            f"BN-Baseline and BN-x5 run a second time, the same training (to the last digit where both ran on one host; a host "
            f"with other numerics trains slightly differently), evaluated on statistics recomputed over {PRECISE} fixed "
            f"training batches ({PRECISE * int(study.runs['trainer.batch_size'].iloc[0]):,} images) before each evaluation "
            "(precise BN, Wu & Johnson 2021): the speed claims are judged on both, the moving-average ones flagged as handicapped.",
            "",
            markdown_table(
                [
                    "model",
                    f"steps to the seed's Inception best, validation ({study.band_note()})",
                    "max validation accuracy",
                    "final test accuracy",
                    "paper: steps to 72.2%",
                    "paper: max accuracy",
                ],
                rows,
            ),
            "",
            *study.claims_section(),
            "Figure: inception_table.png / .pdf; the curves plotted: inception_table.csv; per-run steps and maxima: inception_runs.csv.",
            "",
        ]
    )
    runs[["run_id", "tag", "seed", "status", "target", "max_val_accuracy", "steps_to_target", "test_accuracy"]].to_csv(
        out / "inception_runs.csv", index=False
    )
    return write(study, "inception_table", fig, curves, summary)


PAPER = "Ioffe & Szegedy (2015), Section 4.2, Figure 3"
TO_BASELINE = StepsTo("val", "accuracy", target=(("tag", "Inception"),))


def _tag(tag: str, precise: int = 0) -> Side:
    return Side(_label(tag, precise), {"tag": tag, PRECISE_KEY: precise})


LAG = (
    "BN is read on its moving averages (momentum 0.99), which lag the weights early in a 1,000-step run, when the speed "
    "is measured"
)


MARGIN_HISTORY = (
    "Margin made exactly log10 of its factor after the results and a review (it was rounded down, to 0.301 or 0.176, which "
    "let a ratio exactly at the factor pass as beyond it): this turned bn_baseline_faster on Fashion-MNIST from holds to "
    "inconclusive (one seed at exactly 600 against 900 steps); no other outcome changed. The runs made again on another host "
    "(2efae33) moved it back to holds, no seed at the factor any more."
)


BN_BASELINE_HISTORY = (
    MARGIN_HISTORY
    + " On mnist5k the censoring engine of 1130483 (a target not reached counts as at least the run's length) turned this "
    "claim, on unchanged runs, from contradicted (x inf: BN-Baseline never reached Inception's best) to inconclusive "
    "(x1.11 [x1.11, x inf], 5 pairs censored); it has stayed inconclusive since."
)
TWIN_HISTORY = (
    "Added when a review pointed out that the speed claims read BN on moving averages early in a short run, with the "
    "moving-average verdicts known; the same sentence, sides and margin, BN evaluated on recomputed statistics."
)


def _speed(name: str, sentence: str, a: str, b: str, margin: float, history: str) -> tuple[Claim, Claim]:
    """The speed claim as the paper reads it (BN on its moving averages: handicapped here) and its fair twin."""
    twin = f"inception_table.{name}_precise"
    claim = Claim(
        f"inception_table.{name}",
        PAPER,
        sentence,
        _tag(a),
        _tag(b),
        TO_BASELINE,
        "lower",
        margin=margin,
        history=history,
    )
    return (
        replace(claim, handicap=LAG, fair_twin=twin),
        replace(claim, id=twin, a=_tag(a, PRECISE), history=TWIN_HISTORY),
    )


CLAIMS = (
    *_speed(
        "x5_faster",
        "BN-x5 needs 14 times fewer steps than Inception to reach 72.2% (tested here: at least 2 times fewer "
        "to reach the seed's Inception best).",
        "BN-x5",
        "Inception",
        factor(2),
        MARGIN_HISTORY,
    ),
    *_speed(
        "bn_part_of_x5",
        "BN-x5 (BN with the x5 rate, no dropout, L2 / 5, faster decay) needs far fewer steps; the same rate "
        "on plain Inception 'caused the model parameters to reach machine infinity': BN's own part, against the x5 package without BN.",
        "BN-x5",
        "x5-no-BN",
        factor(2),
        MARGIN_HISTORY,
    ),
    *_speed(
        "bn_baseline_faster",
        "BN-Baseline reaches Inception's accuracy in 13.3M steps against 31.0M (tested here: at least "
        "1.5 times fewer).",
        "BN-Baseline",
        "Inception",
        factor(1.5),
        BN_BASELINE_HISTORY,
    ),
    Claim(
        "inception_table.sigmoid",
        PAPER,
        "Plain Inception with sigmoid never achieves better than 1/1000 accuracy; BN-x5-Sigmoid reaches 69.8%.",
        _tag("BN-x5-Sigmoid"),
        _tag("Baseline-Sigmoid"),
        Best("val", "accuracy"),
        "higher",
        margin=0.1,
    ),
)

STUDY = Study(
    "inception_table",
    TITLE,
    "the paper's Section 4.2 variants (BN-x5, BN-x30, ... and x5 without BN) on a small CNN: steps to the baseline's accuracy",
    sweeps=("inception_table", "inception_table_precise"),
    claims=CLAIMS,
    render=build,
    order=40,
    history="3-seed results at 2,000 steps (392cf67) took the target and the maxima on the test split and judged 'BN-x5 at least 2x "
    "faster'; here targets and maxima are on the validation split, and x5-no-BN is new.",
    reruns=f"{RERUN_2026_12_05}, and trainer.eval_subset=2000 of the test split only (Fashion-MNIST's test curve before the "
    "last evaluation on a 2,000-image subset; the validation curve, which the claims read, stays whole): 0.58 h of run time -> "
    "0.17 h on Fashion-MNIST, 0.23 h -> 0.10 h on mnist5k, across the two hosts (results/bench/studies.md compares the "
    "protocols on one host). One outcome moved: bn_baseline_faster on Fashion-MNIST, inconclusive x0.60 [x0.55, x0.67] -> "
    "holds x0.63 [x0.58, x0.65] against the margin x0.67; the other seven are as before. "
    f"{CLEAN_RERUN_2026_12_05} (mnist5k only): 0.102 h -> 0.088 h; no outcome moved.",
)
