"""BN's inference statistics: when its moving averages lag the weights, and whether recomputing the
population statistics (precise BN, Wu & Johnson 2021) removes the lag."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import collect, plots, stats
from ..claims import At, Claim, Final, Side
from .common import Tables, draw_band, markdown_table, write
from .registry import Study

TITLE = "BN's inference statistics: moving averages, precise BN and batch statistics"
MLP, CNN = "bn_inference", "bn_inference_cnn"
# BN's three ways to normalise at test time, all on the same test images (test batches of the training batch
# size): (bn_modes metric, label, colour).
MODES = (
    ("acc_moving_averages", "moving averages (Keras at inference)", "#d62728"),
    ("acc_precise", "precise BN: statistics recomputed", "#1f77b4"),
    ("acc_batch_stats", "each test batch's own statistics", "#7f7f7f"),
)
LABEL = {metric: label for metric, label, _ in MODES}
SHORT = 200  # a short run: the step the short-run claims read
TABLE_STEPS = (100, SHORT, 500)


def gap_curves(study: Tables, by: list[str], a: str, b: str, split: str = "bn_modes") -> pd.DataFrame:
    """Per configuration (`by`) and evaluated step: the median over seeds of each run's own `a` - `b`, with its interval."""
    pair = [collect.with_config(study.curves, study.runs, by, split, m).set_index(["run_id", "step"]) for m in (a, b)]
    gap = pair[0].assign(value=pair[0]["value"] - pair[1]["value"]).reset_index()
    return pd.DataFrame([{**dict(zip([*by, "step"], key)), **stats.median_ci(g["value"]), "n": int(g["value"].notna().sum())}
                         for key, g in gap.groupby([*by, "step"], sort=True)])


def mode_curves(study: Tables, by: list[str]) -> pd.DataFrame:
    """Per configuration, BN mode and evaluated step: the median test accuracy over seeds, with its interval."""
    out = []
    for metric, _, _ in MODES:
        rows = collect.with_config(study.curves, study.runs, by, "bn_modes", metric)
        out += [{**dict(zip([*by, "step"], key)), "mode": metric, **stats.median_ci(g["value"]), "n": int(g["value"].notna().sum())}
                for key, g in rows.groupby([*by, "step"], sort=True)]
    return pd.DataFrame(out)


def _modes_panel(ax, curves: pd.DataFrame, title: str) -> None:
    for metric, label, color in MODES:
        draw_band(ax, curves[curves["mode"] == metric], "step", color, label)
    ax.set(title=title, xlabel="training steps (= run length: constant learning rate)", ylabel="test accuracy", ylim=(0, 1))


def _cell(table: pd.DataFrame, **where) -> str:
    row = collect.select(table, where)
    if row.empty:
        return "-"
    r = row.iloc[0]
    return f"{r['median']:.4f} [{r['ci_low']:.4f}, {r['ci_high']:.4f}]"


def build(study_dir: Path) -> list[Path]:
    study = Tables.load(study_dir)
    mlp, cnn = study.select({"study": MLP}), study.select({"study": CNN})
    by = ["model.bn_momentum"]
    modes = mode_curves(mlp, by)
    gaps = gap_curves(mlp, by, "acc_precise", "acc_moving_averages")
    momenta = sorted(mlp.runs["model.bn_momentum"].unique())
    slowest = max(momenta)

    fig, axes = plots.new_figure(3, width=4.3, height=3.5)
    _modes_panel(axes[0], modes[modes["model.bn_momentum"] == slowest], f"(a) MLP, BN momentum {slowest:g}")
    axes[0].set_xscale("log")
    axes[0].legend(loc="lower right", fontsize=6.5)
    for momentum, color in zip(momenta, plots.CYCLE):
        draw_band(axes[1], gaps[gaps["model.bn_momentum"] == momentum], "step", color, f"BN momentum {momentum:g}")
    axes[1].axhline(0, color="0.5", lw=0.6)
    axes[1].set(xscale="log", title="(b) MLP: what the moving averages' lag costs", xlabel="training steps (= run length)",
                ylabel="precise BN - moving averages (test acc.)")
    axes[1].legend(fontsize=6.5)
    cnn_modes = mode_curves(cnn, ["model.bn_momentum"]) if not cnn.runs.empty else pd.DataFrame(columns=["mode", "step"])
    _modes_panel(axes[2], cnn_modes, "(c) Keras-blog CNN (BN momentum 0.99)")
    plots.caption(fig, f"{study.band_note()}. All three modes are the same trained network on the same test images (test batches of the training "
                       f"batch size); only the statistics BN normalises by differ. Precise BN: the population statistics recomputed with the weights "
                       f"frozen over {int(mlp.runs['probe.precise_batches'].iloc[0])} fixed training batches. {study.data_note()}.")

    rows = []
    for momentum in momenta:
        for step in sorted({s for s in TABLE_STEPS if s in set(modes["step"])} | {int(mlp.runs["steps"].max())}):
            cells = [_cell(modes, **{"model.bn_momentum": momentum, "step": step, "mode": m}) for m, _, _ in MODES]
            rows.append([f"{momentum:g}", f"{step:,}", *cells, _cell(gaps, **{"model.bn_momentum": momentum, "step": step})])
    cnn_rows = []
    if not cnn.runs.empty:
        end = int(cnn.runs["steps"].max())
        steps = sorted(cnn_modes["step"].unique())
        cnn_rows = [[f"{step:,}", *(_cell(cnn_modes, step=step, mode=m) for m, _, _ in MODES)] for step in sorted({steps[1], end})]
    header = [LABEL[m] for m, _, _ in MODES]
    summary = "\n".join([
        f"# {TITLE}", "",
        "Keras's BN normalises at inference by exponential moving averages of the training batches' statistics "
        "(new = momentum x old + (1 - momentum) x batch, starting from mean 0, variance 1). They follow weights that keep changing, "
        "so on a short run, or with a slow average, they can describe a network that no longer exists. Wu & Johnson (2021) recompute "
        "the population statistics with the final weights instead (precise BN: `trainer.precise_bn=<batches>` as a run option, "
        "`probe.precise_batches=<batches>` to measure it beside the moving averages).", "",
        f"MLP: 3x100 relu, BN before each relu, Adam lr 0.001, batch 32, {int(mlp.runs['steps'].max()):,} steps ({mlp.epochs_note()}), "
        f"evaluated every {int(mlp.runs['trainer.eval_every'].iloc[0])} steps; {mlp.seeds_note()}. BN's momentum changes only the moving averages, "
        "never the training, so each seed's three momentum runs are the same network, and the learning rate is constant, so the network at "
        "step k is a k-step run's: the steps are run lengths. " + study.data_note() + ".", "",
        markdown_table(["BN momentum", "step", *header, "precise - moving (paired)"], rows), "",
        *([f"Keras-blog CNN (BN before every activation and on the output layer), relu, Adam lr 0.001, batch 32, {int(cnn.runs['steps'].max())} steps "
           f"({cnn.epochs_note()}; the keras_blog study's run length), "
           f"BN momentum 0.99 (Keras's default): the keras_blog study's cell where its moving averages lagged; {cnn.seeds_note()}.", "",
           markdown_table(["step", *header], cnn_rows), ""] if cnn_rows else []),
        f"Medians over seeds with their intervals ({study.band_note()}).", "",
        *study.claims_section(),
        "Figure: bn_inference.png / .pdf; the curves plotted: bn_inference.csv.", "",
    ])
    table = pd.concat([modes.assign(network="mlp"), gaps.assign(mode="precise_minus_moving", network="mlp"), cnn_modes.assign(network="cnn")], ignore_index=True)
    return write(study, "bn_inference", fig, table, summary)


