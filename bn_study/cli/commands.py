"""The console scripts. Each imports its command inside a guard: the first second of a command is Python importing
pandas, Hydra and the rest, and a Ctrl-C there must end in one line too, as it does once the command runs."""

from __future__ import annotations

import importlib
import os
import sys

from bn_study import interrupts

# Set (to the study's name) in the environment of a sweep that `bn-study-studies run` started: on Ctrl-C the study
# runner says what to do, once, and the sweep says nothing.
RUN_BY = "BN_STUDY_RUN_BY"


def _run(prog: str, module: str, function: str):
    sys.unraisablehook = quiet_interrupt
    sys.excepthook = quiet_print
    interrupts.arm()
    try:
        command = getattr(importlib.import_module(module), function)
    except BaseException as err:
        if _interrupted(prog, err, " before it started; nothing was written"):
            interrupts.leave(130)
        raise
    try:
        code = command()
    except BaseException as err:  # what a command's own handlers do not see: a Ctrl-C in an import it makes late
        if not (_interrupted(prog, err, "; rerun the same command") or _status(err) == 130):
            raise
        code = 130  # the command's own line said so
    if code == 130:
        interrupts.leave(130)
    interrupts.ignore()
    return code


def _status(err: BaseException):
    return err.code if isinstance(err, SystemExit) else None


def quiet_interrupt(unraisable) -> None:
    """A Ctrl-C that lands in a finalizer (a weakref callback during garbage collection) cannot interrupt anything:
    Python swallows it and prints a traceback; so does TensorFlow's C++ with an error the Ctrl-C broke in a Python
    call it made (a SystemError from `__import__`), which it cannot raise. Swallowed without one, the command's own
    line about the interrupt stays the only one; anything else unraisable is reported as Python does."""
    if not interrupts.caused(unraisable.exc_value):
        sys.__unraisablehook__(unraisable)


def quiet_print(kind, value, traceback) -> None:
    """As `quiet_interrupt`, for what TensorFlow's C++ prints with PyErr_Print (through this hook)."""
    if not interrupts.caused(value):
        sys.__excepthook__(kind, value, traceback)


def _interrupted(prog: str, err: BaseException, what: str) -> bool:
    """Whether `err` is a Ctrl-C or what one broke (`interrupts.caused`: a half-done import's ImportError, an error
    from inside TensorFlow); if so, the one line that says so, unless a study runner says it."""
    if not interrupts.caused(err):
        return False
    if not os.environ.get(RUN_BY):
        print(f"{prog}: interrupted{what}", file=sys.stderr)
    return True


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


def bench_quick() -> int:
    return _run("bn-study-bench-quick", "bn_study.cli.bench_quick", "main")


def plot() -> int:
    return _run("bn-study-plot", "bn_study.cli.plot", "main")
