"""Sweeps: grids, resume after SIGKILL, concurrent sweeps, refusal before any run, launchers."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bn_study.cli import studies as studies_cli
from bn_study.sweep import manifest
from bn_study.tables import collect
from tests.conftest import REPO, cli, refused

FAST = ["data=mnist5k", "trainer.steps=20", "trainer.eval_every=10", "probe.examples=100"]


def _statuses(sweep: Path) -> dict[str, str]:
    return {p.parent.name: json.loads(p.read_text())["status"] for p in sorted(sweep.glob("*/run.json"))}


def test_grid_2x2x2_runs_every_combination_and_collects(tmp_path):
    sweep = tmp_path / "sweep"
    proc = cli(
        "-m",
        *FAST,
        "model.bn=none,before",
        "model.activation=sigmoid,relu",
        "optimizer.lr=0.05,0.5",
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 0, proc.stderr
    assert _statuses(sweep) == {str(i): "done" for i in range(8)}
    manifest = json.loads((sweep / "sweep.json").read_text())
    assert manifest["n_jobs"] == 8 and len({tuple(j) for j in manifest["jobs"]}) == 8
    # One start and one end line per run, with k/N and only the swept values.
    for k in range(1, 9):
        assert sum(line.startswith(f"[{k}/8] start  model.bn=") for line in proc.stdout.splitlines()) == 1, proc.stdout
        assert (
            sum(
                line.startswith(f"[{k}/8] done   model.bn=") and "test acc" in line for line in proc.stdout.splitlines()
            )
            == 1
        )
    assert "[1/8] start  model.bn=none model.activation=sigmoid optimizer.lr=0.05\n" in proc.stdout
    assert "ETA" in proc.stdout and "sweep complete" in proc.stdout

    assert manifest["run_ids"] == [json.loads((sweep / str(i) / "run.json").read_text())["run_id"] for i in range(8)]
    assert studies_cli.collect_command(["grid", "--runs", str(sweep), "--results", str(tmp_path / "results")]) == 0
    out = tmp_path / "results" / "grid"
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 8 and runs["run_id"].is_unique
    for column in (
        "run_id",
        "status",
        "model.bn",
        "model.activation",
        "optimizer.lr",
        "seed",
        "test_accuracy",
        "steps",
        "steps_to_0.5",
        "steps_to_0.9",
    ):
        assert column in runs.columns, column
    curves = pd.read_parquet(out / "curves.parquet")
    assert list(curves.columns) == ["run_id", "step", "split", "metric", "value"]
    assert set(curves["run_id"]) == set(runs["run_id"])
    assert not curves.duplicated(["run_id", "step", "split", "metric"]).any()
    by_config = pd.read_csv(out / "by_config.csv")
    assert len(by_config) == 8 and (by_config["n_runs"] == 1).all()
    assert {
        "test_accuracy_median",
        "test_accuracy_low",
        "test_accuracy_high",
        "test_accuracy_coverage",
        "n_diverged",
    } <= set(by_config.columns)
    # one seed per configuration: its "interval" is the single value, with no coverage, never a CI
    assert (by_config["test_accuracy_low"] == by_config["test_accuracy_median"]).all() and (
        by_config["test_accuracy_coverage"] == 0
    ).all()

    # Another grid pointed at this folder is refused, and nothing in it is overwritten.
    before = {p: p.read_text() for p in sweep.glob("*/run.json")}
    other = cli("-m", *FAST, "model.bn=after,before", f"hydra.sweep.dir={sweep}")
    assert other.returncode == 2 and "holds a different sweep" in other.stderr
    assert {p: p.read_text() for p in sweep.glob("*/run.json")} == before


@pytest.mark.slow  # ~30 s: a sweep killed mid-run and resumed
def test_sweep_killed_mid_run_resumes_to_one_record_per_config(tmp_path):
    sweep = tmp_path / "sweep"
    args = [
        sys.executable,
        "-m",
        "bn_study",
        "-m",
        "data=mnist5k",
        "trainer.steps=4000",
        "trainer.eval_every=100",
        "probe.examples=100",
        "checkpoint.every_seconds=0",  # a checkpoint at every evaluation, so one is there when the kill comes
        "seed=0,1,2",
        f"hydra.sweep.dir={sweep}",
    ]
    proc = subprocess.Popen(
        args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.time() + 180
        while time.time() < deadline:  # wait until run 1 is mid-way: running, with a few evaluations written
            curve = sweep / "1" / "curves.csv"
            if (
                _statuses(sweep).get("1") == "running"
                and curve.exists()
                and curve.read_text().count(",test,accuracy,") >= 3
            ):
                break
            time.sleep(0.05)
        else:
            pytest.fail("run 1 never got under way")
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert _statuses(sweep) == {"0": "done", "1": "running"}
    first_start = json.loads((sweep / "0" / "run.json").read_text())["started_at"]

    again = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "[1/3] skip   seed=0: already done" in again.stdout
    assert _statuses(sweep) == {"0": "done", "1": "done", "2": "done"}
    assert json.loads((sweep / "0" / "run.json").read_text())["started_at"] == first_start  # not redone
    got = collect.collect(sweep)
    assert len(got.runs) == 3 and got.skipped == [] and sorted(got.runs["seed"]) == [0, 1, 2]
    redone = pd.read_csv(sweep / "1" / "curves.csv")
    assert not redone.duplicated(["step", "split", "metric"]).any()
    assert sorted(redone[redone["split"] == "test"]["step"].unique()) == list(range(0, 4001, 100))
    # The sweep's resume went on from run 1's last checkpoint (step 100 at least was saved before the kill), not from step 0.
    assert json.loads((sweep / "1" / "run.json").read_text())["resumed"][0]["step"] >= 100


def test_two_sweeps_started_together_never_collide(tmp_path):
    args = [sys.executable, "-m", "bn_study", "-m", *FAST, "study=twin", "model.bn=none,before"]
    procs = [
        subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    sweeps = sorted((tmp_path / "results" / "twin" / "sweeps").iterdir())
    assert len(sweeps) == 2
    for sweep in sweeps:
        assert _statuses(sweep) == {"0": "done", "1": "done"}
        assert json.loads((sweep / "sweep.json").read_text())["sweep_dir"] == str(sweep.relative_to(tmp_path))


@pytest.mark.parametrize(
    "grid, message",
    [
        (["model.bn=none,sideways"], "model.bn: Invalid value 'sideways', expected one of [none, before, after]"),
        (["optimizer.lr=0.1,-1"], "optimizer.lr=-1.0: must be > 0"),
        (["model.dropuot=0,0.5"], "model.dropuot: unknown key; model has:"),
        (["+trainer.stepz=5,6"], "trainer.stepz: unknown key; trainer has:"),
        (["seed=interval(0,1)"], "BasicSweeper does not support sweep type : INTERVAL_SWEEP"),
        (
            ["data=circles", "model=mlp,cnn"],
            "model.conv=[32, 64, 64] needs image data (H, W, C); data=circles's inputs have shape (2,)",
        ),
        (["model=cnn", "model.conv=[8],[8,8,8,8,8]"], "model.conv=[8, 8, 8, 8, 8]: conv block 4 gets a 1x1 input"),
    ],
)
def test_bad_sweep_value_is_refused_before_any_run(tmp_path, grid, message):
    """Every job's whole config (model shapes included) is checked before the first runs: a bad second job leaves nothing."""
    sweep = tmp_path / "sweep"
    proc = cli(
        "-m", *FAST[1:], *(grid if grid[0].startswith("data=") else ["data=mnist5k", *grid]), f"hydra.sweep.dir={sweep}"
    )
    assert message in refused(proc), proc.stderr
    assert "start" not in proc.stdout and not sweep.exists()


