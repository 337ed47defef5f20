"""The `wasm` sandbox: a WebAssembly module run by wasmtime, with fuel, an epoch deadline, a memory cap and
capability-less WASI (no preopened directory, no environment, no arguments, no stdin; stdout and stderr
go nowhere).

ABI: the module exports `memory`, `alloc(len: i32) -> i32` and `run(ptr: i32, len: i32) -> i64`. The host
calls `alloc` for the input's length, writes the input there, calls `run`, and reads the answer at
`result >> 32`, `result & 0xffffffff` bytes long. With `io: "json"` the input and the answer are payload
JSON (abi.py); with `io: "text"` the input is the text's UTF-8 and the answer is UTF-8 text.

One engine per worker process; compiled modules are kept per digest (a module compiles once per worker)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

import wasmtime

from neira.runtime.payloads import AnyPayload, Text, type_of
from neira.runtime.sandbox.abi import answer, input_json
from neira.runtime.sandbox.limits import Limits, SandboxError, SandboxLimit

WASI = "wasi_snapshot_preview1"
PAGE = 65536
MODULES_KEPT = 32
I32, I64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
REQUIRED = {"alloc": ([I32], [I32]), "run": ([I32, I32], [I64])}


RESERVATION = 128 << 20  # virtual memory per linear memory (the default 4 GiB + guard would not fit the
# worker's 2 GiB address-space limit); a memory past it moves when it grows, and every access is bounds-checked


def _engine(run: bool) -> wasmtime.Engine:
    config = wasmtime.Config()
    config.consume_fuel = run
    config.epoch_interruption = run
    config.cranelift_opt_level = "speed" if run else "none"
    config.parallel_compilation = False  # no compile threads in a worker (or in the server, for checks)
    config.memory_reservation = RESERVATION
    config.memory_guard_size = PAGE
    return wasmtime.Engine(config)


class _Watchdog:
    """One thread per worker that bumps the engine's epoch when an armed deadline passes (a thread per run
    costs ~1.5 ms to start and join; arming this one costs two notifications)."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self.engine, self.cond, self.deadline = engine, threading.Condition(), None
        threading.Thread(target=self._watch, name="neira-wasm-deadline", daemon=True).start()

    def arm(self, seconds: float) -> None:
        with self.cond:
            self.deadline = time.monotonic() + seconds
            self.cond.notify()

    def disarm(self) -> None:
        with self.cond:  # an epoch bump happens under the lock: none can follow this
            self.deadline = None
            self.cond.notify()

    def _watch(self) -> None:
        with self.cond:
            while True:
                if self.deadline is None:
                    self.cond.wait()
                    continue
                left = self.deadline - time.monotonic()
                if left > 0:
                    self.cond.wait(left)
                else:
                    self.engine.increment_epoch()
                    self.deadline = None


class _Host:
    """This process's engine, WASI linker and compiled modules (made on first use, in the worker)."""

    def __init__(self) -> None:
        self.engine = _engine(run=True)
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()
        self.modules: OrderedDict[str, wasmtime.Module] = OrderedDict()
        self.watchdog = _Watchdog(self.engine)

    def module(self, digest: str, binary: bytes) -> wasmtime.Module:
        found = self.modules.get(digest)
        if found is None:
            found = self.modules[digest] = wasmtime.Module(self.engine, binary)
            if len(self.modules) > MODULES_KEPT:
                self.modules.popitem(last=False)
        self.modules.move_to_end(digest)
        return found


_host: _Host | None = None
_checker: wasmtime.Engine | None = None


def to_binary(wat: str) -> bytes:
    """WAT text as a module's bytes; ValueError with wasmtime's message when it does not parse."""
    try:
        return wasmtime.wat2wasm(wat)
    except wasmtime.WasmtimeError as exc:
        raise ValueError(str(exc).splitlines()[0][:200]) from None


