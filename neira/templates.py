"""CellTemplate and OrganTemplate (schema v1) and the rules the contract sets for them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

import msgspec

from neira.errors import InvalidTemplate
from neira.samples import check_samples
from neira.structs import Base

ID_RE = re.compile(r"^[a-z][a-z0-9_.\-]{0,127}\Z")
ORGAN_ID_RE = re.compile(r"^organ\.[a-z0-9_\-]+(\.[a-z0-9_\-]+)*\.v(0|[1-9]\d*)\Z")
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?\Z"
)
SCHEMAS = ("v1", "1.0.0")
KIND_FIELDS = ("analysis_type", "action_type", "memory_type")
STAGES = ("draft", "canary", "experimental", "stable")


def body_kind(body: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, kind value) of a cell template body not yet parsed, e.g. ("analysis", "summarize"); ("", "") when it
    names none. The one place a raw body's kind is read (a parsed template has `kind` and `kind_value`)."""
    for field in KIND_FIELDS:
        if body.get(field):
            return field.removesuffix("_type"), str(body[field])
    return "", ""


class AnalysisPolicy(Base, omit_defaults=True):
    """Canary analysis thresholds (contract §7); a template's `policies.analysis` overrides the defaults."""

    min_runs: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 20
    max_error_rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.01
    max_p99_ratio: Annotated[float, msgspec.Meta(gt=0)] = 1.5
    max_wait_ms: Annotated[int, msgspec.Meta(ge=1)] = 30_000


class TrainingPolicy(Base, omit_defaults=True):
    """When training has converged: the last `consecutive` iterations accepted with score ≥ `min_score`."""

    min_score: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.95
    consecutive: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3


class CellPolicies(Base, omit_defaults=True):
    """A cell's evidence policies: analysis thresholds and the training policy."""

    analysis: AnalysisPolicy = msgspec.field(default_factory=AnalysisPolicy)
    training: TrainingPolicy = msgspec.field(default_factory=TrainingPolicy)


class CellTemplate(Base, omit_defaults=True):
    """A cell descriptor: its kind is whichever one of the three `*_type` fields is set."""

    id: str
    version: str
    links: list[str] = []
    metadata: dict[str, Any] = {}
    analysis_type: str | None = None
    action_type: str | None = None
    memory_type: str | None = None
    confidence_threshold: float | None = None
    description: str | None = None
    policies: CellPolicies | None = None

    @property
    def kind(self) -> str:
        """`analysis`, `action` or `memory`."""
        for field in KIND_FIELDS:
            if getattr(self, field) is not None:
                return field.removesuffix("_type")
        return ""

    @property
    def kind_value(self) -> str:
        """The value of the kind field, e.g. `summary`."""
        return getattr(self, f"{self.kind}_type") if self.kind else ""


class Pathway(Base):
    """An ordered route through some of the organ's cells."""

    name: str
    cells: list[str]


class OrganPolicies(Base):
    """Where an organ build starts and whether humans approve its stages."""

    stage: str = "draft"
    hitl: bool = True
    analysis: AnalysisPolicy | msgspec.UnsetType = msgspec.UNSET  # unset is left out, so old digests hold


class OrganTemplate(Base, omit_defaults=True):
    """A pipeline of cells."""

    id: str
    version: str
    cells: list[str]
    roles: list[str] = []
    pathways: list[Pathway] = []
    policies: OrganPolicies = msgspec.field(default_factory=OrganPolicies)
    metadata: dict[str, Any] = {}
    description: str | None = None


def semver_key(version: str) -> tuple:
    """A sort key for SemVer strings (pre-releases sort before their release)."""
    m = SEMVER_RE.match(version)
    if not m:
        return (-1, -1, -1, 0, ())
    major, minor, patch, pre, _ = m.groups()
    pre_key: tuple = ()
    if pre:
        pre_key = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (int(major), int(minor), int(patch), 0 if pre else 1, pre_key)


def aliases(metadata: Mapping[str, Any]) -> dict[str, list[str]]:
    """`metadata.aliases` as {lang: [names]}, tolerating absence."""
    raw = metadata.get("aliases") or {}
    if not isinstance(raw, dict):
        return {}
    return {lang: [str(a) for a in names] for lang, names in raw.items() if isinstance(names, list)}


def _decode(data: Any, cls: type[Base]) -> Any:
    if not isinstance(data, dict):
        raise InvalidTemplate([{"path": "$", "message": "template must be a JSON object"}])
    try:
        return msgspec.convert(data, cls)
    except msgspec.ValidationError as exc:
        raise InvalidTemplate([validation_error(exc)]) from None


def validation_error(exc: msgspec.ValidationError) -> dict[str, str]:
    """A msgspec validation error as `{path, message}` (an unknown field's path names the field)."""
    message, _, path = str(exc).partition(" - at `")
    path = path.rstrip("`") or "$"
    unknown = re.match(r"Object contains unknown field `([^`]+)`", message)
    if unknown:
        path = f"{path}.{unknown.group(1)}"
    return {"path": path, "message": message}


