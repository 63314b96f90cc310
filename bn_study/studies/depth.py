"""BN at depth: does BN make tens of layers trainable (the tutorials), or do its gradients explode with depth
(Yang et al. 2019)? Per-layer gradient norms at initialisation and over training, and a trainability map."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .. import collect, plots, stats
from ..claims import Claim, GradientGrowth, GridCount, Side, gradient_growth
from .common import Tables, draw_band, final_by, markdown_table, write
from .registry import Study

TITLE = "BN at depth: exploding gradients against trainable depth"
RELU, NONLINEARITY = "depth", "depth_nonlinearity"
DEEPEST = 50
# Gradients at initialisation do not depend on the learning rate: the claims on them read the runs at this one.
INIT_LR = 0.01
# A (depth, lr) cell "trains" when its final validation accuracy reaches this fraction of the best median of the
# shallowest BN network over learning rates: a target that follows the dataset, set by one arm for all.
OF_BEST = 0.95
# (model.bn, model.activation) -> label and colour, one source for every panel and table.
ARMS = {
    ("none", "relu"): ("relu, without BN", plots.BN_COLORS["none"]),
    ("before", "relu"): ("relu, BN", plots.BN_COLORS["before"]),
    ("before", "tanh"): ("tanh, BN", plots.CYCLE[0]),
    ("before", "linear"): ("linear (identity), BN", plots.CYCLE[1]),
    ("none", "tanh"): ("tanh, without BN", plots.CYCLE[2]),
    ("none", "linear"): ("linear (identity), without BN", plots.CYCLE[4]),
}
ARM_KEYS = ["model.bn", "model.activation"]


CONFIG = ["study", "model.depth", "optimizer.lr", *ARM_KEYS, "seed"]


def layer_norms(study: Tables) -> pd.DataFrame:
    """Every run's hidden-block kernel-gradient norms, long form: run_id, step, block (1 = next to the input), value."""
    rows = study.curves[study.curves["split"] == "grad"]
    block = rows["metric"].str.extract(r"^dense(\d+)\.grad_norm$")[0]
    return rows[block.notna()].assign(block=block.dropna().astype(int))[["run_id", "step", "block", "value"]]


def growth_per_run(study: Tables) -> pd.DataFrame:
    """Per run and evaluated step: the per-layer growth of its gradient norms towards the input (claims.gradient_growth)."""
    out = [{"run_id": run_id, "step": step, "growth": gradient_growth(g.set_index("block")["value"].sort_index())}
           for (run_id, step), g in layer_norms(study).groupby(["run_id", "step"])]
    return pd.DataFrame(out).merge(study.runs[["run_id", *CONFIG]], on="run_id")


