"""bn-study-plot: median curves of any collected runs (an ad-hoc sweep's too), without a clone or a notebook.

One curve per group of `--by` (default: every config column that tells the runs apart), the median over seeds with its
interval, from the tables `bn-study-collect` wrote. Runs that differ in dataset, network or evaluation grid are never
pooled into one curve: such a grouping is refused, naming what differs.

    bn-study -m model.bn=none,before seed=0,1,2 trainer.steps=2000   # an ad-hoc sweep
    bn-study-collect adhoc                                           # -> results/adhoc/runs.csv, curves.parquet
    bn-study-plot adhoc --by model.bn                                # -> results/adhoc/plot_test_accuracy.png
    bn-study-plot results/placement --where model.activation=relu data.name=mnist --by model.bn --split val
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from bn_study.render import plots
from bn_study.studies.common import StudyError, Tables, draw_band, median_curves
from bn_study.tables import collect, stats


def _where(pairs: list[str]) -> dict:
    where = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise StudyError(f"--where {pair}: expected key=value (a list: key=[a,b])")
        where[key] = yaml.safe_load(value)  # 0.01 a number, [none,before] a list, as on bn-study's command line
    return where


def _folder(target: str, results: Path) -> Path:
    for folder in (results / target, Path(target)):
        if (folder / collect.RUNS_TABLE).exists():
            return folder
    raise StudyError(
        f"{target}: no collected runs ({collect.RUNS_TABLE}) in {results / target} or {target}; collect a sweep first: "
        f"bn-study-collect {Path(target).name}"
    )


def plot(folder: Path, by: list[str] | None, where: dict, split: str, metric: str, out: Path | None) -> Path:
    tables = Tables.load(folder).select(where)
    if tables.runs.empty:
        raise StudyError(f"{folder}: no run matches --where {where}")
    by = by or [c for c in stats.varying_config_columns(tables.runs) if c != "seed"]
    curves = median_curves(tables, by, split=split, metric=metric)
    if curves.empty:
        raise StudyError(f"{folder}: no curve {split}/{metric}; the runs logged {sorted(set(tables.curves['split']))}")
    fig, ax = plots.new_figure(1, width=6.5, height=4.0)
    for i, (key, group) in enumerate(curves.groupby(by, sort=True)):
        values = key if isinstance(key, tuple) else (key,)
        draw_band(ax, group, "step", f"C{i % 10}", ", ".join(f"{k}={v}" for k, v in zip(by, values)))
    chosen = ", ".join(f"{k}={v}" for k, v in where.items())
    ax.set(xlabel="training steps", ylabel=f"{split} {metric}", title=folder.name + (f" ({chosen})" if chosen else ""))
    ax.legend(fontsize=7, loc="best")
    plots.caption(fig, f"{tables.band_note()}. {tables.data_note()}.")
    return plots.save_png(fig, out or folder / f"plot_{split}_{metric}.png", dpi=130)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bn-study-plot", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "target", help="a study under --results (adhoc for ad-hoc sweeps), or a folder holding runs.csv"
    )
    parser.add_argument("--by", nargs="+", help="one curve per combination of these columns (default: those that vary)")
    parser.add_argument("--where", nargs="+", default=[], metavar="KEY=VALUE", help="keep only the runs that match")
    parser.add_argument("--split", default="test", help="test, val, train, or a probe's split (default test)")
    parser.add_argument("--metric", default="accuracy", help="accuracy, loss, or a probe's metric (default accuracy)")
    parser.add_argument("--results", type=Path, default=Path("results"), help="the results root (default results)")
    parser.add_argument("--out", type=Path, help="the PNG to write (default <folder>/plot_<split>_<metric>.png)")
    args = parser.parse_args(argv)
    try:
        path = plot(_folder(args.target, args.results), args.by, _where(args.where), args.split, args.metric, args.out)
    except (StudyError, KeyError) as err:
        print(f"bn-study-plot: error: {str(err).strip(chr(39))}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
