"""`bn-study-studies`: run a registered study end to end, or any stage of it.

    bn-study-studies list                      # the registered studies, their sweeps and claims
    bn-study-studies check [STUDY ...]         # compose every planned run and check the claims against them
    bn-study-studies run STUDY [--quick]       # check, run its sweeps, collect, judge, render (= make STUDY; --all: every study)
    bn-study-studies collect STUDY [--quick]   # the newest sweep of each of its experiments -> results/STUDY/
    bn-study-studies render STUDY [--quick]    # verdicts.json, figures and summary.md from the collected tables
    bn-study-studies report                    # results/REPORT.md (and README's results block)

--data fashion_mnist: the study's MNIST sweeps on another dataset, into results/STUDY_fashion_mnist/
(= DATA=fashion_mnist make STUDY). `run` resumes a study's newest sweep if it did not finish.

`render` and `report` read only the committed tables, so they redraw everything on a fresh clone.
Bad input (an unknown study, a malformed claim) gets one line and exit status 2 before any run starts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from .. import collect, plan, report, sweep, verdicts
from ..claims import ClaimError
from .registry import DATASETS, Study, UnknownStudy, Version, get, studies

STAGES = ("list", "check", "run", "collect", "render", "report")


class StageError(RuntimeError):
    pass


def check(study: Study, version: Version) -> pd.DataFrame:
    planned = plan.planned(study.sweeps, version)
    for claim in study.claims:
        claim.check(planned)
    return planned


def run_sweeps(study: Study, version: Version, results: Path) -> list[Path]:
    """Each of the study's sweeps in a sweep folder of its own (the newest one again if it did not finish,
    so a killed study resumes); returns the folders."""
    folders = []
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    selected = study.selected(results, version) if study.selected else []
    for name in study.sweeps:
        folder = _unfinished(results / (name + version.suffix) / "sweeps", study) or results / (name + version.suffix) / "sweeps" / f"{stamp}_{study.name}"
        command = [sys.executable, "-m", "bn_study", "-m", *plan.base(name, version), *selected, f"hydra.sweep.dir={folder}"]
        print(f"[{study.name}] sweep {name}: {' '.join(command[3:])}", flush=True)
        if subprocess.run(command, env={**os.environ, "PYTHONUNBUFFERED": "1"}).returncode != 0:
            raise StageError(f"sweep {name} failed (its folder {folder} resumes with the same command)")
        folders.append(folder)
    return folders


def _version(names: list[str], chosen: list[Study], flags: Version) -> Version:
    """The version the flags say, or the one a version's folder name says (`fig1_fashion_mnist`): one for all."""
    folders = [name != s.name for name, s in zip(names, chosen)]
    if not any(folders):
        return flags
    named = {Version.of_folder(name, s.name) for name, s in zip(names, chosen)}
    if not all(folders) or len(named) > 1 or flags != Version():
        raise UnknownStudy(f"{' '.join(names)}: name studies by their names with --quick/--data, or by one version's folder names alone")
    return named.pop()


def _unfinished(sweeps: Path, study: Study) -> Path | None:
    """The study's newest sweep folder under `sweeps`, if some job of it has not finished."""
    try:
        newest = collect.latest_sweep(sweeps.parent.name, sweeps.parent.parent)
    except FileNotFoundError:
        return None
    if not newest.name.endswith(f"_{study.name}"):
        return None
    return None if sweep.complete(newest) else newest


def collect_study(study: Study, version: Version, results: Path, folders: list[Path] | None = None) -> Path:
    """All of the study's sweeps (the given folders, else each experiment's newest sweep) into one set of tables."""
    folders = folders or [collect.latest_sweep(name + version.suffix, results) for name in study.sweeps]
    parts = [collect.collect(folder) for folder in folders]
    for part, folder in zip(parts, folders):
        for line in part.skipped:
            print(f"skipped {line}", file=sys.stderr)
        if part.runs.empty:
            raise StageError(f"no finished runs under {folder}")
    combined = collect.combined(parts)
    out = study.folder(results, version)
    collect.write(combined, out)
    print(f"collected {len(combined.runs)} runs from {', '.join(str(f) for f in folders)} -> {out}/")
    return out


def render(study: Study, version: Version, results: Path) -> list[Path]:
    """verdicts.json from the collected tables, then the study's figures and summary."""
    folder = study.folder(results, version)
    runs, curves = collect.load(folder)
    written = [verdicts.write(study.name, verdicts.judge_all(study.claims, runs, curves), folder, sorted(runs["data_used"].unique()))]
    if study.render is not None:
        written += study.render(folder)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bn-study-studies", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("study", nargs="*", help="registered study names (default for list/check: all of them)")
    parser.add_argument("--all", action="store_true", help="every registered study")
    parser.add_argument("--quick", action="store_true", help="the small version, into results/<study>_quick/")
    parser.add_argument("--data", choices=DATASETS, help="the study's MNIST sweeps on this dataset, into results/<study>_<data>/")
    parser.add_argument("--results", type=Path, default=collect.RESULTS, help="results root (default: results)")
    args = parser.parse_args(argv)
    if args.stage in ("render", "report") and not args.results.is_dir():
        print(f"bn-study-studies: error: --results {args.results}: no such folder", file=sys.stderr)
        return 2
    try:
        flags = Version(args.quick, args.data)
        chosen = [get(name) for name in args.study] or (list(studies().values()) if args.all or args.stage in ("list", "check") else [])
        version = _version(args.study, chosen, flags)
        if not chosen and args.stage != "report":
            raise UnknownStudy(f"{args.stage}: name a study; choose from: {', '.join(studies())}")
        if args.stage == "list":
            for s in chosen:
                print(f"{s.name:16} {s.about} [sweeps: {', '.join(s.sweeps)}; {len(s.claims)} claims]")
            return 0
        if args.stage in ("check", "run"):
            for s in chosen:
                planned = check(s, version)
                print(f"[{s.name}] {len(planned)} planned runs, {len(s.claims)} claims checked")
        for s in chosen:
            if args.stage == "run":
                collect_study(s, version, args.results, run_sweeps(s, version, args.results))
            if args.stage == "collect":
                collect_study(s, version, args.results)
            if args.stage in ("run", "render"):
                print("wrote " + ", ".join(str(p) for p in render(s, version, args.results)))
        if args.stage == "report":
            print("wrote " + ", ".join(str(p) for p in report.build(args.results)))
    except (UnknownStudy, ClaimError) as err:
        print(f"bn-study-studies: error: {err}", file=sys.stderr)
        return 2
    except (StageError, collect.TornCollection, OSError) as err:  # a missing table, a torn collection, a folder it cannot write
        print(f"bn-study-studies: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
