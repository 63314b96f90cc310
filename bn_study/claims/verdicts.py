"""One rule for every claim: paired per-seed differences, an interval honest for n and for the looks, four outcomes.

For each seed that both sides ran (same seed = same initial kernels and the same batches), the claim's
metric gives a number per side and d = a - b. The median of the d's comes with a distribution-free
confidence interval (the sign test inverted: order statistics d(k) and d(n+1-k)). A claim is judged at looks of
5, 10, 20 seeds (up to its seed cap; claims.sequential), stopping at the first look that decides it, and k at each
look is the group-sequential sign test's, so that the intervals' coverage holds over all the looks together (92.1%
for looks at 5, 10 and 20): [min, max] at 5 seeds, the 2nd smallest to the 2nd largest at 10, the 5th at 20.
With fewer than 5 seeds no interval reaches CONFIDENCE: the range is shown as a range, and the claim is
inconclusive. Infinite values stay in (a diverged run's accuracy is -inf): order statistics need no
arithmetic on them. A threshold a run did not reach by its end is censored, not infinite: the run needed
more steps than it ran, so each difference is known only within bounds, and the interval runs from the
k-th smallest lower bound to the k-th largest upper bound (stats.bounded_interval).

Outcomes, for margin m:
- higher:    holds if the interval lies above +m, contradicted if it lies below -m;
- lower:     holds if the interval lies below -m, contradicted if it lies above +m;
- not_lower: holds if the interval lies above -m, contradicted if it lies below -m;
- negligible (higher and lower, m > 0): the interval lies inside (-m, +m): whatever the effect is, it is too small
  to matter, and more seeds would not make it matter;
- otherwise inconclusive.

Each decision is also a sign test: the interval lies above a point exactly when enough per-seed differences do, so
every outcome but inconclusive comes with the sequential one-sided p-value of the counts that decided it
(`decision_p`), at most (1 - CONFIDENCE) / 2. The report adjusts those over all claims (Holm, Benjamini-Hochberg).
An undecided claim whose runs tell its sides apart, and for which a decision is still within reach at its cap, asks
for its next look's seeds (`next_look`; the study runner adds them: cli.studies.add_seeds).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from bn_study.claims import Claim, ClaimError, Context, difference, select, sequential
from bn_study.files import write_json_atomic
from bn_study.tables.stats import CONFIDENCE, Interval, bounded_interval, median_interval

VERDICTS = "verdicts.json"
# The modules whose source is the engine: the looks and thresholds, the judging, the metrics, the intervals.
ENGINE_SOURCES = ("claims/sequential.py", "claims/verdicts.py", "claims/metrics.py", "tables/stats.py")


def _engine() -> str:
    """The engine's version, recorded in every verdicts.json: a digest of its source, so that any change to the rule or
    the metrics gets a new one by itself (a hand-kept version string was left behind twice) and a verdict diff
    (report.verdict_diff) can say that an outcome moved with the engine."""
    package = Path(__file__).resolve().parents[1]
    source = hashlib.sha256()
    for name in ENGINE_SOURCES:
        source.update((package / name).read_bytes())
    return f"sha256:{source.hexdigest()[:12]}"


ENGINE = _engine()
OUTCOMES = ("holds", "contradicted", "negligible", "inconclusive")
DECISIVE = OUTCOMES[:3]
RULE = (
    f"paired per-seed differences a - b, judged at looks of the seeds its study's plan gives each configuration, doubling up to "
    f"the claim's seed cap (5, 10 and 20 seeds; 10 and 20 where the plan gives 10, as fig1's do), stopping at the first that decides; "
    f"the median difference with a distribution-free (sign-test) confidence interval whose coverage over all the looks is at "
    f"least {CONFIDENCE:.0%}; holds if the interval lies beyond the margin in the claimed direction, contradicted if beyond it the "
    "other way, negligible if it lies inside plus or minus the margin (a claim of a direction only), inconclusive otherwise (and "
    "whenever n is too small for such an interval)"
)


def scope(split_errors: str = "about 0.008 for 1,000 test images at 93%, 0.003 for 10,000 at 88%") -> str:
    """What the intervals cover and what they leave out; `split_errors`: the sampling error of the evaluation split(s) the
    claims read, for the runs at hand (`sampling_errors`)."""
    return (
        "The interval covers seed-to-seed variation (initial weights, batch order) on fixed data splits; it does not include the sampling "
        f"error of the evaluation images themselves (the standard error sqrt(p(1-p)/n) of an accuracy p on n images: {split_errors}), so a "
        "difference of a few images is within that noise. Each claim is judged on its own: with this many claims, a few outcomes "
        "are expected to land beyond a margin by chance."
    )


SPLIT_IMAGES = {"test": ("n_test", "test"), "val": ("n_val", "validation")}


def sampling_errors(runs, splits=("test",)) -> str:
    """`scope`'s sampling error for a study's runs, per split its claims read (test, val) and dataset: the split's images
    and the runs' median final accuracy on it."""
    parts = []
    for split in (s for s in SPLIT_IMAGES if s in splits):
        count, name = SPLIT_IMAGES[split]
        for data, group in runs.groupby("data_used", sort=True):
            n, p = int(group[count].median()), float(group[f"{split}_accuracy"].median())
            parts.append(
                f"{math.sqrt(p * (1 - p) / n):.3f} for the {n:,} {name} images of {data} at the median accuracy here, {p:.0%}"
            )
    return "; ".join(parts)


