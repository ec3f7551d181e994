"""Paired comparisons for the benchmarks: one rule for every script.

Each repeat measures both sides back to back, so load that drifts over a run (a shared box's neighbours)
cancels in the ratio of the pair. A figure is then the median of the paired ratios, with their spread, and
a point is called ahead or behind only when every repeat says so; otherwise the repeats disagree and the
difference is within the run's noise.
"""

from __future__ import annotations

import math
import statistics


def ratios(ours: list[dict], theirs: list[dict], field: str) -> list[float]:
    """Per repeat: ours[i][field] / theirs[i][field]; NaN where either is missing or zero."""
    out = []
    for a, b in zip(ours, theirs, strict=True):
        x, y = a.get(field, math.nan), b.get(field, math.nan)
        out.append(x / y if y and not (math.isnan(x) or math.isnan(y)) else math.nan)
    return out


def span(values: list[float]) -> tuple[float, float, float]:
    """(median, min, max) of the values that are numbers; NaNs if none is."""
    v = [x for x in values if not math.isnan(x)]
    if not v:
        return math.nan, math.nan, math.nan
    return statistics.median(v), min(v), max(v)


def standing(values: list[float], higher_is_better: bool = True) -> str:
    """"ahead" when every repeat's ratio is on the good side of 1 (ties count as good), "behind" when every
    one is on the bad side, "noise" when they disagree; "no answers" when a repeat has no ratio."""
    if not values or any(math.isnan(x) for x in values):
        return "no answers"
    good = [(x >= 1.0) if higher_is_better else (x <= 1.0) for x in values]
    return "ahead" if all(good) else "behind" if not any(good) else "noise"


def spread(values: list[float], resamples: int = 4000) -> tuple[float, tuple, tuple]:
    """Median, interquartile range, and a 95% bootstrap interval of the median."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    rng = np.random.default_rng(0)
    meds = np.median(rng.choice(v, size=(resamples, len(v)), replace=True), axis=1)
    return (float(np.median(v)), tuple(float(x) for x in np.percentile(v, [25, 75])),
            tuple(float(x) for x in np.percentile(meds, [2.5, 97.5])))


def rotation(names: list[str], r: int) -> list[str]:
    """The order servers run in within repeat `r`: `names` rotated by r, so that over len(names) repeats each one
    runs once in each place. Alternating forward and back (as before) left the middle one of three in the middle
    every time, bare among them: a place's effect (what ran just before, how warm the CPU is) then falls on bare alone,
    and two identical bare servers once came out 0.84x apart in all five repeats (2026-12-03 22:38)."""
    i = r % len(names) if names else 0
    return names[i:] + names[:i]

