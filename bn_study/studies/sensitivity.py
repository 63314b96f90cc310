"""Final accuracy against one swept scale, per arm: the studies lr_sensitivity (the paper's "much higher
learning rates"), init_scale ("less sensitive to weight initialisation") and batch_size ("small batches
hurt BN; Batch Renormalization reduces that"). They differ only in the swept key, the arms and their claims.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bn_study.claims import Claim, Context, GridChange, GridCount, GridLargest, Side
from bn_study.render import plots
from bn_study.studies.common import SPLIT_NAMES, Tables, draw_band, final_by, fmt_ci, markdown_table, write
from bn_study.studies.registry import RERUN_2026_12_05, Study

# A setting "trains" when its final validation accuracy reaches this.
GOOD = 0.90
NO_BN, BN, RENORM = "without BN", "with BN", "with BN + renorm"
ARM_KEYS = ["model.bn", "model.bn_renorm"]
ARMS = {NO_BN: ("none", False), BN: ("before", False), RENORM: ("before", True)}
COLORS = {NO_BN: plots.BN_COLORS["none"], BN: plots.BN_COLORS["before"], RENORM: plots.CYCLE[1]}


@dataclass(frozen=True)
class Sweep:
    name: str
    key: str
    axis: str
    title: str
    setup: str
    # The split the figure and the claims read: where a claim selects (which values "train"), validation.
    split: str = "val"
    log_base: int = 10


def _arm(final: pd.DataFrame, name: str) -> pd.DataFrame:
    bn, renorm = ARMS[name]
    return final[(final["model.bn"] == bn) & (final["model.bn_renorm"] == renorm)]


LR = Sweep(
    "lr_sensitivity",
    "optimizer.lr",
    "learning rate",
    "Learning-rate sensitivity: the paper's 'much higher learning rates'",
    "3x100 MLP, plain SGD, batch 60",
)
INIT = Sweep(
    "init_scale",
    "model.init_std",
    "Gaussian init std",
    "Init-scale sensitivity: 'less sensitive to weight initialisation'",
    "3x100 sigmoid MLP, SGD momentum 0.9 lr 0.01, batch 60",
)
BATCH = Sweep(
    "batch_size",
    "trainer.batch_size",
    "batch size",
    "Batch size: small mini-batches, BN and Batch Renormalization",
    "3x100 relu MLP, SGD momentum 0.9 lr 0.01, 48,000 examples seen whatever the batch size (halved from 96,000 to "
    "keep the study set's run time down)",
    split="test",
    log_base=2,
)


def takeaway(sweep: Sweep, final: pd.DataFrame, bars: dict[str, float], arms: list[str]) -> str:
    """The figure's point in one line: per activation and arm, the swept values whose median clears the line drawn."""
    parts = []
    for act, bar in bars.items():
        ranges = []
        for arm in arms:
            table = _arm(final[final["model.activation"] == act], arm)
            grid = sorted(table[sweep.key])
            clear = sorted(table.loc[table["median"] >= bar, sweep.key])
            contiguous = clear and grid[grid.index(clear[0]) : grid.index(clear[-1]) + 1] == clear
            said = (
                f"{clear[0]:g} to {clear[-1]:g}"
                if contiguous and len(clear) > 1
                else ", ".join(f"{v:g}" for v in clear) or "none"
            )
            ranges.append(f"{arm} {said}")
        parts.append(f"{act}: {', '.join(ranges)}")
    return f"{sweep.axis.capitalize()} values whose median final accuracy clears the {'dashed' if sweep.split == 'val' else 'dotted'} line: {'; '.join(parts)}."


