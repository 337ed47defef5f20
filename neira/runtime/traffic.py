"""What the runtime tells the evidence about traffic, and what it asks it: a `Served` run (a caller got this
answer) for shadowing and the immune system's error rate, and a `Guard` that says which records are taken out
of traffic (quarantined). The runtime knows neither the shadow nor the immune system; they plug in here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from neira.runtime.payloads import AnyPayload
from neira.runtime.results import RunResult


@dataclass(frozen=True)
class Served:
    """A run whose answer went to a caller (a route, the chat, the CLI): what ran, on what, and the answer."""

    kind: str  # cell | organ
    id: str  # the record or organ that answered
    state: str  # its state when it ran
    template_id: str
    payload: AnyPayload
    pathway: str | None
    result: RunResult


ServedListener = Callable[[Served], None]
"""Called on the loop once the answer is ready; must not block (spawn work, never await it)."""


class Guard(Protocol):
    """Which records get no traffic. `generation` changes whenever the answer may have changed."""

    generation: int

    def blocked(self, record_id: str) -> str | None:
        """Why the record gets no traffic now, or None."""
        ...


class OpenGuard:
    """No record is blocked (until the immune system plugs in its own)."""

    generation = 0

    def blocked(self, record_id: str) -> str | None:
        """Never blocked."""
        return None
