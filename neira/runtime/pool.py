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
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec

from neira.errors import Busy
from neira.runtime import worker
from neira.runtime.worker import (
    HEADROOM,
    KNOWN_STEPS,
    Job,
    JobMessage,
    StepResult,
    framed,
)

_encode_into = msgspec.msgpack.Encoder().encode_into
_decode_results = msgspec.msgpack.Decoder(list[StepResult]).decode
KEYS, KEY_BYTES = 4096, 32 << 20  # step tuples (and their pickled bytes) the pool keeps before it starts afresh

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


class NotDelivered(WorkerLost):
    """The worker was dead before it had the job (its end is closed): the job never started, so it may go to
    another worker."""


class _Worker:
    """One worker process and the parent's end of its socket pair (non-blocking: event loops such as uvloop
    make watched descriptors non-blocking anyway). A reader on the loop takes each answer into a reused buffer
    and hands it to the run that waits for it: one job at a time per worker, so an answer is the only bytes in
    flight, and its view stays valid until the worker's next job."""

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
        self.known: set[int] = set()  # step keys this worker keeps unpickled
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[memoryview] | None = None
        self._lost: WorkerLost | None = None
        self._small = bytearray(1 << 16)
        self._buf, self._got = self._small, 0
        self.on_idle_loss: Callable[[_Worker], None] | None = None  # told when it dies with no job on it

    def receive(self) -> asyncio.Future[memoryview]:
        """The next frame's body (the first one, empty, says the worker is ready: its warmers have run)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[memoryview] = loop.create_future()
        if self._lost is not None:
            fut.set_exception(self._lost)
            return fut
        if self._loop is None:
            self._loop = loop
            loop.add_reader(self.sock.fileno(), self._readable)
        self._waiter, self._buf, self._got = fut, self._small, 0
        return fut

    async def exchange(self, frame: memoryview) -> memoryview:
        """Send one framed message, receive the answer's body."""
        answer = self.receive()
        try:
            sent = self.sock.send(frame)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise NotDelivered(f"cannot send to the worker ({type(exc).__name__})") from None
        if sent < len(frame):  # a large payload: the rest as the worker reads it
            try:
                await asyncio.get_running_loop().sock_sendall(self.sock, frame[sent:])
            except OSError as exc:
                raise WorkerLost(f"cannot send to the worker ({type(exc).__name__})") from None
        return await answer

    def _readable(self) -> None:
        buf, got = self._buf, self._got
        try:
            n = self.sock.recv_into(memoryview(buf)[got:])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            return self._fail(f"cannot read from the worker ({type(exc).__name__})")
        if not n:
            return self._fail("the worker closed its end")
        got = self._got = got + n
        if got < 4:
            return
        size, start = struct.unpack_from("!i", buf)[0], 4
        if size == -1:
            if got < 12:
                return
            size, start = struct.unpack_from("!Q", buf, 4)[0], 12
        end = start + size
        if end > len(buf):  # a large answer (an image): a buffer of its size, for this answer only
            self._buf = bytearray(end)
            self._buf[:got] = memoryview(buf)[:got]
            return
        if got < end:
            return
        waiter = self._waiter
        if got > end or waiter is None:  # one job at a time: bytes past an answer, or unasked for, are a fault
            return self._fail("the worker sent what was not asked for")
        self._waiter, self._got = None, 0
        if not waiter.done():  # (a run past its deadline has stopped waiting)
            waiter.set_result(memoryview(buf)[start:end])

    def _fail(self, reason: str) -> None:
        self._lost = WorkerLost(reason)
        self._unwatch()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(self._lost)
        elif waiter is None and self.on_idle_loss is not None:
            self.on_idle_loss(self)

    def _unwatch(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self.sock.fileno())
        self._loop = None

    def close(self) -> None:
        """Close the parent's end (the worker exits when it reads the end of its socket)."""
        if self.sock.fileno() >= 0:
            self._unwatch()
            self.sock.close()

    def kill(self) -> None:
        self.proc.kill()
        self.close()


