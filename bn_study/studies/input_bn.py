"""BN on the raw inputs vs standardising the data beforehand vs neither (vs both)."""

from __future__ import annotations

from pathlib import Path

from bn_study.claims import Claim, Final, Side
from bn_study.render import plots
from bn_study.studies.common import (
    Tables,
    draw_band,
    final_by,
    first_reach,
    fmt_ci,
    mark_diverged,
    markdown_table,
    median_curves,
    write,
)
from bn_study.studies.registry import RERUN_2026_12_05, Study
from bn_study.tables import collect

TITLE = "Input BN: BN on the raw inputs vs standardising the data"
BY = ["model.input_bn", "data.standardize"]
# (model.input_bn, data.standardize) -> label: the arms of bn_study/conf/inputs/.
ARMS = {
    ("none", "none"): "neither (raw pixels)",
    ("feature", "none"): "BN on raw inputs, per pixel",
    ("scalar", "none"): "BN on raw inputs, scalar",
    ("none", "feature"): "standardised per pixel",
    ("none", "scalar"): "standardised, scalar",
}


def takeaway(curves) -> str:
    """The figure's point in one line: the step at which each input treatment's median first reaches a bar all reach."""
    bar, reached = first_reach(curves, BY)
    return (
        f"Steps to test accuracy {bar:.2f} (95% of the lowest final): "
        + ", ".join(f"{name} {reached.get(key, '-')}" for key, name in ARMS.items())
        + "."
    )


def build(study_dir: Path, out: Path) -> list[Path]:
    study = Tables.load(study_dir, out)
    curves = median_curves(study, BY)
    final = final_by(study, BY)

    fig, ax = plots.new_figure(1, width=5.5, height=3.6)
    for color, ((bn, std), name) in zip(plots.CYCLE, ARMS.items()):
        where = {"model.input_bn": bn, "data.standardize": std}
        draw_band(ax, collect.select(curves, where), "step", color, name)
        mark_diverged(ax, collect.select(study.runs, where), color)
    ax.set(title="3x100 sigmoid MLP without hidden BN", xlabel="training steps", ylabel="test accuracy", ylim=(0, 1))
    ax.legend(loc="lower right", fontsize=7)
    plots.caption(
        fig,
        f"{takeaway(curves)} Plain SGD lr 0.1, batch 60. {study.band_note().capitalize()}. Input BN and standardisation both divide by sqrt(var + 0.001). "
        f"{study.data_note()}." + study.eval_note(),
    )

    rows = [
        [name, fmt_ci(collect.select(final, {"model.input_bn": bn, "data.standardize": std}).iloc[0])]
        for (bn, std), name in ARMS.items()
    ]
    summary = "\n".join(
        [
            f"# {TITLE}",
            "",
            f"3x100 sigmoid MLP, no BN in the hidden layers, plain SGD lr 0.1, batch 60, {int(study.runs['steps'].max()):,} steps; {study.seeds_note()}. "
            f"{study.data_note()}. Like with like: BN on the raw pixels against standardising them with the training split's statistics and BN's epsilon "
            "(0.001), each per pixel (a mean and variance per pixel) and scalar (one mean and variance for every pixel, which is what BN does on an "
            "un-flattened single-channel image)." + study.eval_note(),
            "",
            markdown_table(["inputs", f"final test accuracy ({study.band_note()})"], rows),
            "",
            *study.claims_section(),
            "Figure: input_bn.png / .pdf; the curves plotted: input_bn.csv.",
            "",
        ]
    )
    return write(study, "input_bn", fig, curves, summary)


def _like_with_like(kind: str) -> Claim:
    return Claim(
        f"input_bn.{kind}",
        "Tutorials (Machine Learning Mastery, devarena)",
        f"BN on the raw inputs can replace input standardisation ({kind} statistics on both sides).",
        Side(f"BN on raw inputs ({kind})", {"model.input_bn": kind, "data.standardize": "none"}),
        Side(f"standardised inputs ({kind})", {"model.input_bn": "none", "data.standardize": kind}),
        Final("test", "accuracy"),
        "not_lower",
        margin=0.005,
    )


STUDY = Study(
    "input_bn",
    TITLE,
    "BN on the raw inputs vs standardising them with the same epsilon, per pixel and scalar, vs neither",
    sweeps=("input_bn",),
    claims=(_like_with_like("feature"), _like_with_like("scalar")),
    render=build,
    order=80,
    history="3-seed results (392cf67) compared scalar BN on the image with per-pixel standardisation without an epsilon (within "
    "0.005 or above: it held); the like-with-like arms were defined after them.",
    reruns=f"{RERUN_2026_12_05}, and trainer.eval_subset=2000 (Fashion-MNIST's curves before the last evaluation on a 2,000-image subset of each split; mnist5k's splits are smaller, so whole): 0.04 h of run time -> 0.02 h on Fashion-MNIST, 0.03 h -> 0.02 h on mnist5k, across the two hosts. No outcome moved.",
)
