"""Typed payloads (contract §6): one tagged union on `type`, decoded once with errors that name the JSON path.

`data_b64` fields are `bytes` here: msgspec turns them into base64 on the wire and back, so broken base64 is
refused while decoding and implementations work on raw bytes."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

MAX_TEXT_CHARS = 100_000  # far above any sentence; the 1 MiB body limit bounds it on HTTP anyway
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")


class Payload(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, tag_field="type"):
    """The base of every payload; `type` is the tag."""


def _check_text(text: str) -> None:
    if not text.strip():
        raise ValueError("text is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"text is longer than {MAX_TEXT_CHARS} characters")


class Text(Payload, tag="text", kw_only=True):
    """`{"type": "text", "text": "..."}`; a bare string input means this."""

    text: str

    def __post_init__(self) -> None:
        _check_text(self.text)


class Phonemes(Payload, tag="phonemes", kw_only=True):
    """eSpeak NG phoneme mnemonics in `text` (what the speech cell speaks), IPA for people in `ipa`."""

    text: str
    lang: Literal["ru", "en"]
    ipa: str | None = None

    def __post_init__(self) -> None:
        _check_text(self.text)


class Audio(Payload, tag="audio", kw_only=True):
    """A WAV file and its length."""

    media_type: Literal["audio/wav"] = "audio/wav"
    data_b64: bytes
    duration_ms: int


class Image(Payload, tag="image", kw_only=True):
    """An encoded image; `width`/`height` are always set on outputs and optional on inputs."""

    media_type: Literal["image/png", "image/jpeg", "image/webp"] = "image/png"
    data_b64: bytes
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        if not self.data_b64:
            raise ValueError("image data is empty")


class JsonData(Payload, tag="json", kw_only=True):
    """Structured data: features, memory, anything JSON."""

    data: dict[str, Any]


AnyPayload = Text | Phonemes | Audio | Image | JsonData
PayloadType = Literal["text", "phonemes", "audio", "image", "json"]
TYPES: tuple[str, ...] = ("text", "phonemes", "audio", "image", "json")


def type_of(payload: Payload) -> str:
    """The payload's tag."""
    return type(payload).__struct_config__.tag  # type: ignore[return-value]


def as_payload(value: str | AnyPayload) -> AnyPayload:
    """A bare string means text."""
    return Text(text=value) if isinstance(value, str) else value


_encode = msgspec.json.Encoder().encode
_decode_payload = msgspec.json.Decoder(AnyPayload).decode


def to_wire(payload: Payload) -> Any:
    """The payload as JSON-ready builtins (bytes as base64)."""
    return msgspec.to_builtins(payload)


def from_wire(value: Any) -> AnyPayload:
    """A payload from builtins (a bare string is text); msgspec.ValidationError names the bad path."""
    return as_payload(msgspec.convert(value, str | AnyPayload))  # type: ignore[arg-type]
