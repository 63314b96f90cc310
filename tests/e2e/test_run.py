"""One run end to end: the files it writes, reproducibility, divergence."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from bn_study.run.preflight import validated
from bn_study.run.records import CURVE_COLUMNS
from tests.conftest import TINY, compose_run


def test_run_json_and_curves_schema(run_tiny):
    record, folder = run_tiny("model.bn=before")
    on_disk = json.loads((folder / "run.json").read_text())
    assert on_disk == json.loads(json.dumps(record))
    for key in (
        "run_id",
        "status",
        "config",
        "final",
        "steps",
        "wall_seconds",
        "data",
        "versions",
        "timing",
        "started_at",
        "finished_at",
    ):
        assert key in on_disk, key
    assert on_disk["status"] == "done" and on_disk["steps"] == 60
    assert on_disk["config"]["model"]["bn"] == "before" and on_disk["config"]["trainer"]["steps"] == 60
    assert (
        on_disk["data"]["name"] == "mnist5k"
        and on_disk["data"]["n_train"] == 3600
        and on_disk["data"]["n_val"] == 400
        and on_disk["data"]["n_test"] == 1000
    )
    runtime = on_disk["runtime"]
    assert len(runtime["git_commit"]) == 40 and isinstance(runtime["git_dirty"], bool)
    assert runtime["cpu"] and runtime["isa_level"].startswith(("x86-64", "aarch64", "arm")) and runtime["threads"]
    assert {"keras", "python", "hydra-core", "numpy"} <= set(on_disk["versions"])
    assert {"tensorflow", "tensorflow-cpu"} & set(on_disk["versions"])
    assert 0.0 <= on_disk["final"]["test_accuracy"] <= 1.0

    curves = pd.read_csv(folder / "curves.csv")
    assert list(curves.columns) == CURVE_COLUMNS
    assert (curves["run_id"] == on_disk["run_id"]).all()
    test = curves[curves["split"] == "test"]
    assert sorted(test["step"].unique()) == [0, 20, 40, 60]
    val = curves[curves["split"] == "val"]
    assert (
        sorted(val["step"].unique()) == [0, 20, 40, 60]
        and on_disk["final"]["val_accuracy"] == val[(val["step"] == 60) & (val["metric"] == "accuracy")]["value"].item()
    )
    assert set(test["metric"]) == {"accuracy", "loss"}
    probe = curves[curves["split"] == "probe"]
    assert set(probe["metric"]) == {"p15", "p50", "p85"} and sorted(probe["step"].unique()) == [0, 20, 40, 60]
    p = probe.pivot(index="step", columns="metric", values="value")
    assert (p["p15"] <= p["p50"]).all() and (p["p50"] <= p["p85"]).all()
    assert sorted(curves[curves["split"] == "train"]["step"].unique()) == [20, 40, 60]
    final_acc = test[(test["step"] == 60) & (test["metric"] == "accuracy")]["value"].item()
    assert final_acc == on_disk["final"]["test_accuracy"]


def test_same_seed_same_curve_and_other_seed_differs(run_tiny):
    a, fa = run_tiny("model.bn=before", "model.dropout=0.2", name="a")
    b, fb = run_tiny("model.bn=before", "model.dropout=0.2", name="b")
    c, fc = run_tiny("model.bn=before", "model.dropout=0.2", "seed=1", name="c")
    ca, cb, cc = (pd.read_csv(f / "curves.csv") for f in (fa, fb, fc))
    pd.testing.assert_frame_equal(ca, cb)  # value for value
    assert a["run_id"] == b["run_id"] != c["run_id"]
    assert not np.array_equal(ca["value"].to_numpy(), cc["value"].to_numpy())


def test_trainer_deterministic_repeats_is_recorded_and_is_switched_back_off_in_the_same_process(run_tiny):
    """A sweep's runs share a process: a deterministic run must not leave the next one deterministic."""
    runs = [
        run_tiny("model.bn=before", *extra, name=name)
        for name, extra in (
            ("a", []),
            ("b", ["trainer.deterministic=true"]),
            ("c", ["trainer.deterministic=true"]),
            ("d", []),
        )
    ]
    values = [pd.read_csv(folder / "curves.csv")["value"].to_numpy() for _, folder in runs]
    flags = [(r["runtime"]["op_determinism"], r["runtime"]["tf32"]) for r, _ in runs]
    import tensorflow as tf  # the test's own question: is there a GPU, on which determinism is on by default

    default = (True, False) if tf.config.list_physical_devices("GPU") else (False, True)
    assert flags == [default, (True, False), (True, False), default]
    assert np.array_equal(values[1], values[2]) and np.array_equal(values[0], values[3])
    assert runs[0][0]["run_id"] != runs[1][0]["run_id"]  # a setting that moves the numbers is part of the run


