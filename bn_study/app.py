"""The `bn-study` command: Hydra composes the config, `run.execute` does the work.

Bad input is reported as one line on stderr with exit status 2 and no traceback, whether Hydra refuses
it while composing (unknown option or key, wrong type) or our checks do (ranges, data, model shape).
The run folder Hydra made for a refused run is removed while it is still empty.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from . import config as config_lib
from . import sweep
from .config import ConfigError, validate
from .data import DataUnavailable

config_lib.register()

# The repo's conf/ (the package is installed editable, so it sits beside bn_study/).
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"

USAGE_ERRORS = (ConfigError, DataUnavailable, ConfigCompositionException, OverrideParseException, OmegaConfBaseException)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float:
    hc = HydraConfig.get()
    folder = Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)
    progress = sweep.JobProgress(Path(hc.sweep.dir), hc.job.num, overrides) if hc.mode == RunMode.MULTIRUN else None
    try:
        run_cfg = validate(cfg)
        threads = sweep.limit_threads()
        from . import run  # imports TensorFlow: only once the config is known to be good

        record = previous = run.finished(run_cfg, folder)
        if previous is None:
            if progress:
                progress.start()
            runtime = {"launcher": hc.launcher.get("_target_"), "intra_op_threads": threads}
            record = run.execute(run_cfg, folder, overrides=overrides, runtime=runtime)
    except USAGE_ERRORS as err:
        _remove_if_empty(folder)
        refuse(err)
    if progress:
        progress.end(record, skipped=previous is not None)
    return record["final"]["test_accuracy"]


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def _keys_of(path: str) -> list[str]:
    """The keys a (dotted) config node allows, from the schema."""
    node = OmegaConf.select(OmegaConf.structured(config_lib.RunConfig), path) if path else OmegaConf.structured(config_lib.RunConfig)
    return list(node.keys()) if isinstance(node, DictConfig) else []


def one_line(err: BaseException) -> str:
    """A single line naming the offending key and what it allows."""
    if isinstance(err, MissingConfigException) and err.missing_cfg_file and err.options:
        group, _, name = err.missing_cfg_file.rpartition("/")
        return f"{group}={name}: unknown option; choose one of: {', '.join(sorted(err.options))}"
    cause = err.__cause__ if isinstance(err.__cause__, OmegaConfBaseException) else err
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        key = cause.full_key
        if isinstance(cause, (ConfigKeyError, ConfigAttributeError)):
            parent = key.rpartition(".")[0]
            allowed = _keys_of(parent)
            where = parent or "the top level"
            return f"{key}: unknown key; {where} has: {', '.join(allowed)}" if allowed else f"{key}: unknown key"
        return f"{key}: {str(cause).splitlines()[0]}"
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(err).__name__


def refuse(err: BaseException) -> NoReturn:
    # SystemExit, not an Exception: Hydra passes it through without its own multi-line report.
    print(f"bn-study: error: {one_line(err)}", file=sys.stderr)
    raise SystemExit(2)


def cli() -> None:
    # Composition errors reach us instead of Hydra's multi-line report; real bugs still get a traceback.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        main()
    except USAGE_ERRORS as err:
        refuse(err)
