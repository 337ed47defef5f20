"""The Command Cell's reads: status and list, answered at once by the services the REST routes call. (Changes —
lifecycle moves included — are plans: neira/commands/plan.py.)"""

from __future__ import annotations

from typing import Any

from neira import introspection
from neira.commands.reply import say
from neira.commands.resolve import Resolution
from neira.commands import why
from neira.commands.plan import Services, active_organ, active_record
from neira.graduation import summary
from neira.structs import to_builtins

async def run(res: Resolution, core: Services) -> tuple[dict[str, Any], str]:
    """Answer a status, why or list command: (what was read, reply)."""
    if res.intent == "list":
        return await _list(res, core)
    if res.intent == "why":
        return await _why(res, core)
    return await _status(res, core)


async def _why(res: Resolution, core: Services) -> tuple[dict[str, Any], str]:
    """What the organ's (or record's) promotion waits for, with the evidence."""
    target = res.target or {}
    if target.get("kind") == "organ":
        found = await active_organ(core, target["id"], allow_failed=True)
        status: dict[str, Any] = to_builtins(await core.organs.status(found.id))  # type: ignore[assignment]
        return status, why.explain(status, res.lang)
    record = await active_record(core, target["id"], newest_if_dead=True)
    analysis = await core.analysis.of("cell", record["id"])
    shown = {"id": record["id"], "state": record["state"],
             "analysis": to_builtins(summary(analysis)) if analysis.stage else None}
    return shown, why.explain(shown, res.lang)


async def _status(res: Resolution, core: Services) -> tuple[dict[str, Any], str]:
    lang, target = res.lang, res.target
    if target is None:
        snap = await introspection.status(core.db, core.policy)
        safe = say(lang, "yes") if snap["safe_mode"].get("enabled") else say(lang, "no")
        return snap, say(lang, "status_all", organs=snap["organs"]["total"], records=snap["factory"]["records"], safe=safe)
    if target["kind"] == "organ":
        found = await active_organ(core, target["id"], allow_failed=True)
        result = to_builtins(await core.organs.status(found.id))  # type: ignore[assignment]
    else:
        result = await active_record(core, target["id"], newest_if_dead=True)
    return result, say(lang, "status", target=result["id"], state=result["state"])


async def _list(res: Resolution, core: Services) -> tuple[dict[str, Any], str]:
    lang = res.lang
    if res.what == "cells":
        cells = await core.catalog.list_cells()
        items = [f"{c['id']} {c.get('version', '')}".strip() for c in cells]
        return {"cells": cells}, say(lang, "list_cells", items=", ".join(items)) if items else say(lang, "empty_list")
    organs = await core.organs.list()
    items = [f"{o['id']} ({o['template_id']}, {o['state']})" for o in organs]
    return {"organs": organs}, say(lang, "list_organs", items=", ".join(items)) if items else say(lang, "empty_list")
