"""Unguessable ids for plans, decisions, sessions and runs: `<prefix>-<hex>` from the OS's CSPRNG.

`secrets.token_hex` asks the kernel for every id (one `getrandom` call each); a command makes four or five
ids, and those calls were about 7% of its time on the event loop (py-spy under bench/api_load.py). Here the
kernel's bytes are drawn 4 kB at a time and handed out in order, each byte once, so the ids are exactly as
unguessable and cost a slice. Credentials (tokens, sign-in codes) stay with `secrets`, so no credential's
bytes wait in a buffer."""

from __future__ import annotations

import os
import threading

_CHUNK = 4096


class _Pool:
    __slots__ = ("_at", "_buf", "_lock")

    def __init__(self) -> None:
        self._buf, self._at = b"", 0
        self._lock = threading.Lock()  # threads (a sandbox supervisor, the executor) may make ids too

    def hex(self, nbytes: int) -> str:
        with self._lock:
            if self._at + nbytes > len(self._buf):
                self._buf, self._at = os.urandom(_CHUNK), 0
            at = self._at
            self._at = at + nbytes
            return self._buf[at:at + nbytes].hex()


_pool = _Pool()


def _after_fork() -> None:  # a child must not hand out the parent's bytes again
    global _pool
    _pool = _Pool()


os.register_at_fork(after_in_child=_after_fork)


def new_id(prefix: str, nbytes: int = 6) -> str:
    """`<prefix>-<2·nbytes hex digits>`."""
    return f"{prefix}-{_pool.hex(nbytes)}"
