"""Small media for the runtime tests: PNG/JPEG images made with Pillow, and a compact PNG bomb."""

from __future__ import annotations

import base64
import io
import struct
import zlib

from PIL import Image


def image_bytes(size: tuple[int, int] = (32, 24), colour: tuple[int, int, int] = (200, 40, 10), fmt: str = "PNG") -> bytes:
    """A solid image with a white square in its middle (so it has edges)."""
    img = Image.new("RGB", size, colour)
    w, h = size
    img.paste((255, 255, 255), (w // 4, h // 4, 3 * w // 4, 3 * h // 4))
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


def image_payload(data: bytes | None = None, media_type: str = "image/png") -> dict[str, object]:
    """The wire form of an image payload."""
    return {"type": "image", "media_type": media_type, "data_b64": base64.b64encode(data or image_bytes()).decode()}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1-bit PNG of width × height black pixels in a few tens of kilobytes (400 megapixels)."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    z = zlib.compressobj(9)
    body = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")
