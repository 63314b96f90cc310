"""Is it batch statistics, or normalisation? BN against layer norm (Ba et al. 2016) and group norm (Wu & He
2018), which normalise each example on its own, and against no normalisation: learning-rate range and speed
on the Figure 1 MLP, batch-size sensitivity, and the Keras blog's CNN."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bn_study.claims import Claim, Context, Final, GridChange, GridCount, Side, StepsTo, factor
from bn_study.render import plots
from bn_study.studies.common import (
    Tables,
    draw_band,
    final_by,
    fmt_ci,
    markdown_table,
    median_curves,
    steps_summary,
    write,
)
from bn_study.studies.registry import CLEAN_RERUN_2026_12_05, RERUN_2026_12_05, Study
from bn_study.tables import collect

TITLE = "Normalisers: batch statistics or normalisation?"
LR, BATCH, CNN, SPEED = "normalizers", "normalizers_batch", "normalizers_cnn", "normalizers_speed"
ARM_KEYS = ["model.bn", "model.norm", "trainer.precise_bn"]
PRECISE_BATCHES = 100  # arm bn_precise at batch 32
BN_MOMENTUM = 0.99  # Keras's default, which every arm here keeps
GROUPS = 4  # model.norm_groups' default, which the arms keep
# (model.bn, model.norm, trainer.precise_bn) -> label and colour: one source for every panel, table and claim.
ARMS = {
    ("none", "batch", 0): ("no normalisation", plots.NORM_COLORS["none"]),
    ("before", "batch", 0): ("BN", plots.NORM_COLORS["batch"]),
    ("before", "batch", PRECISE_BATCHES): ("BN, precise statistics", plots.CYCLE[3]),
    ("before", "layer", 0): ("layer norm", plots.NORM_COLORS["layer"]),
    ("before", "group", 0): ("group norm", plots.NORM_COLORS["group"]),
}
NONE, BN, BN_PRECISE, LN, GN = ARMS
# The learning rate the speed claim and panel (b) read: the middle of the grid, fixed in the claim's declaration.
SPEED_LR = 1.0
# An lr "trains" when its final validation accuracy reaches this fraction of BN's best median over the grid:
# a target that follows the dataset, set by one arm for all.
OF_BEST = 0.95
SMALL, LARGE = 2, 64  # the batch sizes the batch-sensitivity claim compares


def _where(arm: tuple, sweep: str, **more) -> dict:
    bn, norm, precise = arm
    return {
        "study": sweep,
        "model.bn": bn,
        **({} if bn == "none" else {"model.norm": norm, "trainer.precise_bn": precise}),
        **more,
    }


def _label(arm) -> str:
    return ARMS[arm][0]


def _arms_of(table: pd.DataFrame) -> list[tuple]:
    return [arm for arm in ARMS if len(collect.select(table, {k: v for k, v in zip(ARM_KEYS, arm)}))]


def _arm_rows(table: pd.DataFrame, arm) -> pd.DataFrame:
    return collect.select(table, dict(zip(ARM_KEYS, arm)))


def target(study: Tables) -> float:
    return OF_BEST * Context(study.runs, study.curves).best_median(_where(BN, LR), "optimizer.lr", "val_accuracy")


def takeaway(lr_final: pd.DataFrame, goal: float) -> str:
    """The figure's point in one line, from (a): how many of the rates tried each normaliser trains at."""
    rates = lr_final["optimizer.lr"].nunique()
    said = [f"{_label(arm)} {int((_arm_rows(lr_final, arm)['median'] >= goal).sum())}" for arm in _arms_of(lr_final)]
    return f"Of the {rates} learning rates in (a), the median run clears the dashed line at: {', '.join(said)}."