def check(binary: bytes) -> str | None:
    """Why the module cannot be a wasm cell (invalid, imports beyond WASI, exports missing), or None."""
    global _checker
    _checker = _checker or _engine(run=False)
    try:
        module = wasmtime.Module(_checker, binary)
    except wasmtime.WasmtimeError as exc:
        return "the module is not valid WebAssembly: " + str(exc).splitlines()[0][:200]
    foreign = sorted({f"{i.module}.{i.name}" for i in module.imports if i.module != WASI})
    if foreign:
        return f"the module imports {', '.join(foreign)}; only {WASI} may be imported"
    exports = {e.name: e.type for e in module.exports}
    if not isinstance(exports.get("memory"), wasmtime.MemoryType):
        return "the module must export its memory as `memory`"
    for name, (params, results) in REQUIRED.items():
        found = exports.get(name)
        if not isinstance(found, wasmtime.FuncType) or [str(p) for p in found.params] != [str(p) for p in params] \
                or [str(r) for r in found.results] != [str(r) for r in results]:
            shown = f"({', '.join(map(str, params))}) -> {', '.join(map(str, results))}"
            return f"the module must export a function `{name}` {shown}"
    return None


def _cause(exc: Exception) -> str:
    """The last line of a wasmtime error (its cause), without the backtrace."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__).removeprefix("wasm trap: ")[:200]


def _trap(exc: Exception, store: wasmtime.Store, memory: Any, limits: Limits) -> Exception:
    """A trap as the run's error: fuel, the deadline, the stack or the memory cap are limits."""
    code = getattr(exc, "trap_code", None)
    if code == wasmtime.TrapCode.OUT_OF_FUEL:
        return SandboxLimit("fuel")
    if code == wasmtime.TrapCode.INTERRUPT:
        return SandboxLimit("time")
    if code == wasmtime.TrapCode.STACK_OVERFLOW:
        return SandboxLimit("memory")
    if isinstance(exc, wasmtime.ExitTrap):
        return SandboxError(f"the module exited with code {exc.code}")
    if memory is not None and memory.data_len(store) + limits.memory_bytes // 16 > limits.memory_bytes:
        return SandboxLimit("memory")  # it trapped with its memory at the cap: a grow was refused
    return SandboxError("the module trapped: " + _cause(exc))


def run(digest: str, binary: bytes, io: str, payload: AnyPayload, output: str, limits: Limits) -> AnyPayload:
    """Run the module's `run` on the payload within the limits."""
    global _host
    host = _host = _host or _Host()
    module = host.module(digest, binary)
    store = wasmtime.Store(host.engine)
    store.set_limits(memory_size=limits.memory_bytes, instances=1, tables=4, memories=1)
    store.set_fuel(limits.fuel)
    store.set_epoch_deadline(1)
    store.set_wasi(wasmtime.WasiConfig())  # nothing: no dirs, env, args or stdio
    data = input_json(payload) if io == "json" else payload.text.encode()  # type: ignore[union-attr]
    host.watchdog.arm(limits.time_ms / 1000)
    memory = None
    try:
        instance = host.linker.instantiate(store, module)
        exports = instance.exports(store)
        memory = exports["memory"]
        ptr = exports["alloc"](store, len(data))
        if ptr < 0 or ptr + len(data) > memory.data_len(store):
            raise SandboxError("alloc answered a pointer outside the module's memory")
        memory.write(store, data, ptr)
        packed = exports["run"](store, ptr, len(data)) & 0xFFFFFFFFFFFFFFFF
    except (wasmtime.Trap, wasmtime.ExitTrap) as exc:
        raise _trap(exc, store, memory, limits) from None
    except wasmtime.WasmtimeError as exc:
        if "memory" in str(exc) and ("limit" in str(exc) or "exceed" in str(exc)):
            raise SandboxLimit("memory") from None
        raise SandboxError("the module could not run: " + _cause(exc)) from None
    finally:
        host.watchdog.disarm()
    start, size = packed >> 32, packed & 0xFFFFFFFF
    if size > limits.output_bytes:
        raise SandboxLimit("output")
    if start + size > memory.data_len(store):
        raise SandboxError("run answered a range outside the module's memory")
    raw = memory.read(store, start, start + size)
    if io == "json":
        return answer(raw, output, type_of(payload), limits.output_bytes)
    try:
        return Text(text=raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SandboxError(f"the answer is not text: {exc}"[:200]) from None
