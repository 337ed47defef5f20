"""The wasm sandbox fails closed: WASI without capabilities (no file, socket, environment, arguments), no
import beyond WASI, and every limit ends the run with `sandbox_limit` naming it. Real wasmtime, as in a worker."""

from __future__ import annotations

import hashlib
import time

import pytest

from neira.runtime.payloads import Text
from neira.runtime.sandbox import wasm
from neira.runtime.sandbox.code import module_of
from neira.runtime.sandbox.limits import Limits, SandboxError, SandboxLimit
from neira.catalog import parse_cell
from tests.sandbox.cases import SMALL, example, module

WASI = '(import "wasi_snapshot_preview1" "{name}" (func ${name} {sig}))'


def run(wat: str, text: str = "hello", limits: Limits = SMALL, io: str = "text") -> Text:
    binary = wasm.to_binary(wat)
    assert wasm.check(binary) is None
    return wasm.run(hashlib.sha256(binary).hexdigest(), binary, io, Text(text=text), "text", limits)  # type: ignore[return-value]


def errno(call: str, imports: str) -> int:
    """Run `call` (an i32 errno) and answer it: the module writes it as one byte at 200."""
    out = run(module(f"(i32.store8 (i32.const 200) {call}) (i64.const 0x000000C800000001)", imports), text="x")
    return ord(out.text)


def test_the_reverser_example() -> None:
    m = module_of(parse_cell(example("analysis.reverse_wasm.v1")))
    assert wasm.run(m.digest, m.binary, m.io, Text(text="привет, мир"), "text", SMALL) == Text(text="рим ,тевирп")


def test_path_open_finds_no_directory() -> None:
    sig = "(param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)"
    imports = WASI.format(name="path_open", sig=sig) + ' (data (i32.const 100) "etc/passwd")'
    for fd in (3, 4, 0):  # no preopened directory: 3 is the first one a runtime would give
        code = errno(f"(call $path_open (i32.const {fd}) (i32.const 0) (i32.const 100) (i32.const 10) (i32.const 0) "
                     "(i64.const 0) (i64.const 0) (i32.const 0) (i32.const 300))", imports)
        assert code in (8, 76, 28, 54), code  # badf, notcapable, inval, notdir: never success (0)


def test_no_preopened_directory_exists() -> None:
    imports = WASI.format(name="fd_prestat_get", sig="(param i32 i32) (result i32)")
    assert errno("(call $fd_prestat_get (i32.const 3) (i32.const 300))", imports) == 8  # badf


def test_no_environment_and_no_arguments() -> None:
    for name in ("environ_sizes_get", "args_sizes_get"):
        imports = WASI.format(name=name, sig="(param i32 i32) (result i32)")
        out = run(module(f"(drop (call ${name} (i32.const 300) (i32.const 304))) "
                         "(i32.store8 (i32.const 200) (i32.add (i32.const 48) (i32.load (i32.const 300)))) "
                         "(i64.const 0x000000C800000001)", imports), text="x")
        assert out.text == "0", name  # zero variables, zero arguments


def test_no_socket() -> None:
    imports = WASI.format(name="sock_accept", sig="(param i32 i32 i32) (result i32)")
    assert errno("(call $sock_accept (i32.const 3) (i32.const 0) (i32.const 300))", imports) == 8


def test_stdout_goes_nowhere(capfd: pytest.CaptureFixture[str]) -> None:
    imports = WASI.format(name="fd_write", sig="(param i32 i32 i32 i32) (result i32)") + \
        ' (data (i32.const 100) "ESCAPED") (data (i32.const 120) "\\64\\00\\00\\00\\07\\00\\00\\00")'
    errno("(call $fd_write (i32.const 1) (i32.const 120) (i32.const 1) (i32.const 300))", imports)
    assert "ESCAPED" not in capfd.readouterr().out


