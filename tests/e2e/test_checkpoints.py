"""A run killed mid-way resumes from its last checkpoint, and its curve is value for value the uninterrupted one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bn_study import files
from bn_study.run import checkpoints, records
from bn_study.run.train import BatchOrder
from tests.conftest import REPO, cli

# Dropout and BN with a momentum, so that resuming must restore dropout's seed state and BN's statistics too.
RUN = [
    "data=mnist5k",
    "checkpoint.every_seconds=0",  # a checkpoint at every evaluation, whatever the machine's speed
    "trainer.steps=1200",
    "trainer.eval_every=100",
    "probe.examples=200",
    "model.bn=before",
    "model.dropout=0.2",
    "optimizer=momentum",
    "optimizer.momentum=0.9",
    "optimizer.lr=0.05",
]


def _start(folder, args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bn_study", *args, f"hydra.run.dir={folder}"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _checkpointed_step(folder) -> int:
    found = checkpoints.candidates(folder)
    return found[0].step if found else -1


@pytest.mark.slow  # ~50 s: three runs of 1,200 steps, one killed and resumed
def test_a_killed_run_resumes_from_its_checkpoint_value_for_value(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert cli(*RUN, f"hydra.run.dir={whole}").returncode == 0
    logged = [*RUN, "logger=mlflow", f"paths.results={tmp_path / 'results'}"]  # the killed run logs to MLflow too
    assert not (whole / checkpoints.FOLDER).exists()  # removed once the run finished

    proc = _start(killed, logged)
    deadline = time.monotonic() + 240
    while _checkpointed_step(killed) < 300 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    at = _checkpointed_step(killed)
    assert 300 <= at < 1200 and records.read_run(killed)["status"] == "running"
    mlflow_run = records.read_run(killed)["mlflow_run_id"]

    resumed = cli(*logged, f"hydra.run.dir={killed}")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from its checkpoint at step {at}" in resumed.stdout
    record = records.read_run(killed)
    assert record["status"] == "done" and record["resumed"][0]["step"] == at
    a, b = (records.verified_curves(f, records.read_run(f)) for f in (whole, killed))
    pd.testing.assert_frame_equal(a, b)  # every split, metric and probe, at every step, bit for bit
    assert not (killed / checkpoints.FOLDER).exists()

    from mlflow import MlflowClient  # the resumed run went on in the killed run's MLflow run

    client = MlflowClient(f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}")
    assert record["mlflow_run_id"] == mlflow_run and client.get_run(mlflow_run).info.status == "FINISHED"
    # On the curves' step axis, from step 0: what the killed process logged past its checkpoint was redone alike.
    test_acc = b[(b["split"] == "test") & (b["metric"] == "accuracy")]
    logged_pairs = {(m.step, m.value) for m in client.get_metric_history(mlflow_run, "test_accuracy")}
    assert logged_pairs == set(zip(test_acc["step"], test_acc["value"]))


# The defaults' case: a checkpoint only every so many seconds, so that evaluations (here on a subset of each split,
# trainer.eval_subset) lie past the checkpoint when the run is killed; resuming must cut them and redo them alike.
INTERVAL_RUN = [
    *(arg for arg in RUN if not arg.startswith(("checkpoint.every_seconds", "trainer.steps", "trainer.eval_every"))),
    "checkpoint.every_seconds=0.5",
    "trainer.steps=4000",
    "trainer.eval_every=50",
    "trainer.eval_subset=200",
]


def _last_logged_step(folder) -> int:
    rows = records.rows_up_to(folder / records.CURVES_CSV, 10**9) if (folder / records.CURVES_CSV).exists() else []
    return max((int(row[1]) for row in rows), default=-1)


@pytest.mark.slow  # ~40 s: two runs of 4,000 steps, one killed and resumed
def test_a_run_killed_between_interval_checkpoints_drops_the_evaluations_past_it_and_resumes_value_for_value(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert cli(*INTERVAL_RUN, f"hydra.run.dir={whole}").returncode == 0

    proc = _start(killed, INTERVAL_RUN)
    deadline = time.monotonic() + 240
    while proc.poll() is None and time.monotonic() < deadline:
        at = _checkpointed_step(killed)
        if at >= 200 and _last_logged_step(killed) >= at + 100:  # two evaluations past the checkpoint at least
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    at, logged = _checkpointed_step(killed), _last_logged_step(killed)
    assert 200 <= at < 4000 and logged >= at + 100 and records.read_run(killed)["status"] == "running"
    spent = checkpoints.candidates(killed)[0].wall_seconds  # the killed process's time up to its checkpoint

    resumed = cli(*INTERVAL_RUN, f"hydra.run.dir={killed}")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from its checkpoint at step {at}" in resumed.stdout
    record = records.read_run(killed)
    # the run's wall time counts both processes: the first one's up to the checkpoint, then the second one's
    assert 0 < spent < record["wall_seconds"] and record["timing"]["train_seconds"] < record["wall_seconds"] - spent
    a, b = (records.verified_curves(f, records.read_run(f)) for f in (whole, killed))
    pd.testing.assert_frame_equal(a, b)  # the subset evaluations and the last, whole one, bit for bit


def test_skipping_batches_is_taking_them():
    for partial in (False, True):
        taken, skipped = BatchOrder(103, 10, seed=5, partial=partial), BatchOrder(103, 10, seed=5, partial=partial)
        for n in (3, 7, 11):
            taken.take(n)
        skipped.skip(21)
        for x, y in zip(taken.take(30), skipped.take(30)):
            assert (x == y).all()


def test_a_checkpoint_is_only_ever_resumed_by_the_run_that_wrote_it(tmp_path):
    folder = tmp_path / checkpoints.FOLDER
    folder.mkdir()
    files.write_json_atomic(
        folder / checkpoints.STATE,
        {
            "run_id": "abc",
            "checkpoints": [
                {"step": 200, "measured": {}, "prefix": "ckpt-200", "files": {}},
                {"step": 300, "measured": {}, "prefix": "ckpt-300", "files": {}},
            ],
        },
    )
    assert [c.step for c in checkpoints.candidates(tmp_path, "abc")] == [300, 200]  # newest first
    assert checkpoints.candidates(tmp_path, "another") == []
    (folder / checkpoints.STATE).write_text("{torn")
    assert checkpoints.candidates(tmp_path, "abc") == []


# In-process runs of 100 steps that keep their checkpoints (at steps 80 and 100), then made to look interrupted.
SHORT = [
    "data=mnist5k",
    "checkpoint.every_seconds=0",
    "trainer.steps=100",
    "trainer.eval_every=20",
    "probe.examples=100",
    "model.bn=before",
    "model.dropout=0.2",
    "optimizer=momentum",
    "optimizer.momentum=0.9",
    "optimizer.lr=0.05",
]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """An uninterrupted run, and a copy of it with its checkpoints kept."""
    from bn_study.run.execute import execute
    from tests.conftest import compose_run

    root = tmp_path_factory.mktemp("whole")
    execute(compose_run(*SHORT), root / "whole")
    execute(compose_run(*SHORT, "checkpoint.keep=true"), root / "kept")
    assert [c.step for c in checkpoints.candidates(root / "kept")] == [100, 80]
    return root


def _interrupted(whole, tmp_path, curve_to: int):
    """The kept run as if killed after its evaluation at `curve_to` (its checkpoints still those of steps 80 and 100)."""
    folder = tmp_path / "run"
    shutil.copytree(whole / "kept", folder)
    record = records.read_run(folder)
    files.write_json_atomic(folder / "run.json", {**record, "status": "failed"})
    rows = records.rows_up_to(folder / "curves.csv", curve_to)
    (folder / "curves.csv").write_text("\n".join(",".join(r) for r in [records.CURVE_COLUMNS, *rows]) + "\n")
    return folder


def _rerun(folder, caplog, *overrides):
    from bn_study.run.execute import execute
    from tests.conftest import compose_run

    with caplog.at_level("INFO"):
        record = execute(compose_run(*SHORT, *overrides), folder)
    return record, caplog.text


def _same_as_uninterrupted(whole, folder):
    a, b = (records.verified_curves(f, records.read_run(f)) for f in (whole / "whole", folder))
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("fault", ["curve cut back by a later run", "forged state.json"])
def test_a_checkpoint_its_curve_does_not_reach_is_never_resumed_over_a_hole(whole, tmp_path, caplog, fault):
    """Checkpointed to step 100, the run's curve cut back to step 40 (a later run without checkpoints, killed there):
    resuming at 80 or 100 would leave steps 60-80 missing. A forged state.json naming step 80 with the files of
    step 100 passes the curve check, not the optimizer's step count."""
    folder = _interrupted(whole, tmp_path, curve_to=40 if fault.startswith("curve") else 80)
    if fault == "forged state.json":
        state = json.loads((folder / checkpoints.FOLDER / checkpoints.STATE).read_text())
        at_80, at_100 = state["checkpoints"]
        state["checkpoints"] = [{**at_80, "prefix": at_100["prefix"], "files": at_100["files"]}]
        files.write_json_atomic(folder / checkpoints.FOLDER / checkpoints.STATE, state)
    record, log = _rerun(folder, caplog)
    why = (
        "lacks the evaluation at step 60" if fault.startswith("curve") else "its optimizer has taken 100 steps, not 80"
    )
    assert f"WARNING {folder}: starting afresh from step 0; no usable checkpoint (" in log and why in log, log
    assert record["status"] == "done" and "resumed" not in record
    _same_as_uninterrupted(whole, folder)


