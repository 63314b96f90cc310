"""BN before vs after the activation vs none: per activation on the MLP, and on the tutorial's circles."""

from __future__ import annotations

from pathlib import Path

from .. import plots
from ..claims import Claim, Final, Side, StepsTo
from .registry import Study
from .common import Tables, draw_band, fmt_ci, final_by, mark_diverged, markdown_table, median_curves, write

TITLE = "BN placement: none vs before vs after the activation"
ARMS = ("none", "before", "after")
ACTS = ("sigmoid", "tanh", "relu")
CIRCLES = "placement_circles"


def _panel(ax, study: Tables, curves, where: dict, title: str) -> None:
    for bn in ARMS:
        sel = (curves["model.bn"] == bn)
        runs = study.runs[study.runs["model.bn"] == bn]
        for key, value in where.items():
            sel &= curves[key] == value
            runs = runs[runs[key] == value]
        draw_band(ax, curves[sel], "step", plots.BN_COLORS[bn], plots.BN_LABELS[bn])
        mark_diverged(ax, runs, plots.BN_COLORS[bn])
    ax.set(title=title, xlabel="training steps")


def build(study_dir: Path) -> list[Path]:
    mlp = Tables.load(study_dir)
    circles = Tables.load(study_dir.parent / (CIRCLES + ("_quick" if study_dir.name.endswith("_quick") else "")))
    mlp_curves = median_curves(mlp, ["model.activation", "model.bn"])
    circle_curves = median_curves(circles, ["model.bn"])

    fig, axes = plots.new_figure(4, width=3.5, height=3.0)
    for ax, act in zip(axes, ACTS):
        _panel(ax, mlp, mlp_curves, {"model.activation": act}, f"MLP 3x100, {act}")
    _panel(axes[3], circles, circle_curves, {}, "circles, 1x50 relu (tutorial)")
    axes[0].set_ylabel("test accuracy")
    lowest = min(mlp_curves.loc[mlp_curves["step"] > 0, "median"].quantile(0.05), circle_curves.loc[circle_curves["step"] > 0, "median"].quantile(0.05))
    for ax in axes:
        ax.set_ylim(max(0.0, lowest - 0.05), 1.0)
    axes[3].legend(loc="lower right", fontsize=7)
    plots.caption(fig, f"Median over seeds with 95% bootstrap band ({mlp.seeds_note()}). MLP: SGD momentum 0.9, lr 0.01, batch 60. "
                       f"Circles: he_uniform init, SGD lr 0.01 momentum 0.9, batch 32, 100 epochs. {mlp.data_note()}.")

    final = final_by(mlp, ["model.activation", "model.bn"])
    final_c = final_by(circles, ["model.bn"])
    rows, best = [], {}
    for act in ACTS:
        arms = {bn: final[(final["model.activation"] == act) & (final["model.bn"] == bn)].iloc[0] for bn in ARMS}
        best[act] = max(ARMS, key=lambda bn: arms[bn]["median"])
        rows.append([f"MLP, {act}", *(fmt_ci(arms[bn]) for bn in ARMS), best[act]])
    arms_c = {bn: final_c[final_c["model.bn"] == bn].iloc[0] for bn in ARMS}
    best["circles"] = max(ARMS, key=lambda bn: arms_c[bn]["median"])
    rows.append(["circles, relu", *(fmt_ci(arms_c[bn]) for bn in ARMS), best["circles"]])

    def median(act, bn):
        pick = final_c if act == "circles" else final[final["model.activation"] == act]
        return pick[pick["model.bn"] == bn]["median"].item()

    def relation(act) -> str:
        a, b = median(act, "before"), median(act, "after")
        return f"before {a:.4f} {'>' if a > b else '=' if a == b else '<'} after {b:.4f}"

    relu_before = median("relu", "before") >= median("relu", "after")
    squash_after = [act for act in ("sigmoid", "tanh") if median(act, "after") >= median(act, "before")]
    verdict = (f"Best placement by median final accuracy: {', '.join(f'{k} {v}' for k, v in best.items())} (ties go to the first of none, before, after). "
               f"'Before suits relu' {'holds' if relu_before else 'does not hold'} on the MLP ({relation('relu')}); "
               f"'after may suit sigmoid/tanh' holds for {', '.join(squash_after) or 'neither'} "
               f"(sigmoid: {relation('sigmoid')}; tanh: {relation('tanh')}). Criterion: at least as high a median.")
    summary = "\n".join([
        f"# {TITLE}", "",
        f"3x100 MLP, SGD momentum 0.9 lr 0.01, batch 60, {int(mlp.runs['steps'].max()):,} steps; and the Machine Learning Mastery circles problem "
        f"(1x50 relu, he_uniform, {int(circles.runs['steps'].max()):,} steps = 100 epochs of 500 points). {mlp.seeds_note()}. {mlp.data_note()}.", "",
        markdown_table(["network", "final acc, no BN (median [95% CI])", "BN before activation", "BN after activation", "best"], rows), "",
        f"Verdict: {verdict}", "",
        "Figure: placement.png / .pdf; the curves plotted: placement.csv (MLP) and placement_circles.csv.", "",
    ])
    circle_curves.to_csv(study_dir / "placement_circles.csv", index=False)
    return write(mlp, "placement", fig, mlp_curves, summary)


TUTORIALS = "Tutorials (Machine Learning Mastery, devarena)"
MLM = "Machine Learning Mastery, two circles"


def _mlp(act: str, a: str, b: str, sentence: str) -> Claim:
    where = {"study": "placement", "model.activation": act}
    return Claim(f"placement.{act}_{a}", TUTORIALS, sentence, Side(f"BN {a}", {**where, "model.bn": a}), Side(f"BN {b}", {**where, "model.bn": b}),
                 Final("test", "accuracy"), "higher", 0.005)


CIRCLES_WHERE = {"study": CIRCLES}
CLAIMS = (
    _mlp("relu", "before", "after", "Before the activation suits ReLU."),
    _mlp("sigmoid", "after", "before", "After the activation may suit sigmoid/tanh."),
    _mlp("tanh", "after", "before", "After the activation may suit sigmoid/tanh."),
    Claim("placement.circles_after_faster", MLM, "With BN after the activation, accuracy passes 80% within the first ~20 epochs, against 30-40 epochs without BN.",
          Side("BN after", {**CIRCLES_WHERE, "model.bn": "after"}), Side("without BN", {**CIRCLES_WHERE, "model.bn": "none"}),
          StepsTo("test", "accuracy", threshold=0.8), "lower", 0.097),
    Claim("placement.circles_before_hovers", MLM, "With BN before, training accuracy hovers around 70-75% (without BN: 0.838 at the end).",
          Side("BN before", {**CIRCLES_WHERE, "model.bn": "before"}), Side("without BN", {**CIRCLES_WHERE, "model.bn": "none"}),
          Final("train", "accuracy"), "lower", 0.02),
)

STUDY = Study("placement", TITLE, "BN none / before / after the activation, sigmoid / tanh / relu, and the tutorial's circles network",
              sweeps=("placement", CIRCLES), claims=CLAIMS, render=build, order=20)
