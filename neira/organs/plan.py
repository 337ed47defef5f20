"""Resolving an organ template (by value or catalog id), checking it against the catalog, and the dry-run
report and plan built from the same steps a real build takes."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from neira.catalog import (
    CELL,
    ORGAN,
    Catalog,
    check_id,
    latest,
    parse_organ,
    template_digest,
)
from neira.cell_plan import ShownDecision, risk, shown_decision
from neira.errors import InvalidRequest, InvalidTemplate, NotFound
from neira.plan import (
    AnyStep,
    Blocked,
    CreateRecord,
    ReuseRecord,
    Risk,
    PlanView,
    StartBuild,
    change,
    view,
)
from neira.policy import Decision
from neira.structs import Answer, Base
from neira.templates import OrganTemplate, body_kind, find_cycle, template_dict


class TemplateShown(Answer):
    """The organ template a dry-run planned: id, version and the digest of its canonical body."""

    id: str
    version: str
    digest: str


class CatalogCell(Answer):
    """A cell of the organ as the catalog knows it (version and kind are null for a cell the catalog lacks: a
    build drafts it from a generated adapter template)."""

    id: str
    version: str | None
    kind: str | None
    in_catalog: bool


class Problem(Answer):
    """One problem of an invalid template: where (a JSON path) and what."""

    path: str
    message: str


class CellSelection(Answer):
    """The selector's answer for one cell of the organ (`action`: reuse | create | blocked; a record only when
    one exists)."""

    id: str
    action: str
    record_id: str | None
    state: str | None
    reason: str | None


class StageDelay(Answer):
    """A stage the build reaches and its minimum delay."""

    state: str
    after_ms: int


class OrganReport(Answer, kw_only=True):
    """An organ dry-run's report: the template, its cells as the catalog knows them, the links reached, each
    cell's record choice, the policy decisions (the denying ones again as `violations`), the stages and risks.
    An invalid template's report has only `errors` (every problem) and `policy`."""

    template: TemplateShown | msgspec.UnsetType = msgspec.UNSET
    cells: list[CatalogCell] | msgspec.UnsetType = msgspec.UNSET
    links: list[list[str]] | msgspec.UnsetType = msgspec.UNSET
    cycle: None | msgspec.UnsetType = msgspec.UNSET
    selector: list[CellSelection] | msgspec.UnsetType = msgspec.UNSET
    errors: list[Problem] | msgspec.UnsetType = msgspec.UNSET
    policy: list[ShownDecision]
    stages: list[StageDelay] | msgspec.UnsetType = msgspec.UNSET
    risks: list[Risk] | msgspec.UnsetType = msgspec.UNSET
    violations: list[ShownDecision] | msgspec.UnsetType = msgspec.UNSET


class BuildDryRun(Answer, kw_only=True):
    """`POST /organs/build` with `dryrun: true`: `{organ_id: null, dryrun: true, ok, report, plan}`."""

    organ_id: None = None
    dryrun: bool = True
    ok: bool
    report: OrganReport
    plan: PlanView | None


class Resolved(Base, frozen=True):
    """A valid organ template, ready to build: its canonical body, digest and the catalog's view of its cells."""

    template: OrganTemplate
    body: dict[str, Any]
    digest: str
    cells: list[CatalogCell]  # the organ's cells
    links: list[list[str]]  # [from, to] edges reachable from the organ's cells
    warnings: list[Risk]  # risks found while resolving: links to cells the catalog lacks


async def resolve(catalog: Catalog, conn: AsyncConnection, ref: Any) -> Resolved:
    """The template given inline or as a catalog id (its latest version, read on `conn`), validated: its own
    rules, and cell links (followed through the committed catalog) free of cycles. Cells the catalog lacks are allowed:
    the factory creates them from a generated adapter template. InvalidTemplate lists every problem."""
    if isinstance(ref, str):
        versions = await catalog.versions(conn, ORGAN, check_id(ref, "organ template id"))
        if not versions:
            raise NotFound(f"no organ template {ref} in the catalog")
        body = versions[latest(list(versions))]
    elif isinstance(ref, dict):
        body = ref
    else:
        raise InvalidRequest("organ_template must be a template object or an organ template id")
    template = parse_organ(body)
    known = await catalog.latest_view(CELL)  # the committed catalog, from memory: no read of every cell body
    edges, warnings = _link_graph(template.cells, known)
    cycle = find_cycle(edges)
    if cycle:
        first = template.cells.index(cycle[0]) if cycle[0] in template.cells else None
        path = f"$.cells[{first}]" if first is not None else "$.cells"
        raise InvalidTemplate([{"path": path, "message": "cell links form a cycle: " + " → ".join(cycle)}])
    cells = [
        CatalogCell(id=c, version=known[c]["version"], kind=_kind(known[c]), in_catalog=True) if c in known
        else CatalogCell(id=c, version=None, kind=None, in_catalog=False)
        for c in template.cells
    ]
    links = [[a, b] for a, targets in edges.items() for b in targets]
    return Resolved(template=template, body=template_dict(template), digest=template_digest(template),
                    cells=cells, links=links, warnings=warnings)


