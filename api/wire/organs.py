"""The organ builder's answers: build, list entry, status, moves."""

from __future__ import annotations

from typing import Any, Literal

from api.wire.base import Wire
from neira.organs.status import (  # noqa: F401 - the status's shapes are the core's own
    HoldInfo,
    OrganCell,
    OrganMetrics,
    OrganStatus,
    RunFigures,
    RunWindow,
    VerdictSummary,
)
from neira.plan import PlanView


class BuildStarted(Wire):
    """`POST /organs/build` (201) and `POST /organs/{id}/rebuild`: `{organ_id, state: "draft"}`."""

    organ_id: str
    state: str


class BuildDryRun(Wire):
    """`POST /organs/build` with `dryrun: true` (200): what the build would do; writes nothing."""

    organ_id: None
    dryrun: bool
    ok: bool
    report: dict[str, Any]
    plan: PlanView | None


class OrganEntry(Wire):
    """One item of `GET /organs`."""

    id: str
    state: str
    template_id: str
    updated_at: float


class OrganApproved(Wire):
    """`POST /organs/{id}/approve` and `/hold`: the organ's state after; `held`, and what its promotion waits for
    when it did not move (a hold released while the verdict is not in)."""

    id: str
    state: str
    held: bool | None = None
    waiting_for: Literal["delay", "analysis", "approval", "gate"] | None = None
    analysis: VerdictSummary | None = None
