"""The seeded studies: quick versions end to end (sweep -> collect -> figure + summary -> REPORT.md)."""

import math

import pandas as pd
import pytest

from bn_study import collect, report, studies
from bn_study.stats import bootstrap_ci
from tests.conftest import cli, compose_run


def _run_quick(tmp_path, *experiments):
    for experiment in experiments:
        proc = cli("-m", f"experiment={experiment}", "quick=true", cwd=tmp_path, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert collect.main([f"{experiment}_quick", "--results", str(tmp_path / "results")]) == 0


def test_quick_switch_shrinks_a_study_and_keeps_its_results_apart():
    full, quick = compose_run("experiment=keras_blog"), compose_run("experiment=keras_blog", "quick=true")
    assert (full.trainer.steps, quick.trainer.steps) == (375, 20)
    assert full.model.conv == [32, 64, 64] and full.optimizer.name.value == "adam" and full.trainer.batch_size == 32


def test_bootstrap_ci_known_cases():
    assert bootstrap_ci([0.9, 0.9, 0.9]) == (0.9, 0.9)
    lo, hi = bootstrap_ci([1.0, 2.0, 3.0, 4.0, 100.0])
    assert 1.0 <= lo <= 3.0 <= hi <= 100.0
    assert bootstrap_ci([5.0, math.inf, math.inf])[1] == math.inf  # a threshold never reached stays inf
    assert bootstrap_ci([math.nan, 2.0, 2.0]) == (2.0, 2.0)  # a diverged run's NaN is left out
    assert all(math.isnan(v) for v in bootstrap_ci([math.nan]))


def test_input_bn_study_quick_end_to_end_with_report(tmp_path):
    _run_quick(tmp_path, "input_bn")
    results = tmp_path / "results"
    assert studies.main(["input_bn_quick", "--results", str(results)]) == 0
    out = results / "input_bn_quick"
    for name in ("input_bn.png", "input_bn.pdf", "input_bn.csv", "summary.md", "runs.csv", "curves.parquet", "by_config.csv"):
        assert (out / name).stat().st_size > 0, name
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 8 and sorted(runs["seed"].unique()) == [0, 1] and runs["quick"].all()
    plotted = pd.read_csv(out / "input_bn.csv")
    assert {"median", "ci_low", "ci_high", "n"} <= set(plotted.columns) and (plotted["ci_low"] <= plotted["ci_high"]).all()
    summary = (out / "summary.md").read_text()
    for arm in ("neither", "BN on raw inputs", "standardised inputs", "both"):
        assert f"| {arm} |" in summary
    assert "Verdict: BN on the raw inputs reaches" in summary

    # REPORT.md picks up whatever studies exist, and says which do not.
    (results / "input_bn").symlink_to(out)
    text = report.build(results).read_text()
    assert "![input_bn](input_bn/input_bn.png)" in text and "Verdict: BN on the raw inputs" in text
    assert f"Studies reproduced here: 1 of {len(report.SECTIONS)} (input_bn)" in text
    assert "Not reproduced yet: `make keras_blog` has not been run." in text


@pytest.mark.slow
@pytest.mark.parametrize(
    "study, experiments, figure",
    [
        ("keras_blog", ["keras_blog"], "keras_blog"),
        ("placement", ["placement", "placement_circles"], "placement"),
        ("lr_sensitivity", ["lr_sensitivity"], "lr_sensitivity"),
        ("init_scale", ["init_scale"], "init_scale"),
        ("batch_size", ["batch_size"], "batch_size"),
        ("dropout", ["dropout"], "dropout"),
        ("inception_table", ["inception_table"], "inception_table"),
        ("mechanisms", ["mechanisms", "mechanisms_momentum"], "mechanisms"),
    ],
)
def test_study_quick_end_to_end(tmp_path, study, experiments, figure):
    _run_quick(tmp_path, *experiments)
    assert studies.main([f"{study}_quick", "--results", str(tmp_path / "results")]) == 0
    out = tmp_path / "results" / f"{study}_quick"
    assert (out / f"{figure}.png").stat().st_size > 0 and (out / f"{figure}.pdf").stat().st_size > 0
    summary = (out / "summary.md").read_text()
    assert "Verdict:" in summary or "The claims, as measured here:" in summary
