"""A study's rendered outputs (verdicts.json, figures, CSVs, summary.md): whole or not at all, and tied to the
collection they were drawn from.

A render writes into a staging folder inside the study folder. Only once every output is written are they
renamed into place; `rendered.json`, written last, lists each with its size and SHA-256, beside the checksum of
the collection.json whose tables they were drawn from (verdicts.json records it too). So a kill or a full disk
mid-render leaves the old outputs as they were; a kill between the renames leaves files that do not match
rendered.json; a collect without a render leaves rendered.json naming another collection. `check` finds all
three, and verify and the report refuse them until the study is rendered again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from bn_study import files
from bn_study.claims.verdicts import VERDICTS
from bn_study.tables import collect

MANIFEST = "rendered.json"
_STAGE = ".render-"


class Stale(RuntimeError):
    """Rendered outputs that are torn, edited, or drawn from another collection than the tables beside them; `quoted`:
    only what they quote of another study has changed (a render of their own tables brings them up to date)."""

    def __init__(self, message: str, quoted: bool = False):
        super().__init__(message)
        self.quoted = quoted


def collection_digest(folder: Path) -> dict:
    """The checksum of the study folder's collection.json: one collection, named."""
    return files.digest(Path(folder) / collect.MANIFEST)


def _digests(folder: Path, inputs: list[Path]) -> dict[str, dict | None]:
    """Each input's checksum (None: absent), by its path from the results root (the study folder's parent)."""
    return {str(Path(p).relative_to(folder.parent)): files.digest(p) if Path(p).is_file() else None for p in inputs}


@contextlib.contextmanager
def staged(folder: Path, collection: dict, inputs: list[Path] = ()) -> Iterator[Path]:
    """A fresh staging folder for the outputs of `folder`'s collection `collection` (`collection_digest`), drawn also
    from `inputs` (other studies' files in the same results root); when the block ends without an error, its files
    replace their namesakes in `folder` and rendered.json lists them. The caller owns `folder` (`ownership`, which
    removed a killed render's staging folder on taking it)."""
    folder = Path(folder)
    try:
        stage = Path(tempfile.mkdtemp(dir=folder, prefix=_STAGE, suffix=files.TMP_SUFFIX))
    except OSError as err:
        raise files.named(err, folder) from None
    try:
        read = _digests(folder, list(inputs))
        yield stage
        _switch(stage, folder, {"collection": collection, "inputs": read})
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _switch(stage: Path, folder: Path, drawn_from: dict) -> None:
    outputs = sorted(p for p in stage.iterdir() if p.is_file())
    listed = {}
    for path in outputs:
        try:
            os.chmod(path, files.FILE_MODE)
            with open(path, "rb+") as f:
                os.fsync(f.fileno())
        except OSError as err:
            raise files.named(err, path) from None
        listed[path.name] = files.digest(path)
    manifest = {**drawn_from, "files": listed}  # no time: a render of the same tables writes the same bytes
    # Said before the first rename and unsaid after the last: a kill in between leaves outputs `check` refuses.
    files.write_json_atomic(folder / MANIFEST, {**manifest, "switching": True})
    for path in outputs:
        os.replace(path, folder / path.name)
    files.sync_folder(folder)
    files.write_json_atomic(folder / MANIFEST, manifest)


def check(folder: Path) -> int:
    """How many rendered outputs `folder` holds, once each is what was rendered from the collection beside it (0 if
    nothing was rendered); raises Stale saying what is wrong."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.exists():
        if (folder / VERDICTS).exists():
            raise Stale(
                f"{folder}: verdicts.json without a {MANIFEST} (a render killed before it finished, or made by hand); render the study again"
            )
        return 0
    try:
        manifest = json.loads(path.read_text())
        listed, collection, inputs = manifest["files"], manifest["collection"], manifest.get("inputs") or {}
        if (
            not isinstance(listed, dict)
            or not isinstance(inputs, dict)
            or any(Path(name).is_absolute() or ".." in Path(name).parts for name in inputs)
        ):
            raise TypeError("files or inputs is not a mapping of relative paths")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise Stale(f"{path}: unreadable ({type(err).__name__}); render the study again") from None
    if manifest.get("switching"):
        raise Stale(f"{folder}: a render was killed while it renamed its outputs into place; render the study again")
    for name, expected in listed.items():
        try:
            found = files.digest(folder / name)
        except OSError:
            found = None
        if found != expected:
            raise Stale(
                f"{folder / name}: not what was rendered (a render torn by a crash, or edited); render the study again"
            )
    try:
        current = collection_digest(folder)
    except OSError:
        current = None
    if current != collection:
        raise Stale(
            f"{folder}: its figures and verdicts were drawn from another collection than the tables beside them (collected again "
            "since?); render the study again"
        )
    for name, expected in _digests(folder, [folder.parent / name for name in inputs]).items():
        if expected != inputs[name]:
            now = "is absent" if expected is None else "has changed since it was rendered"
            raise Stale(f"{folder}: its summary quotes {name}, which {now}; render the study again", quoted=True)
    return len(listed)
