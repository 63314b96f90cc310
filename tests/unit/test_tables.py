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
