"""The benchmark runs at a tiny size and writes its tables (no timing is asserted: timings are the benchmark's output)."""

import json

import pandas as pd
import pytest

from bn_study.cli import bench


@pytest.mark.slow  # ~30 s: `make bench` itself exercises the same code
def test_bench_runs_every_way_and_writes_its_tables(tmp_path):
    assert (
        bench.main(["--steps", "40", "--rounds", "1", "--sweep-runs", "2", "--arms", "none", "--out", str(tmp_path)])
        == 0
    )
    table = pd.read_csv(tmp_path / "bench.csv")
    assert set(table["way"]) == set(bench.WAYS) and set(table["arm"]) == {"none"}
    assert (table["ms_per_step"] > 0).all() and len(table) == len(bench.WAYS)
    facts = json.loads((tmp_path / "bench.json").read_text())
    assert facts["sweep"]["runs"] == 2 and facts["matmul"]["step_flops"] == 6 * 60 * (
        784 * 100 + 100 * 100 * 2 + 100 * 10
    )
    assert {"a_over_c", "loop_over_b", "c_over_loop", "c_over_b", "probes_over_c", "fixed_seconds"} <= set(
        facts["ratios"]
    )
    summary = (tmp_path / "summary.md").read_text()
    assert (
        "a / c =" in summary
        and "c0 / b =" in summary
        and "c / c0 =" in summary
        and "c+ / c =" in summary
        and "Fixed cost per run" in summary
    )


@pytest.mark.slow  # ~1 min
def test_cnn_bench_measures_every_way_against_the_bare_loop_and_counts_the_step_flops(tmp_path):
    from bn_study.cli import bench_cnn

    assert (
        bench_cnn.main(["--steps", "4", "--rounds", "1", "--settings", "default", "inter1", "--out", str(tmp_path)])
        == 0
    )
    table = pd.read_csv(tmp_path / "cnn.csv")
    default = table[table["setting"] == "default"]
    assert {
        "bare_step",
        "bare_loop",
        "bare_xla",
        "bf16",
        "bn_study",
        "bn_study_blog",
        "paired",
        "mlp_loop",
        "paired_mlp",
    } <= set(default["way"])
    assert set(table.loc[table["setting"] == "inter1", "way"]) == {"bare_step", "bare_loop"}
    mlp = default[default["way"].isin(["mlp_loop", "paired_mlp"])].groupby(["way", "arm"]).size()
    assert len(mlp) == 3 and (mlp == bench_cnn.MLP_REPEATS).all()  # single arms and the pair, alternating
    facts = json.loads((tmp_path / "cnn.json").read_text())
    # Conv32 (28x28 valid 3x3 -> 26x26 from 1 channel), Conv64 on 13x13x32 -> 11x11, Conv64 on 5x5x64 -> 3x3, Dense 576->64, 64->10; batch 32
    forward = 2 * 32 * (26 * 26 * 9 * 1 * 32 + 11 * 11 * 9 * 32 * 64 + 3 * 3 * 9 * 64 * 64 + 576 * 64 + 64 * 10)
    assert facts["step_flops"] == 3 * forward
    summary = (tmp_path / "cnn.md").read_text()
    assert (
        "bn-study / the best bare loop" in summary
        and "Two runs in one compiled step" in summary
        and "inter1" in summary
        and "Mixed precision (Keras's mixed_bfloat16" in summary
    )


@pytest.mark.slow  # ~40 s
def test_the_study_bench_breaks_a_sweep_down_by_job_and_writes_its_tables(tmp_path):
    from bn_study.cli import bench_studies

    args = ["--targets", "fig1:mnist5k", "--runs", "1", "--evaluations", "2", "--checkpoint-repeats", "1"]
    assert bench_studies.main([*args, "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "studies.csv")
    assert list(table["target"]) == ["fig1:mnist5k"] and (table["planned_runs"] == 20).all()
    # now, a checkpoint at most once a minute: none in a run this short; as committed, one at every evaluation
    assert (table[[c for c in bench_studies.COLUMNS if c != "checkpoints"]] > 0).all(axis=None)
    summary = (tmp_path / "studies.md").read_text()
    assert "| fig1:mnist5k | 20 |" in summary and "one save takes" in summary


def test_the_study_bench_refuses_an_unknown_target_naming_the_known_ones(capsys):
    from bn_study.cli import bench_studies

    with pytest.raises(SystemExit) as stop:
        bench_studies.main(["--targets", "nope:mnist5k"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "bn-study-bench-studies: error: --targets nope:mnist5k: one of keras_blog:mnist5k, keras_blog:fashion_mnist, "
        "normalizers_cnn:mnist5k, normalizers_cnn:fashion_mnist, depth:mnist5k, depth:fashion_mnist, fig1:mnist5k, "
        "fig1:fashion_mnist"
    ]