def _tolerance(margin: float) -> float:
    # "Beyond the margin" is strict, and a difference at the margin up to float rounding (log10(200) - log10(300) against
    # log10(1.5)) is at it, not beyond it.
    return 1e-9 * max(1.0, abs(margin))


def _can_be_negligible(direction: str, margin: float) -> bool:
    # "no worse than -m" already holds wherever the effect is inside +-m; and with no margin nothing is inside it
    return direction in ("higher", "lower") and margin > 0


def outcome(direction: str, margin: float, interval: Interval) -> str:
    if not interval.is_ci:
        return "inconclusive"
    tol = _tolerance(margin)
    lo, hi = interval.low - tol, interval.high + tol
    if _can_be_negligible(direction, margin) and -margin < lo and hi < margin:
        return "negligible"
    if direction == "higher":
        return "holds" if lo > margin else "contradicted" if hi < -margin else "inconclusive"
    if direction == "lower":
        return "holds" if hi < -margin else "contradicted" if lo > margin else "inconclusive"
    if direction == "not_lower":
        return "holds" if lo > -margin else "contradicted" if hi < -margin else "inconclusive"
    raise ClaimError(f"direction={direction}: unknown")


def _counts(direction: str, margin: float, d_low: list[float], d_high: list[float]) -> dict[str, tuple[int, ...]]:
    """Per decisive outcome, how many per-seed differences (known within [d_low, d_high]) lie beyond each of its bounds
    (one bound, two for negligible): a decision at a look is reached when each count reaches the look's threshold."""
    tol = _tolerance(margin)

    def above(point: float) -> int:
        return sum(lo - tol > point for lo in d_low)

    def below(point: float) -> int:
        return sum(hi + tol < point for hi in d_high)

    counts = {
        "higher": {"holds": (above(margin),), "contradicted": (below(-margin),)},
        "lower": {"holds": (below(-margin),), "contradicted": (above(margin),)},
        "not_lower": {"holds": (above(-margin),), "contradicted": (below(-margin),)},
    }[direction]
    if _can_be_negligible(direction, margin):
        counts["negligible"] = (below(margin), above(-margin))
    return counts


