"""The organ builder's answers: build, list entry, status, moves."""

from __future__ import annotations

from typing import Any, Literal

from api.wire.base import Wire
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


class OrganCell(Wire):
    """A cell of an organ and the state of the record it uses."""

    id: str
    record_id: str | None
    state: str | None


class RunFigures(Wire):
    """The organ's recent runs (the status's `metrics.runs`)."""

    total: int
    ok: int
    failed: int
    window: dict[str, Any]
    last_at: float | None


class OrganMetrics(Wire):
    """A build's figures: attempts, stage times, durations, the next stage and when (or, while the gate holds
    it, the time left in its stage)."""

    attempts: int
    stage_times: dict[str, float]
    build_started_at: float | None
    build_finished_at: float | None
    build_duration_ms: float | None
    elapsed_ms: float | None
    next_stage: str | None
    next_stage_at: float | None
    held_left_ms: float | None = None
    runs: RunFigures | None = None


class OrganStatus(Wire):
    """`GET /organs/{id}/status`. `waiting_for`: `delay` (its stage's time), `gate` (held by the closed gate
    `held_by`), or null when it does not progress by itself."""

    id: str
    state: str
    template_id: str
    auto: bool
    cells: list[OrganCell]
    metrics: OrganMetrics
    updated_at: float
    waiting_for: Literal["delay", "analysis", "approval", "gate"] | None = None
    held_by: str | None = None
