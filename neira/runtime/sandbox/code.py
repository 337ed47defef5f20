"""The code a sandboxed cell carries in its template (`metadata.script`, `metadata.wasm`), parsed into Structs
and checked at registration: shape, size, syntax or validity, the function or exports the ABI needs.

The code is part of the template body, so `catalog.template_digest` covers it: a changed byte is another
template (tests/sandbox/test_code.py holds that)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from functools import lru_cache
from typing import Annotated, Any, Literal

import msgspec

from neira.errors import InvalidTemplate
from neira.runtime.payloads import TYPES
from neira.runtime.registry import ANY, SAME
from neira.templates import CellTemplate, validation_error

MAX_SOURCE = 64 * 1024  # characters of a script
MAX_MODULE = 256 * 1024  # bytes of a wasm module (and characters of its WAT)
SANDBOXED = {"script": "script", "wasm": "wasm"}  # backend → the metadata key holding its code

InputType = Literal["any", "text", "phonemes", "audio", "image", "json"]
OutputType = Literal["same", "text", "phonemes", "audio", "image", "json"]
Inputs = Annotated[tuple[InputType, ...], msgspec.Meta(min_length=1, max_length=len(TYPES))]


class _Code(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What both kinds of code declare: the payload types they take and the one they answer."""

    inputs: Inputs = (ANY,)
    output: OutputType = SAME


class Script(_Code, frozen=True):
    """`metadata.script`: `{lang: "lua", source, inputs?, output?}`."""

    lang: Literal["lua"]
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SOURCE)]


class Wasm(_Code, frozen=True):
    """`metadata.wasm`: `{module_b64 | wat, io?: "json" | "text", inputs?, output?}`."""

    module_b64: str | None = None
    wat: Annotated[str, msgspec.Meta(max_length=MAX_MODULE)] | None = None
    io: Literal["json", "text"] = "json"


class WasmModule(msgspec.Struct, kw_only=True, frozen=True):
    """A wasm cell's module as bytes, with its digest (the worker's key for the compiled module)."""

    binary: bytes
    digest: str
    io: str
    inputs: tuple[str, ...]
    output: str


def _invalid(path: str, message: str) -> InvalidTemplate:
    return InvalidTemplate([{"path": path, "message": message}])


def _convert(raw: Any, shape: type[msgspec.Struct], key: str) -> Any:
    try:
        return msgspec.convert(raw, shape)
    except msgspec.ValidationError as exc:
        error = validation_error(exc)
        path = "$.metadata." + key + error["path"].removeprefix("$")
        raise InvalidTemplate([{"path": path, "message": error["message"]}]) from None


def script_of(t: CellTemplate) -> Script:
    """The template's script (shape only); InvalidTemplate naming `$.metadata.script...`."""
    if "script" not in t.metadata:
        raise _invalid("$.metadata.script", "a script cell needs metadata.script: {lang, source}")
    return _convert(t.metadata["script"], Script, "script")


def module_of(t: CellTemplate) -> WasmModule:
    """The template's module as bytes (WAT compiled to binary); InvalidTemplate naming the path."""
    from neira.runtime.sandbox import wasm  # wasmtime loads only where wasm cells exist

    if "wasm" not in t.metadata:
        raise _invalid("$.metadata.wasm", "a wasm cell needs metadata.wasm: {module_b64 | wat}")
    code: Wasm = _convert(t.metadata["wasm"], Wasm, "wasm")
    if (code.module_b64 is None) == (code.wat is None):
        raise _invalid("$.metadata.wasm", "give the module as exactly one of module_b64 or wat")
    if code.module_b64 is not None:
        if len(code.module_b64) > (MAX_MODULE * 4 + 2) // 3 + 4:
            raise _invalid("$.metadata.wasm.module_b64", f"the module is larger than {MAX_MODULE} bytes")
        try:
            binary = base64.b64decode(code.module_b64, validate=True)
        except (binascii.Error, ValueError):
            raise _invalid("$.metadata.wasm.module_b64", "not valid base64") from None
    else:
        try:
            binary = wasm.to_binary(code.wat or "")
        except ValueError as exc:
            raise _invalid("$.metadata.wasm.wat", f"the WAT does not parse: {exc}") from None
    if len(binary) > MAX_MODULE:
        raise _invalid("$.metadata.wasm", f"the module is larger than {MAX_MODULE} bytes")
    if code.io == "text" and (code.inputs != ("text",) or code.output != "text"):
        raise _invalid("$.metadata.wasm.io", 'io "text" takes and answers text: set inputs ["text"] and output "text"')
    return WasmModule(binary=bytes(binary), digest=hashlib.sha256(binary).hexdigest(), io=code.io,
                      inputs=tuple(code.inputs), output=code.output)


@lru_cache(maxsize=256)
def _script_problem(source: str) -> str | None:
    from neira.runtime.sandbox import lua

    return lua.check(source)


@lru_cache(maxsize=64)
def _module_problem(binary: bytes) -> str | None:
    from neira.runtime.sandbox import wasm

    return wasm.check(binary)


def check_code(t: CellTemplate) -> None:
    """At registration: every sandbox code block the template carries is well formed, of allowed size,
    compiles, and has what its ABI needs. InvalidTemplate with the JSON path otherwise. The verdict is kept
    per source / module (a dry-run, the create and the registration check the same code once)."""
    if "script" in t.metadata:
        problem = _script_problem(script_of(t).source)
        if problem:
            raise _invalid("$.metadata.script.source", problem)
    if "wasm" in t.metadata:
        problem = _module_problem(bytes(module_of(t).binary))
        if problem:
            raise _invalid("$.metadata.wasm", problem)


async def check_code_off_loop(t: CellTemplate) -> None:
    """`check_code` on a thread when the template carries code: compiling a 256 KiB module takes about a
    second (Cranelift; the ctypes calls release the GIL), which must not hold the event loop."""
    if "script" in t.metadata or "wasm" in t.metadata:
        await asyncio.to_thread(check_code, t)


async def require_code(t: CellTemplate, backend: str) -> None:
    """For a factory create on `backend`: a sandboxed backend's code is there, and all code checks."""
    key = SANDBOXED.get(backend)
    if key is not None and key not in t.metadata:
        shape = "{lang, source}" if key == "script" else "{module_b64 | wat}"
        raise _invalid(f"$.metadata.{key}", f"a {backend} cell needs metadata.{key}: {shape}")
    await check_code_off_loop(t)
