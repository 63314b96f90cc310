"""The Python API: a run and a sweep from Python, their records, and bad input raised with the command's own line."""

import json

import pytest

from bn_study import api
from bn_study.config import ConfigError
from tests.conftest import TINY, cli


def test_a_run_from_python_returns_its_record_and_folder(tmp_path):
    record = api.run([*TINY, "model.bn=before", "study=api"], results=tmp_path)
    on_disk = json.loads((tmp_path / "api" / "runs").glob("*/run.json").__next__().read_text())
    assert record["status"] == "done" and record["run_id"] == on_disk["run_id"]
    assert record["folder"].startswith(str(tmp_path / "api" / "runs")) and 0 <= record["final"]["val_accuracy"] <= 1


def test_bad_input_raises_the_line_the_command_prints(tmp_path):
    with pytest.raises(ConfigError) as raised:
        api.run(["model.bn=sideways"], results=tmp_path)
    shown = cli("model.bn=sideways", f"hydra.run.dir={tmp_path / 'cli'}").stderr.strip()
    assert shown == f"bn-study: error: {raised.value}"
    assert not any(tmp_path.iterdir())


def test_a_refused_collect_raises_the_line_the_command_prints(tmp_path):
    with pytest.raises(ConfigError) as raised:
        api.collect("nothing_here", results=tmp_path)
    assert str(raised.value).startswith(f"no sweeps under {tmp_path / 'nothing_here' / 'sweeps'}: run a sweep")
    assert "\n" not in str(raised.value) and not (tmp_path / "nothing_here").exists()


@pytest.mark.slow
def test_a_sweep_from_python_returns_a_record_per_job_and_collects(tmp_path):
    records = api.sweep([*TINY, "model.bn=none,before", "study=api"], results=tmp_path)
    assert [r["config"]["model"]["bn"] for r in records] == ["none", "before"]
    assert all(r["status"] == "done" for r in records)
    (sweep,) = (tmp_path / "api" / "sweeps").iterdir()  # where the command puts it, so collect finds it
    assert {r["folder"] for r in records} == {str(sweep / "0"), str(sweep / "1")}
    runs, curves = api.load(api.collect("api", results=tmp_path))
    assert sorted(runs["run_id"]) == sorted(r["run_id"] for r in records) and set(curves["run_id"]) == set(
        runs["run_id"]
    )
    with pytest.raises(ConfigError, match="model.bn"):
        api.sweep(["model.bn=none,sideways"], results=tmp_path)