def medians(table: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Per configuration (`by`): the median of `value` over seeds with its interval."""
    return pd.DataFrame([{**dict(zip(by, key)), **stats.median_ci(g[value])} for key, g in table.groupby(by, sort=True)])


def _label(bn: str, act: str) -> str:
    return ARMS[(bn, act)][0]


def _heatmap(ax, final: pd.DataFrame, bn: str, title: str, target: float) -> None:
    cells = final[(final["model.bn"] == bn) & (final["model.activation"] == "relu") & (final["study"] == RELU)]
    grid = cells.pivot_table(index="model.depth", columns="optimizer.lr", values="median", dropna=False)
    image = ax.imshow(grid.to_numpy(), origin="lower", vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set(xticks=range(grid.shape[1]), xticklabels=[f"{lr:g}" for lr in grid.columns], yticks=range(grid.shape[0]),
           yticklabels=[str(d) for d in grid.index], xlabel="learning rate (SGD)", ylabel="hidden layers", title=title)
    for (i, depth), (j, lr) in ((a, b) for a in enumerate(grid.index) for b in enumerate(grid.columns)):
        v = grid.loc[depth, lr]
        text = "div." if math.isnan(v) else f"{v:.2f}"
        ax.text(j, i, text, ha="center", va="center", fontsize=7, color="black" if not math.isnan(v) and v >= target else "white",
                fontweight="bold" if not math.isnan(v) and v >= target else "normal")
    return image


def build(study_dir: Path) -> list[Path]:
    study = Tables.load(study_dir)
    growth = growth_per_run(study)
    at_init = growth[(growth["step"] == 0) & np.isclose(growth["optimizer.lr"], INIT_LR)]
    growth_by_depth = medians(at_init, ["model.depth", *ARM_KEYS], "growth")
    deepest = int(study.runs["model.depth"].max())

    norms = layer_norms(study).merge(study.runs[["run_id", *CONFIG]], on="run_id")
    init_norms = norms[(norms["step"] == 0) & (norms["model.depth"] == deepest) & np.isclose(norms["optimizer.lr"], INIT_LR)]
    profile = medians(init_norms, [*ARM_KEYS, "block"], "value")

    fig, axes = plots.new_figure(5, width=3.6, height=3.4)
    for (bn, act), (label, color) in ARMS.items():
        arm = profile[(profile["model.bn"] == bn) & (profile["model.activation"] == act)]
        if len(arm):
            draw_band(axes[0], arm, "block", color, label)
        arm = growth_by_depth[(growth_by_depth["model.bn"] == bn) & (growth_by_depth["model.activation"] == act)]
        if len(arm):
            axes[1].plot(arm["model.depth"], 10 ** arm["median"], color=color, marker="o", ms=3, label=label)
            axes[1].fill_between(arm["model.depth"], 10 ** arm["ci_low"], 10 ** arm["ci_high"], color=color, alpha=0.2, lw=0)
    axes[0].set(yscale="log", title=f"(a) gradient norm by layer at init, {deepest} layers", xlabel="hidden layer (1 = next to the input)",
                ylabel="||dL/dW|| of the layer's kernel")
    axes[0].legend(fontsize=6)
    axes[1].axhline(1, color="0.5", lw=0.6)
    axes[1].set(xticks=sorted(growth_by_depth["model.depth"].unique()), title="(b) growth per layer towards the input, at init", xlabel="hidden layers",
                ylabel="gradient norm factor per layer")
    relu_deep = growth[(growth["model.depth"] == deepest) & (growth["model.activation"] == "relu") & (growth["study"] == RELU)
                       & np.isclose(growth["optimizer.lr"], INIT_LR)]
    over_training = medians(relu_deep, ["model.bn", "step"], "growth")
    for bn in ("none", "before"):
        arm = over_training[over_training["model.bn"] == bn]
        axes[2].plot(arm["step"], 10 ** arm["median"], color=ARMS[(bn, "relu")][1], marker="o", ms=3, label=_label(bn, "relu"))
        axes[2].fill_between(arm["step"], 10 ** arm["ci_low"], 10 ** arm["ci_high"], color=ARMS[(bn, "relu")][1], alpha=0.2, lw=0)
    axes[2].axhline(1, color="0.5", lw=0.6)
    axes[2].set(title=f"(c) over training, {deepest} relu layers, lr {INIT_LR:g}", xlabel="training steps", ylabel="gradient norm factor per layer")
    axes[2].legend(fontsize=6)

    final = final_by(study, ["study", "model.depth", "optimizer.lr", *ARM_KEYS], metric="val_accuracy")
    target = target_accuracy(study)
    _heatmap(axes[3], final, "none", "(d) relu without BN: final val. accuracy", target)
    image = _heatmap(axes[4], final, "before", "(e) relu with BN: final val. accuracy", target)
    fig.colorbar(image, ax=axes[4], shrink=0.8)
    plots.caption(fig, f"Plain fully-connected networks of 100-unit blocks (Glorot-uniform init, Keras's default), SGD, batch 60, "
                       f"{int(study.runs['steps'].max()):,} steps. (a)-(c): {study.band_note()}; the factor per layer is 10^(least-squares slope of "
                       f"log10 gradient norm against layer index, layers 2 to L: layer 1 reads the 784 pixels), > 1: gradients grow towards the input. (d, e): median over seeds; bold: the cell "
                       f"trains (reaches {OF_BEST:.0%} of the shallowest BN network's best, {target:.3f}); div.: the median run diverged. {study.data_note()}.")

    depths = sorted(study.runs["model.depth"].unique())
    lrs = sorted(study.runs.loc[study.runs["study"] == RELU, "optimizer.lr"].unique())
    map_rows = []
    for bn in ("none", "before"):
        for depth in depths:
            cells = collect.select(final, {"study": RELU, "model.bn": bn, "model.activation": "relu", "model.depth": depth})
            map_rows.append([_label(bn, "relu"), depth, *(_fmt_final(collect.select(cells, {"optimizer.lr": lr})) for lr in lrs)])
    growth_rows = []
    for (bn, act), (label, _) in ARMS.items():
        arm = growth_by_depth[(growth_by_depth["model.bn"] == bn) & (growth_by_depth["model.activation"] == act)]
        if len(arm):
            growth_rows.append([label, *(_fmt_factor(collect.select(arm, {"model.depth": d})) for d in depths)])
    summary = "\n".join([
        f"# {TITLE}", "",
        "The tutorials say BN makes networks of tens of layers trainable; Yang et al. (2019) prove that in a plain fully-connected network "
        "(no skip connections) BN itself makes gradients grow exponentially with depth at initialisation, whatever the init, that deep "
        "vanilla BN networks become untrainable, and that a nonlinearity closer to linear reduces the explosion.", "",
        f"Networks: flatten -> `model.depth` blocks of Dense(100) [-> BN] -> activation -> Dense(10), Glorot-uniform init (Keras's default), "
        f"plain SGD, batch 60, {int(study.runs['steps'].max()):,} steps ({study.epochs_note()}); gradient norms on a fixed batch of "
        f"{256} training examples, in training mode, at every evaluation; {study.seeds_note()}. {study.data_note()}.", "",
        f"Gradient norm factor per layer towards the input at initialisation (10^slope of log10 norm against layer index over layers 2 to L, "
        f"layer 1's kernel reading the 784 pixels; lr {INIT_LR:g} runs: "
        "the gradients at step 0 do not depend on the learning rate), median over seeds [interval]:", "",
        markdown_table(["network", *(f"{d} layers" for d in depths)], growth_rows), "",
        f"Final validation accuracy by depth and learning rate (relu), median over seeds [interval]; a cell trains when it reaches {target:.4f} "
        f"({OF_BEST:.0%} of the best median of the {min(depths)}-layer BN network):", "",
        markdown_table(["network", "hidden layers", *(f"lr {lr:g}" for lr in lrs)], map_rows), "",
        f"Intervals: {study.band_note()}.", "",
        *study.claims_section(),
        "Figure: depth.png / .pdf; the numbers plotted: depth.csv (gradient factors by depth) and growth.csv (per run and step).", "",
    ])
    growth.to_csv(study.dir / "growth.csv", index=False)
    return [*write(study, "depth", fig, pd.concat([growth_by_depth.assign(what="growth_at_init"), profile.assign(what="norm_at_init_by_block")]), summary),
            study.dir / "growth.csv"]


def _fmt_final(cell: pd.DataFrame) -> str:
    if cell.empty:
        return "-"
    r = cell.iloc[0]
    if math.isnan(r["median"]):
        return f"diverged ({r['n_diverged']}/{r['n_runs']})"
    return f"{r['median']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]" + (f", {r['n_diverged']}/{r['n_runs']} div." if r["n_diverged"] else "")


def _fmt_factor(cell: pd.DataFrame) -> str:
    if cell.empty:
        return "-"
    r = cell.iloc[0]
    return f"x{10 ** r['median']:.3f} [{10 ** r['ci_low']:.3f}, {10 ** r['ci_high']:.3f}]"


SHALLOW_BN = (("study", RELU), ("model.bn", "before"), ("model.activation", "relu"), ("model.depth", 3))


def target_accuracy(study: Tables) -> float:
    from ..claims import Context

    return OF_BEST * Context(study.runs, study.curves).best_median(dict(SHALLOW_BN), "optimizer.lr", "val_accuracy")


YANG = "Yang et al. (2019), 'A Mean Field Theory of Batch Normalization'"
TUTORIALS = "Tutorials (Machine Learning Mastery, devarena); Ioffe & Szegedy (2015)"
_PER_LAYER = 0.021  # log10(1.05): 5% per layer, x11 over 50 layers
TRAINS = GridCount(grid="optimizer.lr", split="val", of_best=OF_BEST, baseline=SHALLOW_BN)


def _at_init(bn: str, act: str, depth: int = DEEPEST) -> dict:
    return {"study": RELU if act == "relu" else NONLINEARITY, "model.depth": depth, "model.bn": bn, "model.activation": act, "optimizer.lr": INIT_LR}


def _relu(bn: str, depth: int) -> dict:
    return {"study": RELU, "model.depth": depth, "model.bn": bn, "model.activation": "relu"}


CLAIMS = (
    Claim("depth.bn_gradients_explode", YANG, f"BN itself makes gradients grow exponentially with depth at initialisation: at {DEEPEST} relu layers, "
          "the gradient norm grows faster per layer towards the input with BN than without.",
          Side("relu, BN", _at_init("before", "relu")), Side("relu, without BN", _at_init("none", "relu")), GradientGrowth(step=0), "higher", _PER_LAYER),
    Claim("depth.linear_reduces_explosion", YANG, f"A nonlinearity closer to linear reduces BN's gradient explosion: at {DEEPEST} layers with BN, the "
          "gradient grows faster per layer with relu than with the identity.",
          Side("relu, BN", _at_init("before", "relu")), Side("linear, BN", _at_init("before", "linear")), GradientGrowth(step=0), "higher", _PER_LAYER),
    Claim("depth.tanh_explodes_too", YANG, f"The explosion cannot be removed by the choice of nonlinearity: at {DEEPEST} tanh layers, the gradient "
          "grows faster per layer with BN than without.",
          Side("tanh, BN", _at_init("before", "tanh")), Side("tanh, without BN", _at_init("none", "tanh")), GradientGrowth(step=0), "higher", _PER_LAYER),
    Claim("depth.bn_trains_tens_of_layers", TUTORIALS, "BN makes deep networks (tens of layers) trainable: at 20 relu layers, more learning rates "
          "train with BN than without.", Side("relu, BN", _relu("before", 20)), Side("relu, without BN", _relu("none", 20)), TRAINS, "higher", 0.5),
    Claim("depth.bn_trains_50_layers", TUTORIALS, f"The same at {DEEPEST} relu layers.",
          Side("relu, BN", _relu("before", DEEPEST)), Side("relu, without BN", _relu("none", DEEPEST)), TRAINS, "higher", 0.5),
    Claim("depth.deep_bn_untrainable", YANG, f"Deep vanilla BN networks become untrainable: with BN, fewer learning rates train at {DEEPEST} relu "
          "layers than at 5.", Side(f"BN, {DEEPEST} layers", _relu("before", DEEPEST)), Side("BN, 5 layers", _relu("before", 5)), TRAINS, "lower", 0.5),
)

STUDY = Study("depth", TITLE, "BN at depth: per-layer gradient norms at init and over training (3-50 layers; relu, tanh, linear), trainability by depth x lr",
              sweeps=(RELU, NONLINEARITY), claims=CLAIMS, render=build, order=96)
