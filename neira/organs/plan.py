"""Resolving an organ template (by value or catalog id), checking it against the catalog, and the dry-run
report and plan built from the same steps a real build takes."""

from __future__ import annotations

from typing import Any

from neira.catalog import CELL, ORGAN, Catalog, check_id, latest, parse_organ, template_digest
from neira.cell_plan import risk
from neira.errors import InvalidRequest, InvalidTemplate, NotFound
from sqlalchemy.ext.asyncio import AsyncConnection

from neira.structs import Base
from neira.templates import OrganTemplate, find_cycle, template_dict

MARKERS = {"create": "+", "update": "~", "delete": "-", "reuse": "=", "no-op": "="}


class Resolved(Base, frozen=True):
    """A valid organ template, ready to build: its canonical body, digest and the catalog's view of its cells."""

    template: OrganTemplate
    body: dict[str, Any]
    digest: str
    cells: list[dict[str, Any]]  # [{id, version, kind, in_catalog}] of the organ's cells
    links: list[list[str]]  # [from, to] edges reachable from the organ's cells
    warnings: list[dict[str, Any]]  # risks found while resolving: links to cells the catalog lacks


async def resolve(catalog: Catalog, conn: AsyncConnection, ref: Any) -> Resolved:
    """The template given inline or as a catalog id (its latest version), validated on `conn`: its own
    rules, and cell links (followed through the catalog) free of cycles. Cells the catalog lacks are allowed:
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
    known = await catalog.latest_bodies(conn, CELL)
    edges, warnings = _link_graph(template.cells, known)
    cycle = find_cycle(edges)
    if cycle:
        first = template.cells.index(cycle[0]) if cycle[0] in template.cells else None
        path = f"$.cells[{first}]" if first is not None else "$.cells"
        raise InvalidTemplate([{"path": path, "message": "cell links form a cycle: " + " → ".join(cycle)}])
    cells = [
        {"id": c, "version": known[c]["version"], "kind": _kind(known[c]), "in_catalog": True} if c in known
        else {"id": c, "version": None, "kind": None, "in_catalog": False}
        for c in template.cells
    ]
    links = [[a, b] for a, targets in edges.items() for b in targets]
    return Resolved(template=template, body=template_dict(template), digest=template_digest(template),
                    cells=cells, links=links, warnings=warnings)


def _link_graph(roots: list[str], known: dict[str, dict[str, Any]]) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
    """Links reachable from `roots` through the catalog; links to cells the catalog lacks become risks."""
    edges: dict[str, list[str]] = {}
    warnings: dict[tuple[str, str], dict[str, Any]] = {}
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
    return next((k.removesuffix("_type") for k in ("analysis_type", "action_type", "memory_type") if k in body), "")


def dryrun_result(resolved: Resolved, selections: list[dict[str, Any]], decisions: list[dict[str, Any]],
                  stage_delays_ms: tuple[int, ...]) -> dict[str, Any]:
    """`{organ_id: null, dryrun: true, ok, report, plan}` from what a build would do."""
    t = resolved.template
    risks = list(resolved.warnings)
    risks += [risk("not_in_catalog", f"{c['id']} is not in the catalog: a generated adapter template will be used", c["id"])
              for c in resolved.cells if not c["in_catalog"]]
    for s in selections:
        if s["action"] == "create":
            risks.append(risk("new_draft_record", f"{s['id']} will be a new draft record: the organ would run an untested cell", s["id"]))
        elif s.get("state") == "draft":
            risks.append(risk("draft_record", f"{s['id']} reuses a draft record ({s.get('record_id')}): not yet approved", s["id"]))
    if not t.policies.hitl:
        risks.append(risk("no_hitl", "policies.hitl is false: no human approves the stages"))
    stages = [{"state": s, "after_ms": d} for s, d in zip(("canary", "experimental", "stable"), stage_delays_ms, strict=True)]
    report = {
        "template": {"id": t.id, "version": t.version, "digest": resolved.digest},
        "cells": resolved.cells,
        "links": resolved.links,
        "cycle": None,
        "selector": selections,
        "policy": decisions,
        "stages": stages,
        "risks": risks,
    }
    changes = [
        {"action": s["action"], "kind": "cell", "id": s["id"], **({"record_id": s["record_id"]} if s.get("record_id") else {}),
         "reason": s.get("reason")}
        for s in selections
    ]
    changes.append({"action": "create", "kind": "organ", "id": None, "after": {"state": "draft", "template_id": t.id},
                    "reason": f"build {t.id} {t.version}"})
    return {"organ_id": None, "dryrun": True, "ok": True, "report": report, "plan": render_plan(changes)}


def render_plan(changes: list[dict[str, Any]]) -> dict[str, Any]:
    """`{changes, summary, text}`; text marks each change with + ~ - =."""
    counts: dict[str, int] = {}
    for c in changes:
        counts[c["action"]] = counts.get(c["action"], 0) + 1
    summary = ", ".join(f"{n} to {a}" for a, n in sorted(counts.items()))
    lines = []
    for c in changes:
        name = c["id"] or f"new organ ({c['after']['template_id']})"
        reason = f"  # {c['reason']}" if c.get("reason") else ""
        lines.append(f"{MARKERS.get(c['action'], '?')} {c['kind']} {name}{reason}")
    return {"changes": changes, "summary": summary, "text": "\n".join([*lines, f"Plan: {summary}."])}
