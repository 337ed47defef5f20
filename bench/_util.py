"""Shared benchmark helpers: machine description, percentiles, a results file, a server subprocess."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("NEIRA_BENCH_RESULTS") or ROOT / "docs" / "bench-results")  # run_all --quick: a temp dir
sys.path.insert(0, str(ROOT))


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    import litestar
    import uvicorn

    return {
        "cpu_count": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "litestar": litestar.__version__ if hasattr(litestar, "__version__") else "?",
        "uvicorn": uvicorn.__version__,
    }


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0..100) by nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values: list[float]) -> dict[str, float]:
    """p50, p99, mean of a list of numbers."""
    return {"p50": percentile(values, 50), "p99": percentile(values, 99), "mean": statistics.fmean(values) if values else float("nan")}


def save(name: str, data: dict) -> Path:
    """Write a benchmark's results as JSON under docs/bench-results/."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2, ensure_ascii=False) + "\n")
    return path


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a command and return its output (raises on failure)."""
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
