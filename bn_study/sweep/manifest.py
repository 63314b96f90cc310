"""Sweeps: Hydra's basic sweeper, made safe to run, rerun and watch (`hydra/sweeper=bn_study`, the default).

- Before any run starts, every job's config is composed and checked (a bad value in the 5th
  combination is refused before the 1st runs), and `sweep.json` records the whole job list.
- Rerunning a sweep into the same folder resumes it: each job whose folder already holds a finished
  run of the same config is skipped (see `run.execute`); a folder holding a different sweep is refused.
- Each job prints a line as it starts and ends: k/N, the swept values, the result, its time, the ETA.
- Parallel launchers get threads per job so that jobs together do not oversubscribe the cores.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import shutil
from pathlib import Path
from typing import Optional, Sequence

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from bn_study.config import ConfigError, config_id, identity
from bn_study.files import now, remove_if_empty, write_json_atomic
from bn_study.run.preflight import checked
from bn_study.run.records import RUN_JSON
from bn_study.sweep.ownership import LOCK

log = logging.getLogger(__name__)

MANIFEST = "sweep.json"
# Where a study's runner puts the job list of a sweep that adds seeds (hydra.sweeper.jobs), inside its folder.
JOBS = "jobs.json"

# The folders this process works in ("sweep", and "run": the current job's), for the line printed on Ctrl-C.
WORKING: dict[str, Path] = {}

# One id per process: Hydra copies its resolver cache into every job's config, so all jobs of a sweep
# (in this process or a launcher's workers) see the same value.
OmegaConf.register_new_resolver("sweep_id", lambda: secrets.token_hex(3), use_cache=True, replace=True)


def check_and_record(sweep_dir: Path, jobs: list[list[str]], config: DictConfig, compose) -> None:
    """Compose and check every job (`compose(overrides)` -> its config), then write or match `sweep.json`, which
    records each job's run_id: what collect takes from the folder, and nothing else."""
    run_ids = [config_id(identity(checked(compose(job)))) for job in jobs]
    _write_manifest(sweep_dir, jobs, run_ids, config)


def job_list(path: Path) -> list[list[str]]:
    """The jobs a `hydra.sweeper.jobs` file lists: a JSON list of override lists."""
    try:
        jobs = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"hydra.sweeper.jobs={path}: unreadable ({type(err).__name__}); give a JSON list of override lists"
        ) from None
    if not (
        isinstance(jobs, list)
        and jobs
        and all(isinstance(j, list) and all(isinstance(o, str) for o in j) for j in jobs)
    ):
        raise ConfigError(f"hydra.sweeper.jobs={path}: must be a non-empty JSON list of override lists")
    return jobs


def remove_if_fresh(sweep_dir: Path) -> None:
    """Undo a sweep folder that holds nothing but what Hydra wrote on starting it."""
    if sweep_dir.is_dir() and {p.name for p in sweep_dir.iterdir()} <= {"multirun.yaml", LOCK, JOBS}:
        shutil.rmtree(sweep_dir)
        remove_if_empty(sweep_dir.parent)  # results/<study>/sweeps/, made for it


def _write_manifest(sweep_dir: Path, jobs: list[list[str]], run_ids: list[str], config: DictConfig) -> None:
    path = sweep_dir / MANIFEST
    manifest = {
        "sweep_dir": str(sweep_dir),
        "created_at": now(),
        "n_jobs": len(jobs),
        "jobs": jobs,
        "run_ids": run_ids,
        "launcher": config.hydra.launcher.get("_target_"),
        # a job list rather than a grid: seeds added to a study's runs, never a study's newest sweep (collect.latest_sweep)
        "jobs_file": config.hydra.sweeper.get("jobs"),
        "resumed_at": [],
    }
    if path.exists():
        try:
            old = json.loads(path.read_text())
            old_jobs = old["jobs"]
            if not isinstance(old_jobs, list):
                raise TypeError("jobs is not a list")
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(
                f"hydra.sweep.dir={sweep_dir}: its {MANIFEST} is unreadable ({type(err).__name__}); "
                "move the folder away or choose another"
            ) from None
        if old_jobs != jobs:
            first = " ".join(map(str, old_jobs[0])) if old_jobs and isinstance(old_jobs[0], list) else "?"
            raise ConfigError(
                f"hydra.sweep.dir={sweep_dir}: holds a different sweep ({len(old_jobs)} jobs, first {first}); "
                "rerun it with the same overrides to resume, or choose another folder"
            )
        if old.get("run_ids", run_ids) != run_ids:
            raise ConfigError(
                f"hydra.sweep.dir={sweep_dir}: its jobs now make other configs than when it started (an experiment file or "
                "the code changed since); choose another folder"
            )
        manifest = {**old, "run_ids": run_ids, "resumed_at": [*old.get("resumed_at", []), now()]}
        log.info("resuming sweep %s: %d jobs, finished ones are skipped", sweep_dir, len(jobs))
    write_json_atomic(path, manifest)


