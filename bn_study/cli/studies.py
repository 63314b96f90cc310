"""`bn-study-studies`: run a registered study end to end, or any stage of it.

    bn-study-studies list                      # the registered studies, their sweeps and claims
    bn-study-studies check [STUDY ...]         # compose every planned run and check the claims against them
    bn-study-studies run STUDY [--quick]       # check, run its sweeps, collect, add seeds, judge, render (= make STUDY; --all: every study)
    bn-study-studies seeds STUDY               # add the seeds its undecided claims' next looks need to its collected runs, render
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
import ctypes
import functools
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd

from bn_study.claims import ClaimError, ledger, verdicts
from bn_study.cli import app
from bn_study.cli.commands import RUN_BY
from bn_study.config import ConfigError, check_study_name, flatten_config
from bn_study.files import now, stamp, write_json_atomic
from bn_study.render import outputs as rendered
from bn_study.run import provenance, records
from bn_study.studies import declaration, plan, report
from bn_study.studies.registry import STUDY_DATASETS, Study, UnknownStudy, Version, get, studies
from bn_study.sweep import manifest as sweep
from bn_study.sweep import ownership
from bn_study.tables import collect

STAGES = ("list", "check", "run", "seeds", "collect", "render", "report")


# The package's committed results, where it runs from a clone: the cells its studies ran were seen, whatever results
# folder a study file writes to.
PACKAGE_RESULTS = Path(__file__).resolve().parents[2] / "results"
# Written into each of a study's sweep folders once `run` has added the seeds its claims asked for and rendered them.
FINISHED = "study_finished.json"


class StageError(RuntimeError):
    pass


class Interrupted(RuntimeError):
    """Ctrl-C while a study's sweep ran; says how to resume it."""


class Unplanned(ValueError):
    """Runs that are not the study's declared plan (other runs, or too few), headed for its folder."""


class Refused(Exception):
    """A sweep refused its input; its own line said why."""


def selections(study: Study, version: Version, results: Path) -> list[str]:
    """The overrides the study takes from other studies' collected tables of the same version (fig1: its pilot's rate)."""
    return study.selected(results, version) if study.selected else []


def planned_runs(study: Study, version: Version, results: Path) -> tuple[list[str], pd.DataFrame]:
    """The study's selections (`selections`) and every run its version plans at them."""
    selected = selections(study, version, results)
    return selected, _planned(study, version, selected)


def _planned(study: Study, version: Version, selected: list[str]) -> pd.DataFrame:
    """The study's planned runs; a study file's sweep that does not compose refused in one line naming it."""
    if study.declared is None:
        return plan.planned(map(study.sweep, study.sweeps), version, tuple(selected))
    parts = []
    for i, name in enumerate(study.sweeps):
        try:
            parts.append(plan.planned([study.sweep(name)], version, tuple(selected)))
        except app.USAGE_ERRORS as err:
            raise declaration.StudyFileError(
                f"{study.declared.path}: sweeps[{i}] ({name}): {app.one_line(err)}"
            ) from None
    return pd.concat(parts, ignore_index=True)


def check(study: Study, version: Version, selected: list[str] = ()) -> pd.DataFrame:
    """Every planned run of the study's version (at the `selected` overrides), once its claims (and a study file's arms)
    are checked against them."""
    planned = _planned(study, version, selected)
    try:
        if study.declared is not None:
            declaration.check_plan(study, planned)
        for claim in study.claims:
            claim.check(planned)
            claim.check_twin([c.id for c in study.claims])
    except ClaimError as err:
        if study.declared is None:
            raise
        raise ClaimError(f"{study.declared.path}: {err}") from None  # which file: it may be any
    return planned


# The overrides a study passes on to every sweep it runs (--launcher, make's LAUNCHER): where and how its jobs run,
# never what they train, which the study's plan and claims fix.
LAUNCHER_KEYS = ("hydra/launcher=", "hydra.launcher.", "+hydra.launcher.", "++hydra.launcher.")


def launcher_overrides(text: str) -> list[str]:
    """`text` as overrides, each of them a launcher's setting (ConfigError in one line otherwise)."""
    try:
        words = shlex.split(text)
    except ValueError as err:
        raise ConfigError(f"--launcher {text!r}: {err}") from None
    for word in words:
        if not word.startswith(LAUNCHER_KEYS):
            raise ConfigError(
                f"--launcher {word}: only the launcher's settings (hydra/launcher=<name>, hydra.launcher.<key>=...) pass "
                "to a study's sweeps; anything else would change the runs its claims read"
            )
    return words


