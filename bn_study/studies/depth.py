"""BN at depth: does BN make tens of layers trainable (the tutorials), or do its gradients explode with depth
(Yang et al. 2019)? Per-layer gradient norms at initialisation and over training, and a trainability map."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from bn_study.claims import Claim, Context, GradientGrowth, GridCount, Side, gradient_growth, verdicts
from bn_study.render import plots
from bn_study.studies.common import Tables, draw_band, final_by, markdown_table, median_by, write
from bn_study.studies.registry import RERUN_2026_12_05, Study
from bn_study.tables import collect

TITLE = "BN at depth: exploding gradients against trainable depth"
RELU, NONLINEARITY, HE, PRECISE = "depth", "depth_nonlinearity", "depth_he", "depth_precise"
DEEPEST = 50
# Gradients at initialisation do not depend on the learning rate: the claims on them read the runs at this one.
INIT_LR = 0.01
# A (depth, lr) cell "trains" when its final validation accuracy reaches this fraction of the best median of the
# shallowest BN network over learning rates: a target that follows the dataset, set by one arm for all. Well below the
# best, so that a network that learned most of what the shallow one did counts, whether or not it had caught up with it
# after 1,000 steps (at 95%, 20-layer BN networks still rising sat at the target: TARGET_HISTORY).
OF_BEST = 0.8
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
    out = [
        {"run_id": run_id, "step": step, "growth": gradient_growth(g.set_index("block")["value"].sort_index())}
        for (run_id, step), g in layer_norms(study).groupby(["run_id", "step"])
    ]
    return pd.DataFrame(out).merge(study.runs[["run_id", *CONFIG]], on="run_id")


def _label(bn: str, act: str) -> str:
    return ARMS[(bn, act)][0]


def trained_medians(study: Tables, by: list[str]) -> pd.DataFrame:
    """Per configuration: the median final validation accuracy over seeds, a diverged run counting as 0 (as the
    trainability claims count it: not trained), and how many runs diverged."""
    runs = study.runs.assign(val=study.runs["val_accuracy"].fillna(0.0))
    return pd.DataFrame(
        [
            {
                **dict(zip(by, key)),
                "median": float(g["val"].median()),
                "n_diverged": int((g["status"] == "diverged").sum()),
                "n_runs": len(g),
            }
            for key, g in runs.groupby(by, sort=True)
        ]
    )


def takeaway(final: pd.DataFrame, target: float) -> str:
    """The figure's point in one line: the deepest relu network each arm trains to the target, at how many rates."""
    cells = final[(final["model.activation"] == "relu") & (final["study"] == RELU)]
    rates = cells["optimizer.lr"].nunique()
    said = []
    for bn, name in (("none", "without BN"), ("before", "with BN")):
        trained = cells[(cells["model.bn"] == bn) & (cells["median"] >= target)]
        if trained.empty:
            said.append(f"{name} at no depth")
            continue
        deepest = int(trained["model.depth"].max())
        said.append(
            f"{name} up to {deepest} hidden layers ({(trained['model.depth'] == deepest).sum()} of {rates} rates there)"
        )
    return f"Trained to {target:.3f} (bold in d, e): relu networks {', '.join(said)}."