def test_huge_learning_rate_without_bn_diverges(run_tiny):
    from bn_study.run import records

    record, folder = run_tiny("model.bn=none", "model.activation=relu", "optimizer.lr=1e6", "probe.gradients=true")
    assert record["status"] == "diverged"
    assert (
        math.isnan(record["final"]["test_accuracy"])
        and math.isnan(record["final"]["test_loss"])
        and math.isnan(record["final"]["val_accuracy"])
    )
    on_disk = json.loads((folder / "run.json").read_text())
    assert on_disk["status"] == "diverged" and on_disk["final"]["test_accuracy"] is None  # NaN -> null in JSON
    stopped = on_disk["diverged_at_step"]
    assert 1 <= stopped < 60 and on_disk["steps"] == stopped
    curves = pd.read_csv(folder / "curves.csv")
    assert curves["step"].max() == stopped  # never padded to the planned length
    last = curves[curves["split"].isin(["test", "val"]) & (curves["step"] == stopped)]
    assert last["value"].isna().all() and len(last) == 4
    # Probes measured at step 0 have no value where it blew up: the run is still whole, and collected.
    assert not curves[(curves["split"] == "grad") & (curves["step"] == stopped)].size
    records.verified_curves(folder, on_disk)


@pytest.mark.parametrize("case", ["weights blown up by the last step", "NaN only at inference"])
def test_a_network_whose_evaluation_is_not_finite_is_diverged_never_done(run_tiny, case):
    """The training loss is judged before each update, so the last update, or BN's moving statistics (used only at
    inference), can leave a network that computes NaN behind a finite training loss."""
    from bn_study.run import records
    from bn_study.tables import collect

    overrides = (
        ["model.activation=relu", "optimizer.lr=1e30", "trainer.steps=1", "trainer.eval_every=1"]
        if case.startswith("weights")
        else ["model._target_=tests.builders.negative_moving_variance", "model.bn=before", "model.activation=relu"]
    )
    record, folder = run_tiny(*overrides)
    assert record["status"] == "diverged" and all(math.isnan(v) for v in record["final"].values()), record["final"]
    stopped = record["diverged_at_step"]
    assert stopped == (1 if case.startswith("weights") else 0) and record["steps"] == stopped
    curves = records.verified_curves(folder, records.read_run(folder))
    assert curves[(curves["step"] == stopped) & curves["split"].isin(["test", "val"])]["value"].isna().all()
    row = collect.collect(folder.parent).runs.iloc[0]
    assert row["status"] == "diverged" and pd.isna(row["test_accuracy"])


def test_staircase_lr_decay_and_l2_are_applied():
    from bn_study.run.train import make_optimizer
    from tests.conftest import compose_run

    opt = make_optimizer(
        compose_run(
            "optimizer=momentum", "optimizer.lr=0.1", "optimizer.decay_every=10", "optimizer.decay_rate=0.5"
        ).optimizer
    )
    schedule = opt._learning_rate
    assert [round(float(schedule(s)), 6) for s in (0, 9, 10, 25)] == [0.1, 0.1, 0.05, 0.025]


def test_a_run_restarted_on_compiled_functions_equals_a_freshly_compiled_one(run_tiny):
    from bn_study.run import execute as run

    run._COMPILED.clear()
    paired = ("model.bn=before", "model.dropout=0.2", "optimizer=momentum")
    _, fresh = run_tiny(*paired, "seed=1", "optimizer.lr=0.05", name="fresh")  # compiles
    _, other = run_tiny(
        *paired, "seed=0", "optimizer.lr=0.5", "model.init_std=0.1", name="other"
    )  # same graph: restarts it
    run_tiny("model.bn=none", name="another_graph")
    _, again = run_tiny(*paired, "seed=1", "optimizer.lr=0.05", name="again")  # restarts it after both have trained
    assert len(run._COMPILED) == 2
    pd.testing.assert_frame_equal(pd.read_csv(fresh / "curves.csv"), pd.read_csv(again / "curves.csv"))
    assert not pd.read_csv(fresh / "curves.csv")["value"].equals(pd.read_csv(other / "curves.csv")["value"])


