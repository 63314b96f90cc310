"""bn-study on a real Ray head joined with `address=auto` (`make test-ray`): the documented command works as shown,
its runs land in the submitter's results folder (not the head's working folder), and they are collected."""

from __future__ import annotations

import json

import pytest

from tests.clusters.conftest import bn_study

pytestmark = pytest.mark.cluster

ON_RAY = ["hydra/launcher=ray", "+hydra.launcher.ray.init.address=auto"]
TINY = ["data=mnist5k", "trainer.steps=60", "trainer.eval_every=20", "probe.examples=200"]


def test_a_sweep_joins_the_head_and_its_runs_land_where_they_are_collected(ray_head, tmp_path):
    proc = bn_study("-m", *ON_RAY, *TINY, "model.bn=none,before", "study=onray", cwd=tmp_path, env=ray_head)
    assert proc.returncode == 0, proc.stderr
    assert "Connecting to existing Ray cluster" in proc.stderr + proc.stdout and "sweep complete" in proc.stdout
    (sweep,) = (tmp_path / "results" / "onray" / "sweeps").iterdir()
    records = [json.loads((sweep / str(k) / "run.json").read_text()) for k in (0, 1)]
    assert [r["status"] for r in records] == ["done", "done"]
    assert all(r["runtime"]["launcher"].endswith("RayLauncher") for r in records)
    assert json.loads((sweep / "sweep.json").read_text())["run_ids"] == [r["run_id"] for r in records]
    collected = bn_study("onray", cwd=tmp_path, env=ray_head, program="bn-study-collect")
    assert collected.returncode == 0 and "collected 2 runs (2 done)" in collected.stdout, collected.stderr


def test_bad_input_on_ray_is_refused_in_one_line_before_any_job(ray_head, tmp_path):
    proc = bn_study("-m", *ON_RAY, *TINY, "model.activation=relu,bogus", cwd=tmp_path, env=ray_head)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(
        "bn-study: error: model.activation: Invalid value 'bogus'"
    )
    assert not (tmp_path / "results").exists()
