"""uvicorn's Server, telling us once it listens: what `neira serve` prints (the sign-in link) must only appear
when the port is really ours, never for a server that is about to fail on a taken port.

uvicorn runs the app's start-up (Litestar's on_startup) before it binds the socket, so on_startup is too early;
`startup()` returns after the bind, or exits the process when the bind fails.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence

import uvicorn


class ListeningServer(uvicorn.Server):
    """A uvicorn Server that calls each of `on_listening` once its sockets are bound and listening."""

    def __init__(self, config: uvicorn.Config, on_listening: Sequence[Callable[[], None]] = ()) -> None:
        super().__init__(config)
        self.on_listening = list(on_listening)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's start-up (app start-up, then bind), then the callbacks if the server is up."""
        await super().startup(sockets)
        if self.started and not self.should_exit:
            for callback in self.on_listening:
                callback()
