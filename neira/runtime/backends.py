"""Backends turn a cell's template into a runnable Step. `adapter` binds a built-in implementation; the
sandboxed `script` and `wasm` backends of a later issue implement the same Protocol beside it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from neira.errors import NotRunnable
from neira.runtime.registry import Impl, Registry
from neira.templates import CellTemplate


@dataclass(frozen=True)
class Step:
    """One cell of a run: which template and record, the implementation and its parsed params."""

    cell: str
    record_id: str | None
    impl: Impl
    params: Any


class Backend(Protocol):
    """Makes Steps for the cells of one backend; `gate` is the capability that must be open to run them."""

    name: str
    gate: str

    def implementation(self, template: CellTemplate) -> str:
        """The name of the implementation the template asks for."""
        ...

    def find(self, template: CellTemplate) -> Impl | None:
        """The implementation the template asks for, if there is one."""
        ...

    def bind(self, template: CellTemplate, record_id: str | None) -> Step:
        """A Step for the template; NotRunnable when it has no implementation or its params are invalid."""
        ...


def kind_value(template: CellTemplate) -> str:
    """The template's kind value: `analysis_type`, `action_type` or `memory_type`."""
    return template.analysis_type or template.action_type or template.memory_type or ""


class AdapterBackend:
    """Built-in implementations: named by `metadata.adapter.impl`, else by the kind value; configured by
    `metadata.adapter.params`."""

    name = "adapter"
    gate = "factory_adapter"

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @staticmethod
    def _adapter(template: CellTemplate) -> dict[str, Any]:
        adapter = template.metadata.get("adapter")
        return adapter if isinstance(adapter, dict) else {}

    def implementation(self, template: CellTemplate) -> str:
        """`metadata.adapter.impl`, else the kind value."""
        name = self._adapter(template).get("impl")
        return name if isinstance(name, str) and name else kind_value(template)

    def find(self, template: CellTemplate) -> Impl | None:
        """The registered implementation of that name, or None."""
        return self.registry.get(self.implementation(template))

    def bind(self, template: CellTemplate, record_id: str | None) -> Step:
        """The Step, with params checked against the implementation's params Struct."""
        name = self.implementation(template)
        found = self.registry.get(name)
        if found is None:
            raise NotRunnable(f"cell {template.id} has no implementation {name!r} on the adapter backend",
                              cell=template.id)
        try:
            params = found.parse_params(self._adapter(template).get("params"))
        except msgspec.ValidationError as exc:
            raise NotRunnable(f"cell {template.id}: metadata.adapter.params are invalid: {exc}", cell=template.id) from None
        return Step(template.id, record_id, found, params)
