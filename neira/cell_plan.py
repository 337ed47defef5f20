"""Factory requests and the cell dry-run: report (deps, links, risks, compat, selector, policy) and plan.

Everything here is pure: the factory reads what is needed into a `Snapshot`, and `plan_cell` turns a
template plus that snapshot into the report and plan the dry-run shows, the Command Cell quotes, and the
real create follows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from neira.errors import InvalidRequest
from neira.plan import CreateRecord, PlanView, ReuseRecord, Risk, Snapshot, view
from neira.policy import Decision
from neira.selector import Candidate, Selection, select, version_key
from neira.structs import Answer, Base
from neira.templates import CellTemplate, body_kind, find_cycle, template_dict

BACKENDS = ("adapter", "script", "wasm")
SANDBOXED = {"script": "Lua 5.4 (lupa), a fresh stripped state per run", "wasm": "wasmtime, WASI without capabilities"}
TEMPLATE_KEYS = ("template", "tpl", "spec")
_FIELDS = {*TEMPLATE_KEYS, "backend", "mode", "hitl"}


class BestRecord(Answer):
    """The record that best represents a template (`_best`)."""

    id: str
    state: str
    version: str


class Dependency(Answer):
    """One template reached through the links, breadth first: at what depth, through which cell."""

    id: str
    depth: int
    via: str
    status: str  # present | missing
    version: str | None
    record: BestRecord | None


class Link(Answer):
    """A direct link of the template, as the report lists it."""

    id: str
    status: str
    version: str | None
    record: BestRecord | None


class RecordRef(Answer):
    """A record by id and state."""

    id: str
    state: str


class Compat(Answer):
    """How the template compares with the catalog: its version (`catalog`: new | identical | conflict; `order`:
    first | newer | older | same) and its kind (new | same | changed); the record of this very version."""

    schema: str
    catalog: str
    latest_version: str | None
    order: str
    kind: str
    record: RecordRef | None


class SelectorShown(Answer):
    """What the create will do, in the selector's words (`action`: reuse | create)."""

    action: str
    reason: str
    record_id: str | None
    state: str | None


class ShownDecision(Answer, kw_only=True, omit_defaults=True):
    """A policy decision as a report shows it."""

    decision_id: str
    rule: str
    action: str
    reason: str
    capability: str | None = None


class PolicyShown(Answer):
    """The policy's verdict: allowed unless a decision denies; the decisions, and the denying ones."""

    allowed: bool
    decisions: list[ShownDecision]
    violations: list[ShownDecision]


class SandboxGate(Answer):
    """The gate a sandboxed backend runs under."""

    capability: str | None
    action: str
    reason: str


class SandboxShown(Answer):
    """Which runtime a sandboxed backend uses, the limits of each run, and its gate."""

    backend: str
    runtime: str
    limits: dict[str, int]
    gate: SandboxGate


class CellReport(Answer, kw_only=True, omit_defaults=True):
    """The cell dry-run's report. Of `analysis_type`, `action_type` and `memory_type` only the template's kind is
    set (and shown); `sandbox` only for a sandboxed backend."""

    kind: str
    analysis_type: str | None = None
    action_type: str | None = None
    memory_type: str | None = None
    backend: str
    hitl: bool
    deps: list[Dependency]
    links: list[Link]
    risks: list[Risk]
    compat: Compat
    selector: SelectorShown
    policy: PolicyShown
    sandbox: SandboxShown | None = None


class CellDryRun(Answer):
    """`POST /factory/cells/dryrun`: whether the create would go through, the report, and the plan of its one
    change."""

    ok: bool
    report: CellReport
    plan: PlanView


class CellRequest(Base, frozen=True):
    """A parsed factory body: the template (a dict, or a catalog reference `id` / `id@version`)."""

    template: Any
    backend: str = "adapter"
    hitl: bool = True


