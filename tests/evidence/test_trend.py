"""The evidence over time for the panel's chart: p99 and error rate per point, beside the baseline's."""

from __future__ import annotations

from neira.core import Core
from neira.trend import MAX_POINTS, Run, TrendPoint, trend
from tests.evidence.test_analysis import settled, stable_and_slow


def runs(*ms: float, start: float = 100.0, ok: bool = True) -> list[Run]:
    return [Run(at=start + i, ok=ok and m >= 0, ms=abs(m)) for i, m in enumerate(ms)]


def test_no_runs_no_points() -> None:
    assert trend([], runs(1.0), 20) == []


def test_each_point_looks_at_the_last_window_runs_and_the_baseline_up_to_then() -> None:
    canary = runs(1.0, 9.0, 2.0, 3.0, start=100.0)
    baseline = runs(4.0, 5.0, start=100.5)  # at 100.5 and 101.5
    assert trend(canary, baseline, 2) == [
        TrendPoint(at=100.0, runs=1, p99_ms=1.0, error_rate=0.0, baseline_p99_ms=None),
        TrendPoint(at=101.0, runs=2, p99_ms=9.0, error_rate=0.0, baseline_p99_ms=4.0),
        TrendPoint(at=102.0, runs=3, p99_ms=9.0, error_rate=0.0, baseline_p99_ms=5.0),
        TrendPoint(at=103.0, runs=4, p99_ms=3.0, error_rate=0.0, baseline_p99_ms=5.0),
    ]


def test_failed_runs_count_in_the_error_rate_not_in_the_p99() -> None:
    canary = runs(1.0, -50.0, 2.0, -50.0)  # a negative time marks a run that did not complete
    points = trend(canary, [], 4)
    assert [(p.error_rate, p.p99_ms) for p in points] == [(0.0, 1.0), (0.5, 1.0), (0.3333, 2.0), (0.5, 2.0)]


def test_a_long_stint_is_thinned_to_a_chart_keeping_the_newest_run() -> None:
    canary = runs(*[float(i) for i in range(100)])
    points = trend(canary, [], 20)
    assert len(points) <= MAX_POINTS and points[-1].runs == 100 and points[-1].at == canary[-1].at
    assert [p.at for p in points] == sorted(p.at for p in points)


async def test_the_analysis_answer_carries_the_trend_against_the_baseline(ecore: Core) -> None:
    _, slow = await stable_and_slow(ecore, "analysis.t_family.v1")
    result = await settled(ecore, "cell", slow)
    last = result.trend[-1]
    assert last.runs == result.runs and last.baseline_p99_ms is not None
    assert last.p99_ms > last.baseline_p99_ms  # the slow version's chart stands above its baseline