class Pool:
    """`workers` processes; at most `queue` runs waiting for one (then `busy`)."""

    def __init__(self, workers: int, queue: int, warmers: tuple[Callable[[], None], ...] = ()) -> None:
        self.size, self.queue_limit, self.warmers = max(1, workers), max(0, queue), warmers
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._waiters: deque[asyncio.Future[_Worker]] = deque()
        self._starting: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._keys: dict[tuple[Any, ...], tuple[int, bytes]] = {}
        self._key_bytes, self._next_key = 0, 0
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
                async with asyncio.timeout(READY_S):  # not wait_for: it can swallow a cancel on 3.11
                    await w.receive()
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
            w.on_idle_loss = self._lost_idle
            self._all.add(w)
            self._release(w)

    def _lost_idle(self, w: _Worker) -> None:
        """A worker died with no job on it (killed from outside, the OOM killer): replaced now, so no run
        is handed a dead worker."""
        if w in self._all:
            log.warning("an idle run worker died (exit code %s); starting another", w.proc.exitcode)
            if w in self._idle:
                self._idle.remove(w)
            self._replace(w)

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
        for attempt in range(self.size + 1):
            w = await self._acquire(wait)
            waited = (time.perf_counter() - queued) * 1000
            try:
                return await self._run_on(w, job, timeout_s), waited
            except NotDelivered:  # it died idle, just now: the job never started, another worker takes it
                if attempt == self.size:
                    raise
        raise AssertionError("unreachable")

    async def _run_on(self, w: _Worker, job: Job, timeout_s: float) -> list[StepResult]:
        w.progress[0] = 0
        try:
            async with asyncio.timeout(timeout_s):
                answer = await w.exchange(self._message(w, job))
            results = _decode_results(answer)
        except TimeoutError:
            step = int(w.progress[0])
            done_ms = list(w.progress[1:1 + step])
            self._replace(w)
            raise Deadline(step, done_ms) from None
        except NotDelivered:
            self._replace(w)
            raise
        except WorkerLost as exc:
            step = int(w.progress[0])
            self._replace(w, lost=str(exc))
            raise WorkerLost(str(exc), step, list(w.progress[1:1 + step])) from None
        except msgspec.DecodeError:  # (ValidationError is one) not what the worker writes: a fault, start afresh
            self._replace(w)
            raise WorkerLost("the worker's answer could not be read", 0) from None
        except BaseException:  # cancelled (the client went away): the worker may be mid-job, start afresh
            self._replace(w)
            raise
        self._release(w)
        return results

    def _message(self, w: _Worker, job: Job) -> memoryview:
        """The job as a frame for this worker: its step tuple pickled once per pool and sent once per worker
        (then named by its key), the payload as msgpack."""
        try:
            entry = self._keys.get(job.steps)
            keep = True
        except TypeError:  # params that cannot be hashed: pickled and sent with every job
            entry, keep = None, False
        if entry is None:
            entry = (self._next_key if keep else -1, pickle.dumps(job.steps, protocol=pickle.HIGHEST_PROTOCOL))
            if keep:
                if len(self._keys) >= KEYS or self._key_bytes > KEY_BYTES:  # (sandboxed code is up to 256 KiB)
                    self._keys.clear()
                    self._key_bytes = 0
                self._keys[job.steps] = entry
                self._key_bytes += len(entry[1])
                self._next_key += 1
        key, steps = entry
        forget = False
        if key >= 0:
            if key in w.known:
                steps = None
            else:
                if len(w.known) >= KNOWN_STEPS:
                    w.known.clear()
                    forget = True
                w.known.add(key)
        buf = bytearray(HEADROOM)
        _encode_into(JobMessage(key, job.payload, steps, forget), buf, HEADROOM)
        return framed(buf)

    def _replace(self, w: _Worker, lost: str | None = None) -> None:
        """Stop a worker and start another in its place (once: a worker already replaced, say after dying idle
        while handed to a waiting run, is not replaced again). A worker `lost` under a job is left to end on
        its own, so its exit code can be logged; any other is killed."""
        counted = w in self._all
        self._all.discard(w)
        if lost is None:
            w.kill()
        else:
            w.close()
        self._background(self._reap(w, lost))
        if counted and not self.closed:
            self._background(self._spawn(1))

    async def _reap(self, w: _Worker, lost: str | None) -> None:
        """Join a stopped worker's process on a thread (never on the loop), logging how a lost one ended."""
        await asyncio.to_thread(w.proc.join, 0.2 if lost is not None else 5)
        if lost is not None:
            log.warning("a run worker died under a job (exit code %s, %s)", w.proc.exitcode, lost)
            if w.proc.is_alive():  # the socket failed but the process lives on: it is done for anyway
                w.proc.kill()
                await asyncio.to_thread(w.proc.join, 5)

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` as a task the pool holds until it ends (the loop keeps only weak references)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
            w.close()
        for w in workers:
            await asyncio.to_thread(w.proc.join, 2)  # (a worker replaced under a cancelled run was killed already)
            if w.proc.is_alive():
                w.proc.kill()
