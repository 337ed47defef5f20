"""The `script` sandbox: Lua 5.4 through lupa, in a fresh, stripped Lua state per run.

lupa's defaults open Python to Lua (`python.eval`, `python.builtins`, attribute access on any object) and
Lua's own `os`, `io`, `load`, `debug`. Here a state is made without eval or builtins, with an attribute
filter that refuses every Python attribute, a memory cap (lupa's `max_memory`), and prelude.lua, which
builds an allow-listed environment for the script and counts its instructions with a debug hook set before
`debug` is removed. The state is thrown away after the run."""

from __future__ import annotations

import re
import time
from importlib.resources import files
from typing import Any, NoReturn

from lupa import lua54

from neira.runtime.payloads import AnyPayload, to_wire, type_of
from neira.runtime.sandbox.abi import answer
from neira.runtime.sandbox.limits import Limits, SandboxError, SandboxLimit

PRELUDE = files("neira.runtime.sandbox").joinpath("prelude.lua").read_text(encoding="utf-8")
HOOK_EVERY = 10_000  # instructions between two looks at the fuel and the clock
CHECK_MEMORY = 16 << 20  # a compile check needs no more
RUN_DEFINED = re.compile(r"(?m)^\s*(?:function\s+run\s*\(|run\s*=\s*function\b)")
_POSITION = re.compile(r"^(?:script:|\[string[^\]]*\]:)")


def _deny(obj: Any, name: Any, setting: bool) -> NoReturn:
    raise AttributeError("Python objects are not reachable from a script")


def _state(memory_bytes: int) -> Any:
    return lua54.LuaRuntime(register_eval=False, register_builtins=False, unpack_returned_tuples=False,
                            attribute_filter=_deny, max_memory=memory_bytes)


def check(source: str) -> str | None:
    """Why the source cannot be a script cell (a syntax error, no `run`), or None. Compiles, never runs."""
    lua = _state(CHECK_MEMORY)
    compile_only = lua.eval("function(source) local f, e = load(source, '=script', 't', {}) return e end")
    try:
        problem = compile_only(source)
    except lua54.LuaError as exc:  # out of memory while compiling
        return f"the script cannot be compiled: {type(exc).__name__}"
    if problem:
        return f"syntax error: {problem}"
    if not RUN_DEFINED.search(source):
        return "the script must define a global function run(input)"
    return None


def _table(lua: Any, value: Any) -> Any:
    """A JSON-ready builtin as a plain Lua value (tables built here; null becomes nil)."""
    if isinstance(value, dict):
        return lua.table_from({k: _table(lua, v) for k, v in value.items() if v is not None})
    if isinstance(value, list):
        return lua.table_from([_table(lua, v) for v in value])
    return value


def run(source: str, payload: AnyPayload, output: str, limits: Limits) -> AnyPayload:
    """Run `source`'s `run(input)` on the payload within the limits."""
    noted: list[str] = []
    lua = _state(limits.memory_bytes)
    deadline = time.monotonic() + limits.time_ms / 1000
    try:
        runner = lua.execute(PRELUDE, time.monotonic, noted.append, limits.fuel, HOOK_EVERY, deadline,
                             limits.output_bytes)
        raw = runner(source, _table(lua, to_wire(payload)))
    except lua54.LuaMemoryError:
        raise SandboxLimit("memory") from None
    except lua54.LuaError as exc:
        if noted:
            raise SandboxLimit(noted[0]) from None  # type: ignore[arg-type]
        message = str(exc)
        if "stack overflow" in message or "not enough memory" in message:
            raise SandboxLimit("memory") from None
        raise SandboxError("the script failed: " + _POSITION.sub("line ", message)[:200]) from None
    if noted:
        raise SandboxLimit(noted[0])  # type: ignore[arg-type]
    if not isinstance(raw, str):
        raise SandboxError("the script's answer could not be read")
    return answer(raw.encode("utf-8", "surrogatepass"), output, type_of(payload), limits.output_bytes)
