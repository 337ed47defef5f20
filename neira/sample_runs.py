"""Running a template's samples: one run per sample through the runtime, each judged against its `expect`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from neira.runtime.results import RunResult
from neira.samples import Sample, judge
from neira.structs import Base

RunOne = Callable[[Any], Awaitable[RunResult]]  # runs one sample input (wire form) through a cell or organ


class SampleResult(Base, omit_defaults=True):
    """One sample run: passed or not, its time, its output type, and why it failed."""

    sample: int
    passed: bool
    ms: float
    output_type: str | None = None
    reason: str | None = None
    error: str | None = None  # the run's error code when the run itself failed


def _output(result: RunResult) -> Any:
    return msgspec.to_builtins(result.output) if result.output is not None else None


def judge_run(index: int, sample: Sample, result: RunResult) -> SampleResult:
    """The verdict on one run of one sample."""
    output = _output(result)
    error = f"{result.error.code}: {result.error.reason}" if result.error is not None else None
    reason = judge(sample.expect, result.ok, output, result.ms, error)
    return SampleResult(sample=index, passed=reason is None, ms=result.ms,
                        output_type=output.get("type") if isinstance(output, dict) else None, reason=reason,
                        error=result.error.code if result.error is not None else None)


async def run_samples(run: RunOne, samples: Sequence[Sample]) -> list[SampleResult]:
    """Every sample once, in order (one at a time: samples share the pool with real traffic)."""
    return [judge_run(i, s, await run(s.input)) for i, s in enumerate(samples)]


def p99(values: Sequence[float]) -> float:
    """The 99th percentile (nearest rank); 0 for no values."""
    return percentile(values, 0.99)


def percentile(values: Sequence[float], q: float) -> float:
    """The `q` quantile by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-int(q * 1000) * len(ordered) // 1000))  # ceil(q * n) without float error
    return round(ordered[min(rank, len(ordered)) - 1], 3)
