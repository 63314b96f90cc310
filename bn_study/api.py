"""bn-study from Python: what the commands do, for a notebook or a script.

    from bn_study import api
    record = api.run(["data=mnist5k", "model.bn=before", "trainer.steps=500"])  # one run, in this process
    records = api.sweep(["data=mnist5k", "model.bn=none,before", "seed=0,1"])  # a sweep, as `bn-study -m`
    api.collect("adhoc")                                                        # bn-study-collect adhoc
    runs, curves = api.load("results/adhoc")                                    # its tables

The calls take the command line's overrides and write where it writes (hydra.run.dir, hydra.sweep.dir: results/<study>/
runs|sweeps/<time>, or the folder an override names, which resumes). `run` and `sweep` return the run's record
(run.json: status, final metrics, config) with its folder. Bad input raises `ConfigError` whose message is the line the
command prints, before anything is written. Not `bn_study.run(...)`: `bn_study.run` is the run stage's package.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf, open_dict

from bn_study import files
from bn_study.cli import app
from bn_study.config import CONF_DIR, ConfigError
from bn_study.run.preflight import checked
from bn_study.run.records import read_run
from bn_study.sweep import manifest, ownership
from bn_study.tables import collect as collect_lib

_ERROR = "bn-study: error: "


def _composed(overrides: list[str], results: Path | None, folder_key: str):
    """The config the overrides compose to (the sweep's fixed part where they sweep), checked as the command checks it,
    and the folder the command would write to (`folder_key`: hydra.run.dir or hydra.sweep.dir), resolved."""
    extra = [f"paths.results={results}"] if results is not None else []
    try:
        parsed = OverridesParser.create().parse_overrides([*overrides, *extra])
        fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="config", overrides=fixed, return_hydra_config=True)
        folder = Path(OmegaConf.select(cfg, folder_key))
        with open_dict(cfg):
            del cfg["hydra"]
        return checked(cfg), folder
    except app.USAGE_ERRORS as err:
        raise ConfigError(app.one_line(err)) from None


def run(overrides: list[str], results: str | Path | None = None) -> dict:
    """One run of the config `overrides` compose (as `bn-study` takes them), in this process, into the folder the command
    would use (results: paths.results unless given); a folder that holds this run finished returns its record. Returns
    its record and folder."""
    cfg, folder = _composed(list(overrides), None if results is None else Path(results).resolve(), "hydra.run.dir")
    threads = manifest.limit_threads()
    # imports TensorFlow: only once the config is known to be good
    from bn_study.run import execute

    try:
        with ownership.owned(folder, f"hydra.run.dir={folder}"):
            record = execute.finished(cfg, folder) or execute.execute(
                cfg,
                folder,
                overrides=list(overrides),
                runtime={"launcher": f"{__name__}.run", "intra_op_threads": threads},
            )
    except BaseException:
        files.remove_if_empty(folder)  # died before training began: leave nothing that looks like a run
        raise
    return {**record, "folder": str(folder)}


def sweep(overrides: list[str], results: str | Path | None = None) -> list[dict]:
    """The sweep `bn-study -m` runs for `overrides`, in a process of its own (Hydra's launcher, the sweep's manifest,
    resume and progress as on the command line), into the folder the command would use; one record per job, in job
    order, each with its folder."""
    root = Path(results if results is not None else "results").resolve()
    _, folder = _composed(list(overrides), root, "hydra.sweep.dir")
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
    """`bn-study-collect study [--runs runs]`: the run folders into <results>/<study>/ tables; returns that folder. Its
    refusal raises ConfigError with the command's line."""
    # the study registry and its modules: only for a collect
    from bn_study.cli import studies

    said = io.StringIO()
    with contextlib.redirect_stderr(said):
        code = studies.collect_command([study, "--results", str(results), *(["--runs", str(runs)] if runs else [])])
    prefix = "bn-study-collect: error: "
    errors = [line.removeprefix(prefix) for line in said.getvalue().splitlines() if line.startswith(prefix)]
    for line in said.getvalue().splitlines():
        if not line.startswith(prefix):
            print(line, file=sys.stderr)  # its skipped runs, as the command shows them
    if code:
        raise ConfigError(errors[-1] if errors else f"bn-study-collect {study}: exit status {code}")
    return Path(results) / study


def load(folder: str | Path):
    """A collected folder's (runs, curves) tables."""
    return collect_lib.load(Path(folder))