def test_a_torn_checkpoint_falls_back_to_the_older_one_then_to_a_fresh_start(whole, tmp_path, caplog):
    folder = _interrupted(whole, tmp_path, curve_to=100)
    data = next((folder / checkpoints.FOLDER).glob("ckpt-100.data-*"))
    data.write_bytes(data.read_bytes()[:100])  # not fsynced before a power cut, say
    record, log = _rerun(folder, caplog)
    assert (
        f"WARNING {folder}: resuming from the checkpoint at step 80; passed over the one at step 100: {data.name} is not what was saved (torn)"
        in log
    )
    assert record["resumed"][0]["step"] == 80
    _same_as_uninterrupted(whole, folder)

    folder = _interrupted(whole, tmp_path / "both", curve_to=100)
    for data in (folder / checkpoints.FOLDER).glob("ckpt-*.data-*"):
        data.write_bytes(b"")
    (folder / checkpoints.FOLDER / "ckpt-20_temp").mkdir()  # what TensorFlow leaves of a save it was killed in
    (folder / checkpoints.FOLDER / "ckpt-20_temp" / "part-00000-of-00001.data-00000-of-00001.tempstate1").write_bytes(
        b"x"
    )
    record, log = _rerun(folder, caplog, "checkpoint.keep=true")
    assert sorted(p.name for p in (folder / checkpoints.FOLDER).iterdir()) == [
        "ckpt-100.data-00000-of-00001",
        "ckpt-100.index",
        "ckpt-80.data-00000-of-00001",
        "ckpt-80.index",
        "state.json",
    ]
    assert (
        f"WARNING {folder}: starting afresh from step 0; no usable checkpoint (the one at step 100: " in log
        and "resumed" not in record
    )
    _same_as_uninterrupted(whole, folder)


