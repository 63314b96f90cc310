"""A study's folder takes exactly its planned runs: collections compared with the plan on small frames."""

from pathlib import Path

import pandas as pd
import pytest

from bn_study.tables import collect


def test_of_planned_and_unplanned_runs_the_planned_are_kept_and_the_rest_reported():
    from bn_study.cli import studies as cli
    from bn_study.studies import plan
    from bn_study.studies.registry import Version

    planned = plan.planned(["input_bn"], Version(quick=True))
    runs = planned.drop(columns=list(plan.LOGGED)).head(2).assign(folder=["a", "b"], run_id=["r1", "r2"])
    runs.loc[1, "trainer.steps"] = 7
    got = cli.only_planned(
        collect.Collected(runs, pd.DataFrame({"run_id": ["r1", "r2"]})), planned, "input_bn_quick", Path("s")
    )
    assert list(got.runs["run_id"]) == ["r1"] and list(got.curves["run_id"]) == ["r1"]
    assert got.skipped == ["b: not one of input_bn_quick's planned runs; left out"]
    assert plan.unplanned(runs, planned)[1] == f"trainer.steps=7 (planned: {planned['trainer.steps'].iloc[1]})"


def test_a_collection_short_of_the_plan_is_not_collected_into_the_studys_folder(tmp_path, monkeypatch):
    """A sweep of two of the study's seeds, say: refused, and nothing written."""
    from bn_study.cli import studies as cli
    from bn_study.studies import plan
    from bn_study.studies.registry import Version, get

    planned = plan.planned(["input_bn"], Version(quick=True))
    runs = (
        planned.drop(columns=list(plan.LOGGED))
        .iloc[1:]
        .assign(folder="f", run_id=[f"r{i}" for i in range(len(planned) - 1)])
    )
    monkeypatch.setattr(
        cli.collect, "collect", lambda folder: collect.Collected(runs, pd.DataFrame({"run_id": runs["run_id"]}))
    )
    with pytest.raises(
        cli.Unplanned,
        match=f"input_bn_quick: the finished runs under {tmp_path} lack 1 of its {len(planned)} planned runs \\(e.g. ",
    ):
        cli.collect_study(get("input_bn"), Version(quick=True), tmp_path, planned, folders=[tmp_path])
    assert not (tmp_path / "input_bn_quick").exists()


def _tables(**columns):
    from bn_study.studies.common import Tables

    runs = pd.DataFrame({"n_test": 10_000, "n_val": 6_000, "probe.bn_modes": False, **columns}, index=[0, 1])
    return Tables(runs, pd.DataFrame(), Path("."), Path("."))


def test_a_summary_says_what_the_curves_measured_and_where_the_runs_were_made():
    assert _tables().eval_note() == ""  # collected before the key existed: every evaluation whole
    assert _tables(**{"trainer.eval_subset": 0, "trainer.subset_splits": "['test', 'val']"}).eval_note() == ""
    cut = _tables(**{"trainer.eval_subset": 2000, "trainer.subset_splits": "['test']", "probe.bn_modes": [True, False]})
    assert cut.eval_note().startswith(
        " Before each run's last evaluation the curves measure a fixed, stratified 2,000 "
    )
    assert "images of the test split (trainer.eval_subset; BN's batch-statistics accuracy too);" in cut.eval_note()
    small = _tables(
        **{"trainer.eval_subset": 2000, "trainer.subset_splits": "['test', 'val']", "n_test": 1000, "n_val": 400}
    )
    assert small.eval_note() == ""  # mnist5k's splits are smaller than the subset: whole
    made = _tables(
        cpu="AMD EPYC", isa_level="x86-64-v4", git_commit="48cd05a0", git_dirty=[True, False], wall_seconds=1800.0
    )
    assert made.made_note() == (
        "Runs: 2 on AMD EPYC x86-64-v4, at commit 48cd05a (1 of them recorded uncommitted changes); "
        "1.00 h of run time (the sum of their wall_seconds)."
    )
