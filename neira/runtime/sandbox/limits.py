"""Per-run limits of the sandboxed backends, and the error a run past one of them ends with."""

from __future__ import annotations

from typing import Literal

import msgspec

from neira.config import (
    DEFAULT_SANDBOX_FUEL,
    DEFAULT_SANDBOX_MEMORY_MB,
    DEFAULT_SANDBOX_OUTPUT_BYTES,
    DEFAULT_SANDBOX_TIMEOUT_MS,
    Settings,
)

LimitName = Literal["fuel", "time", "memory", "output"]


class Limits(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What one sandboxed run may use: instructions (fuel), wall-clock ms, memory bytes, output bytes."""

    fuel: int = DEFAULT_SANDBOX_FUEL
    time_ms: int = DEFAULT_SANDBOX_TIMEOUT_MS
    memory_bytes: int = DEFAULT_SANDBOX_MEMORY_MB << 20
    output_bytes: int = DEFAULT_SANDBOX_OUTPUT_BYTES

    def report(self) -> dict[str, int]:
        """The limits as the dry-run shows them."""
        return {"fuel": self.fuel, "time_ms": self.time_ms, "memory_mb": self.memory_bytes >> 20,
                "output_bytes": self.output_bytes}


def limits_of(settings: Settings) -> Limits:
    """The limits the settings (NEIRA_SANDBOX_*) give; the wall clock never past the run's own limit."""
    return Limits(fuel=settings.sandbox_fuel, time_ms=min(settings.sandbox_timeout_ms, settings.run_timeout_ms),
                  memory_bytes=settings.sandbox_memory_mb << 20, output_bytes=settings.sandbox_output_bytes)


REASONS: dict[str, str] = {
    "fuel": "the sandbox used up its fuel (instruction budget)",
    "time": "the sandbox went past its wall-clock deadline",
    "memory": "the sandbox went past its memory limit",
    "output": "the sandbox's answer is larger than the output limit",
}


class SandboxLimit(Exception):
    """A sandboxed run went past one of its limits: `sandbox_limit`, naming which."""

    def __init__(self, limit: LimitName) -> None:
        super().__init__(REASONS[limit])
        self.limit: LimitName = limit


class SandboxError(Exception):
    """Sandboxed code failed on its own (an error, a trap, an answer that is no payload): `cell_failed`."""
