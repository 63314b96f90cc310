"""Sweeps whose jobs run away from the process that submitted them: on SLURM (submitit's launcher) or Ray.

- **Progress where the user is.** A SLURM job's own lines go to its log file, so the submitter prints each job's
  start and end lines as its run folder records them (`_Watcher`); Ray sends its workers' lines to the submitter.
- **Ctrl-C cancels.** The SLURM jobs the sweep submitted are cancelled (scancel), not left running unseen.
- **A failure is one line.** A job that fails or is cancelled ends the sweep, once its other SLURM jobs have ended,
  in one line naming the job, how it ended, its log, its own error line if it printed one, and the resume hint
  (`SweepFailed`), not a scheduler's traceback.
- **One folder for all.** The sweep folder is made absolute before any job is sent, so that a worker in another
  folder (Ray's, on the head) writes where the submitter collects; Ray's `object_store_memory` default, which
  `ray.init` refuses when it joins a running cluster, is dropped then.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from hydra.errors import HydraException
from omegaconf import DictConfig, open_dict
from omegaconf.errors import OmegaConfBaseException

from bn_study import interrupts
from bn_study.config import ConfigError
from bn_study.run.records import RUN_JSON
from bn_study.sweep.manifest import JobProgress

log = logging.getLogger(__name__)
# Seconds between looks at the sweep folder (progress) and at the SLURM queue (waiting for the other jobs).
POLL_SECONDS = 2.0
ENDED = ("done", "diverged", "failed")


# What the sweep itself raises before or around its jobs, each with its own one line (bn_study.cli.app).
NOT_THE_SCHEDULERS = (ConfigError, HydraException, OmegaConfBaseException, OSError)


class SweepFailed(Exception):
    """A job of a sweep on a scheduler failed or was cancelled: the one line that says which, and what to do."""


def kind(config: DictConfig) -> str | None:
    """'slurm', 'ray', or None for a launcher whose jobs run in this process or its children."""
    target = str(config.hydra.launcher.get("_target_", ""))
    if "submitit_launcher.SlurmLauncher" in target:
        return "slurm"
    if "ray_launcher.RayLauncher" in target:
        return "ray"
    return None


def prepare(config: DictConfig, launcher) -> Path:
    """Before the sweep folder is made: the folder, absolute for a scheduler's workers; Ray's memory default dropped
    when it joins a cluster. Returns the sweep folder."""
    sweep_dir = Path(config.hydra.sweep.dir)
    if kind(config) is None:
        return sweep_dir
    sweep_dir = sweep_dir.absolute()
    with open_dict(config):
        config.hydra.sweep.dir = str(sweep_dir)
        # each job's config is composed again from these overrides (on Ray, in a worker with another folder)
        hydra_overrides = [o for o in config.hydra.overrides.hydra if not o.startswith("hydra.sweep.dir=")]
        config.hydra.overrides.hydra = [*hydra_overrides, f"hydra.sweep.dir={sweep_dir}"]
    init = getattr(launcher, "ray_cfg", {}).get("init", {})
    if init.get("address") and "object_store_memory" not in init:
        # the launcher sets a CI-sized default that ray.init refuses with an address: the cluster's own applies
        with open_dict(init):
            init.object_store_memory = None
    return sweep_dir


@contextlib.contextmanager
def watched(sweep_dir: Path, config: DictConfig):
    """Around the launch of a sweep's jobs: progress lines, Ctrl-C's cancel, a failure's one line (module docstring)."""
    where = kind(config)
    if where is None:
        yield
        return
    earlier = set(_slurm_jobs(sweep_dir, config))  # an earlier submission's jobs, which this one leaves alone

    def submitted() -> list[str]:
        return [job for job in _slurm_jobs(sweep_dir, config) if job not in earlier]

    with _lines_shown():
        # Ray sends its workers' lines to the submitter itself; SLURM keeps them in its log files
        watcher = _Watcher(sweep_dir) if where == "slurm" else None
        if watcher:
            watcher.start()
        try:
            yield
        except BaseException as err:
            if interrupts.caused(err):  # Ctrl-C, or what it broke in the scheduler's client
                if where == "slurm":
                    _cancel(submitted())
                raise
            if not isinstance(err, Exception) or isinstance(err, NOT_THE_SCHEDULERS):
                raise  # bad input (refused in its own line before any job is sent), a file it cannot write
            if where == "slurm":
                _wait_for(submitted())
            raise SweepFailed(_failure(sweep_dir, config, err)) from None
        finally:
            if watcher:
                watcher.stop()


@contextlib.contextmanager
def _lines_shown():
    """The sweep's lines on stdout, as a job prints them: Hydra keeps the submitting process's logging to warnings."""
    sweep_log = logging.getLogger("bn_study.sweep")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level, propagate = sweep_log.level, sweep_log.propagate
    sweep_log.addHandler(handler)
    sweep_log.setLevel(logging.INFO)
    sweep_log.propagate = False
    try:
        yield
    finally:
        sweep_log.removeHandler(handler)
        sweep_log.setLevel(level)
        sweep_log.propagate = propagate


