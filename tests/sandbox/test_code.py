"""Sandboxed code in templates: checked at registration (invalid_template naming the path), part of the
template digest, and a dry-run that reports the backend, its limits and the gate."""

from __future__ import annotations

import base64
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from neira.structs import to_builtins
from neira.catalog import parse_cell, template_digest
from neira.core import Core
from neira.errors import CapabilityDisabled, InvalidTemplate, NotRunnable
from neira.runtime.sandbox import wasm
from tests.conftest import make_settings, started
from tests.sandbox.cases import example, module, scripted, wasm_cell

OPEN = {"factory_script": "experimental", "factory_wasm": "experimental"}


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Core]:
    async with started(Core(make_settings(tmp_path / "data", capabilities=OPEN, run_workers=1, sandbox_fuel=500_000))) as c:
        yield c


@pytest.fixture
async def locked(tmp_path: Path) -> AsyncIterator[Core]:
    async with started(Core(make_settings(tmp_path / "locked", run_workers=1))) as c:
        yield c


BAD = [  # (template, the path the error names)
    (scripted("function run( end"), "$.metadata.script.source"),
    (scripted("x = 1"), "$.metadata.script.source"),
    (scripted("function run(i) return i end", lang="python"), "$.metadata.script.lang"),
    (scripted("-- " + "x" * 70_000 + "\nfunction run(i) return i end"), "$.metadata.script.source"),
    (scripted("function run(i) return i end", output="video"), "$.metadata.script.output"),
    (wasm_cell("(module (func"), "$.metadata.wasm.wat"),
    (wasm_cell('(module (memory (export "memory") 1))'), "$.metadata.wasm"),
    (wasm_cell(module("(i64.const 0)", '(import "env" "f" (func))')), "$.metadata.wasm"),
    ({**wasm_cell(""), "metadata": {"schema": "v1", "wasm": {"module_b64": "!!!"}}}, "$.metadata.wasm.module_b64"),
    ({**wasm_cell(""), "metadata": {"schema": "v1", "wasm": {"module_b64": base64.b64encode(b"\0asm\1\0\0\0\xff").decode()}}},
     "$.metadata.wasm"),
    ({**wasm_cell(""), "metadata": {"schema": "v1", "wasm": {"module_b64": "AAAA", "wat": "(module)"}}}, "$.metadata.wasm"),
    ({**wasm_cell(""), "metadata": {"schema": "v1", "wasm": {"module_b64": "A" * 400_000}}}, "$.metadata.wasm.module_b64"),
    (wasm_cell(module("(i64.const 0)"), io="text"), "$.metadata.wasm.io"),
]


@pytest.mark.parametrize(("template", "path"), BAD, ids=[p for _, p in BAD])
async def test_malformed_code_is_refused_at_registration(core: Core, template: dict[str, Any], path: str) -> None:
    backend = "script" if "script" in template["metadata"] else "wasm"
    for register in (lambda: core.catalog.put_cell(template), lambda: core.factory.create({"template": template, "backend": backend}, "admin")):
        with pytest.raises(InvalidTemplate) as caught:
            await register()
        assert caught.value.errors[0]["path"] == path, caught.value.errors
    assert await core.factory.list() == []
    assert not list((core.settings.data_path / "cells").glob("analysis.t_*"))  # nothing on disk


async def test_a_create_on_a_sandboxed_backend_needs_the_code(core: Core) -> None:
    plain = {"id": "analysis.t_plain.v1", "version": "1.0.0", "analysis_type": "x", "links": [], "metadata": {"schema": "v1"}}
    with pytest.raises(InvalidTemplate) as caught:
        await core.factory.create({"template": plain, "backend": "wasm"}, "admin")
    assert caught.value.errors[0]["path"] == "$.metadata.wasm"
    dry = to_builtins(await core.factory.dryrun({"template": plain, "backend": "script"}, "admin"))
    assert dry["ok"] is False and "no_code" in [r["code"] for r in dry["report"]["risks"]]


@pytest.mark.parametrize("name", ["analysis.word_count_script.v1", "analysis.reverse_wasm.v1"])
def test_the_code_is_part_of_the_digest(name: str) -> None:
    template = example(name)
    changed = copy.deepcopy(template)
    key = "script" if "script" in template["metadata"] else "wasm"
    field = "source" if key == "script" else "wat"
    changed["metadata"][key][field] = changed["metadata"][key][field].replace("run", "run ", 1)
    assert template_digest(parse_cell(template)) != template_digest(parse_cell(changed))
    assert template_digest(parse_cell(template)) == template_digest(parse_cell(copy.deepcopy(template)))


