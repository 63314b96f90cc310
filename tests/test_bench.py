"""The benchmark runs at a tiny size and writes its tables (no timing is asserted: timings are the benchmark's output)."""

import json

import pandas as pd
import pytest

from bn_study import bench


@pytest.mark.slow  # ~30 s: `make bench` itself exercises the same code
def test_bench_runs_every_way_and_writes_its_tables(tmp_path):
    assert bench.main(["--steps", "40", "--rounds", "1", "--sweep-runs", "2", "--arms", "none", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "bench.csv")
    assert set(table["way"]) == set(bench.WAYS) and set(table["arm"]) == {"none"}
    assert (table["ms_per_step"] > 0).all() and len(table) == len(bench.WAYS)
    facts = json.loads((tmp_path / "bench.json").read_text())
    assert facts["sweep"]["runs"] == 2 and facts["matmul"]["step_flops"] == 6 * 60 * (784 * 100 + 100 * 100 * 2 + 100 * 10)
    assert {"a_over_c", "c_over_b", "probes_over_c", "fixed_seconds"} <= set(facts["ratios"])
    summary = (tmp_path / "summary.md").read_text()
    assert "a / c =" in summary and "c / b =" in summary and "c+ / c =" in summary and "Fixed cost per run" in summary
