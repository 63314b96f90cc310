"""Shared look of the figures: matplotlib without a display, one palette, PNG + PDF side by side."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

from bn_study import files

# Files only, no display needed; but a notebook kernel (which sets MPLBACKEND to its inline backend) or
# a user's own MPLBACKEND keeps its choice.
if "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Colours for other arms (variants that are not BN placements), in order.
CYCLE = ["#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"]
# One colour per BN placement, the same in every figure.
BN_COLORS = {"none": "#d62728", "before": "#1f77b4", "after": "#2ca02c"}
# One colour per normaliser (model.norm; "none": no normalisation), the same in the normalizers and recurrent figures.
NORM_COLORS = {"none": BN_COLORS["none"], "batch": BN_COLORS["before"], "layer": CYCLE[1], "group": CYCLE[0]}
BN_LABELS = {"none": "without BN", "before": "with BN (before activation)", "after": "with BN (after activation)"}


def new_figure(ncols: int, nrows: int = 1, width: float = 4.2, height: float = 3.4, **kwargs):
    plt.rcParams.update(
        {"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False}
    )
    return plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows), constrained_layout=True, squeeze=nrows == 1, **kwargs
    )


def caption(fig, text: str) -> None:
    fig.get_layout_engine().set(h_pad=0.1)
    fig.supxlabel(text, fontsize=7.5, color="0.3", wrap=True)


def save_png(fig, path: Path, dpi: int = 150) -> Path:
    """`fig` as one PNG written atomically (a figure outside a study's staged outputs), then closed."""
    try:
        files.write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    finally:
        plt.close(fig)
    return path


def save(fig, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1], metadata={"CreationDate": None})  # byte-identical PDFs for identical figures
    plt.close(fig)
    return paths