def _check_id(value: str, path: str, errors: list[dict[str, str]]) -> None:
    if not ID_RE.match(value):
        errors.append({"path": path, "message": "id must be lower-case letters, digits, '_', '-', '.', start with a letter, at most 128 characters"})


def _check_common(t: CellTemplate | OrganTemplate, errors: list[dict[str, str]]) -> None:
    _check_id(t.id, "$.id", errors)
    if not SEMVER_RE.match(t.version):
        errors.append({"path": "$.version", "message": "version must be SemVer 2.0, e.g. 1.0.0"})
    schema = t.metadata.get("schema")
    if isinstance(t, CellTemplate) and schema is None:
        errors.append({"path": "$.metadata.schema", "message": "metadata.schema is required and must be \"v1\""})
    elif schema is not None and schema not in SCHEMAS:
        errors.append({"path": "$.metadata.schema", "message": "unsupported schema; use \"v1\""})
    if "aliases" in t.metadata and not _aliases_ok(t.metadata["aliases"]):
        errors.append({"path": "$.metadata.aliases", "message": "aliases must be {\"ru\": [str], \"en\": [str]}"})
    check_samples(t.metadata, errors)


def _aliases_ok(raw: Any) -> bool:
    return isinstance(raw, dict) and all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(a, str) and a.strip() for a in v)
        for k, v in raw.items()
    )


def _duplicates(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    return sorted({i for i in items if i in seen or seen.add(i)})


def parse_cell_template(data: Any) -> CellTemplate:
    """Decode and validate a cell template; raise InvalidTemplate naming every broken rule."""
    t: CellTemplate = _decode(data, CellTemplate)
    errors: list[dict[str, str]] = []
    _check_common(t, errors)
    kinds = [f for f in KIND_FIELDS if getattr(t, f) is not None]
    if len(kinds) != 1:
        errors.append({"path": "$", "message": "exactly one of analysis_type, action_type, memory_type is required"})
    elif not getattr(t, kinds[0]).strip():
        errors.append({"path": f"$.{kinds[0]}", "message": "must not be empty"})
    for i, link in enumerate(t.links):
        _check_id(link, f"$.links[{i}]", errors)
        if link == t.id:
            errors.append({"path": f"$.links[{i}]", "message": "a cell cannot link to itself"})
    for dup in _duplicates(t.links):
        errors.append({"path": "$.links", "message": f"duplicate link {dup}"})
    if t.confidence_threshold is not None and not 0 <= t.confidence_threshold <= 1:
        errors.append({"path": "$.confidence_threshold", "message": "must be between 0 and 1"})
    if errors:
        raise InvalidTemplate(errors)
    return t


def parse_organ_template(data: Any) -> OrganTemplate:
    """Decode and validate an organ template's own rules (links are checked against the catalog elsewhere)."""
    t: OrganTemplate = _decode(data, OrganTemplate)
    errors: list[dict[str, str]] = []
    _check_common(t, errors)
    if ID_RE.match(t.id) and not ORGAN_ID_RE.match(t.id):
        errors.append({"path": "$.id", "message": "organ template ids look like organ.<name>.v<major>"})
    if not t.cells:
        errors.append({"path": "$.cells", "message": "an organ needs at least one cell"})
    for i, cell in enumerate(t.cells):
        _check_id(cell, f"$.cells[{i}]", errors)
    for dup in _duplicates(t.cells):
        errors.append({"path": "$.cells", "message": f"duplicate cell {dup}"})
    for dup in _duplicates(p.name for p in t.pathways):
        errors.append({"path": "$.pathways", "message": f"duplicate pathway {dup}"})
    known = set(t.cells)
    for i, p in enumerate(t.pathways):
        if not p.name.strip():
            errors.append({"path": f"$.pathways[{i}].name", "message": "must not be empty"})
        for j, cell in enumerate(p.cells):
            if cell not in known:
                errors.append({"path": f"$.pathways[{i}].cells[{j}]", "message": f"{cell} is not among the organ's cells"})
        for dup in _duplicates(p.cells):
            errors.append({"path": f"$.pathways[{i}].cells", "message": f"duplicate cell {dup}"})
    if t.policies.stage not in STAGES:
        errors.append({"path": "$.policies.stage", "message": f"stage must be one of {', '.join(STAGES)}"})
    if errors:
        raise InvalidTemplate(errors)
    return t


def find_cycle(edges: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle in a directed graph as [a, b, ..., a], or None. Iterative, so deep graphs are safe."""
    state: dict[str, int] = {}
    for root in edges:
        if state.get(root):
            continue
        stack: list[tuple[str, list[str]]] = [(root, list(edges.get(root, ())))]
        path = [root]
        state[root] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            nxt = todo.pop()
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, list(edges.get(nxt, ()))))
    return None


def template_dict(t: CellTemplate | OrganTemplate) -> dict[str, Any]:
    """A template as plain JSON-ready data: unset optional fields left out, `links` always present."""
    data = msgspec.to_builtins(t)
    if isinstance(t, CellTemplate):
        data.setdefault("links", [])
    return data