def _heatmap(ax, final: pd.DataFrame, bn: str, title: str, target: float):
    cells = final[(final["model.bn"] == bn) & (final["model.activation"] == "relu") & (final["study"] == RELU)]
    grid = cells.pivot_table(index="model.depth", columns="optimizer.lr", values="median", dropna=False)
    diverged = cells.pivot_table(index="model.depth", columns="optimizer.lr", values="n_diverged", dropna=False)
    image = ax.imshow(grid.to_numpy(), origin="lower", vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set(
        xticks=range(grid.shape[1]),
        xticklabels=[f"{lr:g}" for lr in grid.columns],
        yticks=range(grid.shape[0]),
        yticklabels=[str(d) for d in grid.index],
        xlabel="learning rate (SGD)",
        ylabel="hidden layers",
        title=title,
    )
    for (i, depth), (j, lr) in ((a, b) for a in enumerate(grid.index) for b in enumerate(grid.columns)):
        v, n_div = grid.loc[depth, lr], int(diverged.loc[depth, lr])
        text = f"{v:.3f}" + (f"\n{n_div} div." if n_div else "")
        ax.text(
            j,
            i,
            text,
            ha="center",
            va="center",
            fontsize=6.5,
            color="black" if v >= 0.5 else "white",
            fontweight="bold" if v >= target else "normal",
        )
    return image


def build(study_dir: Path, out: Path) -> list[Path]:
    study = Tables.load(study_dir, out)
    growth = growth_per_run(study)
    growth = growth[
        growth["study"] != HE
    ]  # the gradient panels and tables: Glorot init throughout; He only in the trainability table
    at_init = growth[(growth["step"] == 0) & np.isclose(growth["optimizer.lr"], INIT_LR)]
    growth_by_depth = median_by(at_init, ["model.depth", *ARM_KEYS], "growth")
    deepest = int(study.runs["model.depth"].max())

    norms = layer_norms(study).merge(study.runs[["run_id", *CONFIG]], on="run_id")
    norms = norms[norms["study"] != HE]
    init_norms = norms[
        (norms["step"] == 0) & (norms["model.depth"] == deepest) & np.isclose(norms["optimizer.lr"], INIT_LR)
    ]
    profile = median_by(init_norms, [*ARM_KEYS, "block"], "value")

    fig, axes = plots.new_figure(5, width=3.6, height=3.4)
    for (bn, act), (label, color) in ARMS.items():
        arm = profile[(profile["model.bn"] == bn) & (profile["model.activation"] == act)]
        if len(arm):
            draw_band(axes[0], arm, "block", color, label)
        arm = growth_by_depth[(growth_by_depth["model.bn"] == bn) & (growth_by_depth["model.activation"] == act)]
        if len(arm):
            axes[1].plot(arm["model.depth"], 10 ** arm["median"], color=color, marker="o", ms=3, label=label)
            axes[1].fill_between(
                arm["model.depth"], 10 ** arm["ci_low"], 10 ** arm["ci_high"], color=color, alpha=0.2, lw=0
            )
    axes[0].set(
        yscale="log",
        title=f"(a) gradient norm by layer at init, {deepest} layers",
        xlabel="hidden layer (1 = next to the input)",
        ylabel="||dL/dW|| of the layer's kernel",
    )
    # two columns in the empty decades between relu without BN (at the bottom) and the others
    axes[0].legend(fontsize=5.5, loc="lower center", bbox_to_anchor=(0.5, 0.12), ncol=2)
    axes[1].axhline(1, color="0.5", lw=0.6)
    axes[1].set(
        xticks=sorted(growth_by_depth["model.depth"].unique()),
        title="(b) growth per layer towards the input, at init",
        xlabel="hidden layers",
        ylabel="gradient norm factor per layer",
    )
    relu_deep = growth[
        (growth["model.depth"] == deepest)
        & (growth["model.activation"] == "relu")
        & (growth["study"] == RELU)
        & np.isclose(growth["optimizer.lr"], INIT_LR)
    ]
    # a point only where every seed of the arm has a factor (arms that gained seeds for a later look have more)
    seeds = relu_deep.groupby("model.bn")["seed"].nunique()
    over_training = median_by(relu_deep, ["model.bn", "step"], "growth")
    over_training = over_training[over_training["n"] == over_training["model.bn"].map(seeds)]
    for bn in ("none", "before"):
        arm = over_training[over_training["model.bn"] == bn]
        axes[2].plot(
            arm["step"], 10 ** arm["median"], color=ARMS[(bn, "relu")][1], marker="o", ms=3, label=_label(bn, "relu")
        )
        axes[2].fill_between(
            arm["step"], 10 ** arm["ci_low"], 10 ** arm["ci_high"], color=ARMS[(bn, "relu")][1], alpha=0.2, lw=0
        )
    axes[2].axhline(1, color="0.5", lw=0.6)
    axes[2].set(
        title=f"(c) over training, {deepest} relu layers, lr {INIT_LR:g}",
        xlabel="training steps",
        ylabel="gradient norm factor per layer",
    )
    axes[2].legend(fontsize=6)

    final = trained_medians(study, ["study", "model.depth", "optimizer.lr", *ARM_KEYS])
    target = target_accuracy(study)
    _heatmap(axes[3], final, "none", "(d) relu without BN: final val. accuracy", target)
    image = _heatmap(axes[4], final, "before", "(e) relu with BN: final val. accuracy", target)
    fig.colorbar(image, ax=axes[4], shrink=0.8)
    plots.caption(
        fig,
        f"{takeaway(final, target)} "
        f"Plain fully-connected networks of 100-unit blocks (Glorot-uniform init, Keras's default), SGD, batch 60, "
        f"{int(study.runs['steps'].max()):,} steps. (a)-(c): {study.band_note()}; the factor per layer is 10^(least-squares slope of "
        f"log10 gradient norm against layer index, layers 2 to L: layer 1 reads the 784 pixels; at 3 or 5 layers a fit to 2 or 4 points), "
        f"> 1: gradients grow towards the input; it cannot see a uniformly vanishing gradient (panel a's 1e-8). (c): a point only where every "
        f"seed has a factor (some hidden gradient exactly zero in a dead network: none). (d, e): median over seeds, a diverged run counted as "
        f"0; bold: the median reaches {OF_BEST:.0%} of the 3-layer BN network's best ({target:.3f}); 'div.': runs that diverged. {study.data_note()}.",
    )

    depths = sorted(study.runs["model.depth"].unique())
    lrs = sorted(study.runs.loc[study.runs["study"] == RELU, "optimizer.lr"].unique())
    with_ci = final_by(
        study, ["study", "model.depth", "optimizer.lr", *ARM_KEYS, "model.kernel_init"], metric="val_accuracy"
    )

    targets = {PRECISE: target_accuracy(study, PRECISE)} if (study.runs["study"] == PRECISE).any() else {}

    def cell(where: dict) -> str:
        text = _fmt_final(collect.select(with_ci, where))
        trained = collect.select(final, {k: v for k, v in where.items() if k != "model.kernel_init"})
        reached = targets.get(where["study"], target)
        return f"**{text}**" if len(trained) and trained.iloc[0]["median"] >= reached else text

    map_rows = [
        [
            label,
            depth,
            *(
                cell(
                    {
                        "study": study_name,
                        "model.bn": bn,
                        "model.activation": "relu",
                        "model.depth": depth,
                        "optimizer.lr": lr,
                    }
                )
                for lr in lrs
            ),
        ]
        for study_name, bn, label in (
            (RELU, "none", "relu, without BN (Glorot)"),
            (HE, "none", "relu, without BN, He init"),
            (RELU, "before", "relu, BN (Glorot)"),
            (PRECISE, "before", "relu, BN (Glorot), on recomputed statistics"),
        )
        for depth in depths
        if len(collect.select(study.runs, {"study": study_name, "model.bn": bn, "model.depth": depth}))
    ]
    arm_rows = [
        [
            label,
            *(
                cell(
                    {
                        "study": RELU if act == "relu" else NONLINEARITY,
                        "model.bn": bn,
                        "model.activation": act,
                        "model.depth": d,
                        "optimizer.lr": INIT_LR,
                    }
                )
                for d in depths
            ),
        ]
        for (bn, act), (label, _) in ARMS.items()
    ]
    growth_rows = []
    for (bn, act), (label, _) in ARMS.items():
        arm = growth_by_depth[(growth_by_depth["model.bn"] == bn) & (growth_by_depth["model.activation"] == act)]
        if len(arm):
            growth_rows.append([label, *(_fmt_factor(collect.select(arm, {"model.depth": d})) for d in depths)])
    probe_batch = int(study.runs["probe.batch"].iloc[0])
    summary = "\n".join(
        [
            f"# {TITLE}",
            "",
            "The tutorials say BN makes networks of tens of layers trainable. Yang et al. (2019) derive with a mean-field theory (wide networks "
            "at initialisation), and check in simulations, that in a plain fully-connected network (no skip connections) BN itself makes "
            "gradients grow exponentially with depth, which tuning the init or the nonlinearity cannot remove; that deep vanilla BN networks "
            "are then not trainable; and that a network closer to linear explodes less and trains deeper.",
            "",
            f"Networks: flatten -> `model.depth` blocks of Dense(100) [-> BN] -> activation -> Dense(10), Glorot-uniform init (Keras's default; "
            f"the init is not varied, except He-uniform for the no-BN relu arm: with BN before the activation and no bias, the init's scale cancels "
            f"out anyway), plain SGD, batch 60, {int(study.runs['steps'].max()):,} steps ({study.epochs_note()}): 'trains' here means within that "
            f"budget. Gradient norms on a fixed batch of {probe_batch} training examples (BN's batch statistics over those {probe_batch}: the "
            f"factor describes that batch size, not the training batch of 60), in training mode, at every evaluation; {study.seeds_note()}. "
            f"{study.data_note()}.",
            "",
            f"Gradient norm factor per layer towards the input at initialisation (10^slope of log10 norm against layer index over layers 2 to L, "
            f"layer 1's kernel reading the 784 pixels; at 3 or 5 layers the fit rests on 2 or 4 points; lr {INIT_LR:g} runs: the gradients at "
            "step 0 do not depend on the learning rate), median over seeds [interval]. A factor near 1 can hide a gradient that vanishes "
            "evenly: relu without BN at Glorot init starts at about 1e-8 in every layer of 50 (panel a).",
            "",
            markdown_table(["network", *(f"{d} layers" for d in depths)], growth_rows),
            "",
            f"Final validation accuracy, median over seeds [interval], a diverged run left out of the median and counted ('div.'); in bold where "
            f"the median with diverged runs counted as 0 reaches {target:.4f} ({OF_BEST:.0%} of the best median over learning rates of the "
            f"{min(depths)}-layer BN network: the trainability claims' target, set on validation; on recomputed statistics, the fair "
            f"twins', {OF_BEST:.0%} of that network's best on them, {targets.get(PRECISE, math.nan):.4f}). BN is read on its moving "
            f"averages (momentum 0.99), as Keras keeps them, which after {int(study.runs['steps'].max()):,} steps may still lag the "
            "weights; the last row reads the "
            "same training (experiments/depth_precise.yaml) with BN's statistics recomputed over 50 training batches before each "
            f"evaluation.{_hosts_note(study)} By depth and learning rate, relu:",
            "",
            markdown_table(["network", "hidden layers", *(f"lr {lr:g}" for lr in lrs)], map_rows),
            "",
            f"Every arm at lr {INIT_LR:g} (descriptive, no claim: tanh and the identity ran at this rate only):",
            "",
            markdown_table(["network", *(f"{d} layers" for d in depths)], arm_rows),
            "",
            f"Intervals: {study.band_note()}. A seed whose arms both train at no rate is an exact tie (0 rates each), a difference "
            "of 0 in its claim's sample (the claim's effect says how many); a claim all of whose pairs tie so is inconclusive, "
            "for that reason, not for want of seeds.",
            "",
            *_sensitivity(study),
            *study.claims_section(),
            "Figure: depth.png / .pdf; the numbers plotted: depth.csv (gradient factors by depth) and growth.csv (per run and step).",
            "",
        ]
    )
    growth.to_csv(study.out / "growth.csv", index=False)
    return [
        *write(
            study,
            "depth",
            fig,
            pd.concat([growth_by_depth.assign(what="growth_at_init"), profile.assign(what="norm_at_init_by_block")]),
            summary,
        ),
        study.out / "growth.csv",
    ]


# The other targets the trainability claims are re-judged at, to show how their outcomes move with it.
OTHER_TARGETS = (0.75, 0.85, 0.9, 0.95)


def _sensitivity(study: Tables) -> list[str]:
    """Each trainability claim re-judged at other fractions of the best: descriptive, the declared one is OF_BEST."""
    fractions = sorted((*OTHER_TARGETS, OF_BEST))
    rows = []
    for claim in CLAIMS:
        if isinstance(claim.metric, GridCount):
            judged = [
                verdicts.judge(replace(claim, metric=replace(claim.metric, of_best=f)), study.runs, study.curves)
                for f in fractions
            ]
            rows.append(
                [f"`{claim.id}`", *(f"{r['outcome']} ({r['median_difference']:+g}, n={r['n']})" for r in judged)]
            )
    return [
        f"How the trainability claims' outcomes move with their target (each re-judged, seeds as the runs have them, at "
        f"other fractions of the shallow BN network's best; only {OF_BEST:.0%} is declared, and was chosen with these runs "
        "known): a claim whose outcome changes across the row rests on where its target sits.",
        "",
        markdown_table(["claim", *(f"{f:.0%}" for f in fractions)], rows),
        "",
    ]


def _hosts_note(study: Tables) -> str:
    """Which seeds' moving-average runs and recomputed-statistics twins ran on different CPUs: numerics that differ in
    the last bits grow, over 1,000 steps of a deep network, into different training, so there a twin's comparison mixes
    the host with the reading of BN."""
    both = study.runs[study.runs["study"].isin((RELU, PRECISE)) & (study.runs["model.bn"] == "before")]
    hosts = both["cpu"].fillna("unknown") if "cpu" in both else pd.Series("unknown", index=both.index)
    crossed = sorted(int(seed) for seed, g in hosts.groupby(both["seed"]) if g.nunique() > 1)
    if not crossed:
        return ""
    return (
        f" Seeds {', '.join(map(str, crossed))} of the two readings ran on different hosts ({'; '.join(sorted(hosts.unique()))}), "
        "whose numerics differ in the last bits; over the run that grows into different training (on one host a twin's "
        "training curve is its moving-average run's, value for value), so for those seeds a twin compares the host as well "
        "as the reading."
    )


def _fmt_final(cell: pd.DataFrame) -> str:
    if cell.empty:
        return "-"
    r = cell.iloc[0]
    if math.isnan(r["median"]):
        return f"diverged ({r['n_diverged']}/{r['n_runs']})"
    return f"{r['median']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]" + (
        f", {r['n_diverged']}/{r['n_runs']} div." if r["n_diverged"] else ""
    )


def _fmt_factor(cell: pd.DataFrame) -> str:
    if cell.empty:
        return "-"
    r = cell.iloc[0]
    return f"x{10 ** r['median']:.3f} [{10 ** r['ci_low']:.3f}, {10 ** r['ci_high']:.3f}]"


def _shallow_bn(sweep: str = RELU) -> tuple:
    return (("study", sweep), ("model.bn", "before"), ("model.activation", "relu"), ("model.depth", 3))


def target_accuracy(study: Tables, sweep: str = RELU) -> float:
    return OF_BEST * Context(study.runs, study.curves).best_median(
        dict(_shallow_bn(sweep)), "optimizer.lr", "val_accuracy"
    )


YANG = "Yang et al. (2019), 'A Mean Field Theory of Batch Normalization'"
TUTORIALS = "Tutorials (Machine Learning Mastery, devarena); Ioffe & Szegedy (2015)"
_PER_LAYER = 0.021  # log10(1.05): 5% per layer, x11 over 50 layers
TRAINS = GridCount(grid="optimizer.lr", split="val", of_best=OF_BEST, baseline=_shallow_bn())
LAG = "BN is read on its moving averages (momentum 0.99), which may lag the weights after 1,000 steps"
TARGET_HISTORY = (
    "The target was 95% of the best (31af06a to this change), where 20-layer BN networks still rising after 1,000 steps "
    "sat: 0.798 against 0.808 on Fashion-MNIST, 0.880 against 0.886 on mnist5k; on Fashion-MNIST 9 of 10 pairs tied at "
    "0 rates each and bn_trains_tens_of_layers came out negligible beside a 0.80 against 0.41 accuracy gap. Lowered to 80% after a review "
    "asked for a target off that edge, with the runs known; the summary shows each outcome at 75% to 95%."
)
TWIN_HISTORY = (
    "Added with the moving-average verdicts known, when a review pointed out that they read BN as inception_table's "
    "handicapped claims do; the same sentence, sides and margin, BN evaluated on recomputed statistics (its target too)."
    f" Its target is {OF_BEST:.0%} of the shallow network's best on recomputed statistics, which is higher: a side without BN is held "
    "to a higher bar there too, so where a twin decides and its claim does not, the bar may have moved as well as BN's reading."
)


def _on_precise(side: Side) -> Side:
    """A side with BN read on recomputed statistics (the depth_precise sweep); a side without BN as it is."""
    if side.where.get("model.bn") != "before":
        return side
    return Side(f"{side.label}, recomputed statistics", {**side.where, "study": PRECISE})


def _twinned(claim: Claim) -> tuple[Claim, Claim]:
    """The trainability claim as run (BN on its moving averages: flagged) and its fair twin on recomputed statistics."""
    twin = replace(
        claim,
        id=f"{claim.id}_precise",
        a=_on_precise(claim.a),
        b=_on_precise(claim.b),
        metric=replace(TRAINS, baseline=_shallow_bn(PRECISE)),
        history=TWIN_HISTORY,
    )
    return replace(claim, handicap=LAG, fair_twin=twin.id), twin


def _retargeted(claim: Claim) -> Claim:
    return replace(claim, history=" ".join(filter(None, (claim.history, TARGET_HISTORY))))


def _at_init(bn: str, act: str, depth: int = DEEPEST) -> dict:
    return {
        "study": RELU if act == "relu" else NONLINEARITY,
        "model.depth": depth,
        "model.bn": bn,
        "model.activation": act,
        "optimizer.lr": INIT_LR,
    }


def _relu(bn: str, depth: int) -> dict:
    return {"study": RELU, "model.depth": depth, "model.bn": bn, "model.activation": "relu"}


DECLARED = (
    Claim(
        "depth.bn_gradients_explode",
        YANG,
        f"BN itself makes gradients grow exponentially with depth at initialisation: at {DEEPEST} relu layers, "
        "the gradient norm grows faster per layer towards the input with BN than without.",
        Side("relu, BN", _at_init("before", "relu")),
        Side("relu, without BN", _at_init("none", "relu")),
        GradientGrowth(step=0),
        "higher",
        _PER_LAYER,
    ),
    Claim(
        "depth.linear_reduces_explosion",
        YANG,
        f"A nonlinearity closer to linear reduces BN's gradient explosion: at {DEEPEST} layers with BN, the "
        "gradient grows faster per layer with relu than with the identity.",
        Side("relu, BN", _at_init("before", "relu")),
        Side("linear, BN", _at_init("before", "linear")),
        GradientGrowth(step=0),
        "higher",
        _PER_LAYER,
    ),
    Claim(
        "depth.tanh_explodes_too",
        YANG,
        f"The explosion is not removed by choosing tanh over relu: at {DEEPEST} tanh layers, the gradient "
        "grows faster per layer with BN than without.",
        Side("tanh, BN", _at_init("before", "tanh")),
        Side("tanh, without BN", _at_init("none", "tanh")),
        GradientGrowth(step=0),
        "higher",
        _PER_LAYER,
        history="Declared in 31af06a as 'cannot be removed by the choice of nonlinearity'; reworded after a review (the identity nearly removes "
        "it, as Yang et al. say of the linear limit), the rule unchanged.",
    ),
    Claim(
        "depth.bn_trains_tens_of_layers",
        TUTORIALS,
        "BN makes deep networks (tens of layers) trainable: at 20 relu layers, more learning rates "
        "train with BN than without.",
        Side("relu, BN", _relu("before", 20)),
        Side("relu, without BN", _relu("none", 20)),
        TRAINS,
        "higher",
        0.5,
    ),
    Claim(
        "depth.bn_trains_50_layers",
        TUTORIALS,
        f"The same at {DEEPEST} relu layers.",
        Side("relu, BN", _relu("before", DEEPEST)),
        Side("relu, without BN", _relu("none", DEEPEST)),
        TRAINS,
        "higher",
        0.5,
    ),
    Claim(
        "depth.deep_bn_untrainable",
        YANG,
        f"Deep vanilla BN networks become hard to train: with BN, fewer of the four learning rates train "
        f"(within the study's steps) at {DEEPEST} relu layers than at 5.",
        Side(f"BN, {DEEPEST} layers", _relu("before", DEEPEST)),
        Side("BN, 5 layers", _relu("before", 5)),
        TRAINS,
        "lower",
        0.5,
        history="Declared in 31af06a as 'become untrainable'; reworded after a review (the 50-layer BN networks learn, to 0.2-0.3, within "
        "1,000 steps), the rule unchanged.",
    ),
    Claim(
        "depth.bn_beats_he_init",
        TUTORIALS,
        "BN makes 20 relu layers trainable at more learning rates than a network without BN given the "
        "init made for relu (He-uniform).",
        Side("relu, BN (Glorot)", _relu("before", 20)),
        Side("relu, without BN, He init", {**_relu("none", 20), "study": HE}),
        TRAINS,
        "higher",
        0.5,
        history="Added after the first results (31af06a) and a review: the no-BN relu arm at Glorot init starts out "
        "vanishing, so bn_trains_tens_of_layers may be a win over a poor init.",
    ),
)

# Each trainability claim beside its fair twin (its BN sides on recomputed statistics).
CLAIMS = tuple(
    c for claim in DECLARED for c in (map(_retargeted, _twinned(claim)) if claim.metric == TRAINS else (claim,))
)

STUDY = Study(
    "depth",
    TITLE,
    "BN at depth: per-layer gradient norms at init and over training (3-50 layers; relu, tanh, linear), trainability by depth x lr",
    sweeps=(RELU, NONLINEARITY, HE, PRECISE),
    claims=CLAIMS,
    render=build,
    order=96,
    reruns=f"{RERUN_2026_12_05}: 0.34 h of run time -> 0.21 h on Fashion-MNIST, 0.26 h -> 0.18 h on mnist5k, across the two hosts. No outcome moved. "
    "On 2026-12-07 mnist5k's runs were all made again on one host (Intel), 0.28 h for 560 runs, so that each fair twin "
    "shares its training with its moving-average run; no outcome moved. Fashion-MNIST's the same (0.33 h for 580 runs), "
    "where seeds 0-4 had come from two hosts; no outcome moved.",
)
