"""Lifecycle by chat: approve, disable, rollback, cancel_build, rebuild, status and list, carried out by
the same services the REST routes call. Targets named by template id or alias are mapped to records here."""

from __future__ import annotations

from typing import Any

from neira import introspection
from neira.commands.reply import say
from neira.commands.resolve import Resolution
from neira.errors import InvalidRequest, InvalidTransition, NotFound
from neira.lifecycle import next_organ_stage

_VERB = {
    "ru": {"approve": "одобрено", "disable": "отключено", "rollback": "откачено", "cancel_build": "сборка отменена",
           "rebuild": "пересборка"},
    "en": {"approve": "approved", "disable": "disabled", "rollback": "rolled back", "cancel_build": "build cancelled",
           "rebuild": "rebuilding"},
}


async def cell_record_id(core: Any, ref: str) -> str:
    """A cell record id for a record id or a template id (the newest record of that template)."""
    if ref.startswith("cell-"):
        return ref
    newest = await core.factory.newest_record_id(ref)
    if newest is None:
        raise NotFound(f"no cell record of {ref} yet")
    return newest


async def organ_id(core: Any, ref: str) -> str:
    """An organ id for an organ id or a template id (the newest organ built from that template)."""
    if not ref.startswith("organ."):
        return ref
    newest = await core.organs.newest_of(ref)
    if newest is None:
        raise NotFound(f"no organ built from {ref} yet")
    return newest


async def run(res: Resolution, core: Any, actor: str) -> tuple[dict[str, Any], str]:
    """Carry out a lifecycle, status or list command: (service result, reply)."""
    lang, target, intent = res.lang, res.target, res.intent
    if intent == "list":
        return await _list(res, core)
    if intent == "status":
        return await _status(res, core)
    assert target is not None
    if target["kind"] == "cell":
        rid = await cell_record_id(core, target["id"])
        moves = {"approve": core.factory.approve, "disable": core.factory.disable, "rollback": core.factory.rollback}
        if intent not in moves:
            raise InvalidRequest(f"{intent} applies to organs; {target['id']} is a cell")
        result = await moves[intent](rid, actor, "by chat command")
    else:
        oid = await organ_id(core, target["id"])
        result = await _organ_move(intent, oid, core, actor)
    reply = say(lang, "done", intent=_VERB[lang][intent], target=result.get("id") or result.get("organ_id"),
                state=result.get("state"))
    return result, reply


async def _organ_move(intent: str, oid: str, core: Any, actor: str) -> dict[str, Any]:
    if intent == "cancel_build":
        return await core.organs.cancel(oid, actor)
    if intent == "rebuild":
        return await core.organs.rebuild(oid, actor)
    if intent == "approve":
        state = (await core.organs.status(oid, query=False))["state"]
        nxt = next_organ_stage(state)
        if nxt is None:
            raise InvalidTransition(state, "approved", f"{oid} is {state}: nothing left to approve")
        return await core.organs.set_status(oid, nxt.value, "approved by chat command", actor)
    if intent == "disable":
        return await core.organs.set_status(oid, "failed", "disabled by chat command", actor)
    raise InvalidRequest(f"{intent} applies to cells; {oid} is an organ")


async def _status(res: Resolution, core: Any) -> tuple[dict[str, Any], str]:
    lang, target = res.lang, res.target
    if target is None:
        snap = await introspection.status(core.db, core.policy)
        safe = say(lang, "yes") if snap["safe_mode"].get("enabled") else say(lang, "no")
        return snap, say(lang, "status_all", organs=snap["organs"]["total"], records=snap["factory"]["records"], safe=safe)
    if target["kind"] == "organ":
        result = await core.organs.status(await organ_id(core, target["id"]))
    else:
        result = await core.factory.get(await cell_record_id(core, target["id"]))
    return result, say(lang, "status", target=result["id"], state=result["state"])


async def _list(res: Resolution, core: Any) -> tuple[dict[str, Any], str]:
    lang = res.lang
    if res.what == "cells":
        cells = await core.catalog.list_cells()
        items = [f"{c['id']} {c.get('version', '')}".strip() for c in cells]
        return {"cells": cells}, say(lang, "list_cells", items=", ".join(items)) if items else say(lang, "empty_list")
    organs = await core.organs.list()
    items = [f"{o['id']} ({o['template_id']}, {o['state']})" for o in organs]
    return {"organs": organs}, say(lang, "list_organs", items=", ".join(items)) if items else say(lang, "empty_list")