def parse_request(body: Any) -> CellRequest:
    """Validate a factory body: exactly one of template|tpl|spec, `backend` (alias `mode`), `hitl`.
    A `spec` may also be a whole factory spec `{template, backend?, hitl?}` (what the Command Cell emits)."""
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown fields: {', '.join(unknown)}")
    given = [k for k in TEMPLATE_KEYS if k in body]
    if len(given) != 1:
        raise InvalidRequest("give the template as exactly one of template, tpl or spec")
    fields = {k: v for k, v in body.items() if k not in TEMPLATE_KEYS}
    template = body[given[0]]
    if given[0] == "spec" and isinstance(template, dict) and "template" in template and "id" not in template:
        inner = template
        extra = sorted(set(inner) - {"template", "backend", "mode", "hitl"})
        if extra:
            raise InvalidRequest(f"unknown fields in spec: {', '.join(extra)}")
        for key in ("backend", "mode", "hitl"):
            if key in inner:
                if key in fields and fields[key] != inner[key]:
                    raise InvalidRequest(f"{key} is given twice with different values")
                fields[key] = inner[key]
        template = inner["template"]
    if "mode" in fields:
        mode = fields.pop("mode")
        if "backend" in fields and fields["backend"] != mode:
            raise InvalidRequest("backend and mode disagree")
        fields["backend"] = mode
    backend = fields.get("backend", "adapter")
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise InvalidRequest(f"backend must be one of {', '.join(BACKENDS)}")
    hitl = fields.get("hitl", True)
    if not isinstance(hitl, bool):
        raise InvalidRequest("hitl must be true or false")
    if not isinstance(template, (dict, str)):
        raise InvalidRequest("the template must be an object or a catalog id")
    return CellRequest(template=template, backend=backend, hitl=hitl)


_BEST_ORDER = {"stable": 4, "experimental": 3, "canary": 2, "draft": 1}


def _best(records: list[Candidate] | None) -> BestRecord | None:
    """The record that best represents a template: live over draft, then the highest version, then newest."""
    if not records:
        return None
    best = max(records, key=lambda r: (_BEST_ORDER.get(r.state, 0), version_key(r.version), r.number))
    return BestRecord(id=best.id, state=best.state, version=best.version)


def _resolve_deps(t: CellTemplate, snap: Snapshot) -> tuple[list[Dependency], dict[str, list[str]]]:
    """Breadth-first closure of the template's links through the catalog; the graph for the cycle check."""
    graph: dict[str, list[str]] = {t.id: list(t.links)}
    deps: list[Dependency] = []
    seen = {t.id}
    frontier = [(link, t.id) for link in t.links]
    depth = 1
    while frontier:
        nxt: list[tuple[str, str]] = []
        for cid, via in sorted(frontier):
            if cid in seen:
                continue
            seen.add(cid)
            body = snap.latest.get(cid)
            deps.append(Dependency(id=cid, depth=depth, via=via, status="present" if body is not None else "missing",
                                   version=body["version"] if body is not None else None,
                                   record=_best(snap.records.get(cid))))
            links = list(body.get("links", [])) if body is not None else []
            graph[cid] = links
            nxt += [(link, cid) for link in links]
        frontier, depth = nxt, depth + 1
    return deps, graph


def _cycle(t: CellTemplate, graph: dict[str, list[str]]) -> list[str] | None:
    # a cycle needs an edge out of some dependency (the template cannot link to itself)
    return find_cycle(graph) if any(links for cid, links in graph.items() if cid != t.id) else None


def link_cycle(t: CellTemplate, latest: dict[str, dict[str, Any]]) -> list[str] | None:
    """The cycle `t`'s links would close through the catalog (`latest`: id → latest body), as the dry-run
    finds it (`[a, b, ..., a]`), or None. Missing links are not followed (the dry-run warns about them)."""
    return _cycle(t, _resolve_deps(t, Snapshot(latest=latest, digests={}, records={}))[1])


