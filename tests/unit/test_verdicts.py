"""The verdict layer on small synthetic tables with known answers: every rule kind, every outcome, the
margin, diverged runs, n < 5; the interval's coverage; claims refused when malformed or unproducible."""

import math

import numpy as np
import pandas as pd
import pytest

from bn_study.claims import (
    Best,
    Claim,
    ClaimError,
    Context,
    CurveMedian,
    Final,
    GridChange,
    GridCount,
    GridLargest,
    Side,
    StepsTo,
    interactions,
    sequential,
    verdicts,
)
from bn_study.tables import stats
from bn_study.tables.stats import median_interval

A, B = Side("a", {"arm": "a"}), Side("b", {"arm": "b"})
STEPS = (0, 100, 200, 300)


def tables(finals: dict[str, list[float]], curves_of=None, diverged=()):
    """Runs and curves for arms -> per-seed final test accuracy; curves rise linearly to the final value
    (or follow curves_of(arm, seed)); (arm, seed) in `diverged` ends in NaN at step 200."""
    runs, points = [], []
    for arm, values in finals.items():
        for seed, final in enumerate(values):
            run_id = f"{arm}{seed}"
            gone = (arm, seed) in diverged
            runs.append(
                {
                    "run_id": run_id,
                    "arm": arm,
                    "seed": seed,
                    "status": "diverged" if gone else "done",
                    "test_accuracy": math.nan if gone else final,
                    "val_accuracy": math.nan if gone else final,
                    "n_test": 1000,
                    "n_val": 400,
                }
            )
            curve = curves_of(arm, seed) if curves_of else [final * s / STEPS[-1] for s in STEPS]
            for step, value in zip(STEPS, curve):
                if gone and step > 200:
                    break
                v = math.nan if gone and step == 200 else value
                points += [
                    {"run_id": run_id, "step": step, "split": split, "metric": "accuracy", "value": v}
                    for split in ("test", "val")
                ]
    return pd.DataFrame(runs), pd.DataFrame(points)


def claim(direction="higher", margin=0.01, metric=Final("test", "accuracy"), a=A, b=B):
    return Claim("t.claim", "a source", "a sentence", a, b, metric, direction, margin)


def judge(finals, c=None, **kw):
    runs, curves = tables(finals, **kw)
    return verdicts.judge(c or claim(), runs, curves)


BASE = [0.90, 0.91, 0.92, 0.93, 0.94]


def test_interval_coverage_is_exact_for_n():
    assert median_interval(range(5)).coverage == pytest.approx(1 - 2 / 32)  # [min, max] of 5
    ten = median_interval(range(10))
    assert (ten.low, ten.high) == (1, 8) and ten.coverage == pytest.approx(1 - 2 * 11 / 1024)
    three = median_interval([0.9, 0.95, 0.97])
    assert (
        not three.is_ci
        and three.coverage == 0.75
        and "range" in three.label()
        and "CI" not in three.label().split(",")[0]
    )
    assert median_interval([1.0, math.inf, math.inf, math.inf, 2.0]).median == math.inf  # never reached, kept


@pytest.mark.parametrize(
    "shift, direction, expected",
    [
        (0.05, "higher", "holds"),
        (-0.05, "higher", "contradicted"),
        (0.05, "lower", "contradicted"),
        (-0.05, "lower", "holds"),
        (0.005, "higher", "negligible"),  # inside the margin on every seed
        (-0.005, "lower", "negligible"),
        (0.005, "not_lower", "holds"),  # no worse: inside the margin is what it claims
        (-0.001, "not_lower", "holds"),  # within the non-inferiority margin
        (-0.02, "not_lower", "contradicted"),
    ],
)
def test_outcome_by_direction_and_margin(shift, direction, expected):
    r = judge({"a": [v + shift for v in BASE], "b": BASE}, claim(direction, margin=0.01))
    assert r["outcome"] == expected
    assert r["n"] == 5 and r["is_ci"] and r["median_difference"] == pytest.approx(shift)
    assert r["images"]["median_difference"] == pytest.approx(shift * 1000)  # in test images