def build_sweep(sweep: Sweep, study_dir: Path, out: Path) -> list[Path]:
    study = Tables.load(study_dir, out)
    acts = sorted(study.runs["model.activation"].unique())
    final = final_by(study, ["model.activation", sweep.key, *ARM_KEYS], metric=f"{sweep.split}_accuracy")
    arms = [arm for arm in ARMS if not _arm(final, arm).empty]

    relative = {
        act: OF_BEST
        * Context(study.runs, study.curves).best_median(
            {"model.activation": act, "model.bn": "none"}, sweep.key, "val_accuracy"
        )
        for act in acts
    }  # the *_relative claims' target
    fig, axes = plots.new_figure(len(acts), width=4.4, height=3.3)
    axes = axes if len(acts) > 1 else [axes]
    rows = []
    for ax, act in zip(axes, acts):
        of_act = final[final["model.activation"] == act]
        for arm in arms:
            table = _arm(of_act, arm).sort_values(sweep.key)
            draw_band(ax, table, sweep.key, COLORS[arm], arm, logx=True)
            for _, r in table[table["n_diverged"] > 0].iterrows():
                ax.annotate(
                    f"{r['n_diverged']}/{r['n_runs']} div.",
                    (r[sweep.key], 0.03),
                    color=COLORS[arm],
                    fontsize=6,
                    ha="center",
                    xycoords=("data", "axes fraction"),
                )
        ax.set_xscale("log", base=sweep.log_base)
        ax.axhline(GOOD, color="0.5", lw=0.8, ls=":")
        if sweep.split == "val":
            ax.axhline(relative[act], color="0.5", lw=0.8, ls="--")
        ax.set(title=act, xlabel=sweep.axis, ylabel=f"final {SPLIT_NAMES[sweep.split]} accuracy", ylim=(0, 1))
        for value in sorted(of_act[sweep.key].unique()):
            rows.append(
                [
                    act,
                    f"{value:g}",
                    *(fmt_ci(_arm(of_act, arm)[lambda t: t[sweep.key] == value].iloc[0]) for arm in arms),
                ]
            )
    axes[0].legend(loc="lower left", fontsize=7)
    targets = f"dotted: {GOOD:.0%}" + (
        f"; dashed: {OF_BEST:.0%} of the no-BN arm's best median validation accuracy "
        f"({', '.join(f'{v:.3f}' for v in relative.values())})"
        if sweep.split == "val"
        else ""
    )
    bars = relative if sweep.split == "val" else dict.fromkeys(acts, GOOD)
    plots.caption(
        fig,
        f"{takeaway(sweep, final, bars, arms)} {sweep.setup}. {study.band_note().capitalize()}; {targets}; 'div.': runs "
        f"that diverged. {study.data_note()}.",
    )
    summary = "\n".join(
        [
            f"# {sweep.title}",
            "",
            f"{sweep.setup}; {sweep.axis} on a log grid; {study.seeds_note()}. {study.data_note()}."
            + study.eval_note(),
            "",
            markdown_table(
                ["activation", sweep.axis, *(f"final {SPLIT_NAMES[sweep.split]} accuracy {arm}" for arm in arms)], rows
            ),
            "",
            f"Cells: {study.band_note()}.",
            "",
            *study.claims_section(),
            f"Figure: {sweep.name}.png / .pdf; the numbers plotted: {sweep.name}.csv.",
            "",
        ]
    )
    return write(study, sweep.name, fig, final, summary)


def build_lr(study_dir: Path, out: Path) -> list[Path]:
    return build_sweep(LR, study_dir, out)


def build_init(study_dir: Path, out: Path) -> list[Path]:
    return build_sweep(INIT, study_dir, out)


def build_batch(study_dir: Path, out: Path) -> list[Path]:
    return build_sweep(BATCH, study_dir, out)


SEED_PAPER = "Ioffe & Szegedy (2015)"
TUTORIALS = "Tutorials (Machine Learning Mastery, devarena)"
_BN, _NO_BN, _RENORM = ({"model.bn": ARMS[arm][0], "model.bn_renorm": ARMS[arm][1]} for arm in (BN, NO_BN, RENORM))


# "Trains": 95% of the no-BN arm's best configuration (median over seeds) on the same data: a target that
# follows the dataset, set by the baseline for both arms.
OF_BEST = 0.95
RELATIVE_HISTORY = (
    f"Added because on Fashion-MNIST no run reaches {GOOD} (an MNIST number), so the claim above cannot "
    "tell the arms apart there; written with the results of both datasets known; where the two differ on mnist5k, it is because the target differs "
    f"there as well. 'Trains' is reaching {OF_BEST:.0%} of the best median final validation accuracy of the arm without BN. "
    "The target was first declared and judged in 3b8d6e7 as 95% of the best final validation accuracy of any run of the "
    "study, and redefined in ebcc5df after those verdicts: that flipped lr_sensitivity.sigmoid_relative on both datasets "
    "(mnist5k holds -> inconclusive, Fashion-MNIST inconclusive -> holds); no other *_relative outcome moved."
)


def _lr_claim(act: str, of_best: float | None = None) -> Claim:
    return Claim(
        f"lr_sensitivity.{act}" + ("_relative" if of_best else ""),
        SEED_PAPER,
        "BN allows much higher learning rates.",
        Side(BN, {"model.activation": act, "model.bn": "before"}),
        Side(NO_BN, {"model.activation": act, "model.bn": "none"}),
        GridLargest(
            grid="optimizer.lr",
            threshold=GOOD,
            of_best=of_best,
            baseline=(("model.activation", act), ("model.bn", "none")),
        ),
        "higher",
        margin=0.4,  # log10(2.5): at least one grid step (x3.16)
        history=RELATIVE_HISTORY if of_best else "",
    )


