"""Inside the network: BN vs none on the mechanism probes, in the style of Santurkar et al. (2018)'s
figures, and how BN's momentum sets the gap between train- and inference-mode accuracy on short runs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bn_study.claims import Claim, LogCurveMedian, MeanGap, Side
from bn_study.render import plots
from bn_study.studies.common import Tables, at_end, draw_band, markdown_table, median_curves, write
from bn_study.studies.registry import RERUN_2026_12_05, Study
from bn_study.tables import collect, stats

TITLE = "Inside the network: internal covariate shift, loss landscape, saturation, train vs inference"
MOMENTUM = "mechanisms_momentum"
ARMS = ("none", "before")
# Measures summarised per run as the median over its evaluations after step 0, then across seeds:
# (split, metric, what it is).
MEASURES = [
    ("ics", "{last}.ics_l2", "ICS of the last hidden layer: l2 change of its gradient"),
    ("ics", "{last}.ics_cos", "ICS of the last hidden layer: cosine of its gradients (1 = no shift)"),
    ("landscape", "loss_range", "loss range along the gradient"),
    ("landscape", "grad_change_max", "largest gradient change along the gradient (predictiveness)"),
    ("landscape", "beta_smoothness", "effective beta-smoothness"),
    ("act", "{last}.saturated", "fraction of saturated units, last hidden sigmoid"),
    ("act", "dense1.saturated", "fraction of saturated units, first hidden sigmoid"),
]


def _last_hidden(study: Tables) -> str:
    names = study.curves.loc[study.curves["split"] == "ics", "metric"].str.split(".").str[0]
    return sorted(n for n in names.unique() if n.startswith("dense"))[-1]


def per_run(study: Tables, split: str, metric: str) -> pd.DataFrame:
    """Per run: the median of `metric` over its evaluations after step 0."""
    rows = collect.with_config(study.curves, study.runs, ["model.bn", "seed"], split, metric)
    rows = rows[rows["step"] > 0]
    return rows.groupby(["run_id", "model.bn", "seed"], as_index=False)["value"].median()


def _fmt(cell: dict) -> str:
    """Median [interval] to 4 significant digits: these measures span many orders of magnitude."""
    return f"{cell['median']:.4g} [{cell['ci_low']:.4g}, {cell['ci_high']:.4g}]"


def _range_band(ax, study: Tables, measure: str, bn: str) -> None:
    """Santurkar et al.'s shaded range: between the medians (over seeds) of the smallest and the largest
    value of `measure` over the step sizes tried at each evaluation."""
    lo, hi = (
        median_curves(study.select({"model.bn": bn}), ["model.bn"], "landscape", f"{measure}_{end}")
        for end in ("min", "max")
    )
    ax.fill_between(
        lo["step"], lo["median"], hi["median"], color=plots.BN_COLORS[bn], alpha=0.35, lw=0, label=plots.BN_LABELS[bn]
    )


def _panel(ax, study: Tables, split: str, metric: str, title: str, ylabel: str, logy: bool = False) -> pd.DataFrame:
    curves = median_curves(study, ["model.bn"], split, metric)
    for bn in ARMS:
        draw_band(ax, curves[curves["model.bn"] == bn], "step", plots.BN_COLORS[bn], plots.BN_LABELS[bn])
    ax.set(title=title, xlabel="training steps", ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    return curves.assign(metric=metric)


def _per_layer(ax, study: Tables, split: str, suffix: str, title: str, ylabel: str) -> None:
    """A per-layer measure at the last evaluation: median over seeds per layer, one line per arm."""
    rows = study.curves[(study.curves["split"] == split) & study.curves["metric"].str.endswith(suffix)]
    rows = at_end(rows).merge(study.runs[["run_id", "model.bn"]], on="run_id")
    rows = rows.assign(layer=rows["metric"].str.split(".").str[0])
    layers = sorted(rows["layer"].unique(), key=lambda n: (n == "logits", n))
    for bn in ARMS:
        med = rows[rows["model.bn"] == bn].groupby("layer")["value"].median().reindex(layers)
        ax.plot(layers, med.values, marker="o", color=plots.BN_COLORS[bn], label=plots.BN_LABELS[bn])
    ax.set(title=title, xlabel="layer", ylabel=ylabel, yscale="log")


def _momentum(ax_curves, ax_gap, momentum: Tables) -> tuple[list[list[str]], bool]:
    """(i) accuracy in both BN modes over training per momentum; (j) the final gap by momentum."""
    values = sorted(momentum.runs["model.bn_momentum"].unique())
    for color, m in zip(plots.CYCLE, values):
        chosen = momentum.select({"model.bn_momentum": m})
        for metric, style, what in (
            ("acc_batch_stats", "-", "batch stats"),
            ("acc_moving_averages", "--", "moving avg"),
        ):
            c = median_curves(chosen, ["model.bn_momentum"], "bn_modes", metric)
            ax_curves.plot(c["step"], c["median"], ls=style, color=color, label=f"{m:g}, {what}")
    ax_curves.set(
        title="(i) test acc., batch stats (solid)\nor moving averages (dashed)",
        xlabel="training steps",
        ylabel="test accuracy",
        ylim=(0, 1),
    )
    ax_curves.legend(fontsize=6, loc="lower right", title="BN momentum", title_fontsize=6)

    modes = momentum.curves[(momentum.curves["split"] == "bn_modes") & (momentum.curves["step"] > 0)]
    points = modes.pivot_table(index=["run_id", "step"], columns="metric", values="value").reset_index()
    points["gap"] = points["acc_batch_stats"] - points["acc_moving_averages"]
    # Per run: the gap averaged over its evaluations (the whole short run), and its accuracies at the end.
    runs = (
        points.groupby("run_id")
        .agg(gap=("gap", "mean"))
        .join(at_end(points).set_index("run_id")[["acc_batch_stats", "acc_moving_averages"]])
    )
    wide = runs.reset_index().merge(momentum.runs[["run_id", "model.bn_momentum"]], on="run_id")
    table = pd.DataFrame(
        [{"model.bn_momentum": m, **stats.median_ci(g["gap"])} for m, g in wide.groupby("model.bn_momentum")]
    )
    draw_band(ax_gap, table, "model.bn_momentum", plots.BN_COLORS["before"], "with BN")
    ax_gap.axhline(0, color="0.5", lw=0.8, ls=":")
    ax_gap.set(
        title="(j) batch stats minus moving avg.,\nmean over the run",
        xlabel="BN momentum",
        ylabel="accuracy difference",
        xscale="logit",
    )
    ax_gap.set_xticks(values, [f"{m:g}" for m in values])
    ax_gap.minorticks_off()
    return [
        [f"{m:g}", *(_fmt(stats.median_ci(g[k])) for k in ("acc_batch_stats", "acc_moving_averages", "gap"))]
        for m, g in wide.groupby("model.bn_momentum")
    ]


def takeaway(study: Tables) -> str:
    """The figure's point in one line, on the measure the smoothness claims read: each run's median over its evaluations,
    then the median over seeds, with BN over without."""
    ratios = {}
    for metric in ("loss_range", "beta_smoothness"):
        medians = per_run(study, "landscape", metric).groupby("model.bn")["value"].median()
        ratios[metric] = medians["before"] / medians["none"]
    return (
        f"Over a run's evaluations (median), the loss along the gradient varies {ratios['loss_range']:.2g}x as much with BN "
        f"as without (a), and the effective beta-smoothness is {ratios['beta_smoothness']:.2g}x (c): below 1 is smoother."
    )


def build(study_dir: Path, out: Path) -> list[Path]:
    tables = Tables.load(study_dir, out)
    study, momentum = tables.select({"study": "mechanisms"}), tables.select({"study": MOMENTUM})
    last = _last_hidden(study)
    steps = "/".join(f"{x:g}" for x in json.loads(study.runs["probe.landscape_steps"].iloc[0]))

    fig, ((a, b, c, d, e), (f, g, h, i, j)) = plots.new_figure(5, nrows=2, width=3.2, height=2.9)
    for bn in ARMS:
        _range_band(b, study, "grad_change", bn)
    b.set(
        title="(b) gradient change along the\ngradient (lower: more predictive)",
        xlabel="training steps",
        ylabel="l2 change of the gradient",
        yscale="log",
    )
    plotted = pd.concat(
        [
            _panel(
                a,
                study,
                "landscape",
                "loss_range",
                "(a) loss range along the gradient\n(lower: smoother)",
                "max - min loss",
                logy=True,
            ),
            _panel(
                c,
                study,
                "landscape",
                "beta_smoothness",
                "(c) effective beta-smoothness\n(lower: smoother)",
                "max gradient change / distance",
                logy=True,
            ),
            _panel(
                d,
                study,
                "ics",
                f"{last}.ics_l2",
                f"(d) ICS of {last}: gradient shift\n(l2; lower: less shift)",
                "l2 distance",
                logy=True,
            ),
            _panel(
                e,
                study,
                "ics",
                f"{last}.ics_cos",
                f"(e) ICS of {last}: cosine of\ngradients (1: no shift)",
                "cosine",
            ),
            _panel(
                f,
                study,
                "act",
                f"{last}.saturated",
                f"(f) saturated sigmoid inputs\nof {last} (fraction)",
                "fraction of (unit, example)",
            ),
        ]
    )
    _per_layer(g, study, "grad", ".grad_norm", "(g) gradient norm per layer,\nat the end", "||dL/dW||")
    _per_layer(
        h,
        study,
        "grad",
        ".update_ratio",
        "(h) step size over weight size,\nper layer, at the end",
        "||step|| / ||W||",
    )
    a.legend(fontsize=7)
    momentum_rows = _momentum(i, j, momentum)
    for ax in (a, b, c, d, e, f, g, h, i, j):
        ax.title.set_fontsize(8.5)
    m_cfg = momentum.runs.iloc[0]
    plots.caption(
        fig,
        f"{takeaway(study)} "
        f"(a-h) 3x100 sigmoid MLP, SGD momentum 0.9 lr 0.01, batch 60, {int(study.runs['steps'].max()):,} steps; {study.band_note()}, "
        f"except (b): between the medians of the smallest and largest change over steps of {steps} x lr along the gradient. "
        f"Gradients: 256 fixed training examples, training mode; activations: 1,000 fixed test images, inference mode. (i, j) 3x100 relu MLP with BN, "
        f"Adam lr {m_cfg['optimizer.lr']:g}, batch {m_cfg['trainer.batch_size']}, {int(momentum.runs['steps'].max())} steps ({momentum.seeds_note()}). "
        f"{study.data_note()}.",
    )

    rows = []
    for split, template, what in MEASURES:
        metric = template.format(last=last)
        runs = per_run(study, split, metric)
        rows.append(
            [
                what,
                f"`{split}/{metric}`",
                *(_fmt(stats.median_ci(runs[runs["model.bn"] == bn]["value"])) for bn in ARMS),
            ]
        )

    summary = "\n".join(
        [
            f"# {TITLE}",
            "",
            f"3x100 sigmoid MLP with and without BN before each sigmoid, SGD momentum 0.9 lr 0.01, batch 60, {int(study.runs['steps'].max()):,} steps, "
            f"every probe at each evaluation (every {int(study.runs['trainer.eval_every'].iloc[0])} steps); {study.seeds_note()}. {study.data_note()}. "
            f"Each run is summarised by the median of a measure over its evaluations after step 0; the table gives the {study.band_note()}. "
            "ICS as Santurkar et al. (2018) define it: the change of a layer's gradient when every earlier layer first takes its gradient step (lr x gradient), "
            f"on the same 256 training examples. Landscape: the loss and gradient at steps of {steps} x lr along the gradient.",
            "",
            markdown_table(
                ["measure", "split/metric in curves.parquet", "without BN", "with BN (before the sigmoid)"], rows
            ),
            "",
            f"Train vs inference mode (relu MLP with BN, Adam lr {m_cfg['optimizer.lr']:g}, batch {m_cfg['trainer.batch_size']}, "
            f"{int(momentum.runs['steps'].max())} steps; {momentum.seeds_note()}): test accuracy at the end with BN on each test batch's own statistics "
            "(test batches of the training batch size) and on its moving averages, and the gap between the two averaged over every evaluation of the run. "
            "The momentum changes only the moving averages, never the training itself, so the batch-statistics column is the same in every row.",
            "",
            markdown_table(
                [
                    "BN momentum",
                    "at the end: batch statistics",
                    "at the end: moving averages",
                    "gap (batch - moving), mean over the run",
                ],
                momentum_rows,
            ),
            "",
            *tables.claims_section(),
            "Figure: mechanisms.png / .pdf; the curves plotted in (a) and (c)-(f): mechanisms.csv; all measures of every run: curves.parquet (splits act, grad, ics, landscape, bn_modes).",
            "",
        ]
    )
    return write(tables, "mechanisms", fig, plotted, summary)


SANTURKAR = "Santurkar et al. (2018), 'How Does Batch Normalization Help Optimization?'"
_MLP = {"study": "mechanisms"}
_BN, _NO_BN = Side("with BN", {**_MLP, "model.bn": "before"}), Side("without BN", {**_MLP, "model.bn": "none"})
_MARGIN = 0.041  # log10(1.1): a 10% difference


def _landscape(measure: str, sentence: str) -> Claim:
    return Claim(
        f"mechanisms.{measure}",
        SANTURKAR,
        sentence,
        _BN,
        _NO_BN,
        LogCurveMedian("landscape", measure),
        "lower",
        _MARGIN,
    )


CLAIMS = (
    Claim(
        "mechanisms.ics",
        "Ioffe & Szegedy (2015)",
        "BN works by reducing internal covariate shift (measured as Santurkar et al. define it: "
        "the change of a layer's gradient after the earlier layers take their update).",
        _BN,
        _NO_BN,
        LogCurveMedian("ics", "dense3.ics_l2"),
        "lower",
        _MARGIN,
    ),
    _landscape("loss_range", "BN makes the loss landscape smoother: the variation of the loss along the gradient."),
    _landscape(
        "grad_change_max",
        "BN makes the loss landscape smoother: the change of the gradient along the gradient ('gradient predictiveness').",
    ),
    _landscape("beta_smoothness", "BN makes the loss landscape smoother: the effective beta-smoothness."),
    Claim(
        "mechanisms.moving_average_lag",
        "Wu & Johnson (2021), 'Rethinking Batch in BatchNorm'",
        "The exponential moving average of batch statistics can lag the weights (the slower the average, the larger the lag on a short run).",
        Side("BN momentum 0.999", {"study": MOMENTUM, "model.bn_momentum": 0.999}),
        Side("BN momentum 0.9", {"study": MOMENTUM, "model.bn_momentum": 0.9}),
        MeanGap("bn_modes", "acc_batch_stats", minus="acc_moving_averages"),
        "higher",
        margin=0.01,
    ),
)

STUDY = Study(
    "mechanisms",
    TITLE,
    "inside the network: ICS, loss-landscape smoothness, saturation, gradients, train- vs inference-mode BN by momentum",
    sweeps=("mechanisms", MOMENTUM),
    claims=CLAIMS,
    render=build,
    order=90,
    history="3-seed results (392cf67) were judged by the direction of the medians alone (holds / mixed); the margins here were "
    "written with those results known.",
    reruns=f"{RERUN_2026_12_05}: 0.04 h of run time -> 0.02 h on Fashion-MNIST, 0.02 h -> 0.01 h on mnist5k, across the two hosts. No outcome moved.",
)
