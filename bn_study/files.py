"""Files written whole or not at all, and checked: a write staged beside its target, flushed and renamed into place
(`staged`, `write_json_atomic`), a file's size and SHA-256 (`digest`), what a killed write leaves (`leftovers`), and
an OSError that names its file (a full disk's ENOSPC names none)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def stamp(pattern: str = "%Y-%m-%d_%H-%M-%S") -> str:
    """The time in UTC for a folder's name: the registration ledger reads a sweep's start from it, on any host's clock."""
    return datetime.now(timezone.utc).strftime(pattern)


def _json_safe(value):
    """NaN/inf become null: run.json stays valid JSON (a diverged run's metrics read back as NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _umask() -> int:
    """The process's umask, read without setting it (os.umask sets it, which races with other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates its files 0600; a result must be as readable as its siblings (the group on a shared filesystem).
FILE_MODE = 0o666 & ~_umask()


def staged(path: Path, write) -> Path:
    """`write(tmp_path)` into a temporary file beside `path`, flushed to disk with the usual file mode;
    returns the temporary path for the caller to `os.replace` into place (removed again on any failure)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    except OSError as err:
        raise named(err, path) from None
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, FILE_MODE)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise named(err, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def named(err: OSError, path: Path) -> OSError:
    """`err` naming the file it was about: a write on a full disk raises ENOSPC without a file name."""
    if err.filename:
        return err
    return (
        type(err)(err.errno, err.strerror or str(err), str(path)) if err.errno else OSError(None, str(err), str(path))
    )


TMP_SUFFIX = ".tmp"


def leftovers(folder: Path) -> list[Path]:
    """What a killed write left directly in `folder`: `staged`'s `.<name>.<random>.tmp` files, a render's staging folder."""
    return sorted(Path(folder).glob(f".*{TMP_SUFFIX}"))


def remove_leftovers(folder: Path) -> None:
    """Remove them: for the folder's owner only (`ownership`), who is the only one writing there."""
    for path in leftovers(folder):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def sync_folder(folder: Path) -> None:
    """Flush a folder's entries (renames into it) to disk, so they survive a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, write) -> None:
    """`write(tmp_path)` into a temporary file beside `path`, then renamed over it: `path` is the old file or the new
    one, whole, after a crash."""
    os.replace(staged(path, write), path)
    sync_folder(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(path: Path, payload: dict) -> None:
    write_text_atomic(path, json.dumps(_json_safe(payload), indent=2, allow_nan=False))


def digest(path_or_bytes) -> dict:
    """What a file (or its bytes, read once) holds, to check it later: its size and SHA-256."""
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def remove_if_empty(folder: Path) -> None:
    """Remove `folder` if empty, and the parents made for it below the current folder (results/<study>/runs/) while
    they are empty too: a refused run or sweep leaves nothing that looks like a result."""
    stop = Path.cwd().resolve()
    folder = Path(folder).resolve()
    while True:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
        if folder == stop or stop not in folder.parents:
            return
