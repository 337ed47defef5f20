"""The sandbox limits from the environment: defaults, overrides, refusals, and the wall clock kept under the
run's own time limit."""

from __future__ import annotations

import pytest

from neira.config import settings_from_env
from neira.runtime.sandbox.limits import Limits, limits_of


@pytest.mark.parametrize(("env", "expected"), [
    ({}, Limits(fuel=10_000_000, time_ms=1000, memory_bytes=64 << 20, output_bytes=1 << 20)),
    ({"NEIRA_SANDBOX_FUEL": "5000", "NEIRA_SANDBOX_TIMEOUT_MS": "250", "NEIRA_SANDBOX_MEMORY_MB": "8",
      "NEIRA_SANDBOX_OUTPUT_BYTES": "4096"}, Limits(fuel=5000, time_ms=250, memory_bytes=8 << 20, output_bytes=4096)),
    ({"NEIRA_SANDBOX_FUEL": "lots", "NEIRA_SANDBOX_MEMORY_MB": "0", "NEIRA_SANDBOX_TIMEOUT_MS": "-5"},
     Limits(fuel=10_000_000, time_ms=1000, memory_bytes=64 << 20, output_bytes=1 << 20)),  # kept, with a warning
    ({"NEIRA_SANDBOX_TIMEOUT_MS": "5000", "NEIRA_RUN_TIMEOUT_MS": "300"},
     Limits(fuel=10_000_000, time_ms=300, memory_bytes=64 << 20, output_bytes=1 << 20)),  # never past the run's
])
def test_limits_from_the_environment(env: dict[str, str], expected: Limits) -> None:
    assert limits_of(settings_from_env(env)) == expected


def test_the_dryrun_shape_of_the_limits() -> None:
    assert Limits().report() == {"fuel": 10_000_000, "time_ms": 1000, "memory_mb": 64, "output_bytes": 1 << 20}