WU = "Wu & Johnson (2021), 'Rethinking Batch in BatchNorm'"
MOVING, PRECISE, BATCH = "acc_moving_averages", "acc_precise", "acc_batch_stats"


def _side(label: str, study: str, momentum: float, metric: str, step: int | None) -> Side:
    return Side(label, {"study": study, "model.bn_momentum": momentum},
                At("bn_modes", metric, step=step) if step is not None else Final("bn_modes", metric))


def _claim(id: str, source: str, sentence: str, a: Side, b: Side, direction: str, margin: float, history: str = "") -> Claim:
    return Claim(f"bn_inference.{id}", source, sentence, a, b, a.metric, direction, margin, history=history)


CLAIMS = (
    _claim("lag_short", WU, f"The moving averages lag the weights: on a short run ({SHORT} steps) with a slow average (momentum 0.999), the "
           "recomputed population statistics score higher than the moving averages.",
           _side("precise BN", MLP, 0.999, PRECISE, SHORT), _side("moving averages", MLP, 0.999, MOVING, SHORT), "higher", 0.01),
    _claim("lag_by_momentum", WU, f"The slower the average, the larger the lag: at {SHORT} steps, the moving averages with momentum 0.9 score higher "
           "than with 0.999 (the same trained networks).",
           _side("moving averages, momentum 0.9", MLP, 0.9, MOVING, SHORT), _side("moving averages, momentum 0.999", MLP, 0.999, MOVING, SHORT), "higher", 0.01),
    _claim("precise_repairs", WU, f"Precise BN repairs the accuracy the lag costs: at {SHORT} steps, momentum 0.999, the recomputed statistics score "
           "no worse than the network on each test batch's own statistics.",
           _side("precise BN", MLP, 0.999, PRECISE, SHORT), _side("batch statistics", MLP, 0.999, BATCH, SHORT), "not_lower", 0.01),
    _claim("moving_fine_when_long", "Ioffe & Szegedy (2015), Section 3.1; the tutorials ('at inference BN uses moving averages')",
           "After a long run with a fast average (momentum 0.9), the moving averages are as good as the population statistics.",
           _side("moving averages", MLP, 0.9, MOVING, None), _side("precise BN", MLP, 0.9, PRECISE, None), "not_lower", 0.005),
    _claim("precise_never_hurts", WU, "Recomputing the statistics costs nothing at the end of a run with Keras's default momentum (0.99).",
           _side("precise BN", MLP, 0.99, PRECISE, None), _side("moving averages", MLP, 0.99, MOVING, None), "not_lower", 0.005),
    _claim("cnn_lag", WU, "On the Keras blog's CNN after the keras_blog study's 340 steps (3 epochs of mnist5k; momentum 0.99), the recomputed statistics score higher "
           "than the moving averages.",
           _side("precise BN", CNN, 0.99, PRECISE, None), _side("moving averages", CNN, 0.99, MOVING, None), "higher", 0.05,
           history="This cell was chosen because the keras_blog study's runs (392cf67 and after) had shown the lag there on the test split."),
    _claim("cnn_precise_repairs", WU, "On the same CNN, the recomputed statistics score no worse than each test batch's own statistics.",
           _side("precise BN", CNN, 0.99, PRECISE, None), _side("batch statistics", CNN, 0.99, BATCH, None), "not_lower", 0.01),
)

STUDY = Study("bn_inference", TITLE, "BN's inference statistics: moving averages vs precise BN vs batch statistics, by BN momentum and run length",
              sweeps=(MLP, CNN), claims=CLAIMS, render=build, order=95)
