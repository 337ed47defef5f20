"""The wire shapes of a run (contract §6): the trace, the cell error and the result."""

from __future__ import annotations

import msgspec

from neira.runtime.payloads import AnyPayload

ERROR_CODES = ("cell_failed", "timeout", "type_mismatch", "input_invalid", "sandbox_limit")
LIMITS = ("fuel", "time", "memory", "output")  # what `limit` names on a `sandbox_limit`


class CellError(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Why a run stopped: `code` (one of ERROR_CODES), which cell, why; `limit` (fuel | time | memory | output)
    for a `sandbox_limit`."""

    code: str
    cell: str
    reason: str
    limit: str | None = None


class TraceEntry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One cell of a run: its template id, record, implementation, time, outcome and output type."""

    cell: str
    record_id: str | None
    impl: str
    ms: float
    ok: bool
    output_type: str | None
    error: CellError | None = None


class RunResult(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """`{ok, run_id, output, trace, ms, error?}`; `organ_id` and `pathway` say what ran, for organ runs."""

    ok: bool
    run_id: str
    output: AnyPayload | None
    trace: list[TraceEntry]
    ms: float
    error: CellError | None = None
    organ_id: str | None = None
    pathway: str | None = None
