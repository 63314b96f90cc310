"""Ctrl-C told apart from what it breaks. Python raises KeyboardInterrupt wherever the main thread is when the signal
arrives; inside TensorFlow's tracing or an extension module's import it surfaces as something else (a SystemError,
an AttributeError on a half-built tensor, an ImportError), which would end in a traceback instead of the command's
one line. So the handler notes that the signal came: any error raised after it is the interrupt's doing. And an
interrupted command leaves without Python's shutdown (`leave`), which what the Ctrl-C cut short can break."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from typing import NoReturn

_received = False


def _raise(signum, frame) -> None:
    global _received
    _received = True
    raise KeyboardInterrupt


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def arm() -> None:
    """From here on a Ctrl-C raises KeyboardInterrupt, as by default, and is noted (only the main thread may set it)."""
    if _main_thread():
        signal.signal(signal.SIGINT, _raise)


def caused(err: BaseException) -> bool:
    """Whether `err` is a Ctrl-C or what one broke (an error, not an exit a handler chose, raised after one came)."""
    return isinstance(err, KeyboardInterrupt) or (_received and isinstance(err, Exception))


def ignore() -> None:
    """Ctrl-C ignored from here on: a command whose work has ended exits with its own status. While Python shuts down
    its handler is gone, and a Ctrl-C would kill the process by the signal instead."""
    if _main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def leave(status: int) -> NoReturn:
    """Exit now with `status`, logs and output flushed, without Python's shutdown. After a Ctrl-C has cut TensorFlow
    short, its finalization can abort the process (Fatal Python error: PyThreadState_Get), and CPython, which
    remembers a KeyboardInterrupt that escaped code TensorFlow ran through PyRun_*, kills it by SIGINT after it exits:
    either way not the status the command chose. What must be whole on disk is written atomically before this."""
    ignore()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    os._exit(status)
