"""The functions a worker process calls for a sandboxed step (pool implementations: `fn(payload, params)`)."""

from __future__ import annotations

import msgspec

from neira.runtime.payloads import AnyPayload
from neira.runtime.sandbox import lua
from neira.runtime.sandbox.code import WasmModule
from neira.runtime.sandbox.limits import Limits


class ScriptParams(msgspec.Struct, kw_only=True, frozen=True):
    """A script step: the source, the declared output type and the limits."""

    source: str
    output: str
    limits: Limits


class WasmParams(msgspec.Struct, kw_only=True, frozen=True):
    """A wasm step: the module and the limits."""

    module: WasmModule
    limits: Limits


def run_script(payload: AnyPayload, params: ScriptParams) -> AnyPayload:
    """Run a script cell's `run(input)`."""
    return lua.run(params.source, payload, params.output, params.limits)


def run_wasm(payload: AnyPayload, params: WasmParams) -> AnyPayload:
    """Run a wasm cell's `run(ptr, len)`."""
    from neira.runtime.sandbox import wasm  # imported by the workers' forkserver; the server needs it only to check

    m = params.module
    return wasm.run(m.digest, m.binary, m.io, payload, m.output, params.limits)