def decision_p(sizes: tuple[int, ...], counts: list[dict[str, tuple[int, ...]]]) -> dict[str, float]:
    """Per decisive outcome, its sequential sign-test p-value (claims.sequential.p_value) after the looks judged (`counts`
    per look, of `_counts`, for looks of `sizes`): the chance of deciding it by then if the true median sat on its bound
    (negligible: the larger of its two bounds'). An outcome is reached at a look exactly when each of its counts reaches
    the look's threshold, and then its p-value is at most the error spent so far, at most (1 - CONFIDENCE) / 2."""
    return {
        outcome: max(
            sequential.p_value(sizes, tuple(look[outcome][bound] for look in counts))
            for bound in range(len(counts[-1][outcome]))
        )
        for outcome in counts[-1]
    }


def p_value(record: dict) -> float:
    """A verdict's p-value: that of the outcome it reached (or, inconclusive, the smallest of its decisions'), times the
    number of decisions it could have reached (Bonferroni over them: the outcome is the best of two or three tests)."""
    p = record["p"]
    best = p[record["outcome"]] if record["outcome"] in p else min(p.values())
    return min(1.0, len(p) * best)


def per_seed(
    claim: Claim, side, runs: pd.DataFrame, curves: pd.DataFrame, context: Context
) -> dict[int, tuple[float, float]]:
    """The claim's metric for `side`, per seed: (low, high) bounds, equal unless the number is censored."""
    metric = claim.metric_of(side)
    rows = select(runs, side.where)
    values = {}
    for seed, group in rows.groupby("seed"):
        if metric.grid is None and len(group) != 1:
            raise ClaimError(
                f"claims.{claim.id}: side '{side.label}' matches {len(group)} runs of seed {seed}; its where must pick one run per seed"
            )
        values[int(seed)] = metric.bounds(group, curves, context)
    return values


def _ready(claim: Claim, runs: pd.DataFrame, paired: list[int]) -> int:
    """How many seeds, from seed 0 on, are paired and whole: with a run in every cell the claim reads seed by seed
    (`Claim.reads`), as many as the fullest seed has. Look n reads seeds 0 .. n - 1 and is taken once they are, so that
    which seeds make a look is fixed by the design, and a seed sweep still running, or a run that failed, never makes a
    look of its own."""
    whole = set(paired)
    for where in claim.reads():
        counts = select(runs, where).groupby("seed").size()
        whole &= {int(s) for s in counts.index[counts == counts.max()]} if len(counts) else set()
    n = 0
    while n in whole:
        n += 1
    return n


def _paired(claim: Claim, runs: pd.DataFrame, curves: pd.DataFrame):
    """Each side's per-seed values, the seeds both have, and each pair's difference bounds, from `runs` alone (a target
    relative to other runs, such as a baseline's best median, is taken over these runs' seeds only)."""
    context = Context(runs, curves)
    a, b = (per_seed(claim, side, runs, curves, context) for side in (claim.a, claim.b))
    paired = sorted(set(a) & set(b))
    # a - b lies between (a's lowest - b's highest) and (a's highest - b's lowest)
    d_low = {s: difference(a[s][0], b[s][1]) for s in paired}
    d_high = {s: difference(a[s][1], b[s][0]) for s in paired}
    return a, b, paired, d_low, d_high


