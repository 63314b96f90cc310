"""Collect keeps finished runs and reports, never mixes in, torn or interrupted folders."""

import json
import shutil

from bn_study import files
from bn_study.run import records
from bn_study.tables import collect


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
    assert {"run_id", "status", "model.bn", "optimizer.lr", "seed", "test_accuracy", "steps", "data_used"} <= set(
        got.runs.columns
    )
    assert str(good) in got.runs["folder"].iloc[0]


def test_an_all_digit_run_id_is_kept_as_a_string(made, tmp_path):
    from bn_study.config import config_id, identity_of

    folder = tmp_path / "sweep" / "0"
    shutil.copytree(made / "0", folder)
    record = json.loads((folder / "run.json").read_text())
    # A tag whose config hashes to an all-digit run_id: the same run as far as the tables go, with a run_id pandas would read as a number.
    tag = next(
        f"t{i}" for i in range(100_000) if config_id(identity_of({**record["config"], "tag": f"t{i}"})).isdigit()
    )
    config = {**record["config"], "tag": tag}
    digits = config_id(identity_of(config))
    curve = (folder / "curves.csv").read_text().replace(record["run_id"], digits)
    (folder / "curves.csv").write_text(curve)
    curves = {**record["curves"], **files.digest(folder / "curves.csv")}
    (folder / "run.json").write_text(json.dumps({**record, "config": config, "run_id": digits, "curves": curves}))
    got = collect.collect(tmp_path / "sweep")
    assert got.skipped == [] and list(got.runs["run_id"]) == [digits] and set(got.curves["run_id"]) == {digits}
    collect.write(got, tmp_path / "out")
    runs, curves = collect.load(tmp_path / "out")
    assert runs["run_id"].tolist() == [digits] and curves["run_id"].unique().tolist() == [digits]


def test_a_run_of_another_study_put_in_a_sweep_folder_is_reported_not_collected(made, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(made, sweep)
    ids = {seed: records.read_run(sweep / seed)["run_id"] for seed in ("0", "1")}
    (sweep / "sweep.json").write_text(
        json.dumps({"created_at": "2026-12-04T00:00:00", "jobs": [["seed=0"]], "run_ids": [ids["0"]]})
    )
    got = collect.collect(sweep)
    assert list(got.runs["run_id"]) == [ids["0"]]
    assert got.skipped == [
        f"{sweep / '1'}: not one of the jobs of the sweep {sweep} (a run of study 'adhoc' put there?); left out"
    ]
    # A sweep.json written before it recorded run_ids: a job is known by its overrides.
    (sweep / "sweep.json").write_text(json.dumps({"created_at": "2026-12-04T00:00:00", "jobs": [["seed=1"]]}))
    assert list(collect.collect(sweep).runs["run_id"]) == [ids["1"]]


def test_a_registered_studys_folder_takes_only_its_planned_runs(made, tmp_path, capsys):
    """Runs of another configuration (a variant with fewer steps, another study's runs) never replace a study's results:
    collect refuses them into its folder, and render refuses tables that hold them."""
    from bn_study.cli import studies as cli

    assert cli.collect_command(["fig1_second_lr", "--runs", str(made), "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"bn-study-collect: error: fig1_second_lr: none of the 2 finished runs under {made} is one of "
        "its planned runs (e.g. data.name=mnist5k (planned: mnist), "
    )
    assert err[0].endswith(f"a variant is collected into a folder of its own: bn-study-collect <name> --runs {made}")
    assert not (tmp_path / "fig1_second_lr").exists()
    assert (
        cli.collect_command(["fig1_variant", "--runs", str(made), "--results", str(tmp_path)]) == 0
    )  # where a variant goes

    collect.write(collect.collect(made), tmp_path / "fig1")  # the variant's tables put in fig1's folder by other means
    assert cli.main(["render", "fig1", "--results", str(tmp_path)]) == 2
    assert (
        "2 of its 2 collected runs are not fig1's planned runs (e.g. data.name=mnist5k (planned: mnist)"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "fig1" / "verdicts.json").exists()
