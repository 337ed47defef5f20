"""The canary verdict as a pure function of measurements, thresholds, baseline and waiting time."""

from __future__ import annotations

import pytest

from neira.verdict import Baseline, Measurement, Thresholds, judge

T = Thresholds(min_runs=20, max_error_rate=0.01, max_p99_ratio=1.5, max_wait_ms=1000)
OK, ERR = Measurement(ok=True, passed=True, ms=1.0), Measurement(ok=False, passed=False, ms=0.0)


@pytest.mark.parametrize(("runs", "baseline", "waited", "measuring", "verdict", "reason"), [
    ([OK] * 20, None, 10, True, "pass", "error_rate 0.000 ≤ max_error_rate 0.01"),
    ([OK] * 5, None, 10, True, "running", "runs 5 < min_runs 20: measuring (10 of max_wait_ms 1000)"),
    ([OK] * 5, None, 1000, True, "inconclusive", "runs 5 < min_runs 20 after max_wait_ms 1000"),
    ([], None, 0, False, "inconclusive", "runs 0 < min_runs 20 and it is not under analysis now"),
    ([OK] * 3 + [ERR], None, 10, True, "fail", "error_rate 0.250 > max_error_rate 0.01 (1 of 4 runs failed)"),
    ([OK] * 199 + [ERR], None, 10, True, "pass", "error_rate 0.005 ≤ max_error_rate 0.01"),
    ([Measurement(ok=True, passed=True, ms=30.0)] * 20, Baseline(id="cell-1", p99_ms=10.0), 10, True, "fail",
     "p99_ratio 3.00 > max_p99_ratio 1.5 (p99 30.0 ms against cell-1's 10.0 ms)"),
    ([Measurement(ok=True, passed=True, ms=0.9)] * 20, Baseline(id="cell-1", p99_ms=0.1), 10, True, "pass",
     "error_rate 0.000 ≤ max_error_rate 0.01"),  # both under the 5 ms floor: jitter, not a regression
])
def test_judge(runs: list[Measurement], baseline: Baseline | None, waited: float, measuring: bool, verdict: str, reason: str) -> None:
    assert (lambda v, r: (v, r[0]))(*judge(runs, T, baseline, waited, measuring)) == (verdict, reason)
