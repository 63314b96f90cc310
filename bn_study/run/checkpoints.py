"""Mid-run checkpoints: a run killed at step 49,000 of 50,000 resumes from its last checkpoint, not step 0.

At the first evaluation after checkpoint.every_seconds have passed since the last save (at every evaluation where that
is 0), the run writes, in <run folder>/checkpoint/: every variable of the model (weights, BN
statistics, dropout seed states) and of the optimizer (its step count included) as one TensorFlow checkpoint,
`ckpt-<step>`, its files flushed to disk; then `state.json`, written last and atomically, which names the
newest two checkpoints with the step, what that evaluation measured and each file's size and SHA-256. Files
no longer named there are removed after it lands, so a kill at any moment leaves every checkpoint it names
whole on disk. The batch order needs no saving: it is a function of the seed and the steps taken
(`BatchOrder.skip`).

A checkpoint is resumed only if everything about it holds: it is this run's (its run_id), its files are the
bytes that were saved, the run's curves.csv reaches its step with the same measurements (a curve cut back by a
later run, or a state.json from elsewhere, would leave a hole), and the restored optimizer has taken exactly
that many steps. Otherwise the older one is tried, then the run starts afresh, and one line says why. Resumed,
the run cuts curves.csv back to that step and goes on; its curve is value for value the uninterrupted one (a
test kills a run with SIGKILL to check).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import tensorflow as tf

from bn_study import files

log = logging.getLogger(__name__)

FOLDER = "checkpoint"
STATE = "state.json"
KEEP = 2


@dataclass
class Resume:
    step: int
    measured: dict  # the evaluation at `step`: {split: {loss, accuracy}}
    prefix: str  # the TensorFlow checkpoint to restore
    files: dict | None = (
        None  # {file name: {bytes, sha256}} as saved (None: a checkpoint saved before they were recorded)
    )
    wall_seconds: float = 0.0  # the run's wall time up to this checkpoint, over every process that worked on it


def _variables(trainer) -> tf.train.Checkpoint:
    # By position, not by name: a resumed run rebuilds the same architecture, whose variables come in the same order.
    found = [*trainer.model.variables, *trainer.optimizer.variables]
    return tf.train.Checkpoint(**{f"v{i:04d}": v for i, v in enumerate(found)})


def _files(prefix: Path) -> list[Path]:
    return sorted(prefix.parent.glob(f"{prefix.name}.*"))


class Saver:
    """Saves the run's variables at an evaluation once `every_seconds` have passed since the last save (or the start;
    0: at every evaluation); `kept`: the checkpoint the run resumed from, still valid."""

    def __init__(self, folder: Path, trainer, run_id: str, kept: Resume | None = None, every_seconds: float = 0.0):
        self.folder, self.run_id = Path(folder) / FOLDER, run_id
        self.folder.mkdir(parents=True, exist_ok=True)
        files.remove_leftovers(self.folder)
        self._checkpoint = _variables(trainer)
        self._named: list[dict] = [_entry(kept)] if kept else []
        self.every_seconds, self._last = every_seconds, time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.every_seconds

    def save(self, step: int, measured: dict, wall_seconds: float) -> None:
        """`wall_seconds`: the run's wall time so far, kept with the checkpoint so that a resumed run's counts it all."""
        prefix = self.folder / f"ckpt-{step}"
        try:
            self._checkpoint.write(str(prefix))
            saved = {}
            for path in _files(prefix):
                with open(path, "rb+") as f:
                    os.fsync(f.fileno())
                saved[path.name] = files.digest(path)
            files.sync_folder(self.folder)
        except tf.errors.OpError as err:  # a full disk, a folder gone: as the OSError it is, naming the file
            raise OSError(None, f"cannot save the checkpoint: {_os_error(err.message)}", str(prefix)) from None
        except OSError as err:
            raise files.named(err, prefix) from None
        self._named = [*self._named, _entry(Resume(step, measured, str(prefix), saved, wall_seconds))][-KEEP:]
        files.write_json_atomic(self.folder / STATE, {"run_id": self.run_id, "checkpoints": self._named})
        self._last = time.monotonic()
        named = {name for entry in self._named for name in entry["files"]}
        for path in self.folder.glob(
            "ckpt-*"
        ):  # older checkpoints, and what a killed save left (TensorFlow's ckpt-<step>_temp/)
            if path.name in named:
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _os_error(message: str) -> str:
    """What the operating system said, out of TensorFlow's message ('{{function_node ...}} <file>; No space left on device [Op:SaveV2]')."""
    return re.sub(r"\s*\[Op:\w+\]$", "", message.strip().splitlines()[0].rpartition("; ")[2]).strip()


