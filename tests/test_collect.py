"""Collect keeps finished runs and reports, never mixes in, torn or interrupted folders."""

import json
import shutil

from bn_study import collect, records


def test_collect_skips_torn_and_interrupted_folders(made, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(made, sweep)
    good, torn, interrupted = sweep / "0", sweep / "1", sweep / "2"
    shutil.copytree(good, interrupted)
    (torn / "run.json").write_text((torn / "run.json").read_text()[:100])  # cut mid-write by hand
    record = json.loads((interrupted / "run.json").read_text())
    (interrupted / "run.json").write_text(json.dumps({**record, "status": "running"}))

    got = collect.collect(sweep)
    assert list(got.runs["seed"]) == [0]
    assert set(got.curves["run_id"]) == set(got.runs["run_id"])
    assert len(got.skipped) == 2
    assert any(str(torn) in s and "unreadable" in s for s in got.skipped)
    assert any(str(interrupted) in s and "interrupted" in s for s in got.skipped)
    assert {"run_id", "status", "model.bn", "optimizer.lr", "seed", "test_accuracy", "steps", "data_used"} <= set(got.runs.columns)
    assert str(good) in got.runs["folder"].iloc[0]


def test_an_all_digit_run_id_is_kept_as_a_string(made, tmp_path):
    folder = tmp_path / "sweep" / "0"
    shutil.copytree(made / "0", folder)
    record = json.loads((folder / "run.json").read_text())
    digits = "370230566605"
    curve = (folder / "curves.csv").read_text().replace(record["run_id"], digits)
    (folder / "curves.csv").write_text(curve)
    curves = {**record["curves"], **records.digest(folder / "curves.csv")}
    (folder / "run.json").write_text(json.dumps({**record, "run_id": digits, "curves": curves}))
    got = collect.collect(tmp_path / "sweep")
    assert got.skipped == [] and list(got.runs["run_id"]) == [digits] and set(got.curves["run_id"]) == {digits}
    collect.write(got, tmp_path / "out")
    runs, curves = collect.load(tmp_path / "out")
    assert runs["run_id"].tolist() == [digits] and curves["run_id"].unique().tolist() == [digits]
