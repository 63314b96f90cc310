"""The console scripts. Each imports its command inside a guard: the first second of a command is Python importing
pandas, Hydra and the rest, and a Ctrl-C there must end in one line too, as it does once the command runs."""

from __future__ import annotations

import importlib
import os
import sys

# Set (to the study's name) in the environment of a sweep that `bn-study-studies run` started: on Ctrl-C the study
# runner says what to do, once, and the sweep says nothing.
RUN_BY = "BN_STUDY_RUN_BY"


def _run(prog: str, module: str, function: str):
    sys.unraisablehook = quiet_interrupt
    try:
        command = getattr(importlib.import_module(module), function)
    except BaseException as err:
        _interrupted(prog, err, " before it started; nothing was written")
        raise
    try:
        return command()
    except BaseException as err:  # what a command's own handlers do not see: a Ctrl-C in an import it makes late
        _interrupted(prog, err, "; rerun the same command")
        raise


def quiet_interrupt(unraisable) -> None:
    """A Ctrl-C that lands in a finalizer (a weakref callback during garbage collection) cannot interrupt anything:
    Python swallows it and prints a traceback. Swallowed without one, the command's own line about the interrupt
    stays the only one; anything else unraisable is reported as Python does."""
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        sys.__unraisablehook__(unraisable)


def _interrupted(prog: str, err: BaseException, what: str) -> None:
    """One line and exit 130 if `err` is a Ctrl-C, also one that broke an extension module's import (ImportError:
    initialization failed, caused by the KeyboardInterrupt)."""
    broken_import = isinstance(err, ImportError) and any(
        isinstance(e, KeyboardInterrupt) for e in (err.__cause__, err.__context__)
    )
    if isinstance(err, KeyboardInterrupt) or broken_import:
        if not os.environ.get(RUN_BY):
            print(f"{prog}: interrupted{what}", file=sys.stderr)
        raise SystemExit(130) from None


def bn_study() -> None:
    _run("bn-study", "bn_study.cli.app", "cli")


def studies() -> int:
    return _run("bn-study-studies", "bn_study.cli.studies", "main")


def collect() -> int:
    return _run("bn-study-collect", "bn_study.cli.studies", "collect_command")


def verify() -> int:
    return _run("bn-study-verify", "bn_study.cli.verify", "main")


def bench() -> int:
    return _run("bn-study-bench", "bn_study.cli.bench", "main")


def bench_cnn() -> int:
    return _run("bn-study-bench-cnn", "bn_study.cli.bench_cnn", "main")


def bench_studies() -> int:
    return _run("bn-study-bench-studies", "bn_study.cli.bench_studies", "main")
