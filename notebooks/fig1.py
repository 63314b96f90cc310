# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Figure 1: test accuracy and a sigmoid's input distribution, with and without BN
#
# Ioffe & Szegedy (2015), Figure 1, from the collected tables of a `fig1` study
# (`make fig1` writes them to `results/fig1/`). The notebook reads only `runs.csv` and
# `curves.parquet`, through `bn_study.tables.collect.load`, as the study's own figure does.

# %% tags=["parameters"]
results = "results"  # the results root
study = "fig1"  # a folder under it holding runs.csv and curves.parquet
percentile_band = ("p15", "p85")  # the probe percentiles drawn as a band around the median

# %%
from pathlib import Path

import matplotlib.pyplot as plt

from bn_study.claims import verdicts
from bn_study.render import plots
from bn_study.studies import fig1
from bn_study.studies.common import Tables

tables = Tables.load(Path(results) / study)
tables.runs[
    [
        "run_id",
        "model.bn",
        "seed",
        "optimizer.lr",
        "trainer.steps",
        "status",
        "test_accuracy",
        "val_accuracy",
        "data_used",
    ]
]

# %% [markdown]
# The numbers the figure plots: per arm and evaluated step, the median test accuracy over seeds with its
# interval, and the 15th, 50th and 85th percentiles of one typical last-hidden-layer sigmoid's input (one
# seed) over a fixed batch of test images.

# %%
table = fig1.figure_table(tables)
table.groupby("bn").tail(2)

# %% [markdown]
# ## Test accuracy over seeds, and the percentile band of the typical unit's input

# %%
low, high = percentile_band
fig, (ax_acc, ax_band) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
for bn in fig1.ARMS:
    arm = table[table["bn"] == bn]
    color, label = plots.BN_COLORS[bn], plots.BN_LABELS[bn]
    ax_acc.plot(arm["step"], arm["test_accuracy_median"], color=color, label=label)
    ax_acc.fill_between(arm["step"], arm["test_accuracy_low"], arm["test_accuracy_high"], color=color, alpha=0.2, lw=0)
    ax_band.plot(arm["step"], arm["p50"], color=color, label=f"{label}: median")
    ax_band.fill_between(
        arm["step"], arm[low], arm[high], color=color, alpha=0.2, lw=0, label=f"{low[1:]}th-{high[1:]}th percentile"
    )
ax_acc.set(
    xlabel="training steps",
    ylabel="test accuracy",
    ylim=(max(0, table["test_accuracy_median"].quantile(0.05) - 0.05), 1),
)
ax_band.set(xlabel="training steps", ylabel="input to the sigmoid")
ax_acc.legend()
ax_band.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## The study's verdicts on the paper's claims (from verdicts.json)

# %%
print(verdicts.RULE)
for r in tables.verdicts():
    print(f"{r['id']}: {r['outcome']}: {verdicts.effect(r)}")
