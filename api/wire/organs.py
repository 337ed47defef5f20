"""The organ builder's answers: build, list entry, status, moves."""

from __future__ import annotations

from api.wire.base import Wire
from neira.organs.status import (  # noqa: F401 - the status's and the moves' shapes are the core's own
    BuildStarted,
    HoldInfo,
    OrganCell,
    OrganMetrics,
    OrganMoved,
    OrganStatus,
    RunFigures,
    RunWindow,
    VerdictSummary,
)
from neira.organs.plan import BuildDryRun  # noqa: F401 - the dry-run is the core's own


class OrganEntry(Wire):
    """One item of `GET /organs`."""

    id: str
    state: str
    template_id: str
    updated_at: float
