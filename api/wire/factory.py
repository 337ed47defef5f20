"""The cells catalog and the factory: template summaries, cell records, the dry-run and the moves."""

from __future__ import annotations

from typing import Any

import msgspec

from api.wire.base import Wire
from neira.cell_records import CellRecord, HistoryEntry, RecordMoved  # noqa: F401 - the core's answers, named here too


class TemplateRef(Wire):
    """`POST /cells`: the id and version registered."""

    id: str
    version: str


class CellSummary(Wire):
    """One item of `GET /cells`: the latest version of a cell template and what names it."""

    id: str
    version: str
    versions: list[str]
    kind: str
    kind_value: str | None = None
    description: str | None = None
    aliases: dict[str, list[str]] = {}
    links: list[str] = []


class OrganTemplateSummary(Wire):
    """One item of `GET /organs/templates`."""

    id: str
    version: str
    versions: list[str]
    cells: list[str]
    description: str | None = None
    aliases: dict[str, list[str]] = {}


class FactoryRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `POST /factory/cells` and its dry-run: the template (or a catalog reference `id` / `id@version`)
    as exactly one of `template`, `tpl`, `spec`; `backend` (default `adapter`), `hitl` (default true)."""

    template: dict[str, Any] | str | None = None
    tpl: dict[str, Any] | str | None = None
    spec: dict[str, Any] | str | None = None
    backend: str = "adapter"
    hitl: bool = True