def build(study_dir: Path, out: Path) -> list[Path]:
    study = Tables.load(study_dir, out)
    lr, batch, cnn, speed = (study.select({"study": s}) for s in (LR, BATCH, CNN, SPEED))
    fig, axes = plots.new_figure(4, width=3.9, height=3.4)
    goal = target(study)

    lr_final = final_by(lr, ["optimizer.lr", *ARM_KEYS], metric="val_accuracy")
    for arm in _arms_of(lr_final):
        rows = _arm_rows(lr_final, arm)
        draw_band(axes[0], rows, "optimizer.lr", ARMS[arm][1], _label(arm), logx=True)
        for _, r in rows[rows["n_diverged"] > 0].iterrows():
            axes[0].annotate(
                f"{r['n_diverged']}/{r['n_runs']} div.",
                (r["optimizer.lr"], 0.03),
                color=ARMS[arm][1],
                fontsize=6,
                ha="center",
                xycoords=("data", "axes fraction"),
            )
    axes[0].axhline(goal, color="0.5", lw=0.8, ls="--")
    axes[0].set(
        title="(a) Figure 1 MLP: learning-rate range",
        xlabel="learning rate (plain SGD)",
        ylabel="final validation accuracy",
        ylim=(0, 1),
    )
    axes[0].legend(fontsize=7, loc="lower left")

    at_speed = lr.select({"optimizer.lr": SPEED_LR})
    speed_curves = median_curves(at_speed, ARM_KEYS, "val")
    for arm in _arms_of(speed_curves):
        draw_band(axes[1], _arm_rows(speed_curves, arm), "step", ARMS[arm][1], _label(arm))
    axes[1].set(
        title=f"(b) the same at lr {SPEED_LR:g}: speed",
        xlabel="training steps",
        ylabel="validation accuracy",
        ylim=(0, 1),
    )

    batch_final = final_by(batch, ["trainer.batch_size", *ARM_KEYS], metric="test_accuracy")
    for arm in _arms_of(batch_final):
        draw_band(axes[2], _arm_rows(batch_final, arm), "trainer.batch_size", ARMS[arm][1], _label(arm), logx=True)
    axes[2].set_xscale("log", base=2)
    axes[2].set(
        title="(c) relu MLP: batch size",
        xlabel="batch size (equal examples seen)",
        ylabel="final test accuracy",
        ylim=(0, 1),
    )

    cnn_curves = median_curves(cnn, ARM_KEYS, "test")
    for arm in _arms_of(cnn_curves):
        draw_band(axes[3], _arm_rows(cnn_curves, arm), "step", ARMS[arm][1], _label(arm))
    low = float(cnn_curves.loc[cnn_curves["step"] > 0, "ci_low"].min()) if len(cnn_curves) else 0.0
    axes[3].set(
        title="(d) Keras blog CNN",
        xlabel="training steps",
        ylabel="test accuracy",
        ylim=(max(0.0, math.floor(low * 20) / 20), 1),
    )
    axes[3].legend(fontsize=7, loc="lower right")
    plots.caption(
        fig,
        f"{takeaway(lr_final, goal)} {study.band_note().capitalize()}. Each normaliser sits before each hidden activation, none on the output layer; group "
        f"norm: {GROUPS} groups. (a, b): 3x100 sigmoid MLP, N(0, 0.01^2) kernels, "
        f"plain SGD, batch 60, {int(lr.runs['steps'].max()):,} steps; (a) dashed: {OF_BEST:.0%} of BN's best median validation "
        f"accuracy over the rates ({goal:.3f}), the bar an lr must reach to 'train'. (c): 3x100 relu MLP, SGD momentum 0.9 lr 0.01, "
        f"{_examples(batch):,} examples seen at every batch size. (d): relu, Adam lr 0.001, batch 32, {int(cnn.runs['steps'].max()) if len(cnn.runs) else 0} "
        f"steps; 'BN, precise statistics': the same training as BN, evaluated with population statistics recomputed over "
        f"{PRECISE_BATCHES} training batches instead of the moving averages.{cnn.eval_note()} {study.data_note()}.",
    )

    summary = "\n".join(
        [
            f"# {TITLE}",
            "",
            "BN normalises each unit over the mini-batch, so its output depends on the other examples and differs between training and "
            "inference. Layer norm (Ba, Kiros & Hinton 2016) normalises each example over its layer's units, group norm (Wu & He 2018) over "
            "groups of its channels: no batch dependence, the same computation in training and at inference. Where layer or group norm "
            "share BN's benefits, those do not need batch statistics; where they do not, batch statistics are one difference but not the "
            "only one (each normaliser is invariant to different rescalings, and normalises over different units). Keras's own layers (BatchNormalization, "
            "LayerNormalization, GroupNormalization; a conv block's layer norm is one-group GroupNormalization, as Wu & He define it), "
            "each before each hidden activation in place of BN, with a gain and bias per unit or channel; the linear layers before them "
            f"have no bias. Group norm uses {GROUPS} groups (Wu & He's default is 32 groups of wide conv layers; these blocks have 32 to 100 "
            f"channels, so 4 keeps 8 to 25 channels per group). {study.seeds_note()}; at a claim's first look (5 seeds) its interval is the range of the 5 "
            f"paired differences, so 'holds' there means every seed's difference clears the margin; an undecided claim gets 10, then 20 "
            f"seeds in the cells it reads. {study.data_note()}.",
            "",
            "## (a, b) The Figure 1 MLP: learning-rate range and speed",
            "",
            f"3x100 sigmoid MLP, N(0, 0.01^2) kernels (the Figure 1 network), plain SGD, batch 60, {int(lr.runs['steps'].max()):,} steps "
            f"({lr.epochs_note()}). Final validation accuracy; an lr 'trains' where it reaches {goal:.4f} ({OF_BEST:.0%} of BN's best median "
            "over the rates, set on validation):",
            "",
            _grid_table(lr_final, "optimizer.lr", "lr", goal),
            "",
            "'Trains' here is 'reaches the target within 2,000 steps', so a slower normaliser can lose rates it would reach later: range and "
            "speed are not separated. The target is a threshold, so the counts move with it; per seed, the rates that train at 95% (the "
            "claims' target) and at 90% of BN's best median:",
            "",
            _counts_table(lr),
            "",
            f"Speed at lr {SPEED_LR:g} (the middle of the grid, fixed in the declaration): steps until validation accuracy reaches {OF_BEST:.0%} of BN's best over the same "
            f"run (per seed), median over seeds, and final test accuracy:",
            "",
            _speed_table(lr.select({"optimizer.lr": SPEED_LR}), LR),
            "",
            "BN reaches its own target in every seed by construction; the other arms are measured against BN's best.",
            "",
            *_long_speed(speed),
            "## (c) Batch size",
            "",
            f"3x100 relu MLP, SGD momentum 0.9 lr 0.01, {_examples(batch):,} examples seen at every batch size (the batch_size study's setup). "
            "Final test accuracy (no selection involved):",
            "",
            _grid_table(
                final_by(batch, ["trainer.batch_size", *ARM_KEYS], metric="test_accuracy"),
                "trainer.batch_size",
                "batch",
                None,
            ),
            "",
            f"Equal examples mean {_examples(batch) // SMALL:,} steps of momentum SGD at batch {SMALL} against {_examples(batch) // LARGE:,} at "
            f"batch {LARGE}: small batches change the optimisation as well as BN's statistics. The network without normalisation shows that "
            f"part: its median change from batch {LARGE} to {SMALL} is {_change(batch, NONE)} (BN: {_change(batch, BN)}; layer norm: "
            f"{_change(batch, LN)}).",
            "",
            "## (d) The Keras blog's CNN",
            "",
            f"Conv32-Pool-Conv64-Pool-Conv64-Dense64-Dense10, relu, Adam lr 0.001, batch 32, {int(cnn.runs['steps'].max()) if len(cnn.runs) else 0:,} "
            f"steps ({cnn.epochs_note() if len(cnn.runs) else ''}). The two BN arms train identically (BN trains on batch statistics either "
            f"way) and differ only at inference: Keras's moving averages (momentum {BN_MOMENTUM}, started at mean 0 and variance 1), or the "
            f"population statistics recomputed before each evaluation over {PRECISE_BATCHES} training batches (precise BN; see bn_inference). "
            f"Here the moving averages cost BN a median {_bn_inference_cost(cnn)} of final test accuracy: the first two CNN claims compare "
            "the normalisers against that handicapped BN, the last two against precise BN, which is the comparison of the normalisers "
            "themselves. These are short runs (the epochs above), compared where they stop, not at convergence."
            + cnn.eval_note()
            + " Final test accuracy:",
            "",
            markdown_table(
                ["normaliser", "final test accuracy", "final validation accuracy"],
                [
                    [
                        _label(arm),
                        fmt_ci(_arm_rows(final_by(cnn, ARM_KEYS, "test_accuracy"), arm).iloc[0]),
                        fmt_ci(_arm_rows(final_by(cnn, ARM_KEYS, "val_accuracy"), arm).iloc[0]),
                    ]
                    for arm in _arms_of(cnn.runs)
                ],
            )
            if len(cnn.runs)
            else "",
            "",
            f"Cells: {study.band_note()}. Batch Renormalization is the batch_size study's arm, not this one's.",
            "",
            *study.claims_section(),
            "Figure: normalizers.png / .pdf; the numbers plotted: normalizers.csv.",
            "",
        ]
    )
    table = pd.concat(
        [
            lr_final.assign(panel="a"),
            speed_curves.assign(panel="b"),
            batch_final.assign(panel="c"),
            cnn_curves.assign(panel="d"),
        ]
    )
    return write(study, "normalizers", fig, table, summary)


