"""A minimal WebSocket client for the fan-out benchmark: one asyncio Protocol per connection, frames parsed in
`data_received`, nothing else.

The `websockets` client spends ~40 µs of Python per received message (a reader task, a queue, an iterator);
with 1,000 of them in one process on the machine's two cores the measuring side cost as much CPU as the
server and stood on the critical path. This one only does what the benchmark needs: the opening handshake,
text frames handed to a callback with their arrival time, pongs for the server's pings, and close.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from collections.abc import Callable
from urllib.parse import urlsplit

TEXT, CLOSE, PING = 0x1, 0x8, 0x9


class StreamClient(asyncio.Protocol):
    """One subscriber: `on_text(arrived_at, payload)` for every text frame after the handshake."""

    def __init__(self, request: bytes, on_text: Callable[[float, bytes], None]) -> None:
        self.request, self.on_text = request, on_text
        self.buffer = b""
        self.upgraded = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        at = time.perf_counter()
        self.buffer += data
        if not self.upgraded:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace")))
                self.transport.close()
                return
            self.upgraded, self.buffer = True, rest
            self.opened.set_result(None)
        self._frames(at)

    def _frames(self, at: float) -> None:
        buf = self.buffer
        while len(buf) >= 2:
            opcode, length = buf[0] & 0x0F, buf[1] & 0x7F  # server frames are never masked
            start = 2
            if length == 126:
                if len(buf) < 4:
                    break
                length, start = struct.unpack_from("!H", buf, 2)[0], 4
            elif length == 127:
                if len(buf) < 10:
                    break
                length, start = struct.unpack_from("!Q", buf, 2)[0], 10
            if len(buf) < start + length:
                break
            payload, buf = buf[start:start + length], buf[start + length:]
            if opcode == TEXT:
                self.on_text(at, payload)
            elif opcode == PING:
                self.transport.write(masked(0xA, payload))
            elif opcode == CLOSE:
                self.transport.close()
        self.buffer = buf

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))

    def close(self) -> None:
        """Say goodbye (a masked close frame), then close the socket."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(masked(CLOSE, struct.pack("!H", 1000)))
            self.transport.close()


def masked(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask) with a short payload."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


async def connect(url: str, on_text: Callable[[float, bytes], None]) -> StreamClient:
    """Open `ws://host:port/path?query` and return the connected client (handshake done)."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: StreamClient(request, on_text), parts.hostname, parts.port)
    await client.opened
    return client