def test_an_interval_across_the_margin_is_inconclusive_and_without_a_margin_nothing_is_negligible():
    a = [v + d for v, d in zip(BASE, (0.0, 0.005, 0.005, 0.006, 0.015))]
    assert judge({"a": a, "b": BASE})["outcome"] == "inconclusive"
    assert judge({"a": BASE, "b": BASE}, claim(margin=0.0))["outcome"] == "inconclusive"
    assert judge({"a": BASE, "b": BASE}, claim(margin=0.01))["outcome"] == "negligible"


@pytest.mark.parametrize("direction", ["higher", "lower", "not_lower"])
def test_an_outcome_is_reached_exactly_when_its_sequential_p_value_is_within_the_error_spent(direction):
    rng = np.random.default_rng(7)
    seen = set()
    for trial in range(100):
        n = int(rng.choice([5, 7, 10, 14, 20]))
        d = rng.normal(rng.uniform(-0.03, 0.03), rng.uniform(0.001, 0.02), n)
        r = judge({"a": list(0.5 + d), "b": [0.5] * n}, claim(direction, margin=float(rng.choice([0.0, 0.01]))))
        sizes = tuple(r["planned_looks"])
        spent = sum(sequential.first_crossings(sizes)[: len(r["looks"])])
        decided = {o for o, v in r["p"].items() if v <= spent + 1e-12}
        assert decided == ({r["outcome"]} if r["outcome"] != "inconclusive" else set()), (trial, r["outcome"], r["p"])
        assert all(v <= (1 - stats.CONFIDENCE) / 2 for o, v in r["p"].items() if o in decided)
        seen.add(r["outcome"])
    assert seen >= {"holds", "contradicted", "inconclusive"}


def test_an_interval_of_all_five_seeds_says_it_is_the_min_to_max():
    assert "= min to max, n=5" in median_interval(BASE).label()
    assert "min to max" not in median_interval(range(10)).label()


def test_the_unpaired_interval_for_a_shift_and_the_multiplicity_adjustments():
    x, y = [1.0, 2.0, 3.0, 4.0, 5.0], [0.5, 1.0, 1.5, 2.0, 2.5]
    i = stats.shift_interval(x, x, y, y)
    # 25 differences; P(U <= 4) = 12/252 for two samples of 5 (U = 0..4: 1, 1, 2, 3, 5 orderings), so the 5th smallest to the 5th largest: 90.5%
    assert (i.median, i.low, i.high, i.n) == (1.5, 0.0, 3.0, 25) and i.coverage == pytest.approx(1 - 24 / 252)
    # A censored value widens the interval; an infinite one stays in it (above every finite value: y's location rises,
    # x - y falls), and two infinities make a difference that lies anywhere
    wide = stats.shift_interval(x, [*x[:4], 9.0], [*y, math.inf], [*y, math.inf])
    assert wide.n == 30 and wide.median < i.median and wide.low < i.low and wide.high > i.high
    both = stats.shift_interval([*x, math.inf], [*x, math.inf], [*y, math.inf], [*y, math.inf])
    assert both.n == 36 and both.low < i.low and both.high > i.high

    # Between two verdicts, a censored seed makes the estimate a range, which the report prints whole
    def record(lows, highs):
        per_seed = {str(k): {"a": 1.0, "b": 2.0, "d": lo, "d_high": hi} for k, (lo, hi) in enumerate(zip(lows, highs))}
        return {"per_seed": per_seed, "n": len(per_seed)}

    censored = interactions.interaction(record(y, y), record([*x[:2], -math.inf, -math.inf, -math.inf], x))
    assert censored["difference"] == -math.inf and math.isfinite(censored["difference_high"])
    exact = interactions.interaction(record(y, y), record(x, x))
    assert exact["difference"] == exact["difference_high"] == 1.5
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_mixed_signs_are_inconclusive_and_pairs_are_by_seed():
    # Seed by seed a - b = +0.03, -0.03, +0.03, -0.03, +0.03: unpaired medians would differ, the interval spans 0.
    b = BASE
    a = [b[0] + 0.03, b[1] - 0.03, b[2] + 0.03, b[3] - 0.03, b[4] + 0.03]
    r = judge({"a": a, "b": b})
    assert r["outcome"] == "inconclusive" and r["low"] == pytest.approx(-0.03) and r["high"] == pytest.approx(0.03)


