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
    """Forward frames until the client leaves or the frames end; messages from the client are read (to notice
    a close) and ignored. Two long-lived tasks per connection, not a wait per frame: at 1,000 subscribers the
    per-frame futures were most of a fan-out's cost. Only this connection waits on a slow client; publishers
    never wait. Errors of either side (WebSocketDisconnect, a NeiraError from `frames`) propagate."""

    async def forward() -> None:
        async for frame in frames:
            await send(socket, frame)

    async def drain() -> None:
        while True:
            await socket.receive_data(mode="text")  # WebSocketDisconnect when the client has gone

    tasks = {asyncio.ensure_future(forward()), asyncio.ensure_future(drain())}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