class _Watcher(threading.Thread):
    """Prints the start and end line of each job as its run.json records it (a job already finished when the sweep
    (re)started is not reported: it is skipped)."""

    def __init__(self, sweep_dir: Path):
        super().__init__(daemon=True, name="sweep-progress")
        self.sweep_dir = sweep_dir
        self._halt = threading.Event()
        self._seen = {folder: record["status"] for folder, record in self._records().items()}

    def run(self) -> None:
        while not self._halt.wait(POLL_SECONDS):
            self._report()

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self._report()  # the last job's end line

    def _records(self) -> dict[Path, dict]:
        found = {}
        for run_json in self.sweep_dir.glob(f"*/{RUN_JSON}"):
            try:
                found[run_json.parent] = json.loads(run_json.read_text())
            except (OSError, ValueError):
                pass  # being written (atomically: whole at the next look)
        return found

    def _report(self) -> None:
        for folder, record in sorted(self._records().items()):
            status, before = record.get("status"), self._seen.get(folder)
            if status == before or not folder.name.isdigit():
                continue
            progress = JobProgress(self.sweep_dir, int(folder.name), record.get("overrides", []))
            if before is None or before in ENDED:
                progress.start()  # a new job, or one run again
            if status in ENDED:
                progress.end(record, skipped=False)
            self._seen[folder] = status


def _submitit_folder(sweep_dir: Path, config: DictConfig) -> Path:
    """Where submitit keeps each job's files (hydra.launcher.submitit_folder, one folder per job id)."""
    folder = str(config.hydra.launcher.get("submitit_folder", f"{sweep_dir}/.submitit/%j"))
    return Path(folder.split("%j")[0])


def _slurm_jobs(sweep_dir: Path, config: DictConfig) -> list[str]:
    """The SLURM job ids of this sweep (array jobs by their array id), from submitit's folder."""
    folder = _submitit_folder(sweep_dir, config)
    if not folder.is_dir():
        return []
    return sorted({p.name.split("_")[0] for p in folder.iterdir() if p.is_dir() and p.name.split("_")[0].isdigit()})


def _queued(jobs: list[str]) -> bool:
    """Whether any of `jobs` is still pending or running (False if the queue cannot be read)."""
    if not jobs or shutil.which("squeue") is None:
        return False
    out = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(jobs)], capture_output=True, text=True)
    return out.returncode == 0 and bool(out.stdout.strip())


def _wait_for(jobs: list[str]) -> None:
    """Until the sweep's other SLURM jobs have ended, their lines printed as they do; Ctrl-C cancels them."""
    if not _queued(jobs):
        return
    log.info(
        "a job failed; waiting for the sweep's other SLURM jobs (%s) to end (Ctrl-C cancels them)", ", ".join(jobs)
    )
    try:
        while _queued(jobs):
            threading.Event().wait(POLL_SECONDS)
    except KeyboardInterrupt:
        _cancel(jobs)
        raise


def _cancel(jobs: list[str]) -> None:
    if jobs and shutil.which("scancel"):
        subprocess.run(["scancel", *jobs], capture_output=True)
        log.info("cancelled the sweep's SLURM jobs: %s", ", ".join(jobs))


def _failure(sweep_dir: Path, config: DictConfig, err: Exception) -> str:
    """`err` (the scheduler's account of the first job that did not finish) as one line, with the resume hint."""
    text = str(err)
    cancelled = re.search(r"Job (\S+) \(task: \d+\).*?\(state: ([A-Z_]+)", text, re.S)  # submitit: never ended
    failed_log = re.search(r"^\s*- (\S+_log\.err)$", text, re.M)  # submitit: ended in an error
    if cancelled:
        job = cancelled.group(1)
        log_file = _submitit_folder(sweep_dir, config) / job
        what = f"job {job} ended {cancelled.group(2)} (its log: {log_file})"
    elif failed_log:
        log_file = Path(failed_log.group(1))
        what = f"job {log_file.parent.name} failed (its log: {log_file})"
    else:
        log_file = None
        what = f"it stopped ({type(err).__name__}: {(text.strip().splitlines() or [''])[0][:200]})"
    said = _error_line(text if log_file is None or not log_file.is_file() else log_file.read_text(errors="replace"))
    if said:
        what += f": {said}"
    return f"sweep {sweep_dir}: {what}; rerun the same command with hydra.sweep.dir={sweep_dir} to resume it"


def _error_line(text: str) -> str | None:
    """The job's own one-line error (a refused config, a folder another process owns), if it printed one."""
    return next(
        (line.removeprefix("bn-study: error: ") for line in text.splitlines() if line.startswith("bn-study: error: ")),
        None,
    )
