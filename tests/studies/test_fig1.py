"""The Figure 1 study end to end in its quick version (what `QUICK=1 make fig1` runs): sweep, collect,
verdicts, figure, CSV, summary."""

import pandas as pd

from bn_study.claims import verdicts
from bn_study.cli import studies as cli


def test_fig1_quick_end_to_end(tmp_path):
    assert cli.main(["run", "fig1", "--quick", "--results", str(tmp_path)]) == 0
    out = tmp_path / "fig1_quick"
    for name in (
        "fig1.png",
        "fig1.pdf",
        "fig1.csv",
        "summary.md",
        "runs.csv",
        "curves.parquet",
        "by_config.csv",
        "verdicts.json",
    ):
        assert (out / name).stat().st_size > 0, name
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["model.bn"].unique()) == ["before", "none"] and sorted(runs["seed"].unique()) == [0, 1]
    assert (runs["trainer.steps"] == 300).all() and (runs["model.activation"] == "sigmoid").all()
    assert not (tmp_path / "fig1").exists()  # the quick version never touches the full study's folder

    table = pd.read_csv(out / "fig1.csv")
    assert sorted(table["step"].unique()) == [0, 100, 200, 300] and set(table["bn"]) == {"none", "before"}
    # (a) is the median over seeds of the runs' own test accuracies
    for bn in ("none", "before"):
        last = table[(table["bn"] == bn) & (table["step"] == 300)]["test_accuracy_median"].item()
        assert last == runs[runs["model.bn"] == bn]["test_accuracy"].median()
    # (b, c): one unit of one seed, the same unit in both arms
    assert (
        table["probe_seed"].nunique() == 1
        and table["probe_unit"].nunique() == 1
        and {"p15", "p50", "p85"} <= set(table.columns)
    )

    judged = {r["id"]: r for r in verdicts.read(out)["claims"]}
    assert list(judged) == ["fig1.accuracy", "fig1.faster", "fig1.faster_val", "fig1.stable_mean", "fig1.stable_spread"]
    acc = judged["fig1.accuracy"]
    paired = {
        s: runs[(runs["seed"] == s) & (runs["model.bn"] == "before")]["test_accuracy"].item()
        - runs[(runs["seed"] == s) & (runs["model.bn"] == "none")]["test_accuracy"].item()
        for s in (0, 1)
    }
    assert [acc["per_seed"][str(s)]["d"] for s in (0, 1)] == [paired[0], paired[1]] and acc["outcome"] == "inconclusive"

    summary = (out / "summary.md").read_text()
    assert "without BN" in summary and "with BN (before activation)" in summary and "Data: mnist5k" in summary
    assert "no collected pilot" in summary and "## Claims" in summary and "range of 2 seeds" in summary