def run_sweeps(
    study: Study, version: Version, results: Path, selected: list[str] = (), launcher: list[str] = ()
) -> list[Path]:
    """Each of the study's sweeps in a sweep folder of its own (the newest one again if it did not finish,
    so a killed study resumes), on `launcher`'s settings; returns the folders."""
    folders = []
    started = stamp()
    for name in study.sweeps:
        folder = (
            _unfinished(results / (name + version.suffix) / "sweeps", study)
            or results / (name + version.suffix) / "sweeps" / f"{started}_{study.name}"
        )
        _sweep(study, version, name, [*plan.base(study.sweep(name), version), *selected, *launcher], folder, launcher)
        folders.append(folder)
    return folders


def _sweep(
    study: Study, version: Version, name: str, overrides: list[str], folder: Path, launcher: list[str] = ()
) -> None:
    """One sweep of the study, into `folder`, recording the study's claim hashes in its runs; refused, stopped or failed
    in one line that says how to resume (on `launcher`, the settings it was given)."""
    command = [sys.executable, "-m", "bn_study", "-m", *overrides, f"hydra.sweep.dir={folder}"]
    print(f"[{study.name}] sweep {name}: {' '.join(command[3:])}", flush=True)
    declared = json.dumps(ledger.current_hashes({study.name: study})[study.name])
    sweep_run = subprocess.Popen(
        command,
        env={**os.environ, "PYTHONUNBUFFERED": "1", RUN_BY: study.name, provenance.CLAIMS_ENV: declared},
        preexec_fn=functools.partial(_interrupted_when_parent_dies, os.getpid()),
    )
    try:
        code = sweep_run.wait()
    except KeyboardInterrupt:
        code = _stop(sweep_run)
    if code == 130:
        raise Interrupted(
            f"sweep {name} stopped, its finished runs kept in {folder}; rerun `{version.command(study.name, launcher)}` to resume it"
        )
    if code == 2:
        raise Refused()  # the sweep said why, in its one line
    if code != 0:
        raise StageError(
            f"sweep {name} failed (its folder {folder} resumes with `{version.command(study.name, launcher)}`)"
        )


def add_seeds(study: Study, version: Version, results: Path, planned: pd.DataFrame, launcher: list[str] = ()) -> int:
    """Seeds on demand (claims.sequential): judge the study's collected runs; for every claim still undecided at its
    look, run the seeds its next look needs in exactly the cells its sides read, add them to the collection, judge
    again, until no claim asks for more. Planned runs the collection lacks (a sweep the study gained since it was
    collected) are run first, and the runs it has kept. Returns the number of runs added."""
    out, added = study.folder(results, version), 0
    while True:
        runs, curves = collect.load(out)
        judged = verdicts.judge_all(study.claims, runs, curves, plan.first_look(planned))
        lacking, _ = plan.missing(runs, planned)
        if lacking:
            jobs, n = plan.lacking_jobs(planned, runs), plan.first_look(planned)
        else:
            wanted = [
                (where, record["next_look"])
                for claim, record in zip(study.claims, judged)
                if record["next_look"]
                for where in claim.reads()
            ]
            jobs, n = plan.more_seeds(planned, runs, wanted), max((look for _, look in wanted), default=0)
        if not jobs:
            return added
        undecided = sorted({record["id"] for record in judged if record["next_look"]})
        print(
            f"[{study.name}] {lacking} planned runs not collected yet: running them"
            if lacking
            else f"[{study.name}] {len(undecided)} claim(s) undecided at their look ({', '.join(undecided)}): "
            f"{sum(map(len, jobs.values()))} runs to take their cells to up to {n} seeds",
            flush=True,
        )
        parts = []
        for name, job_list in jobs.items():
            sweeps = results / (name + version.suffix) / "sweeps"
            folder = _unfinished(sweeps, study, f"_seeds{n}") or sweeps / f"{stamp()}_{study.name}_seeds{n}"
            folder.mkdir(parents=True, exist_ok=True)
            jobs_file = folder / sweep.JOBS
            if not jobs_file.exists():
                write_json_atomic(jobs_file, job_list)
            _sweep(
                study,
                version,
                name,
                [*plan.base(study.sweep(name), version), f"hydra.sweeper.jobs={jobs_file}", *launcher],
                folder,
                launcher,
            )
            parts.append(only_planned(collect.collect(folder), planned, out.name, folder))
        previous = collect.Collected(runs, curves, [], json.loads((out / collect.MANIFEST).read_text())["sources"])
        merged = collect.combined([previous, *parts])
        new = ~merged.runs["run_id"].duplicated()
        collect.write(
            collect.Collected(
                merged.runs[new].reset_index(drop=True),
                merged.curves.drop_duplicates(["run_id", "step", "split", "metric"]).reset_index(drop=True),
                merged.skipped,
                merged.sources,
            ),
            out,
        )
        if int(new.sum()) == len(runs):  # asking again would run the same sweeps again, for ever
            raise StageError(f"the sweeps of seeds for {', '.join(undecided)} added no run to {out}")
        added += int(new.sum()) - len(runs)
        print(f"[{study.name}] {out}/: {int(new.sum())} runs after adding seeds", flush=True)


