"""One way to run a WebSocket stream: send frames from an async iterator until the client leaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import WebSocket


async def send(socket: WebSocket, frame: Any) -> None:
    """One JSON text frame."""
    await socket.send_text(msgspec.json.encode(frame).decode())


async def pump(socket: WebSocket, frames: AsyncIterator[Any]) -> None:
    """Forward frames until the client leaves; messages from the client are read (to notice a close) and
    ignored. Only this connection waits on a slow client: publishers never wait."""
    receiver = asyncio.ensure_future(socket.receive_data(mode="text"))
    nxt: asyncio.Future[Any] | None = None
    try:
        while True:
            if nxt is None:
                nxt = asyncio.ensure_future(anext(frames))
            done, _ = await asyncio.wait({nxt, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                receiver.result()  # WebSocketDisconnect when the client has gone
                receiver = asyncio.ensure_future(socket.receive_data(mode="text"))
            if nxt in done:  # checked even when the client spoke at the same moment: no frame is dropped
                frame, nxt = nxt.result(), None
                await send(socket, frame)
    finally:
        for fut in (receiver, nxt):
            if fut is not None and not fut.done():
                fut.cancel()
        await asyncio.gather(*(f for f in (receiver, nxt) if f is not None), return_exceptions=True)
