"""Samples (contract §7): `metadata.samples: [{input, expect?}]` of a template, their rules, and the judge
that says whether one run of a sample passed."""

from __future__ import annotations

from typing import Any

import msgspec

from neira.structs import Base

PAYLOAD_TYPES = ("text", "phonemes", "audio", "image", "json")  # = runtime.payloads.TYPES (checked by a test; importing it here would be circular)
MAX_SAMPLES = 100


class Expect(Base, omit_defaults=True):
    """What a sample's output must show; every field given must hold, at least one is given.

    `equals`: a string is the output's `text`, an object the whole output payload (wire form);
    `contains`: a string is a substring of the output's `text`, an object a part of the output payload
    (every key it names, recursively); `type`: the output payload's type; `max_ms`: the run's time bound."""

    equals: Any = msgspec.UNSET
    contains: Any = msgspec.UNSET
    type: str | msgspec.UnsetType = msgspec.UNSET
    max_ms: float | msgspec.UnsetType = msgspec.UNSET


class Sample(Base, omit_defaults=True):
    """One sample: an input (a bare string means text) and what its output should be."""

    input: Any
    expect: Expect | None = None


def _payload_error(value: Any) -> str | None:
    # the payload types live in the runtime package, whose __init__ imports the catalog (which imports the
    # templates module that calls this): imported here, when a template is checked, not at import time
    from neira.runtime.payloads import from_wire

    try:
        from_wire(value)
    except (msgspec.ValidationError, ValueError) as exc:
        return str(exc)
    return None


def check_samples(metadata: dict[str, Any], errors: list[dict[str, str]]) -> None:
    """Append `{path, message}` for every broken rule of `metadata.samples` (absent is fine)."""
    if "samples" not in metadata:
        return
    raw = metadata["samples"]
    if not isinstance(raw, list):
        errors.append({"path": "$.metadata.samples", "message": "samples must be a list of {input, expect?}"})
        return
    if len(raw) > MAX_SAMPLES:
        errors.append({"path": "$.metadata.samples", "message": f"at most {MAX_SAMPLES} samples"})
    for i, item in enumerate(raw):
        path = f"$.metadata.samples[{i}]"
        try:
            sample = msgspec.convert(item, Sample)
        except msgspec.ValidationError as exc:
            message, _, at = str(exc).partition(" - at `")
            errors.append({"path": path + at.rstrip("`").removeprefix("$"), "message": message})
            continue
        problem = _payload_error(sample.input)
        if problem:
            errors.append({"path": f"{path}.input", "message": f"not a payload: {problem}"})
        if sample.expect is not None:
            _check_expect(sample.expect, f"{path}.expect", errors)


def _check_expect(expect: Expect, path: str, errors: list[dict[str, str]]) -> None:
    given = [f for f in expect.__struct_fields__ if getattr(expect, f) is not msgspec.UNSET]
    if not given:
        errors.append({"path": path, "message": "expect needs one of equals, contains, type, max_ms"})
    if expect.type is not msgspec.UNSET and expect.type not in PAYLOAD_TYPES:
        errors.append({"path": f"{path}.type", "message": f"type must be one of {', '.join(PAYLOAD_TYPES)}"})
    if expect.max_ms is not msgspec.UNSET and not expect.max_ms > 0:
        errors.append({"path": f"{path}.max_ms", "message": "max_ms must be above 0"})
    for name in ("equals", "contains"):
        value = getattr(expect, name)
        if value is not msgspec.UNSET and not isinstance(value, (str, dict)):
            errors.append({"path": f"{path}.{name}", "message": f"{name} must be a string or an object"})


def samples_of(metadata: dict[str, Any]) -> list[Sample]:
    """The template's samples (it has been validated, so they convert)."""
    return msgspec.convert(metadata.get("samples") or [], list[Sample])


def _part_of(part: Any, whole: Any) -> bool:
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(k in whole and _part_of(v, whole[k]) for k, v in part.items())
    return bool(part == whole)


def _short(value: Any) -> str:
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= 80 else text[:77] + "..."


def judge(expect: Expect | None, ok: bool, output: Any, ms: float, error: str | None = None) -> str | None:
    """Why a run of a sample failed, or None when it passed. `output` is the output payload in wire form."""
    if not ok:
        return f"the run failed: {error or 'no output'}"
    if expect is None:
        return None
    text = output.get("text") if isinstance(output, dict) else None
    if expect.type is not msgspec.UNSET and (output or {}).get("type") != expect.type:
        return f"type {(output or {}).get('type')!r} is not {expect.type!r}"
    if expect.max_ms is not msgspec.UNSET and ms > expect.max_ms:
        return f"took {ms:.1f} ms, more than max_ms {expect.max_ms:g}"
    if expect.equals is not msgspec.UNSET:
        same = text == expect.equals if isinstance(expect.equals, str) else output == expect.equals
        if not same:
            return f"output {_short(text if isinstance(expect.equals, str) else output)} does not equal {_short(expect.equals)}"
    if expect.contains is not msgspec.UNSET:
        if isinstance(expect.contains, str):
            if not isinstance(text, str) or expect.contains not in text:
                return f"output {_short(text)} does not contain {_short(expect.contains)}"
        elif not _part_of(expect.contains, output):
            return f"output {_short(output)} does not contain {_short(expect.contains)}"
    return None
