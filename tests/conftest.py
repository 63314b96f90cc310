"""Shared helpers: compose a config exactly as the CLI does, and run the CLI itself."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from hydra import compose, initialize_config_dir

from bn_study.config import CONF_DIR, RunConfig
from bn_study.run.preflight import validated

REPO = Path(__file__).resolve().parent.parent

# A run small enough for the fast suite: the bundled data, a short training, a checkpoint at every evaluation (a kill
# resumes at the evaluation before it, whatever the machine's speed).
TINY = ["data=mnist5k", "trainer.steps=60", "trainer.eval_every=20", "probe.examples=200", "checkpoint.every_seconds=0"]


def compose_run(*overrides: str) -> RunConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return validated(compose(config_name="config", overrides=list(overrides)))


def cli(*args: str, cwd: Path = REPO, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bn_study", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


# Where Hydra calls its logging set-up.
_HYDRA_LOG_SETUP = (
    "hydra.main",
    "hydra.core.utils",
    "hydra._internal.hydra",
    "hydra._internal.core_plugins.basic_launcher",
)


def cli_in_process(*args: str) -> subprocess.CompletedProcess:
    """`bn-study *args` run in this process (no TensorFlow import, no interpreter start): for what the command says,
    where a process of its own is not the point. Its exit status, stdout and stderr as `cli` gives them."""
    from bn_study.cli import app

    argv, env = sys.argv, dict(os.environ)
    sys.argv, out, err, code = ["bn-study", *args], io.StringIO(), io.StringIO(), 0
    try:
        with contextlib.ExitStack() as stack:
            # Hydra's logging set-up would close this process's handlers (pytest's own among them): the command's
            # refusals are printed, not logged, so it is left out here.
            for where in _HYDRA_LOG_SETUP:
                stack.enter_context(mock.patch(f"{where}.configure_log", lambda *_, **__: None))
            stack.enter_context(contextlib.redirect_stdout(out))
            stack.enter_context(contextlib.redirect_stderr(err))
            app.cli()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    finally:
        sys.argv = argv
        os.environ.clear()
        os.environ.update(env)  # the command sets HYDRA_FULL_ERROR for itself
    return subprocess.CompletedProcess(["bn-study", *args], code, out.getvalue(), err.getvalue())


def refused(proc: subprocess.CompletedProcess) -> str:
    """The one error line of a CLI call refused as bad input (exit 2); fails unless there is exactly one."""
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("bn-study: error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


@pytest.fixture
def run_tiny(tmp_path):
    """Execute a tiny run in-process and return (record, folder)."""
    from bn_study.run.execute import execute

    def _run(*overrides: str, name: str = "run"):
        cfg = compose_run(*TINY, *overrides)
        folder = tmp_path / name
        return execute(cfg, folder), folder

    return _run


@pytest.fixture(scope="session")
def made(tmp_path_factory):
    """A sweep folder of two tiny finished runs (seeds 0 and 1), trained once per test session: tests that
    tear, edit or collect run folders work on copies (shutil.copytree) or read it as it is."""
    from bn_study.run.execute import execute

    root = tmp_path_factory.mktemp("made") / "sweep"
    for seed in (0, 1):
        execute(compose_run(*TINY, f"seed={seed}"), root / str(seed), overrides=[f"seed={seed}"])
    return root