async def test_the_dryrun_reports_backend_limits_and_gate(core: Core, locked: Core) -> None:
    template = example("analysis.word_count_script.v1")
    opened = to_builtins(await core.factory.dryrun({"template": template, "backend": "script"}, "admin"))
    assert opened["ok"] is True
    sandbox = opened["report"]["sandbox"]
    assert sandbox["backend"] == "script" and sandbox["runtime"].startswith("Lua 5.4")
    assert sandbox["limits"] == {"fuel": 500_000, "time_ms": 1000, "memory_mb": 64, "output_bytes": 1 << 20}
    assert sandbox["gate"] == {"capability": "factory_script", "action": "allow", "reason": "factory_script is experimental"}
    closed = to_builtins(await locked.factory.dryrun({"template": example("analysis.reverse_wasm.v1"), "backend": "wasm"}, "admin"))
    assert closed["ok"] is False
    assert closed["report"]["sandbox"]["gate"] == {"capability": "factory_wasm", "action": "deny", "reason": "factory_wasm is locked"}
    assert [v["capability"] for v in closed["report"]["policy"]["violations"]] == ["factory_wasm"]
    adapter = to_builtins(await core.factory.dryrun({"template": template}, "admin"))
    assert "sandbox" not in adapter["report"]


async def test_the_create_audits_the_sandbox_decision(core: Core) -> None:
    _, record = await core.factory.create({"template": example("analysis.reverse_wasm.v1"), "backend": "wasm"}, "admin")
    trail = [a for a in await core.audit.list() if a.subject == f"cell:{record['id']}"]
    assert trail and "wasm sandbox" in (trail[0].reason or "") and "fuel 500000" in (trail[0].reason or "")
    assert "capability.factory_wasm allow" in (trail[0].reason or "")


async def test_a_locked_gate_refuses_create_and_run(core: Core, locked: Core) -> None:
    with pytest.raises(CapabilityDisabled):
        await locked.factory.create({"template": example("analysis.word_count_script.v1"), "backend": "script"}, "admin")
    _, record = await core.factory.create({"template": example("analysis.word_count_script.v1"), "backend": "script"}, "admin")
    assert (await core.runs.run_cell(record["id"], {"input": "a b a"})).ok
    await core.policy.set_capability("admin", "factory_script", "disabled")
    with pytest.raises(NotRunnable) as caught:
        await core.runs.run_cell(record["id"], {"input": "a b a"})
    assert caught.value.extra["capability"] == "factory_script"


async def test_runs_in_the_worker_pool_end_with_the_limit(core: Core) -> None:
    _, spin = await core.factory.create({"template": scripted("function run(i) while true do end end"), "backend": "script"}, "admin")
    result = await core.runs.run_cell(spin["id"], {"input": "x"})
    assert result.ok is False and result.error is not None
    assert (result.error.code, result.error.limit, result.error.cell) == ("sandbox_limit", "fuel", "analysis.t_script.v1")
    _, bomb = await core.factory.create({"template": wasm_cell(module(
        "(block (loop (br_if 1 (i32.eq (memory.grow (i32.const 16)) (i32.const -1))) (br 0))) unreachable")),
        "backend": "wasm"}, "admin")
    result = await core.runs.run_cell(bomb["id"], {"input": "x"})
    assert (result.error.code, result.error.limit) == ("sandbox_limit", "memory")  # type: ignore[union-attr]
    assert wasm.check(wasm.to_binary(module("(i64.const 0)"))) is None


async def test_native_code_past_the_hook_is_stopped_by_the_run_deadline(tmp_path: Path) -> None:
    """A pathological pattern spins inside string.find, where no hook runs: the worker is killed at the run's
    time limit, and a sandboxed cell answers that as sandbox_limit / time."""
    c = Core(make_settings(tmp_path / "d", capabilities=OPEN, run_workers=1, run_timeout_ms=600))
    await c.start()
    try:
        source = 'function run(i) return tostring(string.find(string.rep("a", 3000), string.rep("a-", 12) .. "b")) end'
        _, record = await c.factory.create({"template": scripted(source), "backend": "script"}, "admin")
        result = await c.runs.run_cell(record["id"], {"input": "x"})
        assert result.error is not None and (result.error.code, result.error.limit) == ("sandbox_limit", "time")
        assert (await c.runs.run_cell(record["id"], {"input": "x"})).error is not None  # a new worker took its place
    finally:
        await c.stop()