def _link_graph(roots: list[str], known: dict[str, dict[str, Any]]) -> tuple[dict[str, list[str]], list[Risk]]:
    """Links reachable from `roots` through the catalog; links to cells the catalog lacks become risks."""
    edges: dict[str, list[str]] = {}
    warnings: dict[tuple[str, str], Risk] = {}
    todo = [c for c in roots if c in known]
    while todo:
        cid = todo.pop()
        if cid in edges:
            continue
        links = [str(x) for x in known[cid].get("links", [])]
        edges[cid] = links
        for link in links:
            if link not in known:
                warnings[(cid, link)] = risk("missing_link", f"{cid} links to {link}, which is not in the catalog", link)
            elif link not in edges:
                todo.append(link)
    return edges, [warnings[k] for k in sorted(warnings)]


def _kind(body: dict[str, Any]) -> str:
    return body_kind(body)[0]


def _selection(step: AnyStep) -> CellSelection:
    """The selector's answer for one cell, as the report shows it (a record only when one exists)."""
    shown = change(step)
    if isinstance(step, (ReuseRecord, Blocked)):
        return CellSelection(id=step.template_id, action="reuse" if isinstance(step, ReuseRecord) else "blocked",
                             record_id=step.record_id, state=step.state, reason=shown.reason)
    return CellSelection(id=shown.id, action="create", record_id=None, state=None, reason=shown.reason)


def _risks(resolved: Resolved, steps: list[AnyStep], hitl: bool) -> list[Risk]:
    risks = list(resolved.warnings)
    risks += [risk("not_in_catalog", f"{c['id']} is not in the catalog: a generated adapter template will be used", c["id"])
              for c in resolved.cells if not c.in_catalog]
    for s in steps:
        if isinstance(s, Blocked):
            risks.append(risk("conflict", f"cell {s.template_id} has only a {s.state} record ({s.record_id}) of version "
                                          f"{s.version}; register a new version of it and build again", s.template_id, "error"))
        elif isinstance(s, CreateRecord):
            risks.append(risk("new_draft_record", f"{s.template_id} will be a new draft record: the organ would run an untested cell", s.template_id))
        elif isinstance(s, ReuseRecord) and s.state == "draft":
            risks.append(risk("draft_record", f"{s.template_id} reuses a draft record ({s.record_id}): not yet approved", s.template_id))
    if not hitl:
        risks.append(risk("no_hitl", "policies.hitl is false: no human approves the stages"))
    return risks


def dryrun_result(resolved: Resolved, cell_steps: list[AnyStep], decisions: list[Decision],
                  stage_delays_ms: tuple[int, ...], compat: list[Risk] | None = None) -> BuildDryRun:
    """`{organ_id: null, dryrun: true, ok, report, plan}`: the steps a build takes (each cell's record, then the
    organ), from the plan module, with the report around them."""
    t = resolved.template
    steps = list(cell_steps)
    steps.append(StartBuild(template_id=t.id, version=t.version, cells=list(t.cells), template=resolved.body))
    risks = _risks(resolved, steps, t.policies.hitl) + list(compat or ())
    denied = [d for d in decisions if d.denied]
    report = OrganReport(
        template=TemplateShown(id=t.id, version=t.version, digest=resolved.digest),
        cells=resolved.cells,
        links=resolved.links,
        cycle=None,
        selector=[_selection(s) for s in steps[:-1]],
        policy=[shown_decision(d) for d in decisions],
        stages=[StageDelay(state=s, after_ms=d) for s, d in zip(("canary", "experimental", "stable"), stage_delays_ms, strict=True)],
        risks=risks,
        violations=[shown_decision(d) for d in denied] or msgspec.UNSET,
    )
    ok = not denied and not any(r.severity == "error" for r in risks)
    return BuildDryRun(ok=ok, report=report, plan=view(None, None, steps, risks=list(compat or ())))


def invalid_result(errors: list[Any], decision: Decision) -> BuildDryRun:
    """The dry-run of an invalid template (the `errors` of its InvalidTemplate): not ok, every problem, no plan."""
    return BuildDryRun(ok=False, report=OrganReport(errors=msgspec.convert(errors, list[Problem]),
                                                    policy=[shown_decision(decision)]), plan=None)
