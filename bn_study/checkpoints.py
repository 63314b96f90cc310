"""Mid-run checkpoints: a run killed at step 49,000 of 50,000 resumes from its last evaluation, not step 0.

At every evaluation the run saves, in <run folder>/checkpoint/: every variable of the model (weights, BN
statistics, dropout seed states) and of the optimizer (its step count included) with TensorFlow's
CheckpointManager, then the step and what that evaluation measured in `state.json`, written last and
atomically: it names the checkpoint to restore, so a kill between the two leaves the previous pair whole
(the manager keeps two). The batch order needs no saving: it is a function of the seed and the steps taken
(`BatchOrder.skip`). Resumed, the run restores it all, cuts curves.csv back to that step and goes on; its
curve is value for value the uninterrupted one (a test kills a run with SIGKILL to check).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from . import records

FOLDER = "checkpoint"
STATE = "state.json"


@dataclass
class Resume:
    step: int
    measured: dict  # the evaluation at `step`: {split: {loss, accuracy}}
    prefix: str  # the TensorFlow checkpoint to restore


def _variables(trainer) -> tf.train.Checkpoint:
    # By position, not by name: a resumed run rebuilds the same architecture, whose variables come in the same order.
    found = [*trainer.model.variables, *trainer.optimizer.variables]
    return tf.train.Checkpoint(**{f"v{i:04d}": v for i, v in enumerate(found)})


class Saver:
    def __init__(self, folder: Path, trainer, run_id: str, fresh: bool):
        self.folder, self.run_id = Path(folder) / FOLDER, run_id
        if fresh:  # a run starting from step 0 never leaves another run's checkpoint to be restored later
            self.remove()
        self._checkpoint = _variables(trainer)
        self._manager = tf.train.CheckpointManager(self._checkpoint, str(self.folder), max_to_keep=2)

    def save(self, step: int, measured: dict) -> None:
        prefix = self._manager.save(checkpoint_number=step)
        state = {"run_id": self.run_id, "step": step, "measured": measured, "prefix": Path(prefix).name}
        records.write_json_atomic(self.folder / STATE, state)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def latest(folder: Path, run_id: str | None = None) -> Resume | None:
    """The checkpoint a run folder holds, if it has a whole one (of the run `run_id`, if given)."""
    path = Path(folder) / FOLDER / STATE
    try:
        state = json.loads(path.read_text())
        prefix = path.parent / state["prefix"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if (run_id is not None and state.get("run_id") != run_id) or not Path(f"{prefix}.index").exists():
        return None
    return Resume(int(state["step"]), state["measured"], str(prefix))


def restore(resume: Resume, trainer) -> None:
    _variables(trainer).restore(resume.prefix).assert_consumed()