def _counts_table(lr: Tables) -> str:
    """Per arm: per seed, how many learning rates train at the claims' target and at a lower one (how the counts move with it)."""
    context = Context(lr.runs, lr.curves)
    fractions = (OF_BEST, 0.90)
    rows = []
    for arm in _arms_of(lr.runs):
        runs = _arm_rows(lr.runs, arm)
        cells = []
        for fraction in fractions:
            metric = GridCount(grid="optimizer.lr", split="val", of_best=fraction, baseline=TRAINS.baseline)
            counts = [metric.value(g, lr.curves, context) for _, g in runs.groupby("seed")]
            cells.append(", ".join("-" if math.isnan(c) else f"{c:.0f}" for c in counts))
        rows.append([_label(arm), *cells])
    return markdown_table(
        [
            "normaliser",
            *(
                f"rates that train at {f:.0%} of BN's best (seeds {', '.join(str(x) for x in sorted(lr.runs['seed'].unique()))})"
                for f in fractions
            ),
        ],
        rows,
    )


def _change(batch: Tables, arm) -> str:
    """The median over seeds of an arm's final test accuracy at batch SMALL minus at batch LARGE."""
    runs = _arm_rows(batch.runs, arm)
    at = {
        b: runs[runs["trainer.batch_size"] == b].set_index("seed")["test_accuracy"].fillna(0.0) for b in (SMALL, LARGE)
    }
    change = (at[SMALL] - at[LARGE]).dropna()
    return f"{change.median():+.3f}" if len(change) else "-"