def _interrupted_when_parent_dies(parent: int) -> None:
    """In a sweep's process, before it starts (Linux): a Ctrl-C when this runner (`parent`) dies, killed however, so
    that the sweep stops as an interrupted one (its run marked failed, the sweep resumable) instead of training on
    unwatched. A runner that died between the fork and this call sends no signal: the sweep then never starts."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)
        if os.getppid() != parent:
            os._exit(130)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _stop(child: subprocess.Popen) -> int:
    """Let a sweep that got the terminal's Ctrl-C too mark its run failed; pass the Ctrl-C on if it did not get it (an
    interrupt sent to this process alone), at once on a second one, and wait for the sweep whatever comes: leaving
    it would leave it training beside whatever runs next. Returns 130, as the sweep does."""
    try:
        child.wait(timeout=10)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        child.send_signal(signal.SIGINT)
        while child.poll() is None:
            try:
                child.wait()
            except KeyboardInterrupt:
                child.send_signal(signal.SIGINT)
    return 130


def _version(names: list[str], chosen: list[Study], flags: Version) -> Version:
    """The version the flags say, or the one a version's folder name says (`fig1_fashion_mnist`): one for all."""
    folders = [name != s.name and not declaration.is_file(name) for name, s in zip(names, chosen)]
    if not any(folders):
        return flags
    named = {Version.of_folder(name, s.name) for name, s in zip(names, chosen)}
    if not all(folders) or len(named) > 1 or flags != Version():
        raise UnknownStudy(
            f"{' '.join(names)}: name studies by their names with --quick/--data, or by one version's folder names alone"
        )
    return named.pop()


def _unfinished(sweeps: Path, study: Study, kind: str = "") -> Path | None:
    """The study's newest sweep folder under `sweeps` (of added seeds: `kind` '_seeds<n>'), if some job of it has not
    finished."""
    try:
        newest = (
            max((p for p in sweeps.glob(f"*_{study.name}{kind}") if (p / sweep.MANIFEST).exists()), default=None)
            if kind
            else collect.latest_sweep(sweeps.parent.name, sweeps.parent.parent)
        )
    except FileNotFoundError:
        return None
    if newest is None or not newest.name.endswith(f"_{study.name}{kind}"):
        return None
    # a study's own sweep is done once the study has also added its seeds and rendered: until then a rerun resumes it
    return None if sweep.complete(newest) and (kind or (newest / FINISHED).exists()) else newest


def collect_study(
    study: Study, version: Version, results: Path, planned: pd.DataFrame, folders: list[Path] | None = None
) -> Path:
    """All of the study's sweeps (the given folders, else each experiment's newest sweep, with the seeds added to it
    since) into one set of tables, of the runs its plan declares only."""
    if folders is None:
        try:
            folders = [collect.latest_sweep(name + version.suffix, results) for name in study.sweeps]
        except FileNotFoundError as err:
            raise StageError(f"{err}: run `{version.command(study.name)}` first") from None
    bases = list(folders)
    folders = [*bases, *(f for base in bases for f in collect.added_seeds(base, study.name))]
    out = study.folder(results, version)
    parts = [only_planned(collect.collect(folder), planned, out.name, folder) for folder in folders]
    for part, folder in zip(parts, folders):
        for line in part.skipped:
            print(f"skipped {line}", file=sys.stderr)
        if part.runs.empty and folder in bases:  # a sweep of added seeds killed before its first run holds none yet
            raise StageError(f"no finished runs under {folder}")
    combined = collect.combined(parts)
    _whole_plan(
        combined.runs,
        planned,
        out.name,
        f"the finished runs under {', '.join(str(f) for f in folders)}",
        version.command(study.name),
    )
    collect.write(combined, out)
    print(f"collected {len(combined.runs)} runs from {', '.join(str(f) for f in folders)} -> {out}/")
    return out


