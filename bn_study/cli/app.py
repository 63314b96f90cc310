"""The `bn-study` command: Hydra composes the config, `run.execute` does the work.

Bad input is reported as one line on stderr with exit status 2 and no traceback, whether Hydra refuses
it while composing (unknown option or key, wrong type) or our checks do (ranges, data, model shape).
A folder is owned by one process at a time (`ownership`); one that holds no run when the process ends
(a refused config, a crash before training) is removed. Ctrl-C prints one line and exits 130, with the
run's run.json marked failed; a file-system error (a read-only folder, a full disk) one line and exit 1.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from bn_study import config as config_lib
from bn_study import files, interrupts
from bn_study.cli.commands import RUN_BY
from bn_study.config import CONF_DIR, ConfigError, unknown_key
from bn_study.data.datasets import DataUnavailable
from bn_study.run.preflight import checked
from bn_study.run.records import read_run
from bn_study.sweep import manifest as sweep
from bn_study.sweep import ownership, scheduler

log = logging.getLogger(__name__)


# HydraException: what Hydra raises for input it cannot use (composition, override syntax, sweep syntax).
USAGE_ERRORS = (ConfigError, DataUnavailable, HydraException, OmegaConfBaseException)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float:
    hc = HydraConfig.get()
    folder = Path(hc.runtime.output_dir)
    overrides = OmegaConf.to_container(
        hc.overrides.task, resolve=False
    )  # as typed: iterating would resolve a `${...}` in them
    multirun = hc.mode == RunMode.MULTIRUN
    progress = None
    sweep.WORKING["run"] = folder
    try:
        with ownership.owned(
            folder, f"job folder {folder} of hydra.sweep.dir" if multirun else f"hydra.run.dir={folder}"
        ):
            run_cfg = checked(cfg)
            if multirun:
                if not sweep.records_upfront(hc):
                    run_id = config_lib.config_id(config_lib.identity(run_cfg))
                    sweep.record_job(
                        Path(hc.sweep.dir), overrides, run_id, hc, run_cfg.objective, run_cfg.data.val_fraction > 0
                    )
                progress = sweep.JobProgress(Path(hc.sweep.dir), hc.job.num, overrides)
            threads = sweep.limit_threads()
            from bn_study.run import execute as run  # imports TensorFlow: only once the config is known to be good

            record = previous = run.finished(run_cfg, folder)
            if previous is None:
                if progress:
                    progress.start()
                runtime = {"launcher": hc.launcher.get("_target_"), "intra_op_threads": threads}
                record = run.execute(run_cfg, folder, overrides=overrides, runtime=runtime)
    except BaseException as err:
        files.remove_if_empty(folder)  # died before training began: leave nothing that looks like a run
        if interrupts.caused(
            err
        ):  # as itself, not as what it broke (TensorFlow's tracing): Hydra reports errors at length
            raise KeyboardInterrupt from None
        if isinstance(err, USAGE_ERRORS):
            refuse(err)
        if isinstance(
            err, OSError
        ):  # a full disk, a folder it cannot write: one line, not Hydra's report and a traceback
            fail(err)
        raise
    if progress:
        progress.end(record, skipped=previous is not None)
    elif previous is not None:
        log.info(
            "skipped: %s already holds this run, %s%s; to run it again, choose another hydra.run.dir",
            folder,
            record["status"],
            _accuracy(record),
        )
    # what a searching sweeper optimises: validation, as every selection (a run without a validation split has none to
    # return, and a search needs one: sweep.record_job refuses it)
    return record["final"].get(run_cfg.objective)


def _accuracy(record: dict) -> str:
    acc = (record.get("final") or {}).get("test_accuracy")
    return f" (test acc {acc:.4f})" if isinstance(acc, float) and acc == acc else ""


def one_line(err: BaseException) -> str:
    """A single line naming the offending key and what it allows."""
    if isinstance(err, MissingConfigException) and err.missing_cfg_file and err.options:
        group, _, name = err.missing_cfg_file.rpartition("/")
        return f"{group}={name}: unknown option; choose one of: {', '.join(sorted(err.options))}"
    cause = err.__cause__ if isinstance(err.__cause__, OmegaConfBaseException) else err
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        key = cause.full_key
        if isinstance(cause, (ConfigKeyError, ConfigAttributeError)):
            return str(unknown_key(key))
        return f"{key}: {str(cause).splitlines()[0]}"
    if isinstance(err, OverrideParseException):
        loose = _loose_word(sys.argv[1:])
        if loose is not None:
            return f"{loose!r}: not a key=value override; quote a value that holds spaces, e.g. 'hydra.run.dir=\"my runs/a\"'"
        odd = next(
            (
                arg
                for arg in sys.argv[1:]
                if "=" in arg and not arg.isascii() and arg.partition("=")[2][:1] not in "'\""
            ),
            None,
        )
        if odd is not None:
            key, _, value = odd.partition("=")
            return f"{odd}: a value with characters beyond ASCII must be quoted, e.g. '{key}=\"{value}\"'"
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(err).__name__


# Hydra's own options that take a value, which is not an override.
_OPTIONS_WITH_VALUE = {
    "--cfg",
    "-c",
    "--config-path",
    "-cp",
    "--config-name",
    "-cn",
    "--config-dir",
    "-cd",
    "--package",
    "-p",
    "--experimental-rerun",
    "--info",
    "-i",
}


def _loose_word(args: list[str]) -> str | None:
    """The first argument that is neither an option, an option's value nor a key=value override."""
    after_option = False
    for arg in args:
        if after_option or arg.startswith("-"):
            after_option = arg in _OPTIONS_WITH_VALUE
            continue
        if "=" not in arg:
            return arg
    return None