def _bn_inference_cost(cnn: Tables) -> str:
    """The median over seeds of BN's final test accuracy with precise statistics minus with its moving averages."""
    runs = [_arm_rows(cnn.runs, arm).set_index("seed")["test_accuracy"] for arm in (BN_PRECISE, BN)]
    gap = (runs[0] - runs[1]).dropna()
    return f"{gap.median():.3f}" if len(gap) else "-"


def _examples(batch: Tables) -> int:
    runs = batch.runs
    return int((runs["steps"] * runs["trainer.batch_size"]).max()) if len(runs) else 0


def _grid_table(final: pd.DataFrame, key: str, name: str, goal: float | None) -> str:
    arms = _arms_of(final)

    def cell(arm, value):
        row = collect.select(_arm_rows(final, arm), {key: value})
        if row.empty:
            return "-"
        text = fmt_ci(row.iloc[0])
        trained = (
            goal is not None
            and not math.isnan(row.iloc[0]["median"])
            and row.iloc[0]["median"] >= goal
            and not row.iloc[0]["n_diverged"]
        )
        return f"**{text}**" if trained else text

    rows = [[f"{v:g}", *(cell(arm, v) for arm in arms)] for v in sorted(final[key].unique())]
    note = (
        ""
        if goal is None
        else f"\n\nIn bold: the median reaches {goal:.4f} with no run diverged (the claims count per seed)."
    )
    return markdown_table([name, *(_label(arm) for arm in arms)], rows) + note


def _speed(sweep: str) -> StepsTo:
    return StepsTo(
        "val", "accuracy", target=tuple(_where(BN, sweep, **{"optimizer.lr": SPEED_LR}).items()), fraction=OF_BEST
    )


