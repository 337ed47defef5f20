"""The `script` and `wasm` backends: a cell's own code, bound to a Step that runs it in a worker's sandbox."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
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


class _CodeBackend:
    """A backend whose cells carry their own code: `code_of` reads (and checks) it from the template, `run`
    runs it in a worker's sandbox with the params `params_of` builds. Script and wasm differ only in those."""

    def __init__(self, name: str, limits: Limits, code_of: Callable[[CellTemplate], Any],
                 run: Callable[..., Any], params_of: Callable[[Any], Any]) -> None:
        self.name, self.gate, self.limits = name, f"factory_{name}", limits
        self.code_of, self.run, self.params_of = code_of, run, params_of
        self.bound = _Bound()

    def implementation(self, template: CellTemplate) -> str:
        """Every cell of this backend runs on its one implementation (named like the backend)."""
        return self.name

    def _impl(self, code: Any) -> Impl:
        return Impl(self.name, frozenset(code.inputs), code.output, self.run, sandboxed=True)

    def find(self, template: CellTemplate) -> Impl | None:
        """The Impl with the code's declared types, or None when the template has no valid code."""
        try:
            return self._impl(self.code_of(template))
        except InvalidTemplate:
            return None

    def bind(self, template: CellTemplate, record_id: str | None) -> Step:
        """A Step that runs the code; NotRunnable when the template carries none."""
        if (hit := self.bound.get(template)) is not None:
            return Step(template.id, record_id, *hit)
        try:
            code = self.code_of(template)
        except InvalidTemplate as exc:
            raise NotRunnable(f"cell {template.id}: {exc.errors[0]['message']}", cell=template.id) from None
        return Step(template.id, record_id, *self.bound.put(template, self._impl(code), self.params_of(code)))


class ScriptBackend(_CodeBackend):
    """Lua scripts in `metadata.script` (gate `factory_script`)."""

    def __init__(self, limits: Limits) -> None:
        super().__init__("script", limits, script_of, run_script,
                         lambda code: ScriptParams(source=code.source, output=code.output, limits=limits))


class WasmBackend(_CodeBackend):
    """WebAssembly modules in `metadata.wasm` (gate `factory_wasm`)."""

    def __init__(self, limits: Limits) -> None:
        super().__init__("wasm", limits, module_of, run_wasm, lambda module: WasmParams(module=module, limits=limits))
