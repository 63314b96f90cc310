"""Whether a claim's effect differs between two datasets: the difference of its two effects, with an interval.

The runs of two datasets are not paired (seed 3 on one shares nothing with seed 3 on the other), so the per-seed
differences a - b of each are two independent samples, and the difference of their locations gets the unpaired
distribution-free interval (stats.shift_interval: Hodges-Lehmann with the Mann-Whitney interval; a censored seed kept
within its bounds). An outcome that
moves from one dataset to the other is a threshold crossed; a difference whose interval excludes zero is a tested one.

The interval is exact for a pure shift: two samples of one shape, one moved. Samples of a grid count (a few whole
numbers, many ties) or of unequal spread are not that, and its coverage there is approximate; with the looks' stops
(each dataset's runs end at the look that decided its claim) this is why the report calls these intervals exploratory.
"""

from __future__ import annotations

import math

from bn_study.claims.verdicts import floor_ties, measurable
from bn_study.tables.stats import shift_interval

COLUMNS = (
    "difference",
    "difference_high",
    "low",
    "high",
    "coverage",
    "seeds_first",
    "seeds_second",
    "floor_ties_first",
    "floor_ties_second",
    "excludes_zero",
)


def _bounds(record: dict) -> tuple[list[float], list[float]]:
    pairs = [p for p in record["per_seed"].values() if not math.isnan(float(p["d"]))]
    return [float(p["d"]) for p in pairs], [float(p.get("d_high", p["d"])) for p in pairs]


def interaction(first: dict, second: dict) -> dict:
    """The second dataset's effect minus the first's (verdict records of one claim), in the claim's units (log10 for ratios);
    none where either cannot tell its sides apart (`verdicts.measurable`: its effect is no number to subtract)."""
    both = measurable(first) and measurable(second) and first["per_seed"] and second["per_seed"]
    firsts, seconds = _bounds(first), _bounds(second)
    interval = shift_interval(*seconds, *firsts) if both else None
    low, high = (interval.low, interval.high) if interval and interval.is_ci else (math.nan, math.nan)
    median = interval.median if interval else math.nan
    return {
        "difference": median,
        # Where a censored seed leaves the estimate a range: from `difference` to this; else the same.
        "difference_high": median if interval is None or interval.median_high is None else interval.median_high,
        "low": low,
        "high": high,
        "coverage": interval.coverage if interval else math.nan,
        "seeds_first": len(firsts[0]) if interval else 0,
        "seeds_second": len(seconds[0]) if interval else 0,
        # Pairs where neither side trains: differences of 0 in the samples, which say nothing of a side.
        "floor_ties_first": floor_ties(first),
        "floor_ties_second": floor_ties(second),
        "excludes_zero": bool(low > 0 or high < 0),
    }