def test_fewer_than_five_seeds_are_inconclusive_however_large_the_effect():
    r = judge({"a": [0.99] * 4, "b": [0.1] * 4})
    assert r["outcome"] == "inconclusive" and not r["is_ci"] and r["n"] == 4


def test_diverged_runs_count_as_the_worst_accuracy_never_dropped():
    # b diverges on every seed: a wins every pair by +inf, and the claim holds.
    r = judge({"a": BASE, "b": BASE}, diverged=[("b", s) for s in range(5)])
    assert r["outcome"] == "holds" and r["median_difference"] == math.inf and r["n"] == 5
    # a diverges on one seed of five: that pair is -inf, so the interval reaches -inf and nothing is decided.
    r = judge({"a": [v + 0.05 for v in BASE], "b": BASE}, diverged=[("a", 2)])
    assert r["outcome"] == "inconclusive" and r["low"] == -math.inf and r["n"] == 5 and r["n_excluded"] == 0


def test_steps_to_threshold_as_a_ratio():
    # a reaches 0.9 at step 100, b at step 300 on every seed: a needs 3x fewer steps.
    def curve(arm, seed):
        return [0.1, 0.95, 0.95, 0.95] if arm == "a" else [0.1, 0.5, 0.8, 0.95]

    r = judge(
        {"a": [0.95] * 5, "b": [0.95] * 5},
        claim("lower", margin=math.log10(1.25), metric=StepsTo("test", "accuracy", threshold=0.9)),
        curves_of=curve,
    )
    assert r["outcome"] == "holds" and 10 ** r["median_difference"] == pytest.approx(1 / 3)
    assert verdicts.fmt_difference(r["median_difference"], log10=True) == "x0.333"
    # never reaching the threshold is inf steps: a ratio of 0 for the arm that does
    r = judge(
        {"a": [0.95] * 5, "b": [0.5] * 5},
        claim("lower", margin=0.1, metric=StepsTo("test", "accuracy", threshold=0.9)),
        curves_of=lambda arm, seed: [0.1, 0.95, 0.95, 0.95] if arm == "a" else [0.1, 0.3, 0.4, 0.5],
    )
    assert r["median_difference"] == -math.inf and r["outcome"] == "holds"


def test_a_threshold_not_reached_by_the_end_is_censored_not_infinite():
    # a never reaches 0.9 in its 300 steps, b reaches it at step 200: a needs more than 300/200 = 1.5x b's steps, no more is known.
    def curve(arm, seed):
        return [0.1, 0.5, 0.6, 0.7] if arm == "a" else [0.1, 0.5, 0.95, 0.95]

    steps = StepsTo("test", "accuracy", threshold=0.9)
    small = judge(
        {"a": [0.7] * 5, "b": [0.95] * 5}, claim("lower", margin=math.log10(1.25), metric=steps), curves_of=curve
    )
    assert small["outcome"] == "contradicted" and 10 ** small["low"] == pytest.approx(1.5) and small["high"] == math.inf
    assert small["n_censored"] == 5 and "censored" in verdicts.effect(small)
    large = judge(
        {"a": [0.7] * 5, "b": [0.95] * 5}, claim("lower", margin=math.log10(2), metric=steps), curves_of=curve
    )
    assert large["outcome"] == "inconclusive"  # 1.5x is all the runs can show: not beyond a 2x margin
    # both never reach it: nothing is known about the pair, never a tie
    both = judge(
        {"a": [0.7] * 5, "b": [0.7] * 5},
        claim("lower", margin=0.1, metric=steps),
        curves_of=lambda arm, seed: [0.1, 0.5, 0.6, 0.7],
    )
    assert (both["low"], both["high"]) == (-math.inf, math.inf) and both["outcome"] == "inconclusive"


