"""Sandboxed backends (contract §8): `script` (Lua 5.4 through lupa) and `wasm` (wasmtime), their code in the
template, limits per run, and the escape-proof runtimes they use in the worker processes (docs/runtime.md,
"Sandboxes")."""

from neira.runtime.sandbox.backends import ScriptBackend, WasmBackend
from neira.runtime.sandbox.code import check_code
from neira.runtime.sandbox.limits import Limits, SandboxError, SandboxLimit

__all__ = ["Limits", "SandboxError", "SandboxLimit", "ScriptBackend", "WasmBackend", "check_code"]