def _compat(t: CellTemplate, kind: str, digest: str, snap: Snapshot, identity: Candidate | None) -> Compat:
    versions = snap.digests.get(f"cell:{t.id}", {})
    latest_version = max(versions, key=version_key) if versions else None
    if t.version in versions:
        catalog = "identical" if versions[t.version] == digest else "conflict"
    else:
        catalog = "new"
    if latest_version is None:
        order = "first"
    else:
        mine, theirs = version_key(t.version), version_key(latest_version)
        order = "newer" if mine > theirs else "older" if mine < theirs else "same"
    body = snap.latest.get(t.id)
    latest_kind = _kind_of(body) if body is not None else None
    return Compat(schema="v1", catalog=catalog, latest_version=latest_version, order=order,
                  kind="new" if latest_kind is None else ("same" if latest_kind == kind else "changed"),
                  record=RecordRef(id=identity.id, state=identity.state) if identity else None)


def _kind_of(body: Mapping[str, Any]) -> str:
    return body_kind(body)[0]


def risk(code: str, message: str, id: str | None = None, severity: str = "warning", cycle: list[str] | None = None,
         capability: str | None = None) -> Risk:
    """One entry of a dry-run's `report.risks` (cells and organs alike): `{code, severity, id?, message, ...}`."""
    return Risk(code=code, severity=severity, id=id or None, message=message, cycle=cycle, capability=capability)


def _risks(t: CellTemplate, kind: str, deps: list[Dependency], cycle: list[str] | None, compat: Compat,
           gate: Decision, hitl: bool, backend: str) -> list[Risk]:
    risks: list[Risk] = []
    for d in deps:
        if d.status == "missing":
            risks.append(risk("missing_link", f"{d.via} links to {d.id}, which is not in the catalog", d.id, "error"))
    if cycle:
        risks.append(risk("link_cycle", "links form a cycle: " + " → ".join(cycle), severity="error", cycle=cycle))
    if gate.denied:
        risks.append(risk("capability_disabled", gate.reason, severity="error", capability=gate.capability))
    if compat.catalog == "conflict":
        risks.append(risk("catalog_conflict", f"{t.id} {t.version} is already in the catalog with other content", severity="error"))
    if compat.order == "older":
        risks.append(risk("older_version", f"{t.version} is older than the catalog's latest {compat.latest_version}"))
    if compat.kind == "changed":
        risks.append(risk("kind_changed", f"{t.id} changes its kind to {kind}"))
    if not hitl:
        risks.append(risk("no_hitl", "hitl is off: stages advance without a human review"))
    if backend in SANDBOXED and backend not in t.metadata:
        risks.append(risk("no_code", f"a {backend} cell carries its code in metadata.{backend}; this one has none",
                          t.id, "error"))
    return risks


def sandbox_report(backend: str, limits: Mapping[str, int], gate: Decision) -> SandboxShown:
    """The dry-run's `sandbox` part for a sandboxed backend: which runtime, the limits of each run, the gate."""
    return SandboxShown(backend=backend, runtime=SANDBOXED[backend], limits=dict(limits),
                        gate=SandboxGate(capability=gate.capability, action=gate.action, reason=gate.reason))


def sandbox_reason(backend: str, limits: Mapping[str, int], gate: Decision) -> str:
    """The sandbox decision in a sentence, for the create's audit record."""
    shown = ", ".join(f"{k} {v}" for k, v in limits.items())
    return f"{backend} sandbox ({SANDBOXED[backend]}): {shown}; {gate.rule} {gate.action} ({gate.reason})"