def test_target_steps_and_best_on_the_validation_split():
    def curve(arm, seed):
        return {"base": [0.1, 0.6, 0.8, 0.7], "a": [0.1, 0.85, 0.9, 0.9]}[arm]

    runs, curves = tables({"base": [0.7] * 5, "a": [0.9] * 5}, curves_of=curve)
    to_base = StepsTo("val", "accuracy", target=(("arm", "base"),))
    r = verdicts.judge(
        claim("lower", 0.1, to_base, Side("a", {"arm": "a"}), Side("base", {"arm": "base"})), runs, curves
    )
    # the target is base's best (0.8, at step 200); a passes it at step 100
    assert 10 ** r["median_difference"] == pytest.approx(0.5) and r["outcome"] == "holds"
    # 70% of base's best (0.56): base reaches it at step 100 too, a tie
    share = StepsTo("val", "accuracy", target=(("arm", "base"),), fraction=0.7)
    r = verdicts.judge(claim("lower", 0.1, share, Side("a", {"arm": "a"}), Side("base", {"arm": "base"})), runs, curves)
    assert r["median_difference"] == 0 and "70% of the best val accuracy of arm=base" in r["metric"]
    best = verdicts.judge(
        claim("higher", 0.05, Best("val", "accuracy"), Side("a", {"arm": "a"}), Side("base", {"arm": "base"})),
        runs,
        curves,
    )
    assert best["median_difference"] == pytest.approx(0.1) and best["outcome"] == "holds"


def test_a_difference_at_the_margin_up_to_float_rounding_is_not_beyond_it():
    """log10(200) - log10(300) is log10(1.5) but lands a hair beyond it in floats: at the margin, inconclusive."""
    from bn_study.claims import factor
    from bn_study.tables.stats import median_interval

    at = math.log10(200) - math.log10(300)
    assert at < -factor(1.5)  # the float rounding the rule must not count
    assert verdicts.outcome("lower", factor(1.5), median_interval([at - 0.2] * 2 + [at] * 3)) == "inconclusive"
    assert verdicts.outcome("lower", factor(1.5), median_interval([at - 0.001] * 5)) == "holds"


