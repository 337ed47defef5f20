"""Evidence doubles registered through the runtime's registry (module-level: workers import them)."""

from __future__ import annotations

import time

from neira.runtime import BadInput, Registry, builtin_registry, impl
from neira.runtime.payloads import Text


def picky(payload: Text, _: object) -> Text:
    """Fails on any input that contains "bad"; upper-cases the rest."""
    if "bad" in payload.text:
        raise BadInput("this double refuses inputs with 'bad' in them")
    return Text(text=payload.text.upper())


def slow(payload: Text, _: object) -> Text:
    """Answers correctly, 60 ms late."""
    time.sleep(0.06)
    return Text(text=payload.text.upper())


def evidence_registry() -> Registry:
    """The built-in registry plus `picky` and `slow` (both text → text)."""
    r = builtin_registry().copy()
    r.register(impl("picky", ["text"], "text", picky))
    r.register(impl("slow", ["text"], "text", slow))
    return r