def plan_cell(t: CellTemplate, digest: str, backend: str, hitl: bool, snap: Snapshot,
              decisions: list[Decision], limits: Mapping[str, int] | None = None) -> CellDryRun:
    """The dry-run result `{ok, report, plan}` for creating a record of `t` on `backend`. Pure.
    `decisions` are the policy's (the backend gate first); `limits` are a sandboxed backend's run limits."""
    own = snap.records.get(t.id, [])
    kind = t.kind
    identity = next((r for r in own if r.version == t.version and r.backend == backend), None)
    deps, graph = _resolve_deps(t, snap)
    cycle = _cycle(t, graph)
    compat = _compat(t, kind, digest, snap, identity)
    selection = select(t.id, t.version, kind, digest, own)
    gate = decisions[0]
    risks = _risks(t, kind, deps, cycle, compat, gate, hitl, backend)
    policy = _policy(decisions)
    report = CellReport(
        kind=kind, **{f"{kind}_type": getattr(t, f"{kind}_type")}, backend=backend, hitl=hitl, deps=deps,
        links=[Link(id=d.id, status=d.status, version=d.version, record=d.record) for d in deps if d.depth == 1],
        risks=risks, compat=compat, selector=_selection(selection, identity, t.version), policy=policy,
        sandbox=sandbox_report(backend, limits or {}, gate) if backend in SANDBOXED else None)
    ok = policy.allowed and not any(r.severity == "error" for r in risks)
    return CellDryRun(ok=ok, report=report, plan=cell_plan_view(t, digest, backend, hitl, identity, compat))


def with_decisions(result: CellDryRun, decisions: list[Decision]) -> CellDryRun:
    """A `plan_cell` answer with other decisions of the same verdicts (rule, action, reason): the same report
    and plan under fresh decision ids (the rest is immutable, so shared)."""
    return msgspec.structs.replace(result, report=msgspec.structs.replace(result.report, policy=_policy(decisions)))


def shown_decision(d: Decision) -> ShownDecision:
    """A policy decision as the dry-run reports show it (cells and organs alike)."""
    return ShownDecision(decision_id=d.decision_id, rule=d.rule, action=d.action, reason=d.reason,
                         capability=d.capability or None)


def _policy(decisions: list[Decision]) -> PolicyShown:
    shown = [shown_decision(d) for d in decisions]
    violations = [out for d, out in zip(decisions, shown, strict=True) if d.denied]
    return PolicyShown(allowed=not violations, decisions=shown, violations=violations)


def _selection(s: Selection, identity: Candidate | None, version: str) -> SelectorShown:
    """What the create will do, in the selector's words: it returns the record of this very version (reuse), or
    makes a new one (create) — a live record of another version stays as it is."""
    if identity is not None:
        return SelectorShown(action="reuse", reason=f"{identity.id} already holds version {version}",
                         record_id=identity.id, state=identity.state)
    if s.action == "reuse":
        return SelectorShown(action="create", reason=f"a new record of {version}; {s.reason}, and stays as it is",
                         record_id=None, state=None)
    return SelectorShown(action="create", reason=s.reason, record_id=None, state=None)


def cell_plan_step(t: CellTemplate, digest: str, backend: str, hitl: bool, identity: Candidate | None,
                   compat: Compat) -> CreateRecord | ReuseRecord:
    """The one step a factory create carries out: return the record of this version, or a new draft record."""
    if identity is not None:
        return ReuseRecord(template_id=t.id, version=t.version, record_id=identity.id, state=identity.state, same=True)
    latest_version = compat.latest_version
    before = latest_version if latest_version is not None and latest_version != t.version else None
    register = compat.catalog == "new"
    return CreateRecord(template=template_dict(t) if register else None, template_id=t.id, version=t.version,
                        digest=digest, backend=backend, hitl=hitl, register=register, before=before)


def create_step(t: CellTemplate, digest: str, backend: str, hitl: bool, snap: Snapshot) -> CreateRecord | ReuseRecord:
    """The step a factory create of `t` on `backend` takes over `snap` (the dry-run's plan shows it)."""
    own = snap.records.get(t.id, [])
    identity = next((r for r in own if r.version == t.version and r.backend == backend), None)
    return cell_plan_step(t, digest, backend, hitl, identity, _compat(t, t.kind, digest, snap, identity))


def cell_plan_view(t: CellTemplate, digest: str, backend: str, hitl: bool, identity: Candidate | None,
                   compat: Compat) -> PlanView:
    """The dry-run's `plan`: `{id: null, base: null, changes, summary, text}` of the one change."""
    return view(None, None, [cell_plan_step(t, digest, backend, hitl, identity, compat)])