def test_grid_metrics_known_answers():
    grid = [0.01, 0.1, 1.0]
    rows = []
    for seed in range(5):
        for lr in grid:
            rows.append(
                {
                    "run_id": f"a{seed}{lr}",
                    "arm": "a",
                    "seed": seed,
                    "lr": lr,
                    "status": "done",
                    "val_accuracy": 0.95,
                    "test_accuracy": 0.95,
                }
            )
            bad = lr == 1.0
            rows.append(
                {
                    "run_id": f"b{seed}{lr}",
                    "arm": "b",
                    "seed": seed,
                    "lr": lr,
                    "status": "diverged" if bad else "done",
                    "val_accuracy": math.nan if bad else 0.95,
                    "test_accuracy": math.nan if bad else 0.95 - (0.1 if lr == 0.01 else 0),
                }
            )
    runs, curves = pd.DataFrame(rows), pd.DataFrame(columns=["run_id", "step", "split", "metric", "value"])
    count = verdicts.judge(claim("higher", 0.5, GridCount(grid="lr", threshold=0.9)), runs, curves)
    assert count["median_difference"] == 1 and count["outcome"] == "holds"  # 3 trainable rates against 2
    largest = verdicts.judge(claim("higher", 0.4, GridLargest(grid="lr", threshold=0.9)), runs, curves)
    assert (
        largest["median_difference"] == pytest.approx(1.0) and largest["outcome"] == "holds"
    )  # 1.0 against 0.1: a decade
    change = verdicts.judge(
        claim("lower", 0.01, GridChange("test", "accuracy", grid="lr", start=0.1, to=0.01)), runs, curves
    )
    assert (
        change["median_difference"] == pytest.approx(0.1) and change["outcome"] == "contradicted"
    )  # b loses 0.1, a nothing
    # No rate trains on either side: a tie at the count's floor in every pair, not measurable.
    floor = verdicts.judge(claim("higher", 0.5, GridCount(grid="lr", threshold=0.99)), runs, curves)
    assert floor["median_difference"] == 0 and not verdicts.measurable(floor) and verdicts.measurable(count)
    # Floor ties in four seeds and one tie above it: each a true difference of 0 for the count (left out, they would
    # bias the sign test and make its look sizes depend on the data), and the effect says how many are at the floor
    trains = (runs["seed"] == 4) & (runs["lr"] == 0.1)
    some = runs.assign(val_accuracy=runs["val_accuracy"].where(trains | runs["val_accuracy"].isna(), 0.5))
    tie = verdicts.judge(claim("higher", 0.5, GridCount(grid="lr", threshold=0.9)), some, curves)
    assert (tie["n"], tie["outcome"]) == (5, "negligible")
    assert "4 pair(s) tied at the metric's floor (0 on both sides: neither trains)" in verdicts.effect(tie)
    # A record of the engine that left floor ties out of its n (b64eacc) counts none: they are in its excluded seeds.
    excluded = {**tie, "n": 1, "n_excluded": 4}
    assert verdicts.floor_ties(tie) == 4 and verdicts.floor_ties(excluded) == 0
    assert "tied at the metric's floor" not in verdicts.effect(excluded)
    # Another sweep of the same study at a rate off this grid leaves this sweep's grid complete.
    other = pd.DataFrame(
        [
            {
                "run_id": f"c{seed}",
                "arm": "c",
                "seed": seed,
                "lr": 0.001,
                "status": "done",
                "val_accuracy": 0.9,
                "test_accuracy": 0.9,
                "study": "other",
            }
            for seed in range(5)
        ]
    )
    both_sweeps = pd.concat([runs.assign(study="grid"), other])
    assert (
        verdicts.judge(claim("higher", 0.5, GridCount(grid="lr", threshold=0.9)), both_sweeps, curves)[
            "median_difference"
        ]
        == 1
    )
    # No rate reaches 0.99: a tie of -inf in every pair, which the report calls not measurable.
    none = verdicts.judge(claim("higher", 0.4, GridLargest(grid="lr", threshold=0.99)), runs, curves)
    assert none["median_difference"] == 0 and not verdicts.measurable(none) and verdicts.measurable(largest)
    # Censored on one side only: that side never reached the threshold, the other did, so the pair says who is ahead.
    one_sided = {
        "n": 1,
        "per_seed": {"0": {"a": 3.0, "b": 2.9, "d": 0.1, "a_high": "inf", "b_high": 2.9, "d_high": "inf"}},
    }
    both_sided = {
        "n": 1,
        "per_seed": {"0": {"a": 4.7, "b": 4.7, "d": "-inf", "a_high": "inf", "b_high": "inf", "d_high": "inf"}},
    }
    assert verdicts.measurable(one_sided) and not verdicts.measurable(both_sided)


