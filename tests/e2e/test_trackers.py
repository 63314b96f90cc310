"""Keras callbacks, TensorBoard and MLflow on a real run, read back from what they wrote."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import tensorflow as tf

from bn_study.run import records
from tests.conftest import REPO, TINY, cli, refused


def _curve(folder, split, metric) -> pd.Series:
    curve = pd.read_csv(folder / records.CURVES_CSV)
    rows = curve[(curve["split"] == split) & (curve["metric"] == metric)]
    return rows.set_index("step")["value"]


def test_a_users_callback_sees_every_evaluation_as_an_epoch(tmp_path):
    out, seen = tmp_path / "run", tmp_path / "seen.jsonl"
    proc = cli(
        *TINY,
        "optimizer.lr=0.3",
        "+callbacks.recorder._target_=tests.callbacks.Recorder",
        f"+callbacks.recorder.path={seen}",
        f"hydra.run.dir={out}",
    )
    assert proc.returncode == 0, proc.stderr
    calls = [json.loads(line) for line in seen.read_text().splitlines()]
    assert [c["hook"] for c in calls] == ["train_begin", "epoch_end", "epoch_end", "epoch_end", "train_end"]
    assert calls[0]["lr"] == pytest.approx(0.3)  # model.optimizer is the run's own
    epochs = calls[1:-1]
    assert [c["epoch"] for c in epochs] == [0, 1, 2] and [c["logs"]["step"] for c in epochs] == [20, 40, 60]
    test_acc, val_loss, train_loss = (
        _curve(out, "test", "accuracy"),
        _curve(out, "val", "loss"),
        _curve(out, "train", "loss"),
    )
    for c in epochs:
        step, logs = c["logs"]["step"], c["logs"]
        assert (logs["test_accuracy"], logs["val_loss"], logs["loss"]) == (
            test_acc[step],
            val_loss[step],
            train_loss[step],
        )


def test_early_stopping_ends_the_run_and_says_where(tmp_path):
    out = tmp_path / "run"
    # lr 1e-6 learns nothing: validation accuracy cannot improve for 2 evaluations in a row
    proc = cli(
        *TINY,
        "trainer.steps=200",
        "optimizer.lr=1e-6",
        "callbacks=early_stopping",
        "callbacks.early_stopping.patience=2",
        "+callbacks.early_stopping.min_delta=0.01",
        f"hydra.run.dir={out}",
    )
    assert proc.returncode == 0, proc.stderr
    record = records.read_run(out)
    assert record["status"] == "done" and record["stopped_at_step"] == 60 and record["steps"] == 60
    assert records.verified_curves(out, record)["step"].max() == 60


def _events(folder) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} from the TensorBoard event files under `folder`."""
    found: dict[str, dict[int, float]] = {}
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        for raw in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(raw.numpy())
            for value in event.summary.value:
                found.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
    return found


def test_tensorboard_and_mlflow_hold_the_curves_on_the_training_step(tmp_path):
    """Every curve the CSV holds, step 0 and the probe included, at the same steps: not Keras's epoch index."""
    results = tmp_path / "results"
    out = results / "logged"
    proc = cli(*TINY, "logger=[tensorboard,mlflow]", "study=logged", f"paths.results={results}", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr
    curves = pd.read_csv(out / records.CURVES_CSV)
    expected = {
        (split, metric): rows.set_index("step")["value"].to_dict()
        for (split, metric), rows in curves.groupby(["split", "metric"])
    }
    assert {step for (split, _), c in expected.items() if split == "test" for step in c} == {0, 20, 40, 60}
    assert ("probe", "p50") in expected and ("train", "loss") in expected

    events = _events(out / "tensorboard")
    assert {tag: pytest.approx(c) for tag, c in events.items()} == {f"{s}/{m}": c for (s, m), c in expected.items()}

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("logged").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["bn_study.status"] == "done"
    assert run.data.params["optimizer.lr"] == "0.01" and run.data.params["model.bn"] == "none"
    for (split, metric), c in expected.items():
        history = client.get_metric_history(run.info.run_id, f"{split}_{metric}")
        assert {m.step: m.value for m in history} == pytest.approx(c), (split, metric)
    # artifacts beside the store, nothing in the folder it ran from
    experiment = client.get_experiment_by_name("logged")
    assert experiment.artifact_location == (results / "mlflow-artifacts").resolve().as_uri()
    assert not (REPO / "mlruns").exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["logger=wandb"], "logger=wandb: unknown option; choose one of: csv, mlflow, tensorboard"),
        (
            ["logger=mlflow", "logger.mlflow_uri=http://127.0.0.1:9"],
            "logger.mlflow_uri=http://127.0.0.1:9: cannot reach the tracking server",
        ),
        (["+callbacks.x._target_=keras.callbacks.NoSuchThing"], "callbacks.x: cannot make keras.callbacks.NoSuchThing"),
        (
            ["callbacks=early_stopping", "+callbacks.early_stopping.patiense=3"],
            "callbacks.early_stopping: cannot make keras.callbacks.EarlyStopping",
        ),
    ],
)
def test_bad_trackers_are_refused_before_any_run(tmp_path, overrides, message):
    out = tmp_path / "run"
    assert message in refused(cli(*TINY, f"hydra.run.dir={out}", *overrides))
    assert not out.exists()


@pytest.mark.slow
def test_a_diverged_run_ends_failed_in_mlflow_with_its_status_tagged(tmp_path):
    results = tmp_path / "results"
    proc = cli(
        *TINY,
        "model.activation=relu",
        "optimizer.lr=1e6",
        "logger=mlflow",
        "study=logged",
        f"paths.results={results}",
        f"hydra.run.dir={results / 'run'}",
    )
    assert proc.returncode == 0, proc.stderr
    assert records.read_run(results / "run")["status"] == "diverged"
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("logged").experiment_id])
    assert run.info.status == "FAILED" and run.data.tags["bn_study.status"] == "diverged"
    history = sorted(client.get_metric_history(run.info.run_id, "test_accuracy"), key=lambda m: m.step)
    assert history[0].step == 0 and math.isnan(history[-1].value)  # NaN where it diverged, as the curves say