def _speed_table(at: Tables, sweep: str) -> str:
    if at.runs.empty:
        return ""
    metric = _speed(sweep)
    rows = []
    for arm in _arms_of(at.runs):
        runs = _arm_rows(at.runs, arm)
        rows.append(
            [
                _label(arm),
                *steps_summary(at, runs, metric),
                fmt_ci(final_by(Tables(runs, at.curves, at.dir, at.out), ["model.bn"]).iloc[0]),
            ]
        )
    return markdown_table(
        ["normaliser", "steps to the target (median)", "seeds that reach it", "final test accuracy"], rows
    )


def _long_speed(speed: Tables) -> list[str]:
    """The speed table of the longer runs (experiments/normalizers_speed.yaml), which the speed claim reads."""
    if speed.runs.empty:
        return []
    return [
        f"The same at lr {SPEED_LR:g} run for {int(speed.runs['steps'].max()):,} steps ({speed.epochs_note()}), against BN's best over "
        "these longer runs: what `normalizers.layer_faster_than_none` reads, since without normalisation the 2,000-step runs never "
        "reach the target:",
        "",
        _speed_table(speed, SPEED),
        "",
    ]


BA = "Ba, Kiros & Hinton (2016), 'Layer Normalization'"
WU_HE = "Wu & He (2018), 'Group Normalization'"
TRAINS = GridCount(grid="optimizer.lr", split="val", of_best=OF_BEST, baseline=tuple(_where(BN, LR).items()))
PRECISE_HISTORY = (
    "Added after the mnist5k results of the two claims above (so with the group- and layer-norm test accuracies known there): "
    "there BN's test accuracy, read with its moving averages, stays near chance for most of the 600 "
    "steps (their start value: see bn_inference), so those claims compare against a BN handicapped at inference."
)
LR_QUESTION = "Ioffe & Szegedy (2015)'s 'much higher learning rates', asked of layer norm (this study's question)"
REATTRIBUTED = (
    "Declared in 896c061 citing Ba et al. (2016), the first as 'layer normalisation can replace batch normalisation'; re-attributed and "
    "reworded after a review (Ba et al. make no claim about learning-rate ranges, and find BN better than layer norm in convnets), "
    "the rule unchanged."
)
CNN_MARGIN = 0.005  # 5 of mnist5k's 1,000 test images; Wu & He's GN-BN gap on ImageNet at batch 32 was 0.5 points

