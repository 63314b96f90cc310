"""The Keras blog's grid: validation accuracy vs training steps per (lr, activation), BN vs none."""

from __future__ import annotations

from pathlib import Path

from .. import collect, plots
from ..claims import Claim, Final, Side
from .registry import Study
from .common import Tables, at_end, draw_band, fmt_ci, final_by, mark_diverged, markdown_table, median_curves, write

TITLE = "The Keras blog's CNN grid: learning rate x activation, with and without BN"
# "One simple trick to train Keras model faster with Batch Normalization": validation accuracy after
# 3 epochs of full MNIST, (without BN, with BN), keyed by (lr, activation).
PUBLISHED = {
    (0.001, "relu"): (0.9893, 0.9899), (0.01, "relu"): (0.9749, 0.9900), (0.05, "relu"): (0.1028, 0.9725),
    (0.001, "sigmoid"): (0.9755, 0.9364), (0.01, "sigmoid"): (0.1135, 0.9513), (0.05, "sigmoid"): (0.0956, 0.8367),
}
BY = ["optimizer.lr", "model.activation", "model.bn"]


def build(study_dir: Path) -> list[Path]:
    study = Tables.load(study_dir)
    curves = median_curves(study, BY)
    lrs, acts = sorted(study.runs["optimizer.lr"].unique()), ["sigmoid", "relu"]
    fig, axes = plots.new_figure(len(lrs), nrows=len(acts), width=3.4, height=2.7, sharex=True, sharey=True)
    for r, act in enumerate(acts):
        for c, lr in enumerate(lrs):
            ax = axes[r][c]
            for bn in ("none", "before"):
                sel = (curves["optimizer.lr"] == lr) & (curves["model.activation"] == act) & (curves["model.bn"] == bn)
                draw_band(ax, curves[sel], "step", plots.BN_COLORS[bn], plots.BN_LABELS[bn])
                runs = study.runs[(study.runs["optimizer.lr"] == lr) & (study.runs["model.activation"] == act) & (study.runs["model.bn"] == bn)]
                mark_diverged(ax, runs, plots.BN_COLORS[bn])
            ax.set(title=f"lr {lr:g}, {act}", ylim=(0, 1))
            if r == len(acts) - 1:
                ax.set_xlabel("training steps")
            if c == 0:
                ax.set_ylabel("validation accuracy")
    axes[0][0].legend(loc="lower right", fontsize=7)
    plots.caption(fig, f"Keras-blog CNN, Adam, batch 32; median over seeds with 95% bootstrap band ({study.seeds_note()}); x: a diverged run. {study.data_note()}.")

    final = final_by(study, BY)
    # Accuracy on the last training interval (BN with batch statistics), to show where test accuracy
    # (BN with its moving averages) falls behind it.
    train = at_end(collect.with_config(study.curves, study.runs, BY, split="train"))
    train_median = train.groupby(BY)["value"].median()
    rows, wins_here, wins_blog, gaps = [], 0, 0, []
    for lr in lrs:
        for act in acts:
            pair = {bn: final[(final["optimizer.lr"] == lr) & (final["model.activation"] == act) & (final["model.bn"] == bn)].iloc[0] for bn in ("none", "before")}
            blog = PUBLISHED.get((round(lr, 6), act))
            wins_here += pair["before"]["median"] > pair["none"]["median"]
            wins_blog += bool(blog and blog[1] > blog[0])
            bn_train = train_median.get((lr, act, "before"), float("nan"))
            if bn_train - pair["before"]["median"] > 0.3:
                gaps.append(f"lr {lr:g} {act} (train {bn_train:.3f}, test {pair['before']['median']:.3f})")
            rows.append([f"{lr:g}", act, fmt_ci(pair["none"]), fmt_ci(pair["before"]), f"{bn_train:.4f}", f"{blog[0]:.4f} -> {blog[1]:.4f}" if blog else "-"])
    n = len(rows)
    verdict = (f"BN before the activation gives the higher median final accuracy in {wins_here} of {n} (lr, activation) settings here, "
               f"against {wins_blog} of {n} in the blog: the claim {'reproduced' if wins_here >= wins_blog - 1 and wins_here > n / 2 else 'did not reproduce'} here "
               f"(criterion: BN wins a majority of settings, at most one fewer than in the blog).")
    steps = int(study.runs["steps"].max())
    summary = "\n".join([
        f"# {TITLE}", "",
        f"Keras-blog CNN (Conv32-Pool-Conv64-Pool-Conv64-Dense64-Dense10), Adam, batch 32, {steps:,} steps; {study.seeds_note()}. {study.data_note()}.",
        "The blog trained 3 epochs of full MNIST (5,625 steps); here 3 epochs of the data used.", "",
        markdown_table(["lr", "activation", "final acc without BN (median [95% CI])", "with BN", "with BN, train acc (last interval)", "blog: without -> with"], rows), "",
        f"Verdict: {verdict}", "",
        *([f"With BN, test accuracy falls far behind training accuracy at {'; '.join(gaps)}: the network has learned, but BN's moving averages "
           f"(momentum 0.99, starting from variance 1) have not caught up with its small pre-activation variances in {steps:,} steps; "
           f"the blog's 5,625 steps leave no such lag.", ""] if gaps else []),
        "Figure: keras_blog.png / .pdf; the curves plotted: keras_blog.csv.", "",
    ])
    return write(study, "keras_blog", fig, curves, summary)


BLOG = "Keras blog, 'One simple trick to train Keras model faster with Batch Normalization' (its table)"


def _cell(lr: float, act: str, published: str, direction: str, margin: float) -> Claim:
    where = {"optimizer.lr": lr, "model.activation": act}
    return Claim(f"keras_blog.{act}_lr{lr:g}", BLOG, f"lr {lr:g}, {act}: validation accuracy after 3 epochs {published} without -> with BN.",
                 Side("with BN", {**where, "model.bn": "before"}), Side("without BN", {**where, "model.bn": "none"}),
                 Final("test", "accuracy"), direction, margin)


# The blog's cells where it reports a difference (at lr 0.001 relu it reports 0.9893 -> 0.9899: no claim).
LAG_WHERE = {"optimizer.lr": 0.001, "model.activation": "relu", "model.bn": "before"}
CLAIMS = (
    _cell(0.01, "relu", "0.9749 -> 0.9900", "higher", 0.005),
    _cell(0.05, "relu", "0.1028 -> 0.9725", "higher", 0.05),
    _cell(0.01, "sigmoid", "0.1135 -> 0.9513", "higher", 0.05),
    _cell(0.05, "sigmoid", "0.0956 -> 0.8367", "higher", 0.05),
    _cell(0.001, "sigmoid", "0.9755 -> 0.9364", "lower", 0.01),
    Claim("keras_blog.moving_average_lag", "Wu & Johnson (2021), 'Rethinking Batch in BatchNorm'",
          "The exponential moving average of batch statistics can lag the weights and misestimate the population statistics.",
          Side("BN on batch statistics", LAG_WHERE, Final("bn_modes", "acc_batch_stats")),
          Side("BN on moving averages", LAG_WHERE, Final("bn_modes", "acc_moving_averages")),
          Final("bn_modes", "acc_batch_stats"), "higher", 0.01),
)

STUDY = Study("keras_blog", TITLE, "the Keras blog's CNN grid, lr x activation x BN (output layer BN too), against the blog's table",
              sweeps=("keras_blog",), claims=CLAIMS, render=build, order=10)
