"""The payload ABI both sandboxes share: the payload goes in as its JSON, a payload comes back as JSON.

An answer is a payload object (`{"type": "text", "text": ...}`) or a bare string, which means text, as for
run inputs. The answer's type must be the one the code declares (`output`; `same`: the input's type)."""

from __future__ import annotations

import msgspec

from neira.runtime.payloads import AnyPayload, Payload, from_wire, type_of
from neira.runtime.registry import SAME
from neira.runtime.sandbox.limits import SandboxError, SandboxLimit

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


def input_json(payload: Payload) -> bytes:
    """The payload as the JSON bytes the sandbox reads (bytes fields as base64)."""
    return _encode(payload)


def declared_output(output: str, input_type: str) -> str:
    """The type an answer must have."""
    return input_type if output == SAME else output


def answer(raw: bytes, output: str, input_type: str, max_bytes: int) -> AnyPayload:
    """The payload in the sandbox's JSON answer; SandboxLimit past `max_bytes`, SandboxError otherwise."""
    if len(raw) > max_bytes:
        raise SandboxLimit("output")
    try:
        payload = from_wire(_decode(raw))
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise SandboxError(f"the answer is not a payload: {str(exc)[:160]}") from None
    want = declared_output(output, input_type)
    if type_of(payload) != want:
        raise SandboxError(f"the answer is {type_of(payload)}, but the cell declares {want}")
    return payload