def test_a_grid_target_relative_to_the_baselines_best_median_configuration():
    rows = []
    for seed in range(5):
        for lr, (a, b) in {0.1: (0.80, 0.70), 1.0: (0.82, 0.55 + 0.01 * seed), 10.0: (0.81, math.nan)}.items():
            rows.append(
                {"run_id": f"a{seed}{lr}", "arm": "a", "seed": seed, "lr": lr, "status": "done", "val_accuracy": a}
            )
            rows.append(
                {
                    "run_id": f"b{seed}{lr}",
                    "arm": "b",
                    "seed": seed,
                    "lr": lr,
                    "status": "diverged" if math.isnan(b) else "done",
                    "val_accuracy": b,
                }
            )
    runs, curves = pd.DataFrame(rows), pd.DataFrame(columns=["run_id", "step", "split", "metric", "value"])
    metric = GridLargest(grid="lr", of_best=0.9, baseline=(("arm", "b"),))
    # b's best median configuration is lr 0.1 (0.70; lr 1's median is 0.57, lr 10 diverged): the target is 0.63,
    # which a reaches up to lr 10 and b only at 0.1 (every seed at lr 1 is below it)
    assert metric.target(Context(runs, curves)) == pytest.approx(0.63)
    r = verdicts.judge(claim("higher", 0.4, metric), runs, curves)
    assert (
        10 ** r["median_difference"] == pytest.approx(100)
        and "90% of the best median final val accuracy over lr of arm=b" in r["metric"]
    )


def test_by_config_reports_the_median_and_its_interval():
    runs = pd.DataFrame(
        {
            "model.bn": ["before"] * 5 + ["none"] * 5,
            "seed": list(range(5)) * 2,
            "status": "done",
            "test_accuracy": BASE + [0.5, 0.6, 0.7, 0.8, 0.9],
            "run_id": [str(i) for i in range(10)],
        }
    )
    table = stats.by_config(runs).set_index("model.bn")
    assert table.loc["before", "test_accuracy_median"] == pytest.approx(0.92)
    assert (table.loc["before", "test_accuracy_low"], table.loc["before", "test_accuracy_high"]) == (0.90, 0.94)
    assert table.loc["none", "test_accuracy_median"] == pytest.approx(0.7) and table.loc[
        "none", "test_accuracy_coverage"
    ] == pytest.approx(0.9375)


def test_a_configuration_whose_seeds_were_added_since_its_runs_were_collected_is_one_configuration():
    """Seeds 0-4 read back from runs.csv, before probe.precise existed (empty) and with 'False' as text; seeds 5-9 added
    since, recorded with False: one configuration of 10 seeds, not three."""
    runs = pd.DataFrame(
        {
            "model.bn": ["before"] * 10,
            "probe.precise": [None] * 3 + ["False"] * 2 + [False] * 5,
            "seed": list(range(10)),
            "status": "done",
            "test_accuracy": BASE * 2,
            "run_id": [str(i) for i in range(10)],
        }
    )
    table = stats.by_config(runs)
    assert len(table) == 1 and table.loc[0, "n_runs"] == 10 and stats.varying_config_columns(runs) == ["model.bn"]


# Arm b measures test (not val) on trainer.eval_subset's subset before its last evaluation.
PLANNED = pd.DataFrame(
    [
        {
            "arm": arm,
            "seed": s,
            "splits": frozenset({("test", "accuracy"), ("val", "accuracy")}),
            "subset_splits": frozenset({"test"} if arm == "b" else ()),
        }
        for arm in "ab"
        for s in range(5)
    ]
)


@pytest.mark.parametrize(
    "bad, message",
    [
        (claim(direction="sideways"), "claims.t.claim.direction=sideways: must be one of higher, lower, not_lower"),
        (claim(margin=-1), "claims.t.claim.margin=-1: must be a finite number >= 0"),
        (
            claim(a=Side("a", {"arm": "c"})),
            "claims.t.claim.a.where: arm=c matches none of the study's runs; it runs arm in {a, b}",
        ),
        (
            claim(b=Side("b", {"model.bn": "none"})),
            "claims.t.claim.b.where: no column model.bn; the study's runs have arm, seed",
        ),
        (
            claim(metric=Final("bn_modes", "acc_batch_stats")),
            "claims.t.claim.a.metric: Final needs bn_modes/acc_batch_stats, which 5 of its 5 runs do not log",
        ),
        (claim(metric=GridCount(grid="lr")), "claims.t.claim.a.metric: lr is not swept in these runs"),
        (
            claim(metric=CurveMedian("test", "accuracy")),
            "claims.t.claim.b.metric: CurveMedian reads test/accuracy before the runs' last evaluation, which 5 of the 5 runs "
            "it reads measure on a subset (set trainer.eval_subset=0 for them)",
        ),
        (
            claim(metric=StepsTo("test", "accuracy", target=(("arm", "b"),))),
            "claims.t.claim.a.metric: StepsTo reads test/accuracy before the runs' last evaluation, which 5 of the 10 runs "
            "it reads measure on a subset",  # side a's runs are whole; its target, arm b's, are not
        ),
    ],
)
def test_malformed_or_unproducible_claims_are_refused_in_one_line(bad, message):
    with pytest.raises(ClaimError) as err:
        bad.check(PLANNED)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_claim_on_the_last_evaluation_or_on_a_whole_split_reads_runs_that_evaluate_on_a_subset():
    claim(metric=Final("test", "accuracy")).check(PLANNED)  # the last evaluation is whole
    claim(metric=CurveMedian("val", "accuracy")).check(PLANNED)  # val is whole at every evaluation


