"""Dry-run plans for commands: the changes a command would make, their reasons and policy decisions,
`+ ~ - =` text, and a base hash of the state the plan was made against.

The plan asks the same services the REST routes use (the factory's dry-run and selector, the policy
engine's gates, the catalog), and only reads. Applying recomputes the plan: a different base means the
world moved on, and the apply is refused as stale.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, Protocol

import msgspec

from neira.commands.known import split_id
from neira.commands.resolve import Resolution
from neira.errors import NeiraError
from neira.policy import Decision

MARKERS = {"create": "+", "update": "~", "delete": "-", "reuse": "=", "no-op": "="}
_SUMMARY = {
    "ru": "создать {create}, обновить {update}, удалить {delete}, без изменений {same}",
    "en": "{create} to create, {update} to update, {delete} to delete, {same} unchanged",
}
_PLAN_LINE = {"ru": "План: {summary}.", "en": "Plan: {summary}."}
_CELL_WHY_RU = {"create": "новая черновая запись клетки", "reuse": "используется {record_id} ({state})",
                "no-op": "уже есть {record_id}", "update": "новая версия клетки"}
_WHY = {
    "ru": {"draft": "новый черновик adapter-клетки для «{word}»", "update": "новая версия {before} → {after}{delta}",
           "new_organ": "новый шаблон органа {id} и черновая сборка", "build": "черновая сборка органа из шаблона {id}"},
    "en": {"draft": "new adapter cell draft for '{word}'", "update": "new version {before} → {after}{delta}",
           "new_organ": "new organ template {id} and a draft build", "build": "a draft organ built from template {id}"},
}


class Services(Protocol):
    """What planning reads: the factory's dry-run, the policy's gates, the catalog's organ templates."""

    factory: Any
    policy: Any
    catalog: Any


def _decision(d: Any) -> dict[str, Any]:
    out = {"decision_id": d.decision_id, "rule": d.rule, "action": d.action, "reason": d.reason}
    if getattr(d, "capability", None):
        out["capability"] = d.capability
    return out


async def make_plan(res: Resolution, svc: Services) -> dict[str, Any]:
    """`{changes, policy: {allowed, violations, decisions}, base}` for a resolution that has a spec."""
    if res.spec is None:
        raise ValueError("only commands with a spec have plans")
    if res.spec["kind"] == "factory_spec":
        spec = res.spec["spec"]
        report = await svc.factory.plan(spec["template"], spec["backend"], spec["hitl"])
        changes = [_cell_change(report, None, res.lang)]
        decisions = report["report"]["policy"]["decisions"]
        catalog = None
    else:
        changes, decisions = await _organ_changes(res, svc)
        catalog = await _organ_template(svc, res.spec["template"]["id"])
    violations = [d for d in decisions if d["action"] == "deny"]
    return {"changes": changes, "policy": {"allowed": not violations, "violations": violations, "decisions": decisions},
            "base": base_hash(res, changes, decisions, catalog)}


async def _organ_changes(res: Resolution, svc: Services) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    template = res.spec["template"]  # type: ignore[index]
    drafts = {d["id"]: d for d in res.new_cells}
    changes: list[dict[str, Any]] = []
    for cell_id in template["cells"]:
        draft = drafts.get(cell_id)
        try:
            report = await svc.factory.plan(draft or cell_id)
        except NeiraError:  # not in the catalog and not drafted here: the builder generates an adapter
            changes.append({"action": "create", "kind": "cell", "id": cell_id, "after": "0.1.0",
                            "reason": "not in the catalog: the builder drafts a generated adapter template"})
            continue
        changes.append(_cell_change(report, draft, res.lang))
    decisions = [_decision(svc.policy.gate("organs_builder"))]
    if any(c["action"] == "create" for c in changes):
        decisions.append(_decision(svc.policy.gate("factory_adapter")))
    for dead in await svc.factory.dead_cells([c for c in template["cells"] if c not in drafts]):
        decisions.append(_decision(Decision(
            decision_id=f"dec-{secrets.token_hex(6)}", rule="cell.live_record", action="deny",
            reason=f"cell {dead['cell']} has only a {dead['state']} record ({dead['record_id']}) of version "
                   f"{dead['version']}; register a new version of it, then ask again")))
    changes.append(await _organ_change(res, template, svc) | {"policy": decisions[:1]})
    return changes, decisions