def fail(err: OSError) -> NoReturn:
    print(f"bn-study: error: {err.strerror or err}: {err.filename or ''}".rstrip(": "), file=sys.stderr)
    raise SystemExit(1)


def refuse(err: BaseException) -> NoReturn:
    # SystemExit, not an Exception: Hydra passes it through without its own multi-line report.
    print(f"bn-study: error: {one_line(err)}", file=sys.stderr)
    raise SystemExit(2)


# Settings that name where results are written: empty (or the current folder) would write into the repository.
_FOLDER_KEYS = ("hydra.run.dir", "hydra.sweep.dir")


def _check_folders(args: list[str]) -> None:
    """What decides a folder's name, checked before Hydra makes the folder."""
    for arg in args:
        key, eq, value = arg.partition("=")
        key = key.lstrip("+~")
        if eq and key == "study":
            for name in value.split(","):  # a multirun may sweep it
                config_lib.check_study_name(name)
        if eq and key == "paths.results" and not value.strip(" '\""):
            raise ConfigError(
                f"{key}={value}: must name a folder (empty would write results/<study>/ at the file system's root)"
            )
        if (
            eq
            and key in _FOLDER_KEYS
            and (not value.strip(" '\"") or Path(value.strip(" '\"")).resolve() == Path.cwd().resolve())
        ):
            raise ConfigError(
                f"{key}={value}: must name a folder of its own (this would write into the current folder {Path.cwd()})"
            )


def _interrupted() -> str:
    """What Ctrl-C left behind, and how to carry on."""
    run, sweep_dir = sweep.WORKING.get("run"), sweep.WORKING.get("sweep")
    try:
        status = read_run(run)["status"] if run else None
    except (OSError, ValueError, KeyError, TypeError):
        status = None
    if status == "failed":
        left = f"run folder {run} marked failed"
    elif status:
        left = f"run folder {run} left {status}"
    else:
        left = f"sweep {sweep_dir} stopped, its finished runs kept" if sweep_dir else "no run was written"
    if sweep_dir:
        return f"{left}; rerun the same command with hydra.sweep.dir={sweep_dir} to resume the sweep"
    return f"{left}; rerun the same command to redo it"


def _check_tensorflow() -> None:
    """TensorFlow comes from an extra (bn-study[cpu] or [cuda]), so a plain `pip install bn-study` lacks it."""
    if importlib.util.find_spec("tensorflow") is None:
        raise ConfigError(
            "TensorFlow is not installed: pip install 'bn-study[cpu]' (or 'bn-study[cuda]' on a CUDA machine, "
            "or keep the TensorFlow 2.21 build you have)"
        )


def cli() -> None:
    # Composition errors reach us instead of Hydra's multi-line report; real bugs still get a traceback.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    # A user's builder or callback (model._target_=mypkg.build) in the folder they run from is importable, as
    # with `python -m bn_study`; the installed console script would not look there.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        if not {"--help", "-h", "--hydra-help", "-sc", "--shell-completion", "--cfg", "-c"} & set(sys.argv[1:]):
            _check_tensorflow()
        _check_folders(sys.argv[1:])
        main()
    except BaseException as err:
        if interrupts.caused(err):
            if not os.environ.get(RUN_BY):  # a study's sweep: the study runner says what to do, once
                print(f"bn-study: interrupted: {_interrupted()}", file=sys.stderr)
            raise SystemExit(130) from None
        if isinstance(err, USAGE_ERRORS):
            refuse(err)
        if isinstance(err, OSError):
            fail(err)
        if isinstance(err, scheduler.SweepFailed):  # a job on SLURM or Ray: its one line, not the scheduler's traceback
            print(f"bn-study: error: {err}", file=sys.stderr)
            raise SystemExit(1) from None
        raise