def only_planned(got: collect.Collected, planned: pd.DataFrame, name: str, where: Path) -> collect.Collected:
    """`got` without the runs that are not among `planned` (reported in its skipped lines); refused if that is all of them,
    so that a variant (other steps, other data) never replaces a study's declared results."""
    extra, differs = plan.unplanned(got.runs, planned)
    if extra.empty:
        return got
    if len(extra) == len(got.runs):
        raise Unplanned(
            f"{name}: none of the {len(got.runs)} finished runs under {where} is one of its planned runs (e.g. {differs}); "
            f"a variant is collected into a folder of its own: bn-study-collect <name> --runs {where}"
        )
    kept = got.runs.drop(extra.index).reset_index(drop=True)
    left_out = [f"{folder}: not one of {name}'s planned runs; left out" for folder in extra["folder"]]
    return collect.Collected(
        kept,
        got.curves[got.curves["run_id"].isin(kept["run_id"])].reset_index(drop=True),
        got.skipped + left_out,
        got.sources,
    )


def _whole_plan(runs: pd.DataFrame, planned: pd.DataFrame, name: str, what: str, command: str) -> None:
    """Refuse a study's folder a collection that lacks some of its planned runs (a variant on fewer seeds, or unfinished
    sweeps): its results are the whole plan's, or none."""
    lacking, first = plan.missing(runs, planned)
    if lacking:
        raise Unplanned(
            f"{name}: {what} lack {lacking} of its {len(planned)} planned runs (e.g. {first}); run what is missing (`{command}`), "
            "or collect a part into a folder of its own: bn-study-collect <name> --runs <sweep>"
        )


def render(study: Study, version: Version, results: Path, planned: pd.DataFrame) -> list[Path]:
    """verdicts.json from the collected tables, then the study's figures and summary: staged, then switched into the
    study folder whole (bn_study.render.outputs). Tables of runs the study does not plan are refused."""
    folder = study.folder(results, version)
    with ownership.owned(folder, f"results folder {folder}"):
        runs, curves = collect.load(folder)
        extra, differs = plan.unplanned(runs, planned)
        if len(extra):
            raise Unplanned(
                f"{folder}: {len(extra)} of its {len(runs)} collected runs are not {study.name}'s planned runs (e.g. {differs}); "
                f"collect the study again (`{version.command('collect')} STUDY={study.name}`)"
            )
        _whole_plan(runs, planned, folder.name, f"its {len(runs)} collected runs", version.command(study.name))
        collection = rendered.collection_digest(folder)
        with rendered.staged(folder, collection, study.reads(results, version) if study.reads else []) as out:
            judged = verdicts.judge_all(study.claims, runs, curves, plan.first_look(planned))
            hashes = ledger.current_hashes({study.name: study})[study.name]
            if study.name in studies():
                # the repository the results belong to; where they sit outside one (a copy), the one this is run from
                repo = results.resolve().parent if (results.resolve().parent / ".git").exists() else Path.cwd()
                book = ledger.checked(results, repo)
            else:  # a study file of the user's: its own git history registers its claims
                # every collected runs table at hand (a cell another study ran was seen before this file's runs), and
                # every run its sweeps have made, collected or not (a quick look, a run before its claims changed)
                tables = {
                    p.resolve() for root in (results, PACKAGE_RESULTS) for p in root.glob(f"*/{collect.RUNS_TABLE}")
                }
                seen = [pd.read_csv(p, low_memory=False) for p in sorted(tables)]
                seen.append(_swept(study, results))
                book, repo = ledger.of_file(
                    study.declared.path,
                    study.name,
                    functools.partial(declaration.hashes_of_text, study.declared.path),
                    seen,
                )
            for record, claim in zip(judged, study.claims):
                record["registration"] = ledger.assess(
                    book, study.name, claim, hashes[claim.id], runs, repo, trained=study.name not in studies()
                )
                record["post_hoc"] = record["registration"]["post_hoc"]
                record["late_look"] = ledger.late_look(record)
            verdicts.write(
                study.name,
                judged,
                out,
                sorted(runs["data_used"].unique()),
                collection,
            )
            if study.render is not None:
                study.render(folder, out)
            names = sorted(p.name for p in out.iterdir())
    return [folder / name for name in [*names, rendered.MANIFEST]]


