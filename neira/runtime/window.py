"""Recent run figures per organ, in memory: what the organ status shows under `metrics.runs`."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from typing import Any

WINDOW = 100  # runs kept per organ
ORGANS = 4096  # organs kept (least recently run dropped)


def _quantile(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


class RunWindow:
    """organ id → its last WINDOW runs (ok, ms, at) and totals since the server started."""

    def __init__(self) -> None:
        self._runs: OrderedDict[str, tuple[deque[tuple[bool, float, float]], list[int]]] = OrderedDict()

    def add(self, organ_id: str, ok: bool, ms: float) -> None:
        """Count one finished run."""
        found = self._runs.get(organ_id)
        if found is None:
            found = self._runs[organ_id] = (deque(maxlen=WINDOW), [0, 0])
            if len(self._runs) > ORGANS:
                self._runs.popitem(last=False)
        else:
            self._runs.move_to_end(organ_id)
        found[0].append((ok, ms, time.time()))
        found[1][0 if ok else 1] += 1

    def figures(self, organ_id: str) -> dict[str, Any]:
        """`{total, ok, failed, window: {runs, error_rate, p50_ms, p99_ms}, last_at}`; zeros before any run."""
        found = self._runs.get(organ_id)
        if found is None:
            return {"total": 0, "ok": 0, "failed": 0, "window": {"runs": 0, "error_rate": 0.0, "p50_ms": None,
                                                                  "p99_ms": None}, "last_at": None}
        recent, (ok, failed) = found
        ms = sorted(r[1] for r in recent)
        errors = sum(1 for r in recent if not r[0])
        return {"total": ok + failed, "ok": ok, "failed": failed,
                "window": {"runs": len(recent), "error_rate": round(errors / len(recent), 4),
                           "p50_ms": round(_quantile(ms, 0.5), 3), "p99_ms": round(_quantile(ms, 0.99), 3)},
                "last_at": recent[-1][2]}
