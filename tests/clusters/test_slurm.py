"""bn-study on a real one-node SLURM cluster through submitit (`make test-slurm`): a sweep with its progress where the
user is, collected and verified; a job cancelled, reported in one line and resumed from its checkpoint; Ctrl-C on the
submitter cancels its jobs; a rerun while old jobs still hold their folders is one line; a study's quick version."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bn_study.run import checkpoints
from tests.clusters.conftest import bn_study
from tests.conftest import REPO

pytestmark = pytest.mark.cluster

ON_SLURM = ["hydra/launcher=submitit_slurm", "hydra.launcher.partition=debug", "hydra.launcher.timeout_min=10"]
TINY = ["data=mnist5k", "trainer.steps=60", "trainer.eval_every=20", "probe.examples=200"]
# Long enough to be cancelled mid-run, a checkpoint at every evaluation.
LONG = [
    "data=mnist5k",
    "trainer.steps=400000",
    "trainer.eval_every=500",
    "checkpoint.every_seconds=0",
    "probe.examples=200",
]


def _queue(env: dict) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %T"], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split("\n")[:-1]


def _wait(what: str, condition, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.5)


def _submitter(args: list[str], cwd: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "bn-study"), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _checkpointed(folder: Path) -> int:
    found = checkpoints.candidates(folder)
    return found[0].step if found else 0


def test_a_sweep_on_slurm_shows_its_progress_and_is_collected_and_verified(slurm, tmp_path):
    proc = bn_study(
        "-m",
        *ON_SLURM,
        "hydra.launcher.cpus_per_task=1",
        *TINY,
        "model.bn=none,before",
        "study=onslurm",
        cwd=tmp_path,
        env=slurm,
    )
    assert proc.returncode == 0, proc.stderr
    # the jobs' lines, printed by the submitter as their run folders record them
    assert "[1/2] start  model.bn=none" in proc.stdout and "[2/2] start  model.bn=before" in proc.stdout
    assert proc.stdout.count(" done   model.bn=") == 2 and "sweep complete" in proc.stdout
    (sweep,) = (tmp_path / "results" / "onslurm" / "sweeps").iterdir()
    records = [json.loads((sweep / str(k) / "run.json").read_text()) for k in (0, 1)]
    assert [r["status"] for r in records] == ["done", "done"]
    for record in records:  # the scheduler's allocation, not the node's cores
        assert record["runtime"]["launcher"].endswith("SlurmLauncher") and record["runtime"]["intra_op_threads"] == "1"
    collected = bn_study("onslurm", cwd=tmp_path, env=slurm, program="bn-study-collect")
    assert collected.returncode == 0 and "collected 2 runs (2 done)" in collected.stdout, collected.stderr
    verified = bn_study("results", cwd=tmp_path, env=slurm, program="bn-study-verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_cancelled_job_is_one_line_and_resumes_from_its_checkpoint(slurm, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", *ON_SLURM, *LONG, "model.bn=before", f"hydra.sweep.dir={sweep}"]
    submitter = _submitter(args, tmp_path, slurm)
    _wait("a checkpoint", lambda: _checkpointed(sweep / "0") >= 2000)
    (job,) = [line.split()[0] for line in _queue(slurm)]
    subprocess.run(["scancel", job], env=slurm, check=True)
    out, err = submitter.communicate(timeout=120)
    assert submitter.returncode == 1
    assert err.strip().splitlines() == [
        f"bn-study: error: sweep {sweep}: job {job} ended CANCELLED (its log: {sweep}/.submitit/{job}); "
        f"rerun the same command with hydra.sweep.dir={sweep} to resume it"
    ]
    at = _checkpointed(sweep / "0")

    # the same command again, shorter, would be another sweep: it is the same one, which goes on where it stopped
    submitter = _submitter(args, tmp_path, slurm)
    _wait(
        "the resumed run",
        lambda: "resumed from its checkpoint" in "".join(p.read_text() for p in sweep.glob(".submitit/*/*_log.out")),
    )
    logged = "".join(p.read_text() for p in sweep.glob(".submitit/*/*_log.out"))
    assert f"resumed from its checkpoint at step {at}" in logged
    submitter.send_signal(signal.SIGINT)  # the resume is what this test checks: Ctrl-C ends it (and the next test's)
    submitter.communicate(timeout=60)
    assert submitter.returncode == 130
    _wait("the queue to empty", lambda: not _queue(slurm), 60)


def test_ctrl_c_on_the_submitter_cancels_its_jobs(slurm, tmp_path):
    sweep = tmp_path / "sweep"
    submitter = _submitter(
        ["-m", *ON_SLURM, *LONG, "model.bn=none,before", f"hydra.sweep.dir={sweep}"], tmp_path, slurm
    )
    _wait("both jobs running", lambda: sum(line.endswith("RUNNING") for line in _queue(slurm)) == 2)
    submitter.send_signal(signal.SIGINT)
    out, err = submitter.communicate(timeout=60)
    assert submitter.returncode == 130
    assert "cancelled the sweep's SLURM jobs" in out
    assert err.strip().splitlines()[-1].startswith(f"bn-study: interrupted: sweep {sweep} stopped")
    _wait("the queue to empty", lambda: not _queue(slurm), 60)


def test_a_rerun_while_the_old_jobs_still_run_is_one_line(slurm, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", *ON_SLURM, *LONG, "model.bn=before", f"hydra.sweep.dir={sweep}"]
    first = _submitter(args, tmp_path, slurm)
    _wait("the run", lambda: (sweep / "0" / "run.json").exists())
    first.kill()  # the submitter is gone; its job runs on
    first.communicate()
    (old,) = [line.split()[0] for line in _queue(slurm)]
    again = bn_study(*args, cwd=tmp_path, env=slurm)
    subprocess.run(["scancel", old], env=slurm, check=True)
    assert again.returncode == 1
    (line,) = again.stderr.strip().splitlines()
    assert line.startswith(f"bn-study: error: sweep {sweep}: job ") and f"job folder {sweep}/0" in line
    assert line.endswith(f"rerun the same command with hydra.sweep.dir={sweep} to resume it")
    _wait("the queue to empty", lambda: not _queue(slurm), 60)


def test_a_studys_quick_version_runs_on_slurm(slurm, tmp_path):
    launcher = " ".join(ON_SLURM)
    proc = bn_study(
        "run",
        "fig1",
        "--quick",
        "--results",
        str(tmp_path / "results"),
        "--launcher",
        launcher,
        cwd=REPO,  # a study's claims are registered by the commits of the clone it runs from
        env=slurm,
        program="bn-study-studies",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    study = tmp_path / "results" / "fig1_quick"
    verdicts = json.loads((study / "verdicts.json").read_text())
    assert verdicts and (study / "summary.md").exists()
    runs = [json.loads(p.read_text()) for p in study.rglob("run.json")]
    assert runs and all(r["runtime"]["launcher"].endswith("SlurmLauncher") for r in runs)
    verified = bn_study(str(study), cwd=tmp_path, env=slurm, program="bn-study-verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
