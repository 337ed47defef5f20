"""The evidence over time: a short series of p99 and error rate of a subject's stint, beside its baseline's,
for the organs panel's chart. A pure function of the analysis rows, so it needs no state of its own."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from neira.sample_runs import percentile
from neira.structs import Base

MAX_POINTS = 24  # enough for a small chart; the window holds at most a few hundred rows


class Run(Base, frozen=True):
    """One measured run as the trend needs it: when, whether it completed, how long it took."""

    at: float
    ok: bool
    ms: float


class TrendPoint(Base, frozen=True):
    """The figures as they stood at `at`, over the last `window` runs up to then."""

    at: float
    runs: int
    p99_ms: float
    error_rate: float
    baseline_p99_ms: float | None = None


def trend(runs: Sequence[Run], baseline: Sequence[Run], window: int) -> list[TrendPoint]:
    """Points at up to MAX_POINTS evenly spaced runs (the newest always among them); each one's p99 and error
    rate are over the last `window` runs up to that point, the baseline's p99 over its runs up to the same time."""
    if not runs:
        return []
    window = max(1, window)
    n = len(runs)
    step = max(1, -(-n // MAX_POINTS))
    ends = list(range(n - 1, -1, -step))[::-1]  # the newest run is always a point
    base_at = [b.at for b in baseline]
    points = []
    for end in ends:
        last = runs[max(0, end + 1 - window):end + 1]
        done = [r.ms for r in last if r.ok]
        upto = bisect_right(base_at, runs[end].at)
        base = [b.ms for b in baseline[max(0, upto - window):upto] if b.ok]
        points.append(TrendPoint(at=runs[end].at, runs=end + 1, p99_ms=percentile(done, 0.99),
                                 error_rate=round(1 - len(done) / len(last), 4),
                                 baseline_p99_ms=percentile(base, 0.99) if base else None))
    return points
