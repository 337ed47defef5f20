"""The implementation registry: name → implementation with its declared input and output types.

Production code and tests use the same registry: a test registers its own double (a slow or failing
implementation) on a Registry it hands to Core; nothing in the runtime knows about tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import msgspec

from neira.runtime.payloads import AnyPayload, Payload

SAME = "same"  # an output type that is the input's type (echo)
ANY = "any"


class NoParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Parameters of an implementation that takes none."""


class Memory(Protocol):
    """What an implementation that runs on the event loop may keep between runs (the `context` memory)."""

    async def remember(self, scope: str, entry: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        """Append `entry` to the scope's memory, keep the newest `limit`, return what is kept (oldest first)."""
        ...


PoolFn = Callable[[Any, Any], AnyPayload]
LoopFn = Callable[[Any, Any, Memory, str], Awaitable[AnyPayload]]


@dataclass(frozen=True)
class Impl:
    """One implementation. `fn(payload, params)` runs in a worker process (`place="pool"`: a module-level
    function, pickled by reference); `place="loop"` is an async `fn(payload, params, memory, scope)` for work
    that is I/O on the core's own storage (memory), bounded by the same timeout; `place="inline"` is a pool
    function that is linear in its input and cheap, run on the loop for short text (runner.INLINE_MAX_CHARS)
    and on a worker otherwise."""

    name: str
    inputs: frozenset[str]
    output: str
    fn: Callable[..., Any]
    params: type[msgspec.Struct] = NoParams
    place: Literal["pool", "loop", "inline"] = "pool"
    warm: Callable[[], Any] | None = None  # run once in each new worker (e.g. start a speech engine)
    sandboxed: bool = False  # the cell's own code (script, wasm): a run killed at its deadline is a sandbox limit

    def accepts(self, payload_type: str) -> bool:
        """Whether this implementation takes a payload of this type."""
        return ANY in self.inputs or payload_type in self.inputs

    def output_for(self, input_type: str) -> str:
        """The type this implementation answers for an input type."""
        return input_type if self.output == SAME else self.output

    def parse_params(self, raw: Any) -> msgspec.Struct:
        """`metadata.adapter.params` as this implementation's params Struct (ValidationError names the path)."""
        return msgspec.convert(raw or {}, self.params)


@dataclass
class Registry:
    """name → Impl."""

    impls: dict[str, Impl] = field(default_factory=dict)

    def register(self, impl: Impl) -> Impl:
        """Add (or replace) an implementation."""
        self.impls[impl.name] = impl
        return impl

    def get(self, name: str) -> Impl | None:
        """The implementation of that name, or None."""
        return self.impls.get(name)

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self.impls)

    def copy(self) -> Registry:
        """An independent registry with the same implementations (tests add doubles to a copy)."""
        return Registry(dict(self.impls))


def impl(name: str, inputs: Iterable[str], output: str, fn: Callable[..., Any],
         params: type[msgspec.Struct] = NoParams, place: Literal["pool", "loop", "inline"] = "pool",
         warm: Callable[[], Any] | None = None) -> Impl:
    """An Impl with its input types as a set."""
    return Impl(name, frozenset(inputs), output, fn, params, place, warm)




class BadInput(Exception):
    """Raised by an implementation for input it refuses (an image bomb, text with no words): `input_invalid`."""

__all__ = ["ANY", "SAME", "BadInput", "Impl", "Memory", "NoParams", "Payload", "Registry", "impl"]
