"""The `script` and `wasm` backends: a cell's own code, bound to a Step that runs it in a worker's sandbox."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from neira.errors import InvalidTemplate, NotRunnable
from neira.runtime.backends import Step
from neira.runtime.registry import Impl
from neira.runtime.sandbox.code import module_of, script_of
from neira.runtime.sandbox.limits import Limits
from neira.runtime.sandbox.run import ScriptParams, WasmParams, run_script, run_wasm
from neira.templates import CellTemplate


BOUND_KEPT = 256


class _Bound:
    """Steps' implementation and params per (template id, version), the most recent BOUND_KEPT: a record's
    template is a registered version, whose content never changes, and a WAT module compiles in ~0.5 ms."""

    def __init__(self) -> None:
        self.kept: OrderedDict[tuple[str, str], tuple[Impl, Any]] = OrderedDict()

    def get(self, template: CellTemplate) -> tuple[Impl, Any] | None:
        found = self.kept.get((template.id, template.version))
        if found is not None:
            self.kept.move_to_end((template.id, template.version))
        return found

    def put(self, template: CellTemplate, impl: Impl, params: Any) -> tuple[Impl, Any]:
        self.kept[(template.id, template.version)] = (impl, params)
        if len(self.kept) > BOUND_KEPT:
            self.kept.popitem(last=False)
        return impl, params


class ScriptBackend:
    """Lua scripts in `metadata.script` (gate `factory_script`)."""

    name = "script"
    gate = "factory_script"

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.bound = _Bound()

    def _remember(self, template: CellTemplate, impl: Impl, params: Any) -> tuple[Impl, Any]:
        return self.bound.put(template, impl, params)

    def implementation(self, template: CellTemplate) -> str:
        """Every script cell runs on the one `script` implementation."""
        return "script"

    def find(self, template: CellTemplate) -> Impl | None:
        """The Impl with the script's declared types, or None when the template has no valid script."""
        try:
            code = script_of(template)
        except InvalidTemplate:
            return None
        return Impl("script", frozenset(code.inputs), code.output, run_script, sandboxed=True)

    def bind(self, template: CellTemplate, record_id: str | None) -> Step:
        """A Step that runs the script; NotRunnable when the template carries none."""
        if (hit := self.bound.get(template)) is not None:
            return Step(template.id, record_id, *hit)
        try:
            code = script_of(template)
        except InvalidTemplate as exc:
            raise NotRunnable(f"cell {template.id}: {exc.errors[0]['message']}", cell=template.id) from None
        impl = Impl("script", frozenset(code.inputs), code.output, run_script, sandboxed=True)
        params = ScriptParams(source=code.source, output=code.output, limits=self.limits)
        return Step(template.id, record_id, *self._remember(template, impl, params))


class WasmBackend:
    """WebAssembly modules in `metadata.wasm` (gate `factory_wasm`)."""

    name = "wasm"
    gate = "factory_wasm"

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.bound = _Bound()

    def _remember(self, template: CellTemplate, impl: Impl, params: Any) -> tuple[Impl, Any]:
        return self.bound.put(template, impl, params)

    def implementation(self, template: CellTemplate) -> str:
        """Every wasm cell runs on the one `wasm` implementation."""
        return "wasm"

    def find(self, template: CellTemplate) -> Impl | None:
        """The Impl with the module's declared types, or None when the template has no valid module."""
        try:
            module = module_of(template)
        except InvalidTemplate:
            return None
        return Impl("wasm", frozenset(module.inputs), module.output, run_wasm, sandboxed=True)

    def bind(self, template: CellTemplate, record_id: str | None) -> Step:
        """A Step that runs the module; NotRunnable when the template carries none."""
        if (hit := self.bound.get(template)) is not None:
            return Step(template.id, record_id, *hit)
        try:
            module = module_of(template)
        except InvalidTemplate as exc:
            raise NotRunnable(f"cell {template.id}: {exc.errors[0]['message']}", cell=template.id) from None
        impl = Impl("wasm", frozenset(module.inputs), module.output, run_wasm, sandboxed=True)
        return Step(template.id, record_id, *self._remember(template, impl, WasmParams(module=module, limits=self.limits)))