def _swept(study: Study, results: Path) -> pd.DataFrame:
    """Every run the study's sweeps have started, in any version, as runs.csv's config columns, folder and data_used."""
    rows = []
    for name in study.sweeps:
        for record_path in sorted(results.glob(f"{name}*/sweeps/*/*/{records.RUN_JSON}")):
            record = records.read_run(record_path.parent)
            rows.append(
                {
                    **flatten_config(record["config"]),
                    "folder": str(record_path.parent),
                    "data_used": record["data"]["name"],
                }
            )
    return pd.DataFrame(rows)


def requote(version: Version, results: Path) -> list[Path]:
    """The studies of `version` whose summaries quote a study rendered since (fig1 and fig1_second_lr quote each other's
    verdicts), rendered again from their own tables. One pass settles it: a render of unchanged tables writes the same
    verdicts.json, so what the others quote of it stays as they read it."""
    again = []
    for study in studies().values():
        folder = study.folder(results, version)
        if study.reads is None or not (folder / rendered.MANIFEST).exists():
            continue
        try:
            rendered.check(folder)
        except rendered.Stale as err:
            if err.quoted:
                render(study, version, results, planned_runs(study, version, results)[1])
                again.append(folder)
    return again


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bn-study-studies", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("study", nargs="*", help="registered study names (default for list/check: all of them)")
    parser.add_argument("--all", action="store_true", help="every registered study")
    parser.add_argument("--quick", action="store_true", help="the small version, into results/<study>_quick/")
    parser.add_argument(
        "--data", choices=STUDY_DATASETS, help="the study's MNIST sweeps on this dataset, into results/<study>_<data>/"
    )
    parser.add_argument(
        "--train-size",
        type=int,
        help="train its MNIST sweeps on a fixed stratified N of the training images (data.train_size), into results/<study>[_<data>]_nN/",
    )
    parser.add_argument("--results", type=Path, default=collect.RESULTS, help="results root (default: results)")
    parser.add_argument(
        "--launcher",
        default="",
        help="run and seeds: launcher overrides for every sweep, e.g. 'hydra/launcher=submitit_slurm "
        "hydra.launcher.partition=cpu' (make's LAUNCHER=...)",
    )
    args = parser.parse_args(argv)
    if args.stage in ("render", "report") and not args.results.is_dir():
        print(f"bn-study-studies: error: --results {args.results}: no such folder", file=sys.stderr)
        return 2
    try:
        launcher = launcher_overrides(args.launcher)
        flags = Version(args.quick, args.data, args.train_size)
        chosen = [get(name) for name in args.study] or (
            list(studies().values()) if args.all or args.stage in ("list", "check") else []
        )
        version = _version(args.study, chosen, flags)
        if not chosen and args.stage != "report":
            raise UnknownStudy(f"{args.stage}: name a study; choose from: {', '.join(studies())}")
        if args.stage == "list":
            for s in chosen:
                print(f"{s.name:16} {s.about} [sweeps: {', '.join(s.sweeps)}; {len(s.claims)} claims]")
            return 0
        if args.stage in ("check", "run", "seeds"):
            for s in chosen:
                planned = check(s, version, selections(s, version, args.results))
                print(f"[{s.name}] {len(planned)} planned runs, {len(s.claims)} claims checked")
        for s in chosen:
            if args.stage in ("run", "seeds", "collect", "render"):
                selected, planned = planned_runs(
                    s, version, args.results
                )  # after the studies run before it: a pilot collected just now
            if args.stage == "run":
                folders = run_sweeps(s, version, args.results, selected, launcher)
                collect_study(s, version, args.results, planned, folders)
            if args.stage in ("run", "seeds"):
                print(f"[{s.name}] {add_seeds(s, version, args.results, planned, launcher)} runs added for later looks")
            if args.stage == "collect":
                collect_study(s, version, args.results, planned)
            if args.stage in ("run", "seeds", "render"):
                print("wrote " + ", ".join(str(p) for p in render(s, version, args.results, planned)))
            if args.stage == "run":
                for folder in folders:
                    write_json_atomic(folder / FINISHED, {"study": s.name, "finished_at": now()})
        if args.stage in ("run", "seeds", "render"):
            for folder in requote(version, args.results):
                print(f"rendered {folder} again: its summary quotes a study rendered since")
        if args.stage == "report":
            repo = args.results.resolve().parent
            if (repo / ".git").exists():
                book = ledger.update(args.results, repo, log=lambda line: print(line, flush=True))
                print(f"{args.results / ledger.LEDGER}: {len(book.entries)} entries, verified against git")
            print("wrote " + ", ".join(str(p) for p in report.build(args.results, repo)))
    except (
        UnknownStudy,
        ClaimError,
        ConfigError,
        Unplanned,
        ledger.LedgerError,
    ) as err:  # ConfigError: a folder another process owns (FolderBusy)
        print(f"bn-study-studies: error: {err}", file=sys.stderr)
        return 2
    except (
        StageError,
        collect.TornCollection,
        rendered.Stale,
        OSError,
    ) as err:  # a missing table, a torn collection, a folder it cannot write
        print(f"bn-study-studies: error: {_described(err)}", file=sys.stderr)
        return 1
    except Refused:
        return 2
    except (Interrupted, KeyboardInterrupt) as err:
        print(
            f"bn-study-studies: interrupted: {str(err) or 'nothing half-written is left; rerun the same command'}",
            file=sys.stderr,
        )
        return 130
    return 0


