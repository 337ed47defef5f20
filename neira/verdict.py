"""The canary verdict (contract §7), a pure function of the measurements: pass, fail, running or inconclusive,
with reasons that name the metric, the threshold and the value. Too little data after `max_wait_ms` is
`inconclusive`, never a silent pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from neira.sample_runs import percentile
from neira.structs import Base
from neira.templates import AnalysisPolicy
from neira.trend import TrendPoint

VerdictName = Literal["running", "pass", "fail", "inconclusive"]
P99_FLOOR_MS = 5.0  # p99s below this are compared as this: sub-millisecond jitter is not a regression


class Measurement(Base, frozen=True):
    """One measured run: completed or not, whether its output met the sample's `expect`, its time."""

    ok: bool
    passed: bool
    ms: float


class Baseline(Base):
    """The family's stable version the canary is compared with."""

    id: str
    p99_ms: float


class Thresholds(Base):
    """The thresholds in force, every field shown."""

    min_runs: int
    max_error_rate: float
    max_p99_ratio: float
    max_wait_ms: int


class Analysis(Base):
    """`GET …/analysis`: the verdict, the figures it rests on, and why."""

    verdict: VerdictName
    runs: int
    errors: int
    error_rate: float
    p50_ms: float
    p99_ms: float
    baseline: Baseline | None
    divergence: float
    thresholds: Thresholds
    reasons: list[str]
    stage: str | None = None
    since: float | None = None
    trend: list[TrendPoint] = []  # p99 and error rate over the stint, beside the baseline's, for a chart


def thresholds_of(policy: AnalysisPolicy) -> Thresholds:
    """The policy as the answer shows it."""
    return Thresholds(min_runs=policy.min_runs, max_error_rate=policy.max_error_rate,
                      max_p99_ratio=policy.max_p99_ratio, max_wait_ms=policy.max_wait_ms)


def judge(runs: Sequence[Measurement], t: Thresholds, baseline: Baseline | None, waited_ms: float,
          measuring: bool) -> tuple[VerdictName, list[str]]:
    """The verdict and its reasons. `measuring`: the subject is in a stage under analysis, so more data comes."""
    errors = sum(not m.ok for m in runs)
    reasons: list[str] = []
    if len(runs) < t.min_runs and errors / t.min_runs > t.max_error_rate:  # no clean runs to come could pass it
        rate = errors / len(runs)
        reasons.append(f"error_rate {rate:.3f} > max_error_rate {t.max_error_rate:g} ({errors} of {len(runs)} runs failed)")
    if len(runs) < t.min_runs:
        if reasons:
            return "fail", reasons
        if waited_ms >= t.max_wait_ms or not measuring:
            why = f"after max_wait_ms {t.max_wait_ms}" if measuring else "and it is not under analysis now"
            return "inconclusive", [f"runs {len(runs)} < min_runs {t.min_runs} {why}"]
        return "running", [f"runs {len(runs)} < min_runs {t.min_runs}: measuring ({waited_ms:.0f} of max_wait_ms {t.max_wait_ms})"]
    rate = errors / len(runs)
    if rate > t.max_error_rate:
        reasons.append(f"error_rate {rate:.3f} > max_error_rate {t.max_error_rate:g} ({errors} of {len(runs)} runs failed)")
    if baseline is not None:
        p99 = percentile([m.ms for m in runs if m.ok], 0.99)
        ratio = max(p99, P99_FLOOR_MS) / max(baseline.p99_ms, P99_FLOOR_MS)
        if ratio > t.max_p99_ratio:
            reasons.append(f"p99_ratio {ratio:.2f} > max_p99_ratio {t.max_p99_ratio:g} "
                           f"(p99 {p99:.1f} ms against {baseline.id}'s {baseline.p99_ms:.1f} ms)")
    if reasons:
        return "fail", reasons
    passing = [f"error_rate {rate:.3f} ≤ max_error_rate {t.max_error_rate:g}", f"runs {len(runs)} ≥ min_runs {t.min_runs}"]
    if baseline is None:
        passing.append("no baseline: p99 is not compared (the family has no stable version)")
    return "pass", passing


def analyse(runs: Sequence[Measurement], t: Thresholds, baseline: Baseline | None, waited_ms: float,
            measuring: bool, stage: str | None, since: float | None) -> Analysis:
    """The whole answer over the measurements of one stage."""
    verdict, reasons = judge(runs, t, baseline, waited_ms, measuring)
    errors = sum(not m.ok for m in runs)
    completed = [m for m in runs if m.ok]
    times = [m.ms for m in completed]
    return Analysis(verdict=verdict, runs=len(runs), errors=errors, error_rate=round(errors / len(runs), 4) if runs else 0.0,
                    p50_ms=percentile(times, 0.5), p99_ms=percentile(times, 0.99), baseline=baseline,
                    divergence=round(sum(not m.passed for m in completed) / len(completed), 4) if completed else 0.0,
                    thresholds=t, reasons=reasons, stage=stage, since=since)