def records_upfront(hc: DictConfig) -> bool:
    """Whether the sweep's sweeper wrote sweep.json with every job before the first ran (bn-study's own does)."""
    return str(hc.sweeper.get("_target_", "")).endswith("BNStudySweeper")


def record_job(
    sweep_dir: Path, job: list[str], run_id: str, hc: DictConfig, objective: str, validated: bool = True
) -> None:
    """A sweeper that picks its jobs as it goes (Optuna's, Hydra's basic one) cannot list them before the first
    runs: each job adds itself to sweep.json as it starts, so that the sweep is collected like any other. One job
    writes at a time (a lock on the folder, which works across processes and a shared file system's hosts). A search
    (a sweeper with a direction) is refused a job that has no validation split (`validated`) to give it its objective."""
    direction = hc.sweeper.get("direction")  # Optuna's: an enum member, minimize unless set
    direction = getattr(direction, "name", direction)
    if direction is not None and not validated:
        raise ConfigError(
            f"data.val_fraction=0: a search selects on the validation split ({objective}); give it one, "
            "e.g. data.val_fraction=0.1"
        )
    wanted = "minimize" if objective.endswith("loss") else "maximize"
    if direction is not None and direction != wanted:
        raise ConfigError(
            f"hydra.sweeper.direction={direction}: the objective ({objective}) is to {wanted[:-1]}e; "
            f"set hydra.sweeper.direction={wanted}"
        )
    sweep_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(sweep_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = sweep_dir / MANIFEST
        try:
            manifest = json.loads(path.read_text())
        except FileNotFoundError:
            manifest = {
                "sweep_dir": str(sweep_dir),
                "created_at": now(),
                # the trials the sweeper will run, where it says (k/N in the progress lines)
                "n_jobs": hc.sweeper.get("n_trials"),
                "jobs": [],
                "run_ids": [],
                "launcher": hc.launcher.get("_target_"),
                "sweeper": hc.sweeper.get("_target_"),
                "jobs_file": None,
                "resumed_at": [],
            }
        except ValueError as err:
            raise ConfigError(
                f"hydra.sweep.dir={sweep_dir}: its {MANIFEST} is unreadable ({type(err).__name__}); "
                "move the folder away or choose another"
            ) from None
        if job not in manifest["jobs"]:
            manifest["jobs"].append(job)
            manifest["run_ids"].append(run_id)
            write_json_atomic(path, manifest)
    finally:
        os.close(fd)  # releases the lock


class JobProgress:
    """The k/N start and end lines of one sweep job."""

    def __init__(self, sweep_dir: Path, job_num: int, overrides: Sequence[str]):
        self.sweep_dir = sweep_dir
        try:
            manifest = json.loads((sweep_dir / MANIFEST).read_text())
        except (OSError, ValueError):
            manifest = None  # the sweep was checked before its jobs started: only a hand-made folder lacks it
        self.n = manifest["n_jobs"] if manifest else None
        self.k = job_num + 1
        self.what = " ".join(_swept(overrides, manifest["jobs"] if manifest else None))

    @property
    def tag(self) -> str:
        return f"[{self.k}/{self.n or '?'}]"

    def start(self) -> None:
        log.info("%s start  %s", self.tag, self.what)

    def end(self, record: dict, skipped: bool) -> None:
        if skipped:
            log.info("%s skip   %s: already %s", self.tag, self.what, record["status"])
            return
        acc = (record.get("final") or {}).get("test_accuracy")
        result = f"test acc {acc:.4f}" if isinstance(acc, float) and acc == acc else record["status"]
        log.info(
            "%s %-6s %s -> %s (%.1f s)%s",
            self.tag,
            record["status"],
            self.what,
            result,
            record.get("wall_seconds", 0.0),
            self._eta(),
        )

    def _eta(self) -> str:
        if not self.n:
            return ""
        walls, ended, failed = [], 0, 0
        for run_json in self.sweep_dir.glob(f"*/{RUN_JSON}"):
            try:
                rec = json.loads(run_json.read_text())
            except (OSError, ValueError):
                continue
            if rec.get("status") in ("done", "diverged", "failed"):
                ended += 1
                failed += rec["status"] == "failed"
                walls.append(rec.get("wall_seconds") or 0.0)
        left = self.n - ended
        if left <= 0:
            return (
                f" | sweep ended, {failed} of {self.n} jobs failed: rerun it with hydra.sweep.dir={self.sweep_dir} to redo them"
                if failed
                else " | sweep complete"
            )
        eta = sum(walls) / max(len(walls), 1) * left / max(1, parallel_jobs())
        return f" | {ended}/{self.n} finished" + (f" ({failed} failed)" if failed else "") + f", ETA {eta / 60:.1f} min"


def unstarted(sweep_dir: Path) -> list[str]:
    """The jobs of a sweep (by its sweep.json) that no readable run.json below it holds: never started, or
    removed; rerunning the sweep runs them."""
    jobs, runs = _jobs(sweep_dir), _runs(sweep_dir)
    return [
        f"{sweep_dir}: job {k + 1}/{len(jobs)} ({' '.join(_swept(job, jobs))}) has no run: never started, or its folder was removed"
        for k, job in enumerate(jobs or [])
        if tuple(job) not in runs
    ]


def complete(sweep_dir: Path) -> bool:
    """Whether every job of a sweep has finished (done or diverged): nothing is left for a resume to do."""
    runs = _runs(sweep_dir)
    jobs = _jobs(sweep_dir) or list(runs)
    return all(runs.get(tuple(job)) in ("done", "diverged") for job in jobs)


def _jobs(sweep_dir: Path) -> Optional[list[list[str]]]:
    try:
        return json.loads((Path(sweep_dir) / MANIFEST).read_text())["jobs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def member(sweep_dir: Path, record: dict) -> bool | None:
    """Whether a run is one of the sweep's jobs, by the run_ids its sweep.json records (by the overrides for a sweep.json
    that predates them); None if the folder has no readable sweep.json."""
    try:
        manifest = json.loads((Path(sweep_dir) / MANIFEST).read_text())
        if "run_ids" in manifest:
            return record.get("run_id") in manifest["run_ids"]
        return list(record.get("overrides", [])) in manifest["jobs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _runs(sweep_dir: Path) -> dict[tuple, str]:
    """Each readable run.json below a sweep folder: its overrides -> its status."""
    found = {}
    for run_json in Path(sweep_dir).rglob(RUN_JSON):
        try:
            record = json.loads(run_json.read_text())
            found[tuple(record["overrides"])] = record["status"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return found


def _swept(overrides: Sequence[str], jobs: Optional[list[list[str]]]) -> list[str]:
    """The overrides whose values differ between the sweep's jobs (all of them when unknown)."""
    if not jobs:
        return list(overrides)
    varying = {o.split("=", 1)[0] for o in overrides if sum(o in job for job in jobs) < len(jobs)}
    return [o for o in overrides if o.split("=", 1)[0] in varying] or list(overrides)


def available_cores() -> int:
    """The cores this job may use: a scheduler's allocation where it names one (SLURM_CPUS_PER_TASK: SLURM without a
    task plugin pins nothing), else the CPUs the process is pinned to (a cgroup, taskset), else the machine's."""
    allocated = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if allocated.isdigit() and int(allocated) > 0:
        return int(allocated)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def parallel_jobs() -> int:
    """How many jobs the current launcher runs at once on this machine (1 for the basic launcher)."""
    if not HydraConfig.initialized():
        return 1
    launcher = HydraConfig.get().launcher
    target = str(launcher.get("_target_", ""))
    cores = available_cores()
    if "Joblib" in target:
        n = launcher.get("n_jobs") or -1
        return cores if n < 0 else min(n, cores)
    if "Ray" in target:
        per_job = OmegaConf.select(launcher, "ray.remote.num_cpus") or 1
        return max(1, cores // int(per_job))
    return 1


def threads_per_job() -> Optional[int]:
    """CPU threads one job may use; None leaves TensorFlow's default (all the machine's cores), where the job has them
    all to itself."""
    n, cores = parallel_jobs(), available_cores()
    return None if n == 1 and cores == (os.cpu_count() or 1) else max(1, cores // n)


def limit_threads() -> str:
    """Cap this job's threads (read by TensorFlow when it is first imported in this process); returns the cap."""
    threads = threads_per_job()
    if threads:
        for var in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
            os.environ.setdefault(var, str(threads))
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    return os.environ.get("TF_NUM_INTRAOP_THREADS", "all cores")