def _described(err: Exception) -> str:
    if isinstance(err, OSError) and err.filename:
        return f"{err.strerror or err}: {err.filename}"
    return str(err)


def collect_command(argv: list[str] | None = None) -> int:
    """`bn-study-collect`: a study's runs into results/<study>/ (tables only; `bn-study-studies render` judges and draws)."""
    parser = argparse.ArgumentParser(
        prog="bn-study-collect", description=COLLECT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "study", help="the study: results/<study>/ receives runs.csv, curves.parquet, by_config.csv and collection.json"
    )
    parser.add_argument("--runs", type=Path, help="folder holding the run folders (default: the study's newest sweep)")
    parser.add_argument("--results", type=Path, default=collect.RESULTS, help="results root (default: results)")
    args = parser.parse_args(argv)
    try:
        check_study_name(args.study)
        try:
            study = get(args.study)
        except UnknownStudy:
            study = None
        if study:
            version = Version.of_folder(args.study, study.name)
            planned = planned_runs(study, version, args.results)[1]
            if args.runs is None:  # all of its sweeps, as `make collect STUDY=...`
                collect_study(study, version, args.results, planned)
                return 0
        root = args.runs or collect.latest_sweep(args.study, args.results)
        if not root.is_dir():
            raise FileNotFoundError(f"--runs {root}: no such folder")
        got = collect.collect(root)
        if study:
            got = only_planned(got, planned, args.study, root)
            _whole_plan(got.runs, planned, args.study, f"the finished runs under {root}", version.command(study.name))
    except FileNotFoundError as err:
        hint = (
            ""
            if args.runs
            else f": run a sweep with study={args.study} first (bn-study -m ... study={args.study}), or name a folder of runs with --runs"
        )
        print(f"bn-study-collect: error: {err}{hint}", file=sys.stderr)
        return 2
    except (ConfigError, Unplanned) as err:
        print(f"bn-study-collect: error: {err}", file=sys.stderr)
        return 2
    except StageError as err:
        print(f"bn-study-collect: error: {err}", file=sys.stderr)
        return 1
    for line in got.skipped:
        print(f"skipped {line}", file=sys.stderr)
    if got.runs.empty:
        print(f"bn-study-collect: error: no finished runs under {root}", file=sys.stderr)
        return 1
    out = args.results / args.study
    try:
        collect.write(got, out)
    except ConfigError as err:  # another process is collecting into it
        print(f"bn-study-collect: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"bn-study-collect: error: cannot write {out}: {_described(err)}", file=sys.stderr)
        return 1
    counts = got.runs["status"].value_counts().to_dict()
    print(
        f"collected {len(got.runs)} runs ({', '.join(f'{n} {s}' for s, n in counts.items())}) from {root} -> {out}/{collect.RUNS_TABLE}, "
        f"{collect.CURVES_TABLE}, {collect.CONFIGS_TABLE}, {collect.MANIFEST}"
    )
    return 0


COLLECT_HELP = f"""{collect.__doc__}
    bn-study-collect fig1                 # a registered study: the newest sweep of each of its experiments
    bn-study-collect adhoc                # the newest sweep under results/adhoc/sweeps/
    bn-study-collect mine --runs DIR      # every run folder below DIR that belongs there
"""

if __name__ == "__main__":
    sys.exit(main())
