"""The script sandbox fails closed: nothing of the host is reachable, and every limit ends the run with
`sandbox_limit` naming it. Each case runs the real Lua runtime the worker uses."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from neira.runtime.payloads import JsonData, Text
from neira.runtime.sandbox import lua
from neira.runtime.sandbox.limits import SandboxError, SandboxLimit
from tests.sandbox.cases import SMALL, example


def run(source: str, output: str = "text", text: str = "hello") -> object:
    return lua.run(source, Text(text=text), output, SMALL)


def test_the_word_counter_example() -> None:
    source = example("analysis.word_count_script.v1")["metadata"]["script"]["source"]
    out = lua.run(source, Text(text="To be or not to be"), "json", SMALL)
    assert out == JsonData(data={"words": 6, "distinct": 4, "counts": {"to": 2, "be": 2, "or": 1, "not": 1}})


REACH = [  # (what it tries, the script) — each must end as a plain script error: the name is not there
    ("io.open", "return io.open('/etc/passwd'):read('a')"),
    ("io.popen", "return io.popen('id'):read('a')"),
    ("os.execute", "return os.execute('touch /tmp/neira-escape')"),
    ("os.getenv", "return os.getenv('HOME')"),
    ("os.remove", "return os.remove('/tmp/x')"),
    ("require", "return require('socket')"),
    ("require io", "return require('io')"),
    ("package.loadlib", "return package.loadlib('libc.so.6', 'system')"),
    ("load", "return load('return 1')()"),
    ("loadstring", "return loadstring('return 1')()"),
    ("dofile", "return dofile('/etc/passwd')"),
    ("loadfile", "return loadfile('/etc/passwd')"),
    ("debug.getregistry", "return debug.getregistry()"),
    ("debug.sethook", "debug.sethook()"),
    ("string.dump", "return string.dump(run)"),
    ("string metatable dump", "return getmetatable('').__index.dump(run)"),
    ("collectgarbage", "collectgarbage('stop')"),
    ("python", "return python.eval('1')"),
    ("python.builtins", "return python.builtins.open('/etc/passwd')"),
    ("_G.python", "return _G.python.eval('1')"),
    ("print", "print('x')"),
]


@pytest.mark.parametrize(("what", "body"), REACH, ids=[r[0] for r in REACH])
def test_nothing_of_the_host_is_reachable(what: str, body: str, tmp_path: Path) -> None:
    before = sorted(os.listdir("/tmp"))
    with pytest.raises(SandboxError, match="attempt to (index|call) a nil value"):
        run(f"function run(input) {body} end")
    assert sorted(os.listdir("/tmp")) == before  # nothing on disk changed


def test_the_globals_hold_only_the_allow_list() -> None:
    source = """function run(input)
      local names = {}
      for k in pairs(_G) do names[#names + 1] = k end
      table.sort(names)
      return table.concat(names, ",")
    end"""
    assert run(source).text.split(",") == sorted([  # type: ignore[attr-defined]
        "_G", "_VERSION", "assert", "coroutine", "error", "getmetatable", "ipairs", "math", "next", "pairs", "pcall",
        "rawequal", "rawget", "rawlen", "rawset", "run", "select", "setmetatable", "string", "table", "tonumber",
        "tostring", "type", "utf8", "xpcall"])


def test_no_python_object_is_reachable_through_the_input() -> None:
    """The input is plain Lua tables and strings: no userdata, no metatable to walk to `__class__`."""
    source = """function run(input)
      local kinds = {}
      for k, v in pairs(input) do kinds[#kinds + 1] = k .. "=" .. type(v) .. tostring(getmetatable(v) ~= nil and type(v) ~= 'string') end
      table.sort(kinds)
      return table.concat(kinds, " ") .. " " .. tostring(getmetatable(input))
    end"""
    assert run(source).text == "text=stringfalse type=stringfalse nil"  # type: ignore[attr-defined]


LIMITS = [  # (what, script, the limit)
    ("infinite loop", "while true do end", "fuel"),
    ("loop that swallows errors", "while true do pcall(function() while true do end end) end", "fuel"),
    ("handler that loops", "while true do xpcall(function() while true do end end, function() while true do end end) end", "fuel"),
    ("loop in a coroutine", "local co = coroutine.create(function() while true do end end) while true do coroutine.resume(co) end", "fuel"),
    ("loop in coroutine.wrap", "local f = coroutine.wrap(function() while true do end end) while true do pcall(f) end", "fuel"),
    ("deep recursion", "local function f(n) return 1 + f(n + 1) end return f(1)", "memory"),
    ("table bomb", "local t = {} for i = 1, 1e9 do t[i] = i end", "memory"),
    ("string bomb", "local s = string.rep('x', 1e9)", "memory"),
    ("caught memory error", "local ok = pcall(string.rep, 'x', 1e9) return 'survived'", "memory"),
    ("huge output", "return string.rep('x', 100000)", "output"),
    ("huge table output", "local t = {} for i = 1, 50000 do t[i] = 'abc' end return {type='json', data={t=t}}", "output"),
]


@pytest.mark.parametrize(("what", "body", "limit"), LIMITS, ids=[r[0] for r in LIMITS])
def test_every_limit_ends_the_run_and_says_which(what: str, body: str, limit: str) -> None:
    start = time.monotonic()
    with pytest.raises(SandboxLimit) as caught:
        run(f"function run(input) {body} end")
    assert caught.value.limit == limit
    assert time.monotonic() - start < 5


def test_the_wall_clock_deadline() -> None:
    from neira.runtime.sandbox.limits import Limits

    start = time.monotonic()
    with pytest.raises(SandboxLimit) as caught:
        lua.run("function run(input) while true do end end", Text(text="x"), "text", Limits(fuel=10**15, time_ms=200))
    assert caught.value.limit == "time"
    assert 0.19 < time.monotonic() - start < 2


def test_finalizers_are_refused() -> None:
    """A __gc metamethod would run with hooks off: refused at setmetatable."""
    with pytest.raises(SandboxError, match="__gc"):
        run("function run(input) setmetatable({}, {__gc = function() while true do end end}) return 'x' end")


@pytest.mark.parametrize(("answer", "message"), [
    ("return 42", "not a payload"),
    ("return {type = 'image'}", "not a payload"),
    ("return {type = 'json', data = {[1.5] = 1}}", "not a string"),
    ("return {type = 'json', data = {f = print or run}}", "function"),
    ("return {type = 'json', data = {x = 0/0}}", "number JSON cannot carry"),
    ("error('boom')", "boom"),
    ("error({})", "the script failed"),
])
def test_bad_answers_and_errors_are_plain_failures(answer: str, message: str) -> None:
    with pytest.raises(SandboxError, match=message):
        run(f"function run(input) {answer} end", output="json")


def test_the_answer_must_have_the_declared_type() -> None:
    with pytest.raises(SandboxError, match="declares json"):
        run("function run(input) return 'text' end", output="json")


def test_metamethods_on_the_answer_are_not_followed() -> None:
    out = run("function run(input) return setmetatable({type='text', text='ok'}, {__index = function() while true do end end}) end",
              output="text")
    assert out == Text(text="ok")


@pytest.mark.parametrize(("source", "problem"), [
    ("function run(input) return input end", None),
    ("function run( end", "syntax error"),
    ("x = 1", "must define a global function run"),
    ("\x1bLua", "syntax error"),  # precompiled chunks are refused: text mode only
])
def test_the_registration_check(source: str, problem: str | None) -> None:
    found = lua.check(source)
    assert (found is None) if problem is None else (problem in (found or ""))