def _cell_change(report: dict[str, Any], draft: dict[str, Any] | None, lang: str) -> dict[str, Any]:
    """One cell's change from the factory's dry-run: reuse a live record, or a new draft record."""
    raw = report["plan"]["changes"][0]
    selector = report["report"]["selector"]
    change: dict[str, Any] = {"action": raw["action"], "kind": "cell", "id": raw["id"]}
    if selector["action"] == "reuse" and raw["action"] != "no-op":
        change.update(action="reuse", record_id=selector["record_id"], state=selector["state"],
                      reason=selector["reason"])
    else:
        change.update({k: raw[k] for k in ("before", "after", "reason", "record_id") if raw.get(k) is not None})
    if draft is not None and change["action"] == "create":
        word = (draft["metadata"]["aliases"].get(lang) or [draft["id"]])[0]
        change["reason"] = _WHY[lang]["draft"].format(word=word)
    change["policy"] = report["report"]["policy"]["decisions"] if change["action"] == "create" else []
    return change


async def _organ_change(res: Resolution, template: dict[str, Any], svc: Services) -> dict[str, Any]:
    why = _WHY[res.lang]
    change: dict[str, Any] = {"kind": "organ", "id": template["id"]}
    if res.base and res.base != template["id"] and res.intent == "update_organ":
        before = await _organ_template(svc, res.base)
        added = [c for c in template["cells"] if c not in (before or {}).get("cells", [])]
        delta = f" (+ {', '.join(added)})" if added else ""
        return change | {"action": "update", "before": res.base, "after": template["id"],
                         "reason": why["update"].format(before=res.base, after=template["id"], delta=delta)}
    existing = await _organ_template(svc, template["id"])
    reason = why["build"] if existing is not None else why["new_organ"]
    return change | {"action": "create", "after": template["id"], "reason": reason.format(id=template["id"])}


async def _organ_template(svc: Services, template_id: str) -> dict[str, Any] | None:
    try:
        return await svc.catalog.get_organ_template(template_id)
    except NeiraError:
        return None


def base_hash(res: Resolution, changes: list[dict[str, Any]], decisions: list[dict[str, Any]],
              catalog: dict[str, Any] | None = None) -> str:
    """sha256 of what the plan depends on: the spec, each change's action and record, the gate verdicts, and
    what the catalog holds under the organ template's id (another plan may register it first)."""
    state = {
        "spec": res.spec,
        "catalog": catalog,
        "changes": [{k: c.get(k) for k in ("action", "kind", "id", "record_id", "state", "before", "after")}
                    for c in changes],
        "gates": sorted((d["rule"], d["action"]) for d in decisions),
    }
    return hashlib.sha256(msgspec.json.encode(state, order="sorted")).hexdigest()


def render(changes: list[dict[str, Any]], lang: str) -> tuple[str, str]:
    """(summary, text): one `+ ~ - =` line per change, then the summary line, in the user's language."""
    lines = []
    for c in changes:
        what = f"{c['kind']} {c['id']}"
        if c["action"] == "update" and c.get("before"):
            what += f" ({c['before']} → {c.get('after')})"
        if c.get("record_id"):
            what += f" [{c['record_id']}" + (f", {c['state']}]" if c.get("state") else "]")
        reason = _localized_reason(c, lang)
        lines.append(f"{MARKERS[c['action']]} {what}" + (f": {reason}" if reason else ""))
    counts = {a: sum(1 for c in changes if c["action"] == a) for a in MARKERS}
    summary = _SUMMARY.get(lang, _SUMMARY["en"]).format(
        create=counts["create"], update=counts["update"], delete=counts["delete"], same=counts["reuse"] + counts["no-op"])
    return summary, "\n".join([*lines, _PLAN_LINE.get(lang, _PLAN_LINE["en"]).format(summary=summary)])


def _localized_reason(change: dict[str, Any], lang: str) -> str:
    """The factory words its reasons in English; Russian text lines get a Russian gloss instead (the JSON
    keeps the factory's own reason)."""
    reason = change.get("reason") or ""
    if lang != "ru" or change["kind"] != "cell" or reason.startswith(("новый", "новая")):
        return reason
    return _CELL_WHY_RU[change["action"]].format(record_id=change.get("record_id", ""), state=change.get("state", ""))


def organ_family(template_id: str) -> str:
    """organ.vision.v2 → organ.vision."""
    return split_id(template_id)[0]
