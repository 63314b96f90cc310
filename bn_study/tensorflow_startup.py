"""TensorFlow's start-up, the same on every host: its import notices kept off stderr, what it turned on, and GPU
memory that grows as used (so that several processes can share a device).

On CPUs with AVX512-VNNI, BF16 or AMX, TensorFlow 2.21 turns oneDNN on and says so while it is imported,
before absl's logging is set up, so TF_CPP_MIN_LOG_LEVEL does not reach it: absl's preamble and a oneDNN
notice, twice per process, on stderr. A command's one-line error would be five lines on those hosts and one
on the others. So while a process first imports `tensorflow`, its file descriptor 2 is a pipe to a small
filter process that drops those notices and passes every other line on to the real stderr as it comes: a
real error at import is still seen, even if TensorFlow then aborts the process (the filter outlives it).
Whether oneDNN is on is recorded with every run instead (`bn_study.run.provenance`): it changes the numbers in
their last bits.

`install()` (bn_study/__init__.py) arms this before anything imports TensorFlow; importing it first
elsewhere (a notebook that imported TensorFlow before bn_study) only means its notices stay.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import re
import subprocess
import sys

# The lines TensorFlow prints at import that say nothing about the run's input or its failure.
NOTICES = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
    r"I\d{4} [\d:. ]+\d+ port\.cc:\d+\] oneDNN custom operations are on\. ",
)

# The filter, a process of its own (in a session of its own, so that the terminal's Ctrl-C is the importing process's
# alone): lines in on stdin, all but the notices out on stdout (the real stderr), until the pipe closes.
_FILTER = """
import re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
notices = [re.compile(p) for p in sys.argv[1:]]
for line in sys.stdin.buffer:
    if not any(p.match(line.decode(errors="replace")) for p in notices):
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
"""


def kept(text: str) -> str:
    """`text` without the start-up notices (what the filter passes on)."""
    return "".join(line for line in text.splitlines(keepends=True) if not any(re.match(p, line) for p in NOTICES))


@contextlib.contextmanager
def _stderr_filtered():
    """File descriptor 2 through the filter for the duration of the block; as it was if the filter cannot start."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no file descriptor 2 (an embedded interpreter): nothing to filter
        yield
        return
    try:
        child = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _FILTER, *NOTICES],
            stdin=subprocess.PIPE,
            stdout=saved,
            stderr=saved,
            start_new_session=True,
        )
    except OSError:
        os.close(saved)
        yield
        return
    os.dup2(child.stdin.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)  # first: whatever happens next, stderr is the real one again
        os.close(saved)
        child.stdin.close()  # the pipe's last write end (unless a process started meanwhile holds one): the filter drains and exits
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()


class _FilteringLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(_FINDER)
        module.__spec__.loader = module.__loader__ = self.loader  # TensorFlow's own loader from here on
        with _stderr_filtered():
            self.loader.exec_module(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` with its loader wrapped, until it is imported (a mere `find_spec` asks too)."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target) if finder is not self and hasattr(finder, "find_spec") else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _FilteringLoader(spec.loader)
                return spec
        return None


_FINDER = _Finder()


def install() -> None:
    # On a GPU, TensorFlow takes nearly all of the device's memory at the first op unless told to grow into it: then
    # a second process (two sweeps, a notebook beside a sweep) fails. Read at TensorFlow's start; a user's setting stays.
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    if "tensorflow" not in sys.modules and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def onednn() -> bool | None:
    """Whether TensorFlow runs with oneDNN's kernels (None if this TensorFlow cannot say)."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # noqa: PLC2701 (TensorFlow's own answer; only once it is imported)

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None
