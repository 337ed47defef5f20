"""Immune and shadow doubles registered through the runtime's registry (module-level: workers import them)."""

from __future__ import annotations

import time

from neira.runtime import Registry, builtin_registry, impl
from neira.runtime.payloads import Text


def brittle(payload: Text, _: object) -> Text:
    """Upper-cases its input, and breaks (a bug, `cell_failed`) on any input with "boom" in it."""
    if "boom" in payload.text:
        raise RuntimeError("brittle broke")
    return Text(text=payload.text.upper())


def lower(payload: Text, _: object) -> Text:
    """Lower-cases: a v2 whose answers differ from `brittle`'s."""
    return Text(text=payload.text.lower())


def sleepy(payload: Text, _: object) -> Text:
    """Upper-cases, 300 ms late: it holds the one worker while others queue."""
    time.sleep(0.3)
    return Text(text=payload.text.upper())


def immune_registry() -> Registry:
    """The built-in registry plus `brittle`, `lower` and `sleepy` (text → text, on the pool)."""
    r = builtin_registry().copy()
    for name, fn in (("brittle", brittle), ("lower", lower), ("sleepy", sleepy)):
        r.register(impl(name, ["text"], "text", fn))
    return r