def test_arms_that_differ_only_in_precise_bn_share_compiled_functions_with_the_curves_of_fresh_ones(run_tiny):
    from bn_study.run import execute as run

    arm = ("model.bn=before", "optimizer=momentum", "optimizer.lr=0.05")
    run._COMPILED.clear()
    fresh_precise, fp = run_tiny(*arm, "trainer.precise_bn=10", name="fresh_precise")
    run._COMPILED.clear()
    fresh, ff = run_tiny(*arm, name="fresh")
    precise, pp = run_tiny(*arm, "trainer.precise_bn=10", name="precise")  # restarts the moving-average arm's graph
    again, fa = run_tiny(*arm, name="again")
    assert [r["timing"]["compiled"] for r in (fresh_precise, fresh, precise, again)] == [True, True, False, False]
    curves = {name: pd.read_csv(f / "curves.csv") for name, f in [("fp", fp), ("ff", ff), ("pp", pp), ("fa", fa)]}
    pd.testing.assert_frame_equal(curves["fp"], curves["pp"])
    pd.testing.assert_frame_equal(curves["ff"], curves["fa"])
    assert not curves["fp"]["value"].equals(curves["ff"]["value"])  # precise BN is on in one arm only


def test_an_evaluation_subset_measures_the_curve_before_the_last_evaluation_which_is_whole(run_tiny):
    # Adam learns enough by step 20 that a subset's accuracy differs from the whole split's.
    probes = ("model.bn=before", "probe.bn_modes=true", "optimizer=adam", "optimizer.lr=0.003")
    whole, fw = run_tiny(*probes, name="whole")
    # the same graph in the same process: it must not restart the whole run's compiled functions (graph_key)
    subset, fs = run_tiny(*probes, "trainer.eval_subset=100", name="subset")
    cw, cs = (pd.read_csv(f / "curves.csv").set_index(["step", "split", "metric"])["value"] for f in (fw, fs))
    assert whole["final"] == subset["final"] and whole["run_id"] != subset["run_id"]
    assert cw.xs(60).equals(cs.xs(60))  # the last evaluation (and its bn_modes probe): whole, the same numbers
    assert cw.xs("train", level="split").equals(cs.xs("train", level="split"))  # training is untouched
    early = cs.xs(20)
    for split, metric, images in [
        ("test", "accuracy", 100),
        ("val", "accuracy", 100),
        ("bn_modes", "acc_batch_stats", 60),
    ]:
        count = early[split, metric] * images  # a count of the subset's images (bn_modes: its whole batches of 60)
        assert abs(count - round(count)) < 1e-4  # bn_modes divides in float32
    for split, metric in [("test", "loss"), ("test", "accuracy"), ("val", "loss"), ("bn_modes", "acc_batch_stats")]:
        assert early[split, metric] != cw.xs(20)[split, metric]
    _, ft = run_tiny(*probes, "trainer.eval_subset=100", "trainer.subset_splits=[test]", name="test_only")
    ct = pd.read_csv(ft / "curves.csv").set_index(["step", "split", "metric"])["value"].xs(20)
    assert ct.xs("val", drop_level=False).equals(cw.xs(20).xs("val", drop_level=False))  # val stays whole
    assert (
        ct["test", "loss"] == early["test", "loss"]
        and ct["bn_modes", "acc_batch_stats"] == early["bn_modes", "acc_batch_stats"]
    )