def test_verdicts_round_trip_through_json(tmp_path):
    r = judge({"a": BASE, "b": BASE}, diverged=[("b", s) for s in range(5)])
    verdicts.write("t", [r], tmp_path)
    back = verdicts.read(tmp_path)["claims"][0]
    assert (
        back["median_difference"] == math.inf and back["outcome"] == "holds" and back["per_seed"]["0"]["b"] == -math.inf
    )
    assert "Infinity" not in (tmp_path / "verdicts.json").read_text()


def test_at_reads_a_curve_at_the_last_evaluation_at_or_before_its_step():
    from bn_study.claims import At

    curve = pd.Series([0.1, 0.5, 0.9], index=[0, 100, 200])
    assert At(step=150).of_curve(curve, None, None) == 0.5
    assert At(step=200).of_curve(curve, None, None) == 0.9
    assert At(step=10_000).of_curve(curve, None, None) == 0.9  # a run of that length or longer: its last value
    diverged = pd.Series([0.1, float("nan")], index=[0, 100])
    assert math.isnan(At(step=200).of_curve(diverged, None, None))


def test_gradient_growth_is_the_per_layer_factor_towards_the_input():
    from bn_study.claims import GradientGrowth, gradient_growth

    # Block 1 (the raw inputs' kernel) is left out whatever its norm.
    assert gradient_growth(pd.Series([1e9, 4.0, 2.0, 1.0], index=[1, 2, 3, 4])) == pytest.approx(
        math.log10(2)
    )  # doubles per layer down
    assert gradient_growth(pd.Series([0.0, 1.0, 3.0], index=[1, 2, 3])) == pytest.approx(
        -math.log10(3)
    )  # shrinks towards the input
    assert math.isnan(gradient_growth(pd.Series([1.0, 1.0], index=[1, 2]))) and math.isnan(
        gradient_growth(pd.Series([1.0, 0.0, 1.0], index=[1, 2, 3]))
    )
    curves = pd.DataFrame(
        {
            "run_id": "r",
            "split": "grad",
            "step": [0, 0, 0, 0, 0, 100],
            "metric": [
                "dense3.grad_norm",
                "dense2.grad_norm",
                "dense1.grad_norm",
                "logits.grad_norm",
                "dense2.update_ratio",
                "dense2.grad_norm",
            ],
            "value": [1.0, 10.0, 7.0, 1e6, 5.0, 1.0],
        }
    )
    runs = pd.DataFrame({"run_id": ["r"], "status": ["done"]})
    assert GradientGrowth(step=0).value(runs, curves, None) == pytest.approx(
        1.0
    )  # the output layer, other steps and measures left out


