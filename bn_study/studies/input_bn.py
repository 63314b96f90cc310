"""BN on the raw inputs vs standardising the data beforehand vs neither (vs both)."""

from __future__ import annotations

from pathlib import Path

from .. import plots
from ..claims import Claim, Final, Side
from .registry import Study
from .common import Tables, draw_band, fmt_ci, final_by, mark_diverged, markdown_table, median_curves, write

TITLE = "Input BN: BN on the raw inputs vs standardising the data"
BY = ["model.input_bn", "data.standardize"]
ARMS = {(False, False): "neither", (True, False): "BN on raw inputs", (False, True): "standardised inputs", (True, True): "both"}
# How close (in accuracy) input BN must come to standardisation to count as a replacement for it.
TOLERANCE = 0.005


def build(study_dir: Path) -> list[Path]:
    study = Tables.load(study_dir)
    curves = median_curves(study, BY)
    final = final_by(study, BY)

    fig, ax = plots.new_figure(1, width=5.5, height=3.6)
    for color, ((bn, std), name) in zip(plots.CYCLE, ARMS.items()):
        draw_band(ax, curves[(curves["model.input_bn"] == bn) & (curves["data.standardize"] == std)], "step", color, name)
        mark_diverged(ax, study.runs[(study.runs["model.input_bn"] == bn) & (study.runs["data.standardize"] == std)], color)
    ax.set(title="3x100 sigmoid MLP without hidden BN", xlabel="training steps", ylabel="test accuracy", ylim=(0, 1))
    ax.legend(loc="lower right", fontsize=7)
    plots.caption(fig, f"Plain SGD lr 0.1, batch 60. Median over seeds with 95% bootstrap band ({study.seeds_note()}). {study.data_note()}.")

    arms = {name: final[(final["model.input_bn"] == bn) & (final["data.standardize"] == std)].iloc[0] for (bn, std), name in ARMS.items()}
    rows = [[name, fmt_ci(row)] for name, row in arms.items()]
    bn_raw, standardised, neither = (arms[k]["median"] for k in ("BN on raw inputs", "standardised inputs", "neither"))
    replaces = bn_raw >= standardised - TOLERANCE
    verdict = (f"BN on the raw inputs reaches {bn_raw:.4f} against {standardised:.4f} with standardised inputs and {neither:.4f} with neither: "
               f"the claim that it can replace standardisation {'holds' if replaces else 'does not hold'} here (criterion: within {TOLERANCE} of standardisation or above).")
    summary = "\n".join([
        f"# {TITLE}", "",
        f"3x100 sigmoid MLP, no BN in the hidden layers, plain SGD lr 0.1, batch 60, {int(study.runs['steps'].max()):,} steps; {study.seeds_note()}. {study.data_note()}.", "",
        markdown_table(["inputs", "final test accuracy (median [95% CI])"], rows), "",
        f"Verdict: {verdict}", "",
        "Figure: input_bn.png / .pdf; the curves plotted: input_bn.csv.", "",
    ])
    return write(study, "input_bn", fig, curves, summary)


def _like_with_like(kind: str) -> Claim:
    return Claim(f"input_bn.{kind}", "Tutorials (Machine Learning Mastery, devarena)", f"BN on the raw inputs can replace input standardisation ({kind} statistics on both sides).",
                 Side(f"BN on raw inputs ({kind})", {"model.input_bn": kind, "data.standardize": "none"}),
                 Side(f"standardised inputs ({kind})", {"model.input_bn": "none", "data.standardize": kind}),
                 Final("test", "accuracy"), "not_lower", margin=0.005)


STUDY = Study("input_bn", TITLE, "BN on the raw inputs vs standardising them with the same epsilon, per pixel and scalar, vs neither",
              sweeps=("input_bn",), claims=(_like_with_like("feature"), _like_with_like("scalar")), render=build, order=80)