def _entry(resume: Resume) -> dict:
    """The state.json entry of a checkpoint: one just saved, or the one a run resumed from (its files' checksums taken now
    if its state.json, written by an older bn-study, did not record them: the restore just read them whole)."""
    saved = resume.files if resume.files is not None else {p.name: files.digest(p) for p in _files(Path(resume.prefix))}
    return {
        "step": resume.step,
        "measured": resume.measured,
        "prefix": Path(resume.prefix).name,
        "files": saved,
        "wall_seconds": resume.wall_seconds,
    }


def remove(folder: Path) -> None:
    shutil.rmtree(Path(folder) / FOLDER, ignore_errors=True)


def candidates(folder: Path, run_id: str | None = None) -> list[Resume]:
    """The checkpoints `folder`'s state.json names (of the run `run_id`, if given), newest first."""
    path = Path(folder) / FOLDER / STATE
    try:
        state = json.loads(path.read_text())
        if run_id is not None and state.get("run_id") != run_id:
            return []
        # A state.json written before it named two checkpoints names one, at its top level.
        entries = state["checkpoints"] if "checkpoints" in state else [state]
        return [
            Resume(
                int(e["step"]),
                e["measured"],
                str(path.parent / e["prefix"]),
                e.get("files"),
                float(e.get("wall_seconds", 0.0)),  # 0: saved before it was recorded
            )
            for e in reversed(entries)
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def _whole(resume: Resume) -> str | None:
    """Why the checkpoint's files are not the bytes that were saved, or None."""
    prefix = Path(resume.prefix)
    if resume.files is None:
        return None if Path(f"{prefix}.index").exists() else f"{prefix.name}.index is missing"
    for name, expected in resume.files.items():
        try:
            if files.digest(prefix.parent / name) != expected:
                return f"{name} is not what was saved (torn)"
        except OSError:
            return f"{name} is missing"
    return None


def resume(folder: Path, run_id: str, trainer, reached: Callable[[Resume], str | None]) -> Resume | None:
    """The newest checkpoint of `folder` that is whole, this run's and `reached` by its curves (`reached` says why
    not, or None), restored into `trainer`; None, with `trainer` as it was, if there is none. One line says what was
    passed over."""
    passed = []
    variables = [*trainer.model.variables, *trainer.optimizer.variables]
    snapshot = None
    for found in candidates(folder, run_id):
        why = _whole(found) or reached(found)
        if why is None:
            if snapshot is None:
                snapshot = [v.numpy() for v in variables]
            try:
                if (
                    found.files is None
                ):  # saved by an older bn-study through a CheckpointManager, which adds its save counter
                    _variables(trainer).restore(found.prefix).assert_existing_objects_matched()
                else:
                    _variables(trainer).read(found.prefix).assert_consumed()
                steps = int(trainer.optimizer.iterations.numpy())
                why = None if steps == found.step else f"its optimizer has taken {steps} steps, not {found.step}"
            except Exception as err:  # whatever TensorFlow raises for a file it cannot read: the next one is tried
                why = f"it cannot be restored ({type(err).__name__})"
        if why is None:
            if passed:
                log.warning(
                    "WARNING %s: resuming from the checkpoint at step %d; passed over %s",
                    folder,
                    found.step,
                    "; ".join(passed),
                )
            return found
        passed.append(f"the one at step {found.step}: {why}")
    if snapshot is not None:  # a failed restore may have set some variables: back to this run's own start
        for variable, value in zip(variables, snapshot):
            variable.assign(value)
    if passed:
        log.warning("WARNING %s: starting afresh from step 0; no usable checkpoint (%s)", folder, "; ".join(passed))
    return None
