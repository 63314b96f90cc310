"""Run folders -> tables: one row per run (runs.csv), every curve point in long form (curves.parquet),
and the statistics across seeds per configuration (by_config.csv), described by collection.json.

Only finished runs (status done or diverged) whose curves verify against their run.json are collected.
A folder whose run.json is unreadable, still `running` (interrupted, or running now) or `failed`, or whose
curves.csv is missing, torn or edited, is reported and left out, never mixed in; so is a job of the
sweep's sweep.json that no folder holds. collection.json lists what was left out, and why.

A collection appears whole or is refused: the tables are written beside the old ones, renamed into place,
and collection.json (each table's size and checksum) is written last. `load` checks the tables against
it, so tables from two collections (a crash between the renames) are refused, never read together.

A run below a sweep folder is collected only if its sweep.json records it as one of its jobs (a run folder of
another study put there is reported); a registered study's folder receives only the runs its plan declares
(bn-study-studies: `collect_command`, the `bn-study-collect` command).
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bn_study import files
from bn_study.config import flatten_config, with_defaults
from bn_study.run import records
from bn_study.run.provenance import PROVENANCE
from bn_study.run.records import CURVE_COLUMNS, RUN_JSON, Unverified
from bn_study.sweep import manifest as sweep
from bn_study.sweep import ownership
from bn_study.tables import stats
from bn_study.tables.curves import steps_to_reach

log = logging.getLogger(__name__)

RESULTS = Path("results")
RUNS_TABLE = "runs.csv"
CURVES_TABLE = "curves.parquet"
CONFIGS_TABLE = "by_config.csv"
MANIFEST = "collection.json"
TABLES = (RUNS_TABLE, CURVES_TABLE, CONFIGS_TABLE)


class TornCollection(RuntimeError):
    """Collected tables that do not match their collection.json, or have none: not to be read."""


# Test accuracies whose first crossing is recorded per run as steps_to_<threshold> (NaN where the test curve before the
# run's end measured trainer.eval_subset's subset).
THRESHOLDS = (0.5, 0.9, 0.95, 0.98)


@dataclass
class Collected:
    runs: pd.DataFrame
    curves: pd.DataFrame
    skipped: list[str] = field(default_factory=list)  # "folder: why", one per folder left out
    sources: list[str] = field(default_factory=list)  # the folders collected


def _run_row(record: dict, folder: Path, curve: pd.DataFrame) -> dict:
    config = with_defaults(record["config"])
    row = {
        "run_id": record["run_id"],
        "status": record["status"],
        "folder": str(folder),
        **flatten_config(config),
    }
    final = record.get("final") or {}
    runtime = record.get("runtime") or {}
    row.update(
        test_accuracy=final.get("test_accuracy"),
        test_loss=final.get("test_loss"),
        val_accuracy=final.get("val_accuracy"),
        val_loss=final.get("val_loss"),
        steps=record.get("steps"),
        diverged_at_step=record.get("diverged_at_step"),
        wall_seconds=record.get("wall_seconds"),
        ms_per_step=(record.get("timing") or {}).get("ms_per_step"),
        data_used=record["data"]["name"],
        data_fallback=record["data"].get("fallback"),
        n_val=record["data"].get("n_val", 0),
        n_test=record["data"].get("n_test"),
        **{key: runtime.get(key) for key in PROVENANCE},
    )
    test = curve[(curve["split"] == "test") & (curve["metric"] == "accuracy")].set_index("step")["value"]
    trainer = config["trainer"]
    # A test curve measured on trainer.eval_subset's subset before its end says when that subset crossed, not the split.
    cut = 0 < trainer["eval_subset"] < (row["n_test"] or 0) and "test" in trainer["subset_splits"]
    for t in THRESHOLDS:
        row[f"steps_to_{t:g}"] = math.nan if cut else steps_to_reach(test, t)
    return row


def collect(root: Path) -> Collected:
    """The finished, verified runs below `root`; a run below a sweep folder only if it is one of the jobs its sweep.json
    records. The rest is reported in `skipped`, never mixed in."""
    root = Path(root)
    runs, curves, skipped = [], [], []
    for run_json in sorted(root.rglob(RUN_JSON)):
        folder = run_json.parent
        try:
            record = json.loads(run_json.read_text())
            status = record["status"]
            if status not in ("done", "diverged"):
                skipped.append(
                    f"{folder}: status {status}"
                    + (f", {ownership.still_running(folder)}" if status == "running" else "")
                )
                continue
            foreign = _foreign(folder, root, record)
            if foreign:
                skipped.append(f"{folder}: {foreign}; left out")
                continue
            curve = records.verified_curves(folder, record)
        except Unverified as err:
            skipped.append(f"{folder}: fails verification, {err}; rerun its sweep to redo it")
            continue
        except (OSError, ValueError, KeyError, TypeError) as err:
            skipped.append(f"{folder}: unreadable ({type(err).__name__}: {err})")
            continue
        runs.append(_run_row(record, folder, curve))
        curves.append(curve)
    runs_df = pd.DataFrame(runs)
    if not runs_df.empty and runs_df["run_id"].duplicated().any():
        dup = runs_df[runs_df["run_id"].duplicated()]
        skipped += [
            f"{f}: duplicate of run {r} (same config), kept the first" for f, r in zip(dup["folder"], dup["run_id"])
        ]
        runs_df = runs_df.drop(dup.index).reset_index(drop=True)
    curves_df = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=CURVE_COLUMNS)
    curves_df = curves_df[curves_df["run_id"].isin(runs_df.get("run_id", []))].drop_duplicates(
        ["run_id", "step", "split", "metric"]
    )
    unstarted = [line for sweep_dir in _sweeps(root) for line in sweep.unstarted(sweep_dir)]
    return Collected(runs_df, curves_df.reset_index(drop=True), skipped + unstarted, [str(root)])


def _sweeps(root: Path) -> list[Path]:
    """The sweep folders at or below `root`."""
    return sorted({p.parent for p in root.rglob(sweep.MANIFEST)})


def _foreign(folder: Path, root: Path, record: dict) -> str | None:
    """Why a run does not belong to what is collected from `root`, or None: the nearest sweep folder above it (up to
    `root`) decides by its sweep.json."""
    for parent in folder.parents:
        if parent != root and root not in parent.parents:
            break
        member = sweep.member(parent, record)
        if member is not None:
            return (
                None
                if member
                else f"not one of the jobs of the sweep {parent} (a run of study {record.get('study')!r} put there?)"
            )
    return None


def combined(parts: list[Collected]) -> Collected:
    """Several collections (a study's sweeps) as one."""
    return Collected(
        pd.concat([p.runs for p in parts], ignore_index=True),
        pd.concat([p.curves for p in parts], ignore_index=True),
        [line for p in parts for line in p.skipped],
        [source for p in parts for source in p.sources],
    )


def latest_sweep(study: str, results: Path = RESULTS) -> Path:
    """The sweep folder under results/<study>/sweeps/ that was started last, by the time its sweep.json
    records (a folder's name can be anything a user chose); a sweep of added seeds (`added_seeds`) never is."""
    started = {
        folder: manifest["created_at"]
        for folder, manifest in _manifests(results / study / "sweeps").items()
        if not manifest.get("jobs_file")
    }
    if not started:
        raise FileNotFoundError(f"no sweeps under {results / study / 'sweeps'}")
    return max(started, key=started.get)


def added_seeds(base: Path, study: str) -> list[Path]:
    """The sweeps that added seeds to study `study`'s runs (its claims' later looks) since its sweep `base` started."""
    manifests = _manifests(base.parent, warn=False)
    if base not in manifests:
        return []
    since = manifests[base]["created_at"]
    return sorted(
        folder
        for folder, manifest in manifests.items()
        if manifest.get("jobs_file") and manifest["created_at"] > since and f"_{study}_seeds" in folder.name
    )


def _manifests(root: Path, warn: bool = True) -> dict[Path, dict]:
    """Each sweep folder directly under `root` with its readable sweep.json; `warn`: say which folders have none."""
    out = {}
    for folder in sorted(p for p in root.glob("*") if p.is_dir()):
        try:
            manifest = json.loads((folder / sweep.MANIFEST).read_text())
            out[folder] = {**manifest, "created_at": str(manifest["created_at"])}
        except (OSError, ValueError, KeyError, TypeError):
            if not warn:
                continue
            log.warning(
                "WARNING %s: no readable %s, so not a candidate for the newest sweep (collect it with --runs)",
                folder,
                sweep.MANIFEST,
            )
    return out


def write(collected: Collected, out_dir: Path) -> None:
    """All tables to temporary files, renamed into place, then collection.json: whole, or refused by `load`.
    One collecting process at a time per folder (`ownership`)."""
    savers = {
        RUNS_TABLE: lambda path: collected.runs.to_csv(path, index=False),
        CURVES_TABLE: lambda path: collected.curves.to_parquet(path, index=False),
        CONFIGS_TABLE: lambda path: stats.by_config(collected.runs).to_csv(path, index=False),
    }
    with ownership.owned(out_dir, f"results folder {out_dir}"):
        staged: dict[str, Path] = {}
        try:
            for name, save in savers.items():
                staged[name] = files.staged(out_dir / name, save)
            manifest = {
                "created_at": files.now(),
                "n_runs": len(collected.runs),
                "sources": collected.sources,
                "skipped": collected.skipped,
                "tables": {name: files.digest(path) for name, path in staged.items()},
            }
            for name, path in staged.items():
                os.replace(path, out_dir / name)
            files.write_json_atomic(out_dir / MANIFEST, manifest)  # last: until it lands, load refuses the tables
        finally:
            for path in staged.values():
                path.unlink(missing_ok=True)


def verify(out_dir: Path) -> dict:
    """collection.json of a study folder, once every table matches it; raises TornCollection otherwise."""
    return _verified(Path(out_dir), _read(Path(out_dir), TABLES))


def _read(out_dir: Path, names) -> dict[str, bytes | None]:
    return {name: (out_dir / name).read_bytes() if (out_dir / name).is_file() else None for name in names}


def _verified(out_dir: Path, tables: dict[str, bytes | None]) -> dict:
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
        expected = manifest["tables"]
        if not isinstance(expected, dict):
            raise TypeError("tables is not a mapping")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TornCollection(
            f"{out_dir / MANIFEST}: missing or unreadable ({type(err).__name__}); collect the study again"
        ) from None
    for name, data in tables.items():
        if data is None or files.digest(data) != expected.get(name):
            raise TornCollection(
                f"{out_dir / name}: not the table collection.json describes (a collection torn by a crash, or edited); "
                "collect the study again"
            )
    return manifest


def load(out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The collected tables of a study folder (what figures and notebooks read), once verified to be one collection."""
    out_dir = Path(out_dir)
    if not (out_dir / RUNS_TABLE).is_file():
        raise FileNotFoundError(
            f"{out_dir / RUNS_TABLE} not found: collect the study first (`make collect STUDY={out_dir.name}`)"
        )
    tables = _read(out_dir, (RUNS_TABLE, CURVES_TABLE))
    _verified(out_dir, tables)  # read once: what is checked is what is returned
    return pd.read_csv(io.BytesIO(tables[RUNS_TABLE]), dtype={"run_id": str}), pd.read_parquet(
        io.BytesIO(tables[CURVES_TABLE])
    )


def select(runs: pd.DataFrame, where: dict | None = None) -> pd.DataFrame:
    """The runs whose columns match `where`, {column: value or list of values}, e.g.
    {"model.bn": ["none", "before"], "optimizer.lr": 0.01}."""
    if not isinstance(where, (dict, type(None))):  # papermill's -p passes '{...}' as a string; -y passes a mapping
        raise TypeError(
            f"where={where!r}: a mapping {{column: value or list}} is needed (papermill: -y 'where: {{...}}')"
        )
    for column, wanted in (where or {}).items():
        if column not in runs.columns:
            raise KeyError(f"{column}: no such column; the runs table has {', '.join(stats.config_columns(runs))}")
        runs = runs[runs[column].isin(wanted if isinstance(wanted, (list, tuple, set)) else [wanted])]
    return runs


def with_config(
    curves: pd.DataFrame, runs: pd.DataFrame, columns: list[str], split: str = "test", metric: str = "accuracy"
) -> pd.DataFrame:
    """One curve (split, metric) of every run in `runs`, long form, with the run's `columns` beside each point."""
    rows = curves[(curves["split"] == split) & (curves["metric"] == metric)]
    return rows.merge(runs[["run_id", *columns]], on="run_id")
