"""bn-study from Python: what the commands do, for a notebook or a script.

    from bn_study import api
    record = api.run(["data=mnist5k", "model.bn=before", "trainer.steps=500"])  # one run, in this process
    records = api.sweep(["data=mnist5k", "model.bn=none,before", "seed=0,1"])  # a sweep, as `bn-study -m`
    runs, curves = api.load("results/adhoc")  # its tables, once `api.collect("adhoc")` wrote them

Each returns the run's record (run.json: status, final metrics, config) with its folder. Bad input raises
`ConfigError` whose message is the line `bn-study` prints, before anything is written.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

from bn_study import files
from bn_study.cli import app
from bn_study.config import CONF_DIR, ConfigError
from bn_study.run.preflight import checked
from bn_study.run.records import read_run
from bn_study.sweep import ownership
from bn_study.tables import collect as collect_lib

_ERROR = "bn-study: error: "


def _composed(overrides: list[str], results: Path | None):
    extra = [f"paths.results={results}"] if results is not None else []
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return checked(compose(config_name="config", overrides=[*overrides, *extra]))
    except app.USAGE_ERRORS as err:
        raise ConfigError(app.one_line(err)) from None


def run(overrides: list[str], results: str | Path | None = None) -> dict:
    """One run of the config `overrides` compose (as `bn-study` takes them), in this process, into
    <results>/<study>/runs/<time>/ (results: paths.results unless given). Returns its record and folder."""
    cfg = _composed(list(overrides), None if results is None else Path(results))
    folder = Path(cfg.paths.results) / cfg.study / "runs" / files.stamp()
    # imports TensorFlow: only once the config is known to be good
    from bn_study.run import execute

    with ownership.owned(folder, f"run folder {folder}"):
        record = execute.execute(cfg, folder, overrides=list(overrides))
    return {**record, "folder": str(folder)}


def sweep(overrides: list[str], results: str | Path | None = None) -> list[dict]:
    """The sweep `bn-study -m` runs for `overrides`, in a process of its own (Hydra's launcher, the sweep's
    manifest, resume and progress as on the command line); one record per job, in job order, each with its folder."""
    root = Path(results if results is not None else "results").resolve()
    folder = root / "api" / files.stamp()
    args = [*overrides, f"paths.results={root}", f"hydra.sweep.dir={folder}"]
    proc = subprocess.run(
        [sys.executable, "-m", "bn_study", "-m", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    refused = [line for line in proc.stderr.splitlines() if line.startswith(_ERROR)]
    if proc.returncode == 2 and refused:
        raise ConfigError(refused[-1].removeprefix(_ERROR))
    if proc.returncode != 0:
        raise RuntimeError(f"bn-study -m {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    jobs = sorted((p for p in folder.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    return [{**read_run(job), "folder": str(job)} for job in jobs]


def collect(study: str, runs: str | Path | None = None, results: str | Path = "results") -> Path:
    """`bn-study-collect study [--runs runs]`: the run folders into <results>/<study>/ tables; returns that folder."""
    # the study registry and its modules: only for a collect
    from bn_study.cli import studies

    code = studies.collect_command([study, "--results", str(results), *(["--runs", str(runs)] if runs else [])])
    if code:
        raise ConfigError(f"bn-study-collect {study}: exit status {code} (its line above says why)")
    return Path(results) / study


def load(folder: str | Path):
    """A collected folder's (runs, curves) tables."""
    return collect_lib.load(Path(folder))
