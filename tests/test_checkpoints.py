"""A run killed mid-way resumes from its last checkpoint, and its curve is value for value the uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from bn_study import checkpoints, records
from bn_study.train import BatchOrder
from tests.conftest import REPO, cli

# Dropout and BN with a momentum, so that resuming must restore dropout's seed state and BN's statistics too.
RUN = ["data=mnist5k", "trainer.steps=1200", "trainer.eval_every=100", "probe.examples=200", "model.bn=before", "model.dropout=0.2",
       "optimizer=momentum", "optimizer.momentum=0.9", "optimizer.lr=0.05"]


def _start(folder, args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bn_study", *args, f"hydra.run.dir={folder}"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _checkpointed_step(folder) -> int:
    found = checkpoints.latest(folder)
    return found.step if found else -1


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
    assert max(m.step for m in client.get_metric_history(mlflow_run, "test_accuracy")) == 11  # evaluations 1..12 are epochs 0..11


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
    (folder / "ckpt-300.index").write_bytes(b"")
    records.write_json_atomic(folder / checkpoints.STATE, {"run_id": "abc", "step": 300, "measured": {}, "prefix": "ckpt-300"})
    assert checkpoints.latest(tmp_path, "abc").step == 300
    assert checkpoints.latest(tmp_path, "another") is None
    (folder / checkpoints.STATE).write_text("{torn")
    assert checkpoints.latest(tmp_path, "abc") is None
