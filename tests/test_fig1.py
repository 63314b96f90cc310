"""The Figure 1 study end to end at a few hundred steps: sweep, collect, figure, CSV, summary."""

import pandas as pd

from bn_study import collect, studies
from tests.conftest import cli


def test_fig1_study_end_to_end(tmp_path):
    sweep = tmp_path / "results" / "fig1" / "sweeps" / "s1"
    proc = cli("-m", "experiment=fig1", "data=mnist5k", "trainer.steps=300", "trainer.eval_every=100", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr
    assert collect.main(["fig1", "--results", str(tmp_path / "results")]) == 0
    assert studies.main(["fig1", "--results", str(tmp_path / "results")]) == 0

    out = tmp_path / "results" / "fig1"
    for name in ("fig1.png", "fig1.pdf", "fig1.csv", "summary.md", "runs.csv", "curves.parquet", "by_config.csv"):
        assert (out / name).stat().st_size > 0, name
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["model.bn"]) == ["before", "none"]
    assert (runs["trainer.batch_size"] == 60).all() and (runs["model.activation"] == "sigmoid").all()
    assert runs["seed"].nunique() == 1  # paired arms

    table = pd.read_csv(out / "fig1.csv")
    assert list(table.columns) == ["bn", "step", "p15", "p50", "p85", "test_accuracy", "test_loss"]
    assert len(table) == 2 * 4 and sorted(table["step"].unique()) == [0, 100, 200, 300]
    # The figure's numbers are the runs' numbers.
    for _, run in runs.iterrows():
        last = table[(table["bn"] == run["model.bn"]) & (table["step"] == 300)]["test_accuracy"].item()
        assert last == run["test_accuracy"]

    summary = (out / "summary.md").read_text()
    assert "without BN" in summary and "with BN (before activation)" in summary
    assert "Data: mnist5k" in summary and "steps to 90%" in summary
