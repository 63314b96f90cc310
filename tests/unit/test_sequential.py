"""Seeds on demand: the group-sequential sign test's looks and thresholds, its error over all looks (exact and by
simulation), a claim judged at the looks its seeds reach, the seeds a look asks for, and a cap out of range refused."""

import numpy as np
import pandas as pd
import pytest

from bn_study.claims import Claim, ClaimError, Final, Side, sequential, verdicts
from bn_study.studies import plan

A, B = Side("a", {"arm": "a"}), Side("b", {"arm": "b"})


def claim(**kw):
    return Claim("t.claim", "a source", "a sentence", A, B, Final("test", "accuracy"), "higher", 0.01, **kw)


def tables(d: list[float]):
    """Runs of arms a and b whose final test accuracy differs by d[seed]."""
    values = {(arm, s): 0.5 + (x if arm == "a" else 0.0) for s, x in enumerate(d) for arm in ("a", "b")}
    runs = pd.DataFrame(
        [
            {"run_id": f"{arm}{s}", "arm": arm, "seed": s, "status": "done", "test_accuracy": v}
            for (arm, s), v in values.items()
        ]
    )
    curves = pd.DataFrame(
        [
            {"run_id": f"{arm}{s}", "step": 100, "split": "test", "metric": "accuracy", "value": v}
            for (arm, s), v in values.items()
        ]
    )
    return runs, curves


def test_the_default_looks_decide_at_five_of_five_nine_of_ten_and_sixteen_of_twenty():
    assert sequential.looks() == (5, 10, 20)
    assert sequential.thresholds((5, 10, 20)) == (5, 9, 16)
    assert sequential.coverage((5, 10, 20)) == pytest.approx(
        1 - 2 * (1 / 32 + 5 / 1024 + sum(sequential.first_crossings((5, 10, 20))[2:]))
    )


@pytest.mark.parametrize("cap", range(5, 101))
def test_every_cap_keeps_each_decisions_error_within_alpha_over_all_looks_and_every_look_can_decide(cap):
    sizes = sequential.looks(cap)
    crossings = sequential.first_crossings(sizes)
    assert sizes[0] == 5 and sizes[-1] <= cap and list(sizes) == sorted(set(sizes))
    assert sum(crossings) <= sequential.ALPHA + 1e-12
    assert all(p > 0 for p in crossings)


def test_the_error_over_the_looks_holds_by_simulation_at_the_bound():
    """Per-seed differences whose median is exactly the margin: 'holds' is reached in at most ALPHA of the studies."""
    rng = np.random.default_rng(3)
    signs = rng.random((40_000, 20)) < 0.5
    counts = np.stack([signs[:, :n].sum(1) for n in (5, 10, 20)], 1)
    crossed = (counts >= np.array(sequential.thresholds((5, 10, 20)))).any(1)
    assert crossed.mean() <= sequential.ALPHA + 3 * np.sqrt(sequential.ALPHA / 40_000)
    assert crossed.mean() == pytest.approx(sum(sequential.first_crossings((5, 10, 20))), abs=0.004)


def test_a_claim_stops_at_the_first_look_that_decides_and_asks_for_the_next_until_then():
    # 4 of the first 5 above the margin: undecided at 5; 9 of 10: holds at 10; the 10 seeds after it are not read
    d = [0.05, 0.05, 0.0, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05] + [-0.05] * 10
    r = verdicts.judge(claim(), *tables(d))
    assert (r["outcome"], r["looks"], r["n"], r["unread_seeds"]) == ("holds", [5, 10], 10, list(range(10, 20)))
    assert r["low"] == pytest.approx(0.05) and "look 2 of 3" in r["interval"] and r["next_look"] is None
    first = verdicts.judge(claim(), *tables(d[:5]))
    assert (first["outcome"], first["looks"], first["next_look"]) == ("inconclusive", [5], 10)
    assert verdicts.judge(claim(seed_cap=5), *tables(d[:5]))["next_look"] is None
    # 1 of 5 above: even 15 more seeds all above would give 16 of 20 for holds, so it still asks; 0 of 5 cannot reach it,
    # but contradicted and negligible are still within reach
    assert verdicts.judge(claim(), *tables([0.05, -0.05, -0.05, -0.05, 0.0]))["next_look"] == 10


@pytest.mark.parametrize("cap", [4, 101, 7.5, True])
def test_a_seed_cap_out_of_range_is_refused_in_one_line(cap):
    planned = pd.DataFrame(
        {
            "arm": ["a", "b"],
            "seed": [0, 0],
            "splits": [frozenset({("test", "accuracy")})] * 2,
            "subset_splits": [frozenset()] * 2,
        }
    )
    with pytest.raises(
        ClaimError, match=rf"^claims\.t\.claim\.seed_cap={cap}: must be a whole number of seeds from 5 to 100"
    ):
        claim(seed_cap=cap).check(planned)


def test_more_seeds_asks_for_the_missing_seeds_of_exactly_the_cells_a_claim_reads():
    jobs = lambda arm, s: ("experiment=x", f"arm={arm}", f"seed={s}")  # noqa: E731
    planned = pd.DataFrame([{"arm": arm, "seed": s, "job": jobs(arm, s)} for arm in ("a", "b", "c") for s in range(5)])
    runs = pd.concat([planned, pd.DataFrame([{"arm": "a", "seed": 5, "job": jobs("a", 5)}])]).drop(columns="job")
    wanted = plan.more_seeds(planned, runs, [({"arm": "a"}, 10), ({"arm": "b"}, 10)])
    assert sorted(map(tuple, wanted["x"])) == sorted(
        [jobs("a", s) for s in range(6, 10)] + [jobs("b", s) for s in range(5, 10)]
    )
    assert plan.more_seeds(planned, runs, []) == {}


def test_runs_older_than_a_key_match_the_plan_at_its_default_whether_the_column_is_missing_or_empty():
    """A collection that merges older runs with newer ones has an empty cell where an older run predates a key."""
    planned = pd.DataFrame(
        [{"arm": "a", "data.train_size": 0, "seed": s, "job": ("experiment=x", f"seed={s}")} for s in range(2)]
    )
    old = pd.DataFrame([{"arm": "a", "data.train_size": float("nan"), "seed": 0}, {"arm": "a", "seed": 1}])
    assert plan.unplanned(old, planned)[0].empty and plan.missing(old, planned)[0] == 0
    assert len(plan.unplanned(old.assign(**{"data.train_size": 3600}), planned)[0]) == 2


def test_a_verdict_waiting_for_its_next_look_enters_the_adjustments_at_p_one(monkeypatch):
    from types import SimpleNamespace

    from bn_study.studies import report
    from bn_study.studies.registry import Version

    decided = {"id": "s.decided", "outcome": "holds", "p": {"holds": 0.004, "contradicted": 1.0}, "next_look": None}
    waiting = {
        "id": "s.waiting",
        "outcome": "inconclusive",
        "p": {"holds": 0.002, "contradicted": 1.0},
        "next_look": 10,
    }
    study = SimpleNamespace(name="s")
    monkeypatch.setattr(report, "_judged", lambda results: [(study, Version(), decided), (study, Version(), waiting)])
    adj = report.adjusted(None)
    assert adj["s", "", "s.waiting"]["p"] == 1.0
    # a family of two still: the decided verdict (0.004 times its 2 decisions) adjusted by both rules to twice that
    assert adj["s", "", "s.decided"] == {"p": 0.008, "holm": 0.016, "bh": 0.016}