def test_a_handicapped_claim_names_why_and_a_fair_twin_of_its_study_and_its_verdict_says_so():
    from dataclasses import replace

    handicapped = replace(claim(), handicap="read on lagging moving averages", fair_twin="t.fair")
    handicapped.check_twin(["t.claim", "t.fair"])
    for bad in (
        replace(handicapped, fair_twin="t.none"),
        replace(handicapped, handicap=""),
        replace(claim(), fair_twin="t.fair"),
    ):
        with pytest.raises(
            ClaimError, match=r"^claims\.t\.claim\.fair_twin=.*: a handicapped claim names the handicap and a claim"
        ):
            bad.check_twin(["t.claim", "t.fair"])
    record = judge({"a": BASE, "b": BASE}, handicapped)
    assert record["fair_twin"] == "t.fair"
    assert (
        "handicapped: read on lagging moving averages; the fair comparison is `t.fair`"
        in verdicts.claim_rows([record])[0][-1]
    )


def test_a_look_waits_until_every_cell_its_sides_read_has_its_seeds():
    """A seed sweep still running (or a run of it that failed) leaves a seed with part of a side's grid: the look that
    needs the seed is not taken on what is there, and is taken once the run comes."""
    rows = [
        {
            "run_id": f"{arm}{seed}_{lr}",
            "arm": arm,
            "seed": seed,
            "lr": lr,
            "status": "done",
            # a trains at every rate; b at two, and at all three for seed 2: undecided at 5 seeds, holds at 10
            "val_accuracy": 0.95 if arm == "a" or lr < 1.0 or seed == 2 else 0.5,
        }
        for seed in range(10)
        for arm in ("a", "b")
        for lr in (0.01, 0.1, 1.0)
    ]
    runs, curves = pd.DataFrame(rows), pd.DataFrame(columns=["run_id", "step", "split", "metric", "value"])
    count = claim("higher", 0.5, GridCount(grid="lr", threshold=0.9))
    assert verdicts.judge(count, runs, curves)["looks"] == [5, 10]
    running = runs[runs["run_id"] != "b9_0.1"]
    waiting = verdicts.judge(count, running, curves)
    assert (waiting["looks"], waiting["next_look"], waiting["unread_seeds"]) == ([5], 10, [5, 6, 7, 8, 9])
    # a look reads seeds 0 .. n - 1, whatever other seeds exist: without seed 3's runs of b, nothing but seeds 0-2 is read
    gap = verdicts.judge(count, runs[~runs["run_id"].str.startswith("b3_")], curves)
    assert (gap["looks"], gap["seeds"], gap["outcome"]) == ([3], [0, 1, 2], "inconclusive")


def test_a_look_reads_only_its_own_seeds_even_for_a_target_set_by_other_runs():
    """Base's best median sets a's target. Seeds 5-9 of base (added for a later look, or another claim) peak far higher,
    which would move the target; the first look, at 5 seeds, must decide as if they did not exist."""

    def curve(arm, seed):
        if arm == "base":
            return [0.1, 0.6, 0.8, 0.7] if seed < 5 else [0.1, 0.6, 0.8, 0.99]
        return [0.1, 0.85, 0.9, 0.9]

    runs, curves = tables({"base": [0.7] * 10, "a": [0.9] * 10}, curves_of=curve)
    to_base = claim(
        "lower",
        0.1,
        StepsTo("val", "accuracy", target=(("arm", "base"),)),
        Side("a", {"arm": "a"}),
        Side("base", {"arm": "base"}),
    )
    whole = verdicts.judge(to_base, runs, curves)
    first = verdicts.judge(
        to_base, runs[runs["seed"] < 5], curves[curves["run_id"].isin(runs[runs["seed"] < 5]["run_id"])]
    )
    assert whole["looks"] == first["looks"] == [5] and whole["outcome"] == first["outcome"] == "holds"
    assert whole["median_difference"] == first["median_difference"] and whole["interval"] == first["interval"]
    # a study that plans 10 seeds judges first at 10: 9 of 10 beyond the bound decide there
    assert sequential.looks(20, 10) == (10, 20) and sequential.thresholds((10, 20)) == (9, 15)
    assert verdicts.judge(to_base, runs, curves, first_look=10)["looks"] == [10]
