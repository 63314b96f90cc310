"""The figure of every claim (results/claims.png): its effect and interval against its margin, one panel per dataset.

Claims measure different things (accuracy differences, ratios of steps, counts of rates), so each is drawn in units of
its own margin, signed so that the direction it claims points right: 0 is no effect, +1 the margin the claim must clear,
-1 the margin the other way. The rule's outcomes are then regions of one axis: an interval wholly right of +1 holds,
wholly left of -1 is contradicted, wholly inside (-1, +1) is negligible ("no worse than" claims hold right of -1). A
ratio's margin and effect are both logarithms, so ratios sit on the same log scale. Beyond +-1 the axis is logarithmic
too, so that an effect of twenty margins and one of two both fit.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bn_study.claims import verdicts
from bn_study.render import plots

COLORS = {"holds": "#2ca02c", "contradicted": "#d62728", "negligible": "#1f77b4", "inconclusive": "#a0a0a0"}
# Where the axis stops: an interval end beyond it (a censored ratio's infinity too) is drawn as an arrow at the edge.
EDGE = 60.0


def in_margins(record: dict) -> tuple[float, float, float]:
    """(effect, low, high) in margins of `record`'s claim, the claimed direction positive."""
    sign = -1.0 if record["direction"] == "lower" else 1.0
    scale = abs(record["margin"])
    values = [sign * record[key] / scale for key in ("median_difference", "low", "high")]
    effect, *ends = values
    return effect, min(ends), max(ends)


def _clipped(value: float) -> float:
    return max(-EDGE, min(EDGE, value)) if not math.isnan(value) else value


def draw(
    rows: list[tuple[str, str, list[dict | None]]],
    labels: list[str],
    caption: str,
    path: Path,
    width: float = 3.6,
    row_height: float = 0.16,
) -> None:
    """`rows`: (question, row label, one verdict record or None per dataset of `labels`), in the order drawn, top down;
    `width` of a panel and `row_height` in inches (a study's few claims need more room each than the report's many).
    Written atomically to `path` (PNG)."""
    headed = []
    for question, label, records in rows:
        if not headed or headed[-1][0] != question:
            headed.append((question, None, None))
        headed.append((question, label, records))
    fig, axes = plots.new_figure(len(labels), 1, width=width, height=row_height * len(headed) + 1.4, sharey=True)
    panels = list(np.ravel(axes))
    ys = range(len(headed), 0, -1)
    for column, (ax, title) in enumerate(zip(panels, labels)):
        ax.set_xscale("symlog", linthresh=1.0, linscale=1.0)
        ax.set_xlim(-EDGE * 1.15, EDGE * 1.15)
        ax.axvspan(1, EDGE * 1.15, color=COLORS["holds"], alpha=0.07, lw=0)
        ax.axvspan(-EDGE * 1.15, -1, color=COLORS["contradicted"], alpha=0.07, lw=0)
        for x, style in ((0, "-"), (1, "--"), (-1, "--")):
            ax.axvline(x, color="0.4", lw=0.7, ls=style)
        for y, (question, label, records) in zip(ys, headed):
            if label is None:
                ax.axhspan(y - 0.5, y + 0.5, color="0.9", lw=0)
                continue
            record = records[column]
            if record is None:
                continue
            if not verdicts.measurable(record):  # no pair tells the sides apart: nothing to place on the axis
                ax.text(0, y, "not measurable", ha="center", va="center", fontsize=6, color=COLORS["inconclusive"])
                continue
            effect, low, high = (_clipped(v) for v in in_margins(record))
            color = COLORS[record["outcome"]]
            ax.plot([low, high], [y, y], color=color, lw=1.6, solid_capstyle="butt")
            for end in (low, high):
                if abs(end) >= EDGE:
                    ax.annotate(
                        "",
                        (end, y),
                        (end - math.copysign(EDGE * 0.4, end), y),
                        arrowprops={"arrowstyle": "->", "color": color, "lw": 1.2},
                    )
            if not math.isnan(effect):
                registered = not record.get("post_hoc", True)
                ax.plot(effect, y, "o", ms=4, color=color, mfc=color if registered else "white", mew=1.2)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([-10, -1, 0, 1, 10])
        ax.set_xticklabels(["-10", "-1", "0", "+1", "+10"])
        ax.set_xlabel("effect / margin", fontsize=8)
        ax.grid(False)
    panels[0].set_yticks(list(ys))
    panels[0].set_yticklabels(
        [f"{question.upper()}" if label is None else label for question, label, _ in headed], fontsize=7
    )
    for tick, (_, label, _) in zip(panels[0].get_yticklabels(), headed):
        if label is None:
            tick.set_fontweight("bold")
    panels[0].set_ylim(0.3, len(headed) + 0.7)
    handles = [
        plots.plt.Line2D([], [], color=c, marker="o", lw=1.6, label=o)
        for o, c in COLORS.items()
        if o in verdicts.OUTCOMES
    ]
    handles.append(plots.plt.Line2D([], [], color="0.3", marker="o", mfc="white", lw=0, label="post hoc (hollow)"))
    fig.legend(handles=handles, loc="outside upper center", ncol=len(handles), fontsize=8, frameon=False)
    plots.caption(fig, caption)
    plots.save_png(fig, path)