def test_a_refused_sweep_in_its_default_folder_leaves_no_results_folder(tmp_path):
    """results/<study>/sweeps/<time>/ and the folders made for it are all removed."""
    proc = cli("-m", *FAST, "model.activation=relu,bogus", cwd=tmp_path)
    assert "model.activation: Invalid value 'bogus'" in refused(proc)
    assert list(tmp_path.iterdir()) == []


CORES = os.cpu_count() or 1


@pytest.mark.slow  # each starts a pool of processes (joblib) or a local Ray instance: 12 to 20 s
@pytest.mark.parametrize(
    "launcher, threads",
    [
        (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], max(1, CORES // min(2, CORES))),
        (
            [
                "hydra/launcher=ray",
                "+hydra.launcher.ray.init.num_cpus=2",
                "+hydra.launcher.ray.init.include_dashboard=false",
            ],
            1,
        ),
    ],
    ids=["joblib", "ray"],
)
def test_parallel_launchers_run_the_sweep_with_threads_split(tmp_path, launcher, threads):
    """A real local joblib pool and a real local Ray instance (one CPU per Ray task): threads = cores // jobs at once."""
    sweep = tmp_path / "sweep"
    proc = cli("-m", *launcher, *FAST, "model.bn=none,before", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _statuses(sweep) == {"0": "done", "1": "done"}
    for run_json in sweep.glob("*/run.json"):
        runtime = json.loads(run_json.read_text())["runtime"]
        assert launcher[0].split("=")[1] in runtime["launcher"].lower()
        assert runtime["intra_op_threads"] == str(threads)


def test_a_job_takes_the_threads_its_scheduler_allocated(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert manifest.available_cores() == 1 and manifest.threads_per_job() == 1
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    assert manifest.available_cores() == len(os.sched_getaffinity(0))


def test_an_optuna_search_selects_on_validation_and_is_collected_like_a_grid(tmp_path):
    results = tmp_path / "results"
    proc = cli(
        "-m",
        *FAST,
        "hydra/sweeper=optuna",
        "hydra.sweeper.direction=maximize",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.sampler.seed=0",
        "optimizer.lr=tag(log,interval(0.01,3))",
        "study=search",
        f"paths.results={results}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    (sweep,) = (results / "search" / "sweeps").iterdir()
    recorded = json.loads((sweep / manifest.MANIFEST).read_text())
    records = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/run.json"))]
    assert recorded["n_jobs"] == 3 and len(records) == 3 and "[3/3] done" in proc.stdout
    assert sorted(recorded["run_ids"]) == sorted(r["run_id"] for r in records)
    assert sorted(map(tuple, recorded["jobs"])) == sorted(tuple(r["overrides"]) for r in records)
    # Optuna was given each trial's validation accuracy, not its test accuracy
    best = (sweep / "optimization_results.yaml").read_text()
    assert f"best_value: {max(r['final']['val_accuracy'] for r in records)}" in best

    assert studies_cli.collect_command(["search", "--results", str(results)]) == 0
    runs = pd.read_csv(results / "search" / "runs.csv")
    assert sorted(runs["run_id"]) == sorted(r["run_id"] for r in records)


def test_a_search_without_a_validation_split_is_refused_and_a_grid_without_one_runs(tmp_path):
    """A search selects on validation, so a run with no validation split has nothing to give it; a grid's runs
    return nothing and need none (placement's circles have none)."""
    search = cli(
        "-m",
        *FAST,
        "data.val_fraction=0",
        "hydra/sweeper=optuna",
        "hydra.sweeper.direction=maximize",
        "hydra.sweeper.n_trials=2",
        "optimizer.lr=interval(0.01,1)",
        cwd=tmp_path,
    )
    assert refused(search) == (
        "bn-study: error: data.val_fraction=0: a search selects on the validation split (val_accuracy); give it one, "
        "e.g. data.val_fraction=0.1"
    )
    assert not (tmp_path / "results").exists()
    grid = cli("-m", *FAST, "data.val_fraction=0", "model.bn=none,before", f"paths.results={tmp_path}", cwd=tmp_path)
    assert grid.returncode == 0 and "sweep complete" in grid.stdout, grid.stderr
    one = cli(*FAST, "data.val_fraction=0", f"hydra.run.dir={tmp_path / 'one'}", cwd=tmp_path)
    assert one.returncode == 0 and json.loads((tmp_path / "one" / "run.json").read_text())["status"] == "done"


def test_a_search_the_wrong_way_round_is_refused_before_it_trains(tmp_path):
    """Optuna minimises unless told: minimising validation accuracy would select the worst trial."""
    proc = cli(
        "-m", *FAST, "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "optimizer.lr=interval(0.01,1)", cwd=tmp_path
    )
    assert refused(proc) == (
        "bn-study: error: hydra.sweeper.direction=minimize: the objective (val_accuracy) is to maximize; set hydra.sweeper.direction=maximize"
    )
    assert not (tmp_path / "results").exists()
