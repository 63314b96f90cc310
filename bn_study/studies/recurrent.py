"""BN in recurrent networks: an LSTM, Cooijmans et al. (2016)'s BN-LSTM and an LN-LSTM (Ba et al. 2016) on
sequential MNIST read row by row, in order and permuted: convergence speed and test accuracy."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .. import collect, plots
from ..claims import Claim, Context, Final, Side, StepsTo
from .bn_inference import WU
from .common import Tables, draw_band, final_by, fmt_ci, markdown_table, median_curves, write
from .registry import Study

TITLE = "BN in recurrent networks: LSTM, BN-LSTM and LN-LSTM on sequential MNIST"
ARM_KEYS = ["model.bn", "model.norm", "trainer.precise_bn"]
PRECISE = 50  # arm bn_precise at batch 64: 3,200 training images
# (model.bn, model.norm, trainer.precise_bn) -> label and colour: one source for every panel, table and claim.
ARMS = {
    ("none", "batch", 0): ("LSTM", plots.NORM_COLORS["none"]),
    ("before", "batch", PRECISE): ("BN-LSTM", plots.NORM_COLORS["batch"]),
    ("before", "batch", 0): ("BN-LSTM, moving averages", plots.CYCLE[3]),
    ("before", "layer", 0): ("LN-LSTM", plots.NORM_COLORS["layer"]),
}
LSTM, BN_LSTM, BN_MOVING, LN_LSTM = ARMS
VARIANTS = {False: "in order (row by row)", True: "permuted (one fixed pixel order)"}
# "Converged": validation accuracy at this fraction of the plain LSTM's best over the same seed's run.
OF_BEST = 0.95
FASTER = 0.176  # log10(1.5)


def _where(arm, permute: bool) -> dict:
    bn, norm, precise = arm
    return {"model.permute": permute, "model.bn": bn, **({} if bn == "none" else {"model.norm": norm, "trainer.precise_bn": precise})}


def _label(arm) -> str:
    return ARMS[arm][0]


def _rows(table: pd.DataFrame, arm, permute: bool) -> pd.DataFrame:
    return collect.select(table, {"model.permute": permute, **dict(zip(ARM_KEYS, arm))})


def _speed(permute: bool) -> StepsTo:
    return StepsTo("val", "accuracy", target=tuple(_where(LSTM, permute).items()), fraction=OF_BEST)


def steps_to_target(study: Tables, arm, permute: bool) -> list[float]:
    """Per seed: the steps until the arm's validation accuracy reaches the claims' target (inf: never)."""
    runs, context = _rows(study.runs, arm, permute), Context(study.runs, study.curves)
    return [10 ** _speed(permute).value(runs[runs["run_id"] == r], study.curves, context) for r in runs["run_id"]]


def build(study_dir: Path) -> list[Path]:
    study = Tables.load(study_dir)
    variants = [v for v in VARIANTS if v in set(study.runs["model.permute"])]
    curves = median_curves(study, ["model.permute", *ARM_KEYS], "val")
    fig, axes = plots.new_figure(len(variants), width=4.6, height=3.5)
    axes = axes if len(variants) > 1 else [axes]
    for ax, permute in zip(axes, variants):
        for arm in ARMS:
            rows = _rows(curves, arm, permute)
            if len(rows):
                draw_band(ax, rows, "step", ARMS[arm][1], _label(arm))
        ax.set(title=f"({'ab'[variants.index(permute)]}) {VARIANTS[permute]}", xlabel="training steps", ylabel="validation accuracy", ylim=(0, 1))
    axes[0].legend(fontsize=7, loc="lower right")
    steps, batch = int(study.runs["steps"].max()), int(study.runs["trainer.batch_size"].iloc[0])
    plots.caption(fig, f"Sequential MNIST read one image row per time step (28 steps of 28 pixels), an LSTM of 100 units, its last hidden state "
                       f"-> softmax; Adam lr 0.001, batch {batch}, {steps:,} steps. BN-LSTM: batch statistics per time step on the input and "
                       f"recurrent transforms and the cell, gains from 0.1 (Cooijmans et al. 2016), evaluated with population statistics "
                       f"recomputed over {PRECISE * batch:,} training images (or with its moving averages); LN-LSTM: layer norm in the same places. "
                       f"{study.band_note().capitalize()}. {study.data_note()}.")

    final = final_by(study, ["model.permute", *ARM_KEYS], "test_accuracy")
    rows = []
    for permute in variants:
        for arm in ARMS:
            cell = _rows(final, arm, permute)
            if cell.empty:
                continue
            to_target = steps_to_target(study, arm, permute)
            median = float(np.median(to_target))
            reached = sum(math.isfinite(s) for s in to_target)
            rows.append([VARIANTS[permute], _label(arm), fmt_ci(cell.iloc[0]),
                         f"{median:,.0f}" if math.isfinite(median) else "not reached (median)", f"{reached}/{len(to_target)}"])
    summary = "\n".join([
        f"# {TITLE}", "",
        "Cooijmans et al. (2016) put BN inside the LSTM: on the input-to-hidden and hidden-to-hidden transforms, each with its own gain "
        "and no shift of its own, and on the cell state before the output, with separate statistics for each time step and the gains "
        "started at 0.1 (at 1 they saturate tanh and the gradients vanish). On pixel-by-pixel MNIST (784 steps, 100 units) they report "
        "test accuracy 98.9% for the LSTM and 99.0% for the BN-LSTM, on permuted MNIST 90.2% and 95.4%, and that the BN-LSTM converges "
        "faster. The LN-LSTM puts layer norm (Ba et al. 2016) in the same places: each example over the transform's units.", "",
        "**Row by row, not pixel by pixel.** Here each time step reads one image row, 28 steps of 28 pixels, where the paper reads one "
        "pixel per step, 784 steps. 784 sequential steps of a 100-unit LSTM cost about 28 times as long per training step and need far "
        "more steps to train; on these two CPU cores that would not fit a study of 5 seeds in about 20 minutes. The row-wise task is "
        "much easier: its longest dependency is 28 steps, not 784, so the vanishing gradients over long sequences that BN's "
        "normalisation is meant to ease matter less, and the permuted variant scatters each row's 28 pixels over the image rather "
        "than making a 784-step sequence without locality. Differences between the arms are expected to be smaller than the paper's.", "",
        "**Inference statistics.** At inference a BN-LSTM normalises with population statistics, one set per time step. The "
        f"BN-LSTM arm recomputes them before each evaluation over {PRECISE} fixed training batches ({PRECISE * batch:,} images) with the "
        "weights frozen (precise BN, Wu & Johnson 2021, the bn_inference study's run option): the statistics the network has. The "
        "'moving averages' arm keeps Keras's practice, exponential moving averages of the training batches' statistics (momentum "
        f"{study.runs['model.bn_momentum'].iloc[0]:g}), debiased for their start; they average statistics of weights up to a hundred or so "
        "updates old. The claims from Cooijmans et al. read the BN-LSTM arm.", "",
        f"Setup: an LSTM of 100 units (Keras's initialisers: Glorot kernel, orthogonal recurrent kernel, forget-gate bias 1; the "
        f"unnormalised cell is Keras's LSTM, checked weight for weight), its last hidden state -> Dense(10) -> softmax; Adam lr 0.001 and "
        f"batch {batch} for every arm (not tuned, and not the paper's optimiser settings), no gradient clipping, {steps:,} steps "
        f"({study.epochs_note()}); permuted: one fixed pixel order (the same for every run). {study.seeds_note()}. {study.data_note()}.", "",
        f"Final test accuracy (median over seeds [interval]) and the steps until validation accuracy first reaches {OF_BEST:.0%} of the "
        "LSTM's best over the same seed's run (the speed claims' target; median over seeds; evaluated every "
        f"{int(study.runs['trainer.eval_every'].iloc[0])} steps):", "",
        markdown_table(["pixels", "network", "final test accuracy", "steps to the target", "seeds that reach it"], rows), "",
        f"Cells: {study.band_note()}.", "",
        *study.claims_section(),
        "Figure: recurrent.png / .pdf; the numbers plotted: recurrent.csv.", "",
    ])
    return write(study, "recurrent", fig, curves, summary)


COOIJMANS = "Cooijmans et al. (2016), 'Recurrent Batch Normalization'"
BA = "Ba, Kiros & Hinton (2016), 'Layer Normalization'"


def _faster(arm, permute: bool, source: str, who: str) -> Claim:
    name = "permuted" if permute else "in_order"
    return Claim(f"recurrent.{_label(arm).split('-')[0].lower()}_lstm_faster_{name}", source,
                 f"The {who} converges faster than the LSTM: read {VARIANTS[permute]}, it reaches {OF_BEST:.0%} of the LSTM's best validation "
                 "accuracy in fewer steps.", Side(_label(arm), _where(arm, permute)), Side(_label(LSTM), _where(LSTM, permute)),
                 _speed(permute), "lower", FASTER)


CLAIMS = (
    _faster(BN_LSTM, False, COOIJMANS, "BN-LSTM"),
    _faster(BN_LSTM, True, COOIJMANS, "BN-LSTM"),
    Claim("recurrent.bn_lstm_accuracy_in_order", COOIJMANS, "On sequential MNIST the BN-LSTM's test accuracy is no worse than the LSTM's "
          "(99.0% against 98.9%): no more than 0.5 points below it.",
          Side(_label(BN_LSTM), _where(BN_LSTM, False)), Side(_label(LSTM), _where(LSTM, False)), Final("test", "accuracy"), "not_lower", 0.005),
    Claim("recurrent.bn_lstm_accuracy_permuted", COOIJMANS, "On permuted sequential MNIST the BN-LSTM's test accuracy is higher than the "
          "LSTM's (95.4% against 90.2%): by more than 1 point.",
          Side(_label(BN_LSTM), _where(BN_LSTM, True)), Side(_label(LSTM), _where(LSTM, True)), Final("test", "accuracy"), "higher", 0.01),
    _faster(LN_LSTM, False, BA, "LN-LSTM"),
    Claim("recurrent.moving_averages_lag", WU, "Moving averages of the batch "
          "statistics lag the weights and misestimate the population statistics, which recomputing them repairs: read in order, the "
          "BN-LSTM's final test accuracy with its moving averages is below that with recomputed statistics by more than 1 point.",
          Side(_label(BN_MOVING), _where(BN_MOVING, False)), Side(_label(BN_LSTM), _where(BN_LSTM, False)), Final("test", "accuracy"), "lower", 0.01),
)

STUDY = Study("recurrent", TITLE, "LSTM vs BN-LSTM (Cooijmans et al.) vs LN-LSTM on sequential MNIST row by row, in order and permuted",
              sweeps=("recurrent",), claims=CLAIMS, render=build, order=98,
              history="Declared after one-seed, 300-step pilot runs in order (used to size the study), whose test accuracies were: LSTM "
                      "0.892, LN-LSTM 0.918, BN-LSTM with Keras's moving averages 0.105 (0.214 once debiased for their start), BN-LSTM with "
                      "recomputed statistics 0.936. Those pilots are why the BN-LSTM arm is evaluated with recomputed statistics and why "
                      "the moving-average arm and its claim exist; the claims' rules were not changed after the study's runs.")