def judge(claim: Claim, runs: pd.DataFrame, curves: pd.DataFrame, first_look: int = sequential.FIRST_LOOK) -> dict:
    """The claim's verdict, as a JSON-able record, judged at the looks its seeds reach (claims.sequential), the first at
    `first_look` seeds (what its study's plan gives each configuration). Each look reads only the runs of its seeds, so
    that what it decides does not depend on seeds added later, for this claim or another."""
    whole = _paired(claim, runs, curves)
    paired = whole[2]
    ready = _ready(claim, runs, paired)
    planned = sequential.looks(claim.seed_cap, first_look)
    reached = [n for n in planned if n <= ready] or [ready]
    sizes, looks, counts = [], [], []
    for look, n_seeds in enumerate(reached):
        seeds = list(range(n_seeds))
        a, b, _, d_low, d_high = whole
        # the look's own runs: every run of a seed beyond it left out, whatever claim it was added for
        if seeds != paired:
            at = runs[runs["seed"].isin(seeds)]
            a, b, _, d_low, d_high = _paired(claim, at, curves[curves["run_id"].isin(at["run_id"])])
        usable = [s for s in seeds if not (math.isnan(d_low[s]) or math.isnan(d_high[s]))]
        lows, highs = [d_low[s] for s in usable], [d_high[s] for s in usable]
        sizes.append(len(usable))
        schedule = (*sizes, *planned[len(sizes) :])
        c = sequential.thresholds(schedule)[look] if n_seeds in planned else len(usable) + 1
        interval = bounded_interval(
            lows,
            highs,
            k=len(usable) - c + 1 if c <= len(usable) else 1,
            coverage=sequential.coverage(schedule) if c <= len(usable) else 0.0,
            look=(look + 1, len(planned)),
        )
        looks.append(n_seeds)
        counts.append(_counts(claim.direction, claim.margin, lows, highs))
        decided = outcome(claim.direction, claim.margin, interval)
        if decided != "inconclusive" and any(
            _informative(a[s][0], b[s][0], d_low[s], d_high[s], claim.metric.floor) for s in usable
        ):
            break
    read = list(range(looks[-1]))
    metric = claim.metric
    record = {
        "id": claim.id,
        "source": claim.source,
        "sentence": claim.sentence,
        "a": {
            "label": claim.a.label,
            "where": claim.a.where,
            "metric": claim.metric_of(claim.a).describe(),
            "median": median_interval([a[s][0] for s in read]).median,
        },
        "b": {
            "label": claim.b.label,
            "where": claim.b.where,
            "metric": claim.metric_of(claim.b).describe(),
            "median": median_interval([b[s][0] for s in read]).median,
        },
        "metric": metric.describe(),
        "log10": metric.log10,
        "direction": claim.direction,
        "margin": claim.margin,
        "seed_cap": claim.seed_cap,
        "looks": looks,
        "planned_looks": list(planned),
        "seeds": read,
        "per_seed": {
            str(s): {
                "a": a[s][0],
                "b": b[s][0],
                "d": d_low[s],
                **({"a_high": a[s][1], "b_high": b[s][1], "d_high": d_high[s]} if d_low[s] != d_high[s] else {}),
            }
            for s in read
        },
        "n": interval.n,
        "n_excluded": len(read) - len(usable),
        "unpaired_seeds": sorted(set(a) ^ set(b)),  # seeds added to one side for another claim: beyond every look read
        "unread_seeds": [s for s in paired if s not in read],
        "n_censored": sum(d_low[s] != d_high[s] for s in usable),
        "median_difference": interval.median,
        "median_difference_high": interval.median_high,
        "low": interval.low,
        "high": interval.high,
        "coverage": interval.coverage,
        "interval": interval.label(),
        "is_ci": interval.is_ci,
        "outcome": decided,
        "p": decision_p(tuple(sizes) + tuple(planned[len(sizes) :]), counts),
        "history": claim.history,
        **({"handicap": claim.handicap, "fair_twin": claim.fair_twin} if claim.fair_twin else {}),
        # The metric's floor (GridCount: no value trains): a pair with both sides on it says nothing.
        "floor": metric.floor,
    }
    if not measurable(record):  # every pair a tie at the floor says nothing, least of all that the effect is small
        record["p"].pop("negligible", None)
        record["outcome"] = "inconclusive" if record["outcome"] == "negligible" else record["outcome"]
    record["next_look"] = next_look(record, planned, counts[-1], schedule)
    record["holds_if"] = f"the interval lies {expected_text(record)}"
    split = metric.images if claim.a.metric is None and claim.b.metric is None else None
    sides = pd.concat([select(runs, claim.a.where), select(runs, claim.b.where)])
    if split and f"n_{split}" in sides.columns and sides[f"n_{split}"].nunique() == 1:
        n_images = int(sides[f"n_{split}"].iloc[0])
        record["images"] = {
            "split": split,
            "n_images": n_images,
            "median_difference": _images(interval.median, n_images),
        }
    return record