def test_a_run_without_checkpoints_removes_the_stale_one_it_cuts_the_curve_under(whole, tmp_path):
    from bn_study.run.execute import execute
    from tests.conftest import compose_run

    folder = _interrupted(whole, tmp_path, curve_to=100)
    execute(compose_run(*SHORT, "checkpoint.enabled=false"), folder)
    assert not (folder / checkpoints.FOLDER).exists()


def test_a_checkpoint_an_older_bn_study_saved_is_resumed(whole, tmp_path, caplog):
    """As bn-study saved them before: through a CheckpointManager (which adds its save counter), and a state.json naming
    that one checkpoint at its top level, without checksums."""
    import tensorflow as tf

    folder = _interrupted(whole, tmp_path, curve_to=80)
    state = json.loads((folder / checkpoints.FOLDER / checkpoints.STATE).read_text())
    at_80 = state["checkpoints"][0]
    saved = tf.train.load_checkpoint(str(folder / checkpoints.FOLDER / at_80["prefix"]))
    values = {
        key.split("/")[0]: tf.Variable(saved.get_tensor(key))
        for key in saved.get_variable_to_shape_map()
        if key.startswith("v") and key.endswith("VARIABLE_VALUE")
    }
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(**values), str(tmp_path / "old"), max_to_keep=2)
    old = Path(manager.save(checkpoint_number=80))
    for path in old.parent.glob(f"{old.name}.*"):
        shutil.copy(path, folder / checkpoints.FOLDER)
    files.write_json_atomic(
        folder / checkpoints.FOLDER / checkpoints.STATE,
        {"run_id": state["run_id"], "step": 80, "measured": at_80["measured"], "prefix": old.name},
    )
    record, _ = _rerun(folder, caplog)
    assert record["resumed"][0]["step"] == 80
    _same_as_uninterrupted(whole, folder)


def test_a_checkpoint_is_saved_once_its_interval_has_passed(run_tiny):
    """The default saves at an evaluation once every_seconds have passed since the last save; 0 saves at each."""
    _, each = run_tiny("checkpoint.keep=true", "checkpoint.every_seconds=0", name="each")
    state = json.loads((each / checkpoints.FOLDER / checkpoints.STATE).read_text())
    assert [c["step"] for c in state["checkpoints"]] == [40, 60]  # the last two of the evaluations at 0, 20, 40, 60
    _, never = run_tiny("checkpoint.keep=true", "checkpoint.every_seconds=1e9", name="never")
    assert not (never / checkpoints.FOLDER / checkpoints.STATE).exists()