def test_proc_exit_ends_the_run_not_the_worker() -> None:
    imports = WASI.format(name="proc_exit", sig="(param i32)")
    with pytest.raises(SandboxError, match="exited with code 3"):
        run(module("(call $proc_exit (i32.const 3)) (i64.const 0)", imports))


@pytest.mark.parametrize(("wat", "problem"), [
    (module("(i64.const 0)", '(import "env" "system" (func (param i32)))'), "only wasi_snapshot_preview1"),
    (module("(i64.const 0)", '(import "env" "mem" (memory 1))').replace('(memory (export "memory") 1)', ""), "only wasi"),
    ('(module (memory (export "memory") 1))', "alloc"),
    ('(module (func (export "alloc") (param i32) (result i32) (i32.const 0)))', "memory"),
    (module("(i64.const 0)").replace("(result i64)", "(result i32)").replace("i64.const", "i32.const"), "run"),
])
def test_the_registration_check(wat: str, problem: str) -> None:
    assert problem in (wasm.check(wasm.to_binary(wat)) or "")


def test_malformed_binaries_are_refused() -> None:
    assert "not valid WebAssembly" in (wasm.check(b"\x00asm\x01\x00\x00\x00\xff") or "")
    assert "not valid WebAssembly" in (wasm.check(b"garbage") or "")
    with pytest.raises(ValueError):
        wasm.to_binary("(module (func (export \"run\")")


LIMITS = [  # (what, run's body, the limit)
    ("infinite loop", "(loop (br 0)) (i64.const 0)", "fuel"),
    ("deep recursion", "(call 1 (i32.const 0) (i32.const 0))", "memory"),
    ("memory bomb", "(block (loop (br_if 1 (i32.eq (memory.grow (i32.const 16)) (i32.const -1))) (br 0))) unreachable", "memory"),
    ("huge output", "(i64.const 0x0000000000200000)", "output"),
]


@pytest.mark.parametrize(("what", "body", "limit"), LIMITS, ids=[r[0] for r in LIMITS])
def test_every_limit_ends_the_run_and_says_which(what: str, body: str, limit: str) -> None:
    start = time.monotonic()
    with pytest.raises(SandboxLimit) as caught:
        run(module(body))
    assert caught.value.limit == limit
    assert time.monotonic() - start < 5


def test_growing_memory_past_the_limit_is_refused() -> None:
    """One grow past the cap answers -1 (wasm's own refusal) and the memory stays where it was."""
    out = run(module("(i32.store8 (i32.const 200) (i32.add (i32.const 49) (memory.grow (i32.const 4096)))) "
                     "(i64.const 0x000000C800000001)"), text="x")
    assert out.text == "0"  # 49 + (-1)


def test_a_declared_memory_past_the_limit_cannot_start() -> None:
    with pytest.raises(SandboxLimit) as caught:
        run(module("(i64.const 0)", pages=1024))  # 64 MiB against a 16 MiB cap
    assert caught.value.limit == "memory"


def test_the_wall_clock_deadline() -> None:
    start = time.monotonic()
    with pytest.raises(SandboxLimit) as caught:
        run(module("(loop (br 0)) (i64.const 0)"), limits=Limits(fuel=10**15, time_ms=200))
    assert caught.value.limit == "time"
    assert 0.19 < time.monotonic() - start < 2


@pytest.mark.parametrize(("body", "message"), [
    ("unreachable", "unreachable"),
    ("(i64.extend_i32_u (i32.div_u (i32.const 1) (i32.const 0)))", "divide by zero"),
    ("(i64.const 0x7FFFFFF000000010)", "outside the module's memory"),
])
def test_traps_and_bad_answers_are_plain_failures(body: str, message: str) -> None:
    with pytest.raises(SandboxError, match=message):
        run(module(body))


def test_json_io_checks_the_answer() -> None:
    wat = module("(i64.const 0)")  # answers zero bytes: not JSON
    with pytest.raises(SandboxError, match="not a payload"):
        run(wat, io="json")