def next_look(
    record: dict, planned: tuple[int, ...], counts: dict[str, tuple[int, ...]], schedule: tuple[int, ...]
) -> int | None:
    """The seed count the claim asks for next: its next planned look, while it is undecided, its runs tell its sides apart
    at all (`measurable`), and some decision is still within reach at its cap if every further seed went its way."""
    if record["outcome"] != "inconclusive" or not measurable(record) or record["looks"][-1] not in planned:
        return None
    later = [n for n in planned if n > record["looks"][-1]]
    if not later:
        return None
    # the final threshold of the looks as they are (fewer usable pairs where seeds were excluded)
    final, further = sequential.thresholds(schedule)[-1], planned[-1] - record["looks"][-1]
    return later[0] if any(min(c) + further >= final for c in counts.values()) else None


def _images(difference: float, n: int) -> float:
    return difference * n if math.isfinite(difference) else difference


def judge_all(claims, runs: pd.DataFrame, curves: pd.DataFrame, first_look: int = sequential.FIRST_LOOK) -> list[dict]:
    return [judge(claim, runs, curves, first_look) for claim in claims]


# -- verdicts.json ---------------------------------------------------------------------------------------
def _encode(value):
    """JSON without NaN/inf tokens: non-finite floats as the strings 'nan', 'inf', '-inf'."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (np.floating, np.integer)):
        return _encode(value.item())
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def decode(value):
    if value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def write(study: str, verdicts: list[dict], folder: Path, data: list[str] = (), collection: dict | None = None) -> Path:
    """verdicts.json: the claims' verdicts, the rule they were judged by, the datasets the runs used and the checksum of
    the collection.json whose tables they were judged on."""
    path = Path(folder) / VERDICTS
    write_json_atomic(
        path,
        {
            "study": study,
            "rule": RULE,
            "engine": ENGINE,
            "confidence": CONFIDENCE,
            "data": list(data),
            "collection": collection,
            "claims": _encode(verdicts),
        },
    )
    return path


def read(folder: Path) -> dict:
    path = Path(folder) / VERDICTS
    return decode(json.loads(path.read_text()))


# -- formatting (one place for every table and the report) -----------------------------------------------
def fmt_difference(value: float, log10: bool = False) -> str:
    """A paired difference: a log10 difference is a ratio a/b."""
    if math.isnan(value):
        return "n/a"
    if log10:
        return "x0" if value == -math.inf else "x inf" if value == math.inf else f"x{10**value:.3g}"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:+.4f}"


def effect(record: dict) -> str:
    """'median [low, high] (93.8% CI, n=5)' for a verdict record."""
    log10 = record["log10"]
    median = fmt_difference(record["median_difference"], log10)
    if record.get("median_difference_high") not in (None, record["median_difference"]):
        median = f"{median} to {fmt_difference(record['median_difference_high'], log10)}"
    text = f"{median} [{fmt_difference(record['low'], log10)}, {fmt_difference(record['high'], log10)}] ({record['interval']})"
    if record.get("n_censored"):
        text += f"; {record['n_censored']} pair(s) censored (a threshold not reached by the end of a run: at least the run's length)"
    images = record.get("images")
    if images and math.isfinite(images["median_difference"]):
        text += f"; {images['median_difference']:+.0f} of {images['n_images']:,} {images['split']} images"
    if record.get("n_excluded"):
        text += f"; {record['n_excluded']} seed(s) excluded (no comparable number)"
    ties = floor_ties(record)
    if ties:
        # a true difference of 0 for what the claim measures, but one that says nothing of which side is better
        text += f"; {ties} pair(s) tied at the metric's floor ({record['floor']:g} on both sides: neither trains)"
    return text


def floor_ties(record: dict) -> int:
    """How many of the pairs a verdict record judged (its n) have both sides at the metric's floor, each a difference
    of 0. A record of an engine that left such pairs out (b64eacc) lists them in per_seed but not in its n: none of
    them counts."""
    floor = record.get("floor")
    if floor is None:
        return 0
    pairs = record.get("per_seed", {}).values()
    ties = sum(p["a"] == p["b"] == floor for p in pairs)
    others = sum(not (p["a"] == p["b"] == floor) and not math.isnan(float(p["d"])) for p in pairs)
    return min(ties, max(0, record["n"] - others))


def measurable(record: dict) -> bool:
    """False where the runs cannot tell the sides apart at all: no pairs, or no pair whose difference is bounded
    on either side (`_informative`)."""
    if not record["n"]:
        return False
    pairs = [
        (float(p["a"]), float(p["b"]), float(p["d"]), float(p.get("d_high", p["d"])))
        for p in record.get("per_seed", {}).values()
    ]
    return not pairs or any(_informative(*pair, record.get("floor")) for pair in pairs)


def _informative(a: float, b: float, low: float, high: float, floor: float | None) -> bool:
    """Whether a pair (its sides' values, its difference's bounds) says which side is ahead: not a tie of infinities,
    not a tie at the metric's floor (no learning rate training on either side), not censored on both sides (a
    threshold neither side reaches). A pair censored on one side only still says it (the other reached the threshold)."""
    return (
        not (math.isnan(low) or math.isnan(high))
        and not (math.isinf(a) and a == b)
        and not (floor is not None and a == b == floor)
        and not (low == -math.inf and high == math.inf)
    )


def expected_text(record: dict) -> str:
    m, d = record["margin"], record["direction"]
    if record["log10"]:
        return {
            "higher": f"a/b above x{10**m:.3g}",
            "lower": f"a/b below x{10**-m:.3g}",
            "not_lower": f"a/b above x{10**-m:.3g}",
        }[d]
    return {
        "higher": f"a - b above +{m:g}",
        "lower": f"a - b below -{m:g}",
        "not_lower": f"a - b above -{m:g} (no worse)",
    }[d]


def _metric_text(record: dict) -> str:
    """The metric, or each side's where the two sides read different ones (a probe's two modes on the same runs)."""
    a, b = record["a"].get("metric"), record["b"].get("metric")
    return f"a: {a}; b: {b}" if a and b and a != b else record["metric"]


def pending(record: dict) -> str:
    """What an undecided claim still asks for: its next look, where its runs stop short of it."""
    return f" (its next look, at {record['next_look']} seeds, is not run yet)" if record.get("next_look") else ""


def claim_rows(verdicts: list[dict]) -> list[list[str]]:
    """Rows for a markdown table: claim, sides, metric, rule, effect with interval, outcome."""
    return [
        [
            f"`{r['id']}`: {r['sentence']} ({r['source']})",
            f"a = {r['a']['label']}, b = {r['b']['label']}",
            _metric_text(r),
            expected_text(r),
            effect(r),
            f"**{r['outcome']}**"
            + (" (post hoc: declared after runs it reads, claims.ledger)" if r.get("post_hoc") else "")
            + (" (decided at a look added after its registration)" if r.get("late_look") else "")
            + pending(r)
            + (
                f" (handicapped: {r['handicap']}; the fair comparison is `{r['fair_twin']}`)"
                if r.get("fair_twin")
                else ""
            )
            + (f" (rule history: {r['history']})" if r.get("history") else ""),
        ]
        for r in verdicts
    ]


CLAIM_HEADER = [
    "claim (source)",
    "sides",
    "metric (per seed)",
    "holds if the interval lies",
    "a - b (a/b for ratios): median [interval]",
    "outcome",
]
