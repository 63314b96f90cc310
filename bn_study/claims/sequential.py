"""Seeds on demand: when a claim is judged, and how strict each look is so that its error holds across the looks.

A claim is judged at looks of 5, 10, 20, 40, 80 seeds, and at its seed cap (default 20, from 5 to 100), and stops
at the first look that decides it. Each decision (holds, contradicted, either bound of negligible) is a one-sided
sign test on the paired per-seed differences: at a look of n seeds it is reached when at least c(n) of them lie
beyond its bound. The thresholds form an exact group-sequential sign test, computed by enumerating the counts over
the looks (seeds are added to the same cells, so the counts are nested), with the one-sided error of each decision
at most ALPHA = (1 - CONFIDENCE) / 2 over all its looks together, whatever the distribution of the differences
(if the true median sits on the bound, each difference is beyond it with chance 1/2, independently). The error is
spent so that every look can decide: the first look spends what deciding on all of its seeds costs (1/32 at 5
seeds: at 5 seeds no other decision exists), or an even share where that is more (a study that plans 10 seeds, as
fig1 does, has its first look at 10), and the rest is spread evenly over the later looks, any part a look
cannot use carried to the next. At looks of 5, 10, 20 that is 5 of 5, 9 of 10 and 16 of 20 (3.9% in all), so an
interval is [min, max] at 5 seeds, the 2nd smallest to the 2nd largest at 10, the 5th at 20.

Why this and not an anytime-valid sequence: a confidence sequence valid at every seed count cannot decide at 5
seeds at all (a sign-test betting martingale reaches at most 2^5 = 32 < 1/ALPHA only by staking everything on the
first sign), and the looks are few and declared, which is what a group-sequential split is built for. The
thresholds depend only on the look sizes, never on the data, and the intervals are repeated confidence intervals:
their coverage holds simultaneously over the looks (`coverage`).
"""

from __future__ import annotations

import math
from functools import lru_cache

from bn_study.claims.metrics import ClaimError
from bn_study.tables.stats import CONFIDENCE

ALPHA = (1 - CONFIDENCE) / 2
FIRST_LOOK = 5
DEFAULT_CAP = 20
CAP_RANGE = (5, 100)
# When looks beyond the first came in (commit 15679e1): a claim registered before it was registered for one look, so a
# verdict it reaches at a later look is marked (verdicts.json's late_look; REPORT's double dagger).
SINCE = "2026-12-06T02:53:41+00:00"


def looks(cap: int = DEFAULT_CAP, first: int = FIRST_LOOK) -> tuple[int, ...]:
    """The seed counts a claim with this cap is judged at: `first` (the seeds its study's plan gives every configuration,
    5 for most), doubling, and the cap itself, less any look that could not decide under the error split (a cap of 7: 5
    of 5 decides at the first look, and 7 of 7 is then impossible)."""
    sizes, n = [], max(first, FIRST_LOOK)
    while n < cap:
        sizes.append(n)
        n *= 2
    sizes = (*sizes, cap)
    while True:
        dead = [n for n, p in zip(sizes, first_crossings(sizes)) if p == 0]
        if not dead:
            return sizes
        sizes = tuple(n for n in sizes if n != dead[0])


def _step(state: dict[int, float], added: int) -> dict[int, float]:
    """The count distribution after `added` more fair coin flips."""
    out: dict[int, float] = {}
    for count, p in state.items():
        for k in range(added + 1):
            out[count + k] = out.get(count + k, 0.0) + p * math.comb(added, k) / 2**added
    return out


@lru_cache(maxsize=None)
def thresholds(sizes: tuple[int, ...]) -> tuple[int, ...]:
    """For looks of `sizes` (increasing counts of usable pairs), the count c of differences beyond a bound that decides
    at each look (n + 1: that look cannot decide). See the module doc for how the error is spent."""
    if not sizes:
        return ()
    # The first look spends at least what deciding on all of its seeds costs, and at least an even share (a first look of
    # 10 seeds, as fig1 plans, then decides at 9 of 10 rather than only at 10 of 10).
    first = max(0.5 ** sizes[0], ALPHA / len(sizes))
    budgets = [ALPHA if len(sizes) == 1 else first + (ALPHA - first) * j / (len(sizes) - 1) for j in range(len(sizes))]
    if (
        0.5 ** sizes[0] > ALPHA
    ):  # fewer than 5 pairs at the first look: it cannot decide, the later looks share the error
        budgets = [ALPHA * j / max(1, len(sizes) - 1) for j in range(len(sizes))]
    out, spent, state, previous = [], 0.0, {0: 1.0}, 0
    for n, budget in zip(sizes, budgets):
        state = _step(state, n - previous)
        previous = n
        c = n + 1
        while c - 1 >= 0 and spent + sum(p for k, p in state.items() if k >= c - 1) <= budget + 1e-12:
            c -= 1
        spent += sum(p for k, p in state.items() if k >= c)
        state = {k: p for k, p in state.items() if k < c}
        out.append(c)
    return tuple(out)


def first_crossings(sizes: tuple[int, ...]) -> tuple[float, ...]:
    """The chance, at the bound, that a decision is first reached at each look of `sizes`."""
    out, state, previous = [], {0: 1.0}, 0
    for n, c in zip(sizes, thresholds(sizes)):
        state = _step(state, n - previous)
        previous = n
        out.append(sum(p for k, p in state.items() if k >= c))
        state = {k: p for k, p in state.items() if k < c}
    return tuple(out)


def coverage(sizes: tuple[int, ...]) -> float:
    """The coverage of the intervals over all the looks together: each side errs at most this much over all looks."""
    return 1 - 2 * sum(first_crossings(sizes))


def p_value(sizes: tuple[int, ...], counts: tuple[int, ...]) -> float:
    """The stagewise-ordered sequential p-value of one decision, given its count beyond the bound at each look judged
    (`counts`, as many as looks judged; the last is where the procedure stopped): the chance at the bound of deciding
    at an earlier look, or at this one with at least this count. At most the error spent by the look that decides."""
    cs = thresholds(sizes)
    state, previous, p = {0: 1.0}, 0, 0.0
    for j, (n, count) in enumerate(zip(sizes, counts)):
        state = _step(state, n - previous)
        previous = n
        if j == len(counts) - 1:
            return p + sum(q for k, q in state.items() if k >= count)
        p += sum(q for k, q in state.items() if k >= cs[j])
        state = {k: q for k, q in state.items() if k < cs[j]}
    return 1.0


def check_cap(claim_id: str, cap) -> None:
    low, high = CAP_RANGE
    if isinstance(cap, bool) or not isinstance(cap, int) or not low <= cap <= high:
        raise ClaimError(
            f"claims.{claim_id}.seed_cap={cap}: must be a whole number of seeds from {low} to {high} "
            f"(the first look judges {FIRST_LOOK})"
        )