LR_CLAIMS = (_lr_claim("sigmoid"), _lr_claim("relu"), _lr_claim("sigmoid", OF_BEST), _lr_claim("relu", OF_BEST))
INIT_CLAIMS = (
    Claim(
        "init_scale.trainable_range",
        TUTORIALS,
        "BN makes training less sensitive to weight initialisation.",
        Side(BN, {"model.bn": "before"}),
        Side(NO_BN, {"model.bn": "none"}),
        GridCount(grid="model.init_std", threshold=GOOD),
        "higher",
        margin=0.5,
        history="First judged by 'more init scales reach 90%, reaching at least as far' (wider_range); that rule was changed to "
        "'a narrower range of median final accuracy' (less_spread) in the commit that also added the 3-seed results it judged "
        "(392cf67), which flipped that verdict. Declared anew for the regenerated runs (its registration says whether before them): how many of the 9 init scales "
        "reach 90% validation accuracy, per seed, paired.",
    ),
    Claim(
        "init_scale.trainable_range_relative",
        TUTORIALS,
        "BN makes training less sensitive to weight initialisation.",
        Side(BN, {"model.bn": "before"}),
        Side(NO_BN, {"model.bn": "none"}),
        GridCount(grid="model.init_std", threshold=GOOD, of_best=OF_BEST, baseline=(("model.bn", "none"),)),
        "higher",
        margin=0.5,
        history=RELATIVE_HISTORY,
    ),
)
BATCH_CLAIMS = (
    Claim(
        "batch_size.small_hurts_bn",
        TUTORIALS,
        "Small or unrepresentative mini-batches hurt BN.",
        Side(BN, _BN),
        Side(NO_BN, _NO_BN),
        GridChange("test", "accuracy", grid="trainer.batch_size", start=64, to=2),
        "lower",
        margin=0.01,
    ),
    Claim(
        "batch_size.renorm_helps",
        "Ioffe (2017), Batch Renormalization",
        "Batch Renormalization reduces that.",
        Side(RENORM, _RENORM),
        Side(BN, _BN),
        GridChange("test", "accuracy", grid="trainer.batch_size", start=64, to=2),
        "higher",
        margin=0.01,
    ),
)

STUDIES = [
    Study(
        LR.name,
        LR.title,
        "'much higher learning rates': the largest lr (1e-3 to 10) that still trains, BN vs none",
        sweeps=(LR.name,),
        claims=LR_CLAIMS,
        render=build_lr,
        order=30,
        reruns=f"{RERUN_2026_12_05}, and trainer.eval_subset=2000 (Fashion-MNIST's curves before the last evaluation on a 2,000-image subset of each split; mnist5k's splits are smaller, so whole): 0.10 h of run time -> 0.06 h on Fashion-MNIST, 0.06 h -> 0.06 h on mnist5k, across the two hosts. One outcome moved: sigmoid on mnist5k, holds +0.500 [+0.500, +1.000] -> inconclusive +0.500 [+0.000, +1.000] (seed 1's largest rate reaching 0.9 without BN rose by one step of the grid); the other seven are as before.",
        history="3-seed results (392cf67) were judged by 'BN trains (median test accuracy >= 0.9) at more rates, reaching at least as far "
        "up'; here: the largest rate reaching 0.9 on the validation split, per seed.",
    ),
    Study(
        INIT.name,
        INIT.title,
        "'less sensitive to initialisation': how many Gaussian init stds (1e-3 to 10) train, BN vs none",
        sweeps=(INIT.name,),
        claims=INIT_CLAIMS,
        render=build_init,
        order=60,
        reruns=f"{RERUN_2026_12_05}, and trainer.eval_subset=2000 (Fashion-MNIST's curves before the last evaluation on a 2,000-image subset of each split; mnist5k's splits are smaller, so whole): 0.05 h of run time -> 0.04 h on Fashion-MNIST, 0.04 h -> 0.03 h on mnist5k, across the two hosts. No outcome moved.",
    ),
    Study(
        BATCH.name,
        BATCH.title,
        "batch sizes 2 to 256 at equal examples seen: no BN, BN, Batch Renormalization",
        sweeps=(BATCH.name,),
        claims=BATCH_CLAIMS,
        render=build_batch,
        order=70,
        reruns=f"{RERUN_2026_12_05}, and trainer.eval_subset=2000 (Fashion-MNIST's curves before the last evaluation on a 2,000-image subset of each split; mnist5k's splits are smaller, so whole): 0.07 h of run time -> 0.05 h on Fashion-MNIST, 0.05 h -> 0.04 h on mnist5k, across the two hosts. One outcome moved: small_hurts_bn on Fashion-MNIST, contradicted +0.079 [+0.017, +0.270] -> inconclusive +0.021 [-0.030, +0.062] (its per-seed differences, from accuracy drops of 0.5 to 0.7 at batch 2, moved by up to 0.23); the other three are as before.",
        history="3-seed results at 96,000 examples (392cf67) were judged by each arm's drop from its best batch size to batch 2; here "
        "from batch 64 to batch 2, per seed.",
    ),
]
