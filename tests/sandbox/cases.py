"""Shared helpers of the escape suite: the shipped examples, limits small enough to hit fast, WAT builders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from neira.runtime.sandbox.limits import Limits

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_EXAMPLES = ROOT / "examples" / "sandbox"
SMALL = Limits(fuel=2_000_000, time_ms=1500, memory_bytes=16 << 20, output_bytes=64 << 10)


def example(name: str) -> dict[str, Any]:
    """A template from examples/sandbox/."""
    return json.loads((SANDBOX_EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def module(body: str, imports: str = "", pages: int = 1) -> str:
    """A WAT module with the ABI's exports; `body` is `run`'s body (answering an i64)."""
    return (f'(module {imports} (memory (export "memory") {pages}) '
            '(func (export "alloc") (param i32) (result i32) (i32.const 1024)) '
            f'(func (export "run") (param $p i32) (param $n i32) (result i64) {body}))')


def scripted(source: str, **code: Any) -> dict[str, Any]:
    """A script cell template."""
    return {"id": "analysis.t_script.v1", "version": "1.0.0", "analysis_type": "t_script", "links": [],
            "metadata": {"schema": "v1", "script": {"lang": "lua", "source": source, **code}}}


def wasm_cell(wat: str, **code: Any) -> dict[str, Any]:
    """A wasm cell template."""
    return {"id": "analysis.t_wasm.v1", "version": "1.0.0", "analysis_type": "t_wasm", "links": [],
            "metadata": {"schema": "v1", "wasm": {"wat": wat, **code}}}
