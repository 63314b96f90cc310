"""One process at a time per sweep folder or run folder.

Two copies of a sweep pointed at one folder would train the same jobs into the same files, each taking
the other's running job for an interrupted one. So a process owns a folder by an exclusive `flock` on a
lock file inside it, held for as long as it works there. The kernel drops the lock when its process dies
however it dies, so a killed process leaves no live claim: the next owner takes the folder over and says
so. The lock file names its owner (pid, host, start) for the refusal message.

The bn-study commands own their folders (sweep, run, collected tables); `run.execute` called directly
(a notebook, the benchmark) does not. On a local disk this is exact. On NFS, `flock` becomes a POSIX lock
through the server's lock manager: it works across clients only on mounts with locking on (not `nolock`),
and a crashed client's lock lasts until the server's lease expires (about 90 s).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from bn_study.config import ConfigError
from bn_study.files import now, remove_leftovers

log = logging.getLogger(__name__)

LOCK = ".bn-study.lock"


class FolderBusy(ConfigError):
    """Another live process owns the folder."""


@contextmanager
def owned(folder: Path, what: str) -> Iterator[None]:
    """Own `folder` (created if need be) until the block ends; FolderBusy if another live process owns it.
    `what` names the folder for the refusal, by the setting that chose it (e.g. "hydra.sweep.dir=...")."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    fd = _lock(path, what)
    try:
        previous = os.read(fd, 4096).decode(errors="replace").strip()
        if previous:
            log.info("%s: taking over from a process that stopped without finishing (%s)", folder, _describe(previous))
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": now()}).encode(), 0)
        remove_leftovers(folder)  # a killed owner's half-written files: only the owner writes here
        yield
    finally:
        # Unlink while still holding the lock: a process that opened the old file finds it unlinked and retries.
        if _same_file(fd, path):
            path.unlink(missing_ok=True)
        os.close(fd)


def owner(folder: Path) -> str | None:
    """Who owns `folder` right now ("pid 123 on host, since ..."), or None if no live process does."""
    try:
        fd = os.open(Path(folder) / LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # held for an instant: `_lock` waits that out
        return None  # nobody holds it: a stale lock file at most
    except BlockingIOError:
        return _describe(os.read(fd, 4096).decode(errors="replace").strip())
    finally:
        os.close(fd)


# How long a claim is retried before it is refused: long enough for an `owner` probe, or an owner that
# is releasing the folder, to get out of the way.
PATIENCE_SECONDS = 0.5


def still_running(folder: Path) -> str:
    """What a run folder left at status `running` is: running now in a live process, or interrupted."""
    holder = owner(folder)
    return f"running now ({holder})" if holder else "interrupted (its process is gone)"


def _lock(path: Path, what: str) -> int:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode(errors="replace").strip()
            os.close(fd)
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            raise FolderBusy(
                f"{what}: in use by another bn-study process ({_describe(holder)}); wait for it to end, or choose another folder"
            ) from None
        if _same_file(fd, path):
            return fd
        os.close(fd)  # the owner released and unlinked it between our open and our lock: try the new file


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _describe(text: str) -> str:
    try:
        owner = json.loads(text)
        return f"pid {owner['pid']} on {owner['host']}, since {owner['since']}"
    except (ValueError, KeyError, TypeError):
        return "owner unknown"
