"""Fault doubles registered by tests through the runtime's own registry (module-level: workers import them)."""

from __future__ import annotations

import os
import time

import msgspec

from neira.runtime import Registry, builtin_registry, impl
from neira.runtime.payloads import JsonData, Payload, Text


def spin(payload: Payload, _: object) -> Payload:
    """A runaway: burns CPU for far longer than any deadline."""
    end = time.monotonic() + 60
    while time.monotonic() < end:
        pass
    return payload


def spin_until(payload: Text, _: object) -> Text:
    """Burns CPU until the file its input names exists (a held runaway: the test decides when it ends)."""
    end = time.monotonic() + 60
    while not os.path.exists(payload.text) and time.monotonic() < end:
        pass
    return payload


def crash(payload: Payload, _: object) -> Payload:
    """Dies the way native code can: the process ends under the job."""
    os._exit(3)


def boom(payload: Payload, _: object) -> Payload:
    """A bug in an implementation."""
    raise ValueError("no such thing in /secret/path/file.py")


def not_a_payload(payload: Payload, _: object) -> object:
    """Answers something that is not a payload."""
    return {"text": "x"}


def upper(payload: Text, _: object) -> Text:
    """A fast, well-behaved implementation."""
    return Text(text=payload.text.upper())


SLOW_START_S = 1.5


def slow_start() -> None:
    """A warmer like a cold engine's start-up (eSpeak NG under load): longer than the run deadline."""
    time.sleep(SLOW_START_S)


def with_slow_start() -> Registry:
    """The built-in registry plus `upper_slow_start`: `upper`, whose worker warm-up takes SLOW_START_S."""
    r = builtin_registry().copy()
    r.register(impl("upper_slow_start", ["text"], "text", upper, warm=slow_start))
    return r


def with_doubles() -> Registry:
    """The built-in registry plus the doubles (`spin`, `spin_until`, `crash`, `boom`, `not_a_payload`, `upper`,
    `unsendable`)."""
    r = builtin_registry().copy()
    r.register(impl("spin", ["text"], "text", spin))
    r.register(impl("spin_until", ["text"], "text", spin_until))
    r.register(impl("crash", ["text"], "text", crash))
    r.register(impl("boom", ["text"], "text", boom))
    r.register(impl("not_a_payload", ["text"], "text", not_a_payload))
    r.register(impl("upper", ["text"], "text", upper))
    r.register(impl("unsendable", ["text"], "json", unsendable))
    return r


class SuffixParams(msgspec.Struct, kw_only=True, frozen=True):
    """What `suffix` appends."""

    suffix: str


class ListParams(msgspec.Struct, kw_only=True):
    """Params that cannot be hashed (not frozen, a list in them)."""

    parts: list[str]


def suffix(payload: Text, params: SuffixParams) -> Text:
    """The text with its params' suffix: which params a worker ran with shows in the answer."""
    return Text(text=payload.text + params.suffix)


def joined(payload: Text, params: ListParams) -> Text:
    """The text with the params' parts appended."""
    return Text(text=payload.text + "".join(params.parts))


def nap(payload: Payload, _: object) -> Payload:
    """A slow, well-behaved implementation (0.3 s): two runs of it at once need two workers."""
    time.sleep(0.3)
    return payload


def unsendable(payload: Payload, _: object) -> JsonData:
    """Answers json data that JSON (and the worker's wire) has no form for: a bare object."""
    return JsonData(data={"thing": object()})
