# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The learning-rate x activation x BN-placement grid
#
# Median test-accuracy curves over seeds (with their interval: a CI where the seeds allow one, see bn_study.tables.stats) in a grid of panels, and the
# final accuracies as a table. Works for any collected study that varies these knobs: `keras_blog`
# (learning rate x activation x BN, the default), `placement` (activation x BN placement, its MNIST runs:
# `select` leaves out its circles network, which a median never pools with them), `lr_sensitivity`. It reads only
# `runs.csv` and `curves.parquet`, through the package.

# %% tags=["parameters"]
results = "results"  # the results root
study = "keras_blog"  # a folder under it holding runs.csv and curves.parquet
rows = "model.activation"  # one row of panels per value of this column
cols = "optimizer.lr"  # one column of panels per value (None: a single column)
hue = "model.bn"  # one curve per value in each panel
select = {}  # {column: value or list} the runs must match; {} keeps every run (papermill: -y "select: {...}")

# %%
from pathlib import Path

import matplotlib.pyplot as plt

from bn_study.render import plots
from bn_study.studies.common import Tables, draw_band, final_by, mark_diverged, median_curves
from bn_study.tables import collect

grid = Tables.load(Path(results) / study).select(select)
keys = [k for k in (rows, cols, hue) if k]
print(f"{len(grid.runs)} runs; {grid.seeds_note()}. {grid.data_note()}.")
{k: sorted(grid.runs[k].unique().tolist()) for k in keys}

# %%
curves = median_curves(grid, keys)
row_values = sorted(grid.runs[rows].unique())
col_values = sorted(grid.runs[cols].unique()) if cols else [None]
hue_values = sorted(
    grid.runs[hue].unique(),
    key=lambda v: list(plots.BN_COLORS).index(v) if v in plots.BN_COLORS else len(plots.BN_COLORS),
)
colors = {v: plots.BN_COLORS.get(v, plots.CYCLE[i % len(plots.CYCLE)]) for i, v in enumerate(hue_values)}

fig, axes = plt.subplots(
    len(row_values),
    len(col_values),
    figsize=(3.2 * len(col_values), 2.6 * len(row_values)),
    sharex=True,
    sharey=True,
    squeeze=False,
    constrained_layout=True,
)
for r, row_value in enumerate(row_values):
    for c, col_value in enumerate(col_values):
        ax = axes[r][c]
        where = {rows: row_value, **({cols: col_value} if cols else {})}
        for value in hue_values:
            panel = {**where, hue: value}
            draw_band(
                ax, collect.select(curves, panel), "step", colors[value], plots.BN_LABELS.get(value, f"{hue}={value}")
            )
            mark_diverged(ax, grid.select(panel).runs, colors[value])
        ax.set_title(", ".join(f"{k.split('.')[-1]} {v}" for k, v in where.items()), fontsize=9)
        if r == len(row_values) - 1:
            ax.set_xlabel("training steps")
        if c == 0:
            ax.set_ylabel("test accuracy")
axes[0][0].legend(fontsize=7, loc="lower right")
plt.show()

# %% [markdown]
# Final test accuracy: median over seeds with its interval (bn_study.tables.stats), and how many runs diverged.

# %%
final = final_by(grid, keys)
final.pivot_table(index=[rows, *([cols] if cols else [])], columns=hue, values="median").round(4)

# %%
final
