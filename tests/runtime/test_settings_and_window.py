"""The run settings from the environment, and the per-organ window of recent runs."""

from __future__ import annotations

import os

import pytest

from neira.config import settings_from_env
from neira.runtime.window import WINDOW, RunWindow


@pytest.mark.parametrize(("env", "expected"), [
    ({}, (0, 64, 2000, os.cpu_count() or 1)),
    ({"NEIRA_RUN_WORKERS": "3", "NEIRA_RUN_QUEUE": "0", "NEIRA_RUN_TIMEOUT_MS": "150"}, (3, 0, 150, 3)),
    ({"NEIRA_RUN_WORKERS": "0", "NEIRA_RUN_QUEUE": "-1", "NEIRA_RUN_TIMEOUT_MS": "soon"}, (0, 64, 2000, os.cpu_count() or 1)),
])
def test_run_settings(env: dict[str, str], expected: tuple[int, int, int, int]) -> None:
    s = settings_from_env(env)
    assert (s.run_workers, s.run_queue, s.run_timeout_ms, s.workers) == expected


def test_the_window_keeps_the_last_runs_and_totals() -> None:
    w = RunWindow()
    assert w.figures("organ-1") == {"total": 0, "ok": 0, "failed": 0,
                                    "window": {"runs": 0, "error_rate": 0.0, "p50_ms": None, "p99_ms": None}, "last_at": None}
    for i in range(WINDOW + 50):
        w.add("organ-1", i % 10 != 0, float(i))
    f = w.figures("organ-1")
    assert (f["total"], f["ok"], f["failed"]) == (150, 135, 15)
    assert f["window"] == {"runs": WINDOW, "error_rate": 0.1, "p50_ms": 100.0, "p99_ms": 149.0}
    assert w.figures("organ-2")["total"] == 0
