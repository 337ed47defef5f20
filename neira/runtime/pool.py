"""A bounded pool of worker processes, driven from the event loop without threads.

Processes, not threads (docs/runtime.md has the measurements): an implementation that spins past its
deadline is killed with its process and replaced, while a thread could only be abandoned, still holding the
GIL and a core. Each worker has a socket pair; the loop writes a job and awaits the answer on it, so waiting
costs no thread. Workers are started on first use (through a forkserver that has the implementations
imported), so apps that never run anything never start a process."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from neira.errors import Busy
from neira.runtime import worker
from neira.runtime.worker import Job, StepResult

log = logging.getLogger("neira.runtime")
READY_S = 60.0  # a new worker's start and warm-up (eSpeak NG, …) before it is given up
PRELOAD = ["neira.runtime.builtins", "neira.runtime.worker", "neira.runtime.sandbox.run", "neira.runtime.sandbox.wasm"]


class Deadline(Exception):
    """The job went past its deadline in step `step`; `done_ms` are the times of the steps before it."""

    def __init__(self, step: int, done_ms: list[float]) -> None:
        super().__init__(f"deadline passed in step {step}")
        self.step, self.done_ms = step, done_ms


class WorkerLost(Exception):
    """The worker process died under a job (a crash in native code, or the memory limit), in step `step`."""

    def __init__(self, reason: str, step: int = 0, done_ms: list[float] | None = None) -> None:
        super().__init__(reason)
        self.step, self.done_ms = step, done_ms or []


class _Worker:
    """One worker process and the parent's end of its socket pair (non-blocking: event loops such as uvloop
    make watched descriptors non-blocking anyway). Messages are framed as multiprocessing's Connection frames
    them (the worker uses `Connection.recv_bytes` / `send_bytes`)."""

    def __init__(self, ctx: Any, warmers: tuple[Callable[[], None], ...]) -> None:
        parent, child = ctx.Pipe(duplex=True)
        self.progress = ctx.RawArray("d", 1 + worker.MAX_STEPS)
        self.proc = ctx.Process(target=worker.main, args=(child, self.progress, warmers), daemon=True,
                                name="neira-run-worker")
        self.proc.start()
        child.close()
        self.sock = socket.socket(fileno=os.dup(parent.fileno()))
        parent.close()
        self.sock.setblocking(False)
        self.buf = bytearray()

    async def exchange(self, data: bytes) -> bytes:
        """Send one message, receive the answer."""
        loop = asyncio.get_running_loop()
        n = len(data)
        header = struct.pack("!i", n) if n <= 0x7FFFFFFF else struct.pack("!iQ", -1, n)
        try:
            await loop.sock_sendall(self.sock, header + data)
        except OSError as exc:
            raise WorkerLost(f"cannot send to the worker ({type(exc).__name__})") from None
        return await self.receive()

    async def receive(self) -> bytes:
        """The next message from the worker (the first one says it is ready: its warmers have run)."""
        loop = asyncio.get_running_loop()
        buf = self.buf
        while True:
            if len(buf) >= 4:
                size, start = struct.unpack_from("!i", buf)[0], 4
                if size == -1 and len(buf) >= 12:
                    size, start = struct.unpack_from("!Q", buf, 4)[0], 12
                if size >= 0 and len(buf) >= start + size:
                    message = bytes(buf[start:start + size])
                    del buf[:start + size]
                    return message
            try:
                chunk = await loop.sock_recv(self.sock, 1 << 20)
            except OSError as exc:
                raise WorkerLost(f"cannot read from the worker ({type(exc).__name__})") from None
            if not chunk:
                raise WorkerLost("the worker closed its end")
            if not buf and len(chunk) >= 4:  # the usual case: one whole answer in one read, taken without a copy
                size = struct.unpack_from("!i", chunk)[0]
                if size >= 0 and len(chunk) == 4 + size:
                    return chunk[4:] if size else b""
            buf += chunk

    def kill(self) -> None:
        self.proc.kill()
        self.sock.close()


class Pool:
    """`workers` processes; at most `queue` runs waiting for one (then `busy`)."""

    def __init__(self, workers: int, queue: int, warmers: tuple[Callable[[], None], ...] = ()) -> None:
        self.size, self.queue_limit, self.warmers = max(1, workers), max(0, queue), warmers
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._waiters: deque[asyncio.Future[_Worker]] = deque()
        self._starting: asyncio.Task[None] | None = None
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(PRELOAD)
        self.closed = False

    @property
    def busy_workers(self) -> int:
        """Workers running a job now."""
        return len(self._all) - len(self._idle)

    @property
    def waiting(self) -> int:
        """Runs waiting for a worker."""
        return len(self._waiters)

    async def _spawn(self, n: int) -> None:
        for _ in range(n):
            try:
                w = await asyncio.to_thread(_Worker, self._ctx, self.warmers)
            except Exception as exc:  # cannot start a process: fail the runs that wait rather than hang them
                log.error("cannot start a run worker (%s)", type(exc).__name__)
                self._fail_waiters()
                return
            try:  # warmed before it takes a run: a cold engine's start-up is no run's deadline
                await asyncio.wait_for(w.receive(), READY_S)
            except (TimeoutError, WorkerLost) as exc:
                log.error("a run worker did not get ready (%s)", type(exc).__name__)
                w.kill()
                self._fail_waiters()
                return
            except BaseException:  # cancelled (the pool closes)
                w.kill()
                raise
            if self.closed:
                w.kill()
                return
            self._all.add(w)
            self._release(w)

    def _fail_waiters(self) -> None:
        """No worker could start: fail the runs that wait rather than hang them (the next run tries again)."""
        self._starting = None
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(WorkerLost("cannot start a run worker"))

    def start(self) -> None:
        """Start the workers now, in the background (the server does at start-up, so the first run finds them
        warm); otherwise they start on the first run."""
        if not self.closed:
            self._ensure_started()

    def _ensure_started(self) -> None:
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(self._spawn(self.size))

    def _release(self, w: _Worker) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(w)
                return
        self._idle.append(w)

    async def _acquire(self, wait: bool = True) -> _Worker:
        if self._idle:
            return self._idle.pop()
        if not wait:  # work that must never queue ahead of callers (shadow runs): a free worker now, or Busy
            self._ensure_started()
            raise Busy("no run worker is free now", retry_after=1)
        if len(self._waiters) >= self.queue_limit + (self.size - len(self._all)):
            raise Busy("every run worker is busy and the queue is full", retry_after=1)
        self._ensure_started()
        fut: asyncio.Future[_Worker] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release(fut.result())
            raise

    async def run(self, job: Job, timeout_s: float, wait: bool = True) -> tuple[list[StepResult], float]:
        """Run a job on a free worker: its step results and the ms it waited for a worker. Raises Busy
        (queue full; with `wait` false: no worker is free now), Deadline (the worker was killed at
        `timeout_s`) or WorkerLost."""
        queued = time.perf_counter()
        w = await self._acquire(wait)
        waited = (time.perf_counter() - queued) * 1000
        w.progress[0] = 0
        try:
            data = await asyncio.wait_for(w.exchange(pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)), timeout_s)
        except TimeoutError:
            step = int(w.progress[0])
            done_ms = list(w.progress[1:1 + step])
            self._replace(w)
            raise Deadline(step, done_ms) from None
        except WorkerLost as exc:
            step = int(w.progress[0])
            w.proc.join(0.2)
            log.warning("a run worker died under a job (exit code %s, %s)", w.proc.exitcode, exc)
            self._replace(w)
            raise WorkerLost(str(exc), step, list(w.progress[1:1 + step])) from None
        except BaseException:  # cancelled (the client went away): the worker may be mid-job, start afresh
            self._replace(w)
            raise
        self._release(w)
        return pickle.loads(data), waited

    def _replace(self, w: _Worker) -> None:
        """Kill a worker and start another in its place."""
        self._all.discard(w)
        w.kill()
        asyncio.get_running_loop().create_task(asyncio.to_thread(w.proc.join, 5))
        if not self.closed:
            asyncio.get_running_loop().create_task(self._spawn(1))

    def stop_spawning(self) -> None:
        """No worker is started from now on, not even in place of one killed under a cancelled run (at
        shutdown the runs still in flight are cancelled first; replacing their workers would hold the exit)."""
        self.closed = True

    async def close(self) -> None:
        """Stop every worker (they exit when their pipe closes; stragglers are killed)."""
        self.closed = True
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        workers, self._all, self._idle = list(self._all), set(), []
        for w in workers:
            w.sock.close()
        for w in workers:
            await asyncio.to_thread(w.proc.join, 2)  # (a worker replaced under a cancelled run was killed already)
            if w.proc.is_alive():
                w.proc.kill()