MOVING_HANDICAP = (
    "BN is read on its moving averages after a short run (the Keras blog's CNN, 340 steps), which lag its weights; "
    "layer and group norm have no such statistics to lag"
)
CLAIMS = (
    Claim(
        "normalizers.layer_lr_range_like_bn",
        LR_QUESTION,
        "BN's 'much higher learning rates' do not need batch statistics: on the Figure 1 "
        "MLP, layer norm trains (within the study's 2,000 steps) at no fewer learning rates than BN.",
        Side(_label(LN), _where(LN, LR)),
        Side(_label(BN), _where(BN, LR)),
        TRAINS,
        "not_lower",
        0.5,
        history=REATTRIBUTED,
    ),
    Claim(
        "normalizers.layer_lr_range_beats_none",
        LR_QUESTION,
        "Normalising each example on its own, without batch statistics, already widens the "
        "range of learning rates that train (within 2,000 steps): layer norm trains at more rates than no normalisation.",
        Side(_label(LN), _where(LN, LR)),
        Side(_label(NONE), _where(NONE, LR)),
        TRAINS,
        "higher",
        0.5,
        history=REATTRIBUTED,
    ),
    Claim(
        "normalizers.layer_faster_than_none",
        BA,
        f"Layer normalisation reduces training time: at lr {SPEED_LR:g}, layer norm reaches "
        f"{OF_BEST:.0%} of BN's best validation accuracy in fewer steps than no normalisation.",
        Side(_label(LN), _where(LN, SPEED, **{"optimizer.lr": SPEED_LR})),
        Side(_label(NONE), _where(NONE, SPEED, **{"optimizer.lr": SPEED_LR})),
        _speed(SPEED),
        "lower",
        factor(1.5),
        history="Margin made exactly log10(1.5) after the results (it was 0.176, which lets a ratio of exactly 2/3 pass); no outcome "
        "changed. On 2026-12-07, with those runs known, moved to runs of 10,000 steps (experiments/normalizers_speed.yaml, the target "
        "BN's best over them): in the 2,000-step runs no seed without normalisation reached the target, on either dataset, so the "
        "claim was inconclusive with every pair censored, and could not have held whatever the seeds (layer norm reached it at "
        "1,500 steps on mnist5k, the runs ended at 2,000).",
    ),
    Claim(
        "normalizers.layer_ignores_small_batch",
        f"{BA}; {WU_HE}",
        f"A normaliser with no batch dependence is not hurt by small batches as BN "
        f"is: from batch {LARGE} to batch {SMALL}, layer norm loses less test accuracy than BN.",
        Side(_label(LN), _where(LN, BATCH)),
        Side(_label(BN), _where(BN, BATCH)),
        GridChange("test", "accuracy", grid="trainer.batch_size", start=LARGE, to=SMALL),
        "higher",
        0.01,
        history="Written with BN's side known: the batch_size study runs BN in the same setup, where BN at "
        "batch 2 fell to 0.26 on mnist5k.",
    ),
    Claim(
        "normalizers.cnn_group_like_batch",
        WU_HE,
        "Group normalisation is comparable to BN at a normal batch size: in the Keras blog's CNN "
        "at batch 32, group norm's final test accuracy is no more than 0.5 points below BN's.",
        Side(_label(GN), _where(GN, CNN)),
        Side(_label(BN), _where(BN, CNN)),
        Final("test", "accuracy"),
        "not_lower",
        CNN_MARGIN,
        handicap=MOVING_HANDICAP,
        fair_twin="normalizers.cnn_group_like_precise_bn",
    ),
    Claim(
        "normalizers.cnn_layer_below_batch",
        f"{WU_HE}; {BA}",
        "In convolutional networks layer normalisation falls behind BN: in the Keras "
        "blog's CNN, layer norm's final test accuracy is below BN's by more than 0.5 points.",
        Side(_label(LN), _where(LN, CNN)),
        Side(_label(BN), _where(BN, CNN)),
        Final("test", "accuracy"),
        "lower",
        CNN_MARGIN,
        handicap=MOVING_HANDICAP,
        fair_twin="normalizers.cnn_layer_below_precise_bn",
    ),
    Claim(
        "normalizers.cnn_group_like_precise_bn",
        WU_HE,
        "The same against BN evaluated with its population statistics recomputed (precise "
        "BN): group norm's final test accuracy is no more than 0.5 points below it.",
        Side(_label(GN), _where(GN, CNN)),
        Side(_label(BN_PRECISE), _where(BN_PRECISE, CNN)),
        Final("test", "accuracy"),
        "not_lower",
        CNN_MARGIN,
        history=PRECISE_HISTORY,
    ),
    Claim(
        "normalizers.cnn_layer_below_precise_bn",
        f"{WU_HE}; {BA}",
        "The same against BN evaluated with precise statistics: layer norm's "
        "final test accuracy is below it by more than 0.5 points.",
        Side(_label(LN), _where(LN, CNN)),
        Side(_label(BN_PRECISE), _where(BN_PRECISE, CNN)),
        Final("test", "accuracy"),
        "lower",
        CNN_MARGIN,
        history=PRECISE_HISTORY,
    ),
)

STUDY = Study(
    "normalizers",
    TITLE,
    "BN vs layer norm vs group norm vs none: lr range and speed (Figure 1 MLP), batch size 2-64, the Keras blog CNN",
    sweeps=(LR, BATCH, CNN, SPEED),
    claims=CLAIMS,
    render=build,
    order=97,
    reruns=f"{RERUN_2026_12_05}, and trainer.eval_subset=2000 in the CNN sweep (Fashion-MNIST's CNN curves before the last "
    "evaluation on a 2,000-image subset of each split; mnist5k's splits are smaller, so whole): 0.34 h of run time -> 0.13 h "
    "on Fashion-MNIST, 0.17 h -> 0.09 h on mnist5k, across the two hosts. No outcome moved. "
    f"{CLEAN_RERUN_2026_12_05}: 0.132 h -> 0.120 h on Fashion-MNIST, 0.093 h -> 0.092 h on mnist5k. Numbers moved (e.g. "
    "layer_ignores_small_batch on Fashion-MNIST +0.637 [+0.556, +0.712] -> +0.565 [+0.522, +0.586]); no outcome moved.",
)
