"""`context`: a bounded memory per organ in the database; each run adds its input and answers what is kept."""

from __future__ import annotations

import msgspec

from neira.runtime.payloads import AnyPayload, Audio, Image, JsonData, Phonemes, Text, type_of
from neira.runtime.registry import Memory

PREVIEW_CHARS = 200


class ContextParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """`limit`: how many recent inputs to keep (1..100)."""

    limit: int = 10

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 100:
            raise ValueError("limit must be between 1 and 100")


def entry(payload: AnyPayload) -> dict[str, object]:
    """What memory keeps of a payload: its type and a short preview (never media bytes)."""
    match payload:
        case Text(text=text) | Phonemes(text=text):
            return {"type": type_of(payload), "text": text[:PREVIEW_CHARS]}
        case Audio(duration_ms=ms):
            return {"type": "audio", "duration_ms": ms}
        case Image(width=w, height=h, media_type=m):
            return {"type": "image", "media_type": m, "width": w, "height": h}
        case JsonData(data=data):
            return {"type": "json", "keys": sorted(data)[:20]}
    return {"type": type_of(payload)}


async def context(payload: AnyPayload, params: ContextParams, memory: Memory, scope: str) -> JsonData:
    """Remember the input in this organ's memory; answer `{entries: [...], count}` (oldest first)."""
    kept = await memory.remember(scope, entry(payload), params.limit)
    return JsonData(data={"entries": kept, "count": len(kept)})
