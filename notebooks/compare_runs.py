# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Compare any runs
#
# Pick a study, narrow its runs by config (`where`), group them (`by`), and compare any logged curve:
# the median over seeds with its interval (bn_study.tables.stats: a CI where the seeds allow one), one line per group, and the final numbers.
# Reads only the collected `runs.csv` and `curves.parquet` of `results/<study>/`. With papermill, pass a mapping or a
# list with `-y` (`-y "where: {data.name: mnist, model.bn: before}"`); `-p` passes it as a string.

# %% tags=["parameters"]
results = "results"  # the results root
study = "placement"  # a folder under it holding runs.csv and curves.parquet
# {column: value or list of values}; {} keeps every run. Runs of another dataset, network or evaluation grid are never
# pooled into one median: placement also holds the circles network, so this picks its MNIST runs.
where = {"data.name": "mnist", "model.activation": ["sigmoid", "relu"]}
by = ["model.activation", "model.bn"]  # one curve per combination of these columns
split, metric = "test", "accuracy"  # which curve: test/train accuracy or loss, probe p15/p50/p85, ...

# %%
from pathlib import Path

import matplotlib.pyplot as plt

from bn_study.studies.common import Tables, draw_band, final_by, median_curves
from bn_study.tables import stats

everything = Tables.load(Path(results) / study)
print(f"{len(everything.runs)} runs in {everything.dir}. The columns that tell them apart, and their values:")
{c: sorted(str(v) for v in everything.runs[c].unique()) for c in stats.varying_config_columns(everything.runs)}

# %% [markdown]
# The curves every run logged (`split` / `metric` pairs):

# %%
everything.curves.groupby(["split", "metric"]).size().rename("points")

# %%
chosen = everything.select(where)
print(f"{len(chosen.runs)} of {len(everything.runs)} runs match {where}")
curves = median_curves(chosen, by, split=split, metric=metric)

fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
for i, (key, group) in enumerate(curves.groupby(by, sort=True)):
    draw_band(ax, group, "step", f"C{i % 10}", ", ".join(f"{k.split('.')[-1]}={v}" for k, v in zip(by, key)))
ax.set(xlabel="training steps", ylabel=f"{split} {metric}", title=f"{study}: {everything.band_note()}")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Final test accuracy per group (median with its interval, diverged runs), and the steps each group took
# to reach 90% test accuracy (median over seeds; inf: not reached).

# %%
final = final_by(chosen, by)
final.merge(chosen.runs.groupby(by)["steps_to_0.9"].median().rename("median steps to 90%").reset_index(), on=by)
