"""Canary analysis (contract §7): the verdict of a cell record or an organ, with the figures and reasons."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath

from api.controllers.common import NeiraRequest
from neira.verdict import Analysis


class AnalysisController(Controller):
    """`GET /factory/cells/{id}/analysis`, `GET /organs/{id}/analysis`."""

    tags = ["analysis"]

    @get("/factory/cells/{record_id:str}/analysis")
    async def cell(self, request: NeiraRequest, record_id: FromPath[str]) -> Analysis:
        """`{verdict: running|pass|fail|inconclusive, runs, errors, error_rate, p50_ms, p99_ms, baseline, divergence, thresholds, reasons}`."""
        return await request.core.analysis.of("cell", record_id)

    @get("/organs/{organ_id:str}/analysis")
    async def organ(self, request: NeiraRequest, organ_id: FromPath[str]) -> Analysis:
        """The organ's verdict, as for a cell record (its samples, else its cells')."""
        return await request.core.analysis.of("organ", organ_id)


CONTROLLERS = [AnalysisController]