def test_validation_split_is_fixed_stratified_and_never_trained_on():
    from bn_study.data import datasets as data
    from tests.conftest import compose_run

    d = data.load(compose_run("data=mnist5k").data)
    assert (len(d.x_train), len(d.x_val), len(d.x_test)) == (3600, 400, 1000)
    assert (
        np.bincount(d.y_val).tolist() == [40] * 10
    )  # stratified: 500 images a digit, a tenth of the 4,000 training ones
    rows = {r.tobytes() for r in d.x_train.reshape(len(d.x_train), -1)}
    assert not any(r.tobytes() in rows for r in d.x_val.reshape(len(d.x_val), -1))  # disjoint from training
    again = data.with_validation(data._load("mnist5k", False), 0.1)
    np.testing.assert_array_equal(again.y_val, d.y_val)  # the same split every time, whatever the run seed
    assert len(data.load(compose_run("data=mnist5k", "data.val_fraction=0").data).x_val) == 0


@pytest.mark.parametrize("kind", ["feature", "scalar"])
def test_standardisation_per_feature_or_scalar_with_bn_epsilon(kind):
    from bn_study.data import datasets as data
    from tests.conftest import compose_run

    raw = data.load(compose_run("data=mnist5k").data)
    std = data.load(compose_run("data=mnist5k", f"data.standardize={kind}").data)
    axis = 0 if kind == "feature" else None
    mean, var = raw.x_train.mean(axis=axis), raw.x_train.var(axis=axis)
    np.testing.assert_allclose(std.x_test, (raw.x_test - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-4)
    # epsilon keeps a near-constant pixel from blowing up: no standardised value beyond sqrt(1 / 1e-3) ~ 32
    assert np.abs(std.x_train).max() < 32


def test_partial_batches_follow_epochs_as_keras_fit_does():
    from bn_study.run.train import BatchOrder

    blocks = BatchOrder(500, 32, seed=0, partial=True).take(32)  # two epochs: 15 batches of 32, one of 20, twice
    assert [b.shape for b in blocks] == [(15, 32), (1, 20), (15, 32), (1, 20)]
    first_epoch = np.concatenate([blocks[0].ravel(), blocks[1].ravel()])
    assert sorted(first_epoch) == list(range(500))  # each epoch sees every example once
    full = BatchOrder(500, 32, seed=0).take(32)
    assert [b.shape for b in full] == [(32, 32)]


def test_circles_run_with_the_tutorial_network(run_tiny):
    record, folder = run_tiny(
        "data=circles",
        "model.hidden=[50]",
        "model.activation=relu",
        "model.kernel_init=he_uniform",
        "model.output=sigmoid",
        "model.output_init=glorot_uniform",
        "trainer.batch_size=32",
        "trainer.partial_batch=true",
        "trainer.steps=48",
        "trainer.eval_every=16",
        "data.val_fraction=0",
        "probe.examples=500",
        "optimizer=momentum",
    )
    curves = pd.read_csv(folder / "curves.csv")
    assert sorted(curves[curves["split"] == "test"]["step"].unique()) == [0, 16, 32, 48] and "val" not in set(
        curves["split"]
    )
    assert record["final"]["test_accuracy"] > 0.5  # one sigmoid unit with binary cross-entropy learns the circles


def test_a_run_records_where_its_time_went(run_tiny):
    record, _ = run_tiny("checkpoint.enabled=true")
    timing = record["timing"]
    seconds = timing["seconds"]
    assert set(seconds) == {"prepare", "compile", "steps", "evaluation", "probes", "writing", "checkpoints"}
    assert all(v >= 0 for v in seconds.values()) and seconds["steps"] > 0 and seconds["checkpoints"] > 0
    loop = sum(v for k, v in seconds.items() if k not in ("prepare", "compile"))
    # the loop's jobs (step 0's evaluation in setup, the rest in training) fit in the setup and training time
    assert loop <= timing["setup_seconds"] + timing["train_seconds"] + 5e-3  # each figure is rounded to 1 ms
    assert seconds["prepare"] + seconds["compile"] <= timing["setup_seconds"] + 5e-3
    assert timing["setup_seconds"] + timing["train_seconds"] <= record["wall_seconds"] + 5e-3


def test_a_users_builder_left_with_a_registered_name_is_named_after_its_function():
    assert (
        validated(compose_run(*TINY, "model._target_=tests.builders.wide_then_narrow")).model.name == "wide_then_narrow"
    )
    assert (
        validated(compose_run(*TINY, "model._target_=tests.builders.wide_then_narrow", "model.name=mine")).model.name
        == "mine"
    )
