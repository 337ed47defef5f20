"""The chat's `run` intent: run the organ (or cell) the command named on its input, and say what came out.
It changes nothing, so it runs at once, with no plan; the reply carries the run as the REST routes answer it."""

from __future__ import annotations

import json
from typing import Any, Protocol

import msgspec

from neira.commands.answer import Told
from neira.commands.reply import say
from neira.commands.resolve import Resolution
from neira.errors import NotFound
from neira.runtime.results import RunResult
from neira.runtime.service import payload_of

PREVIEW = 300  # characters of a text or JSON answer shown in the reply itself


class Runs(Protocol):
    """What the chat needs of the runtime."""

    async def organ_for(self, name: str) -> str: ...
    async def run_input(self, organ_id: str, payload: Any, pathway: str | None = None) -> RunResult: ...
    async def serve_cell(self, record_id: str, body: Any) -> RunResult: ...


class Records(Protocol):
    """What the chat needs of the factory: a cell named by its template id runs its newest record."""

    async def newest_record_id(self, template_id: str) -> str | None: ...


async def run(res: Resolution, runs: Runs, records: Records) -> Told:
    """`{run, reply}` for a resolved run command (`run` is null when the command gave no input)."""
    if res.input is None:
        return Told(run=None, reply=say(res.lang, "run_needs_input"))
    target = res.target or {}
    if target.get("kind") == "cell":
        record_id = target["id"] if target["id"].startswith("cell-") else await records.newest_record_id(target["id"])
        if record_id is None:
            raise NotFound(f"cell {target['id']} has no record to run", cell=target["id"])
        result = await runs.serve_cell(record_id, {"input": res.input})
        name = record_id
    else:
        organ_id = await runs.organ_for(target["id"])
        result = await runs.run_input(organ_id, payload_of(res.input))
        name = organ_id
    return Told(run=result, reply=reply(res.lang, name, result))


def reply(lang: str, name: str, result: RunResult) -> str:
    """What came out, in the command's language."""
    if not result.ok or result.output is None:
        e = result.error
        return say(lang, "ran_failed", organ=name, cell=e.cell if e else "?", code=e.code if e else "cell_failed",
                   reason=e.reason if e else "")
    out = msgspec.to_builtins(result.output)
    match out["type"]:
        case "audio":
            return say(lang, "ran_audio", organ=name, seconds=f"{out['duration_ms'] / 1000:.1f}")
        case "image":
            return say(lang, "ran_image", organ=name, width=out["width"], height=out["height"])
        case "json":
            return say(lang, "ran_json", organ=name, data=json.dumps(out["data"], ensure_ascii=False)[:PREVIEW])
    return say(lang, "ran_text", organ=name, text=out["text"][:PREVIEW])
