"""The worker process: runs a segment of a pathway (one or more pool implementations in a row) per job.

It talks to the pool over one socket: a job message in (msgpack: the steps' key, the pickled steps the first
time this worker sees them, the payload), its list of StepResults out (msgpack, bytes as they are). It writes the
index of the running step and the time of each finished one into shared memory (`progress`), so the pool can
say which cell was running, and what the others took, when it kills the process for going past the deadline."""

from __future__ import annotations

import os
import pickle
import re
import resource
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, get_args

import msgspec

from neira.runtime.payloads import AnyPayload
from neira.runtime.registry import BadInput
from neira.runtime.sandbox.limits import SandboxError, SandboxLimit

MAX_STEPS = 32  # steps in one job; a longer pathway is several jobs
KNOWN_STEPS = 256  # step tuples a worker keeps unpickled (the pool knows which, see `JobMessage.forget`)
MEMORY_LIMIT = 2 << 30  # address space of a worker: a runaway allocation fails there, not in the server
_PATH = re.compile(r"(?:/[\w.-]+)+")


@dataclass(frozen=True)
class Job:
    """Steps `(fn, params)` run in order on `payload`, each taking the previous one's output."""

    steps: tuple[tuple[Callable[..., Any], Any], ...]
    payload: AnyPayload


class StepResult(msgspec.Struct, array_like=True, frozen=True):
    """One step's outcome: its output or the error (`input_invalid` | `cell_failed` | `sandbox_limit` with
    its `limit`) and its time."""

    ms: float
    output: AnyPayload | None = None
    code: str | None = None
    reason: str | None = None
    limit: str | None = None


class JobMessage(msgspec.Struct, array_like=True, frozen=True):
    """A job on the wire. `key` names the step tuple (-1: not kept); `steps` is it pickled, sent only when this
    worker does not have `key` yet; `forget`: drop the kept ones first (the pool keeps the same count)."""

    key: int
    payload: AnyPayload
    steps: bytes | None = None
    forget: bool = False


PAYLOADS = get_args(AnyPayload)  # what a step may answer: what crosses back to the server
HEADROOM = 12  # bytes before a frame's body: its length as 4 bytes, or as -1 and 8 bytes past 2 GiB


def framed(buf: bytearray) -> memoryview:
    """The frame around the body written into `buf` from HEADROOM on (`Encoder.encode_into(obj, buf,
    HEADROOM)`), as `multiprocessing.Connection` frames a message: header and body in one view, no copy."""
    n = len(buf) - HEADROOM
    if n <= 0x7FFFFFFF:
        struct.pack_into("!i", buf, HEADROOM - 4, n)
        return memoryview(buf)[HEADROOM - 4:]
    struct.pack_into("!iQ", buf, 0, -1, n)
    return memoryview(buf)


def public_reason(exc: BaseException) -> str:
    """An implementation's exception as a sentence that shows no file paths and stays short."""
    text = _PATH.sub("<path>", str(exc))[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_steps(job: Job, progress: Any = None) -> list[StepResult]:
    """Run the job's steps; stop at the first failure."""
    results: list[StepResult] = []
    payload = job.payload
    for i, (fn, params) in enumerate(job.steps):
        if progress is not None:
            progress[0] = i
        start = time.perf_counter()
        try:
            out = fn(payload, params)
            if not isinstance(out, PAYLOADS):
                raise TypeError(f"implementation answered {type(out).__name__}, not a payload")
        except BadInput as exc:
            results.append(StepResult((time.perf_counter() - start) * 1000, code="input_invalid", reason=str(exc)))
            break
        except SandboxLimit as exc:
            results.append(StepResult((time.perf_counter() - start) * 1000, code="sandbox_limit", reason=str(exc),
                                      limit=exc.limit))
            break
        except SandboxError as exc:  # its messages are written for people and carry no host detail
            results.append(StepResult((time.perf_counter() - start) * 1000, code="cell_failed", reason=str(exc)))
            break
        except MemoryError:
            results.append(StepResult((time.perf_counter() - start) * 1000, code="cell_failed", reason="out of memory"))
            break
        except Exception as exc:  # an implementation's bug is its cell's failure, never the worker's
            results.append(StepResult((time.perf_counter() - start) * 1000, code="cell_failed", reason=public_reason(exc)))
            break
        ms = (time.perf_counter() - start) * 1000
        if progress is not None:
            progress[1 + i] = ms
        results.append(StepResult(ms, output=out))
        payload = out
    return results


def main(conn: Connection, progress: Any, warmers: tuple[Callable[[], None], ...]) -> None:
    """The worker's loop: until the pool closes its end of the socket."""
    try:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ValueError, OSError):
        pass
    for warm in warmers:  # e.g. start eSpeak NG now, not inside the first run's deadline
        try:
            warm()
        except Exception:
            pass
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    conn.close()
    sock.setblocking(True)
    frames = _Frames(sock)
    try:
        sock.sendall(struct.pack("!i", 0))  # ready (an empty frame): only now is this worker given a run
    except OSError:
        return
    decode_job = msgspec.msgpack.Decoder(JobMessage).decode
    encode_into = msgspec.msgpack.Encoder().encode_into
    known: dict[int, tuple[tuple[Callable[..., Any], Any], ...]] = {}
    while True:
        try:
            data = frames.receive()
        except (EOFError, OSError):
            return
        message = decode_job(data)
        if message.forget:
            known.clear()
        steps = known.get(message.key) if message.steps is None else pickle.loads(message.steps)
        if steps is None:  # the pool sends the steps with their first job here; this is its bug, not a cell's
            return
        if message.key >= 0:
            known[message.key] = steps
        results = run_steps(Job(steps, message.payload), progress)
        try:
            encode_into(results, frames.outbuf, HEADROOM)
        except (TypeError, ValueError, OverflowError):  # an output msgpack cannot carry (a set in json data, …)
            encode_into(_sendable(results, encode_into, frames.outbuf), frames.outbuf, HEADROOM)
        frames.send()


def _sendable(results: list[StepResult], encode_into: Callable[..., None], buf: bytearray) -> list[StepResult]:
    """The results up to the first one whose output cannot be sent, that one turned into its cell's failure."""
    for i, r in enumerate(results):
        try:
            encode_into(r, buf, HEADROOM)
        except (TypeError, ValueError, OverflowError) as exc:
            reason = f"the cell answered a payload that cannot leave the worker ({public_reason(exc)})"
            return [*results[:i], StepResult(r.ms, code="cell_failed", reason=reason)]
    return results


class _Frames:
    """Frames as `multiprocessing.Connection` frames them (a 4-byte big-endian length; -1 and 8 bytes past
    2 GiB), read into and written from one reused buffer: an answer goes out in one write with no copy of it
    made here (a 34 kB WAV once cost two wake-ups of the loop when the header went alone)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = bytearray(1 << 16)
        self.outbuf = bytearray(1 << 16)

    def receive(self) -> memoryview:
        """The next frame's body (valid until the next call)."""
        buf, got = self.inbuf, 0
        view = memoryview(buf)
        while got < 4 or (got < 12 and struct.unpack_from("!i", buf)[0] == -1):
            got += self._read(view[got:])
        size, start = struct.unpack_from("!i", buf)[0], 4
        if size == -1:
            size, start = struct.unpack_from("!Q", buf, 4)[0], 12
        if start + size > len(buf):  # a big payload (an image): a buffer of its size, for this frame only
            big = bytearray(start + size)
            big[:got] = view[:got]
            buf, view = big, memoryview(big)
        while got < start + size:
            got += self._read(view[got:start + size])
        return view[start:start + size]

    def _read(self, view: memoryview) -> int:
        n = self.sock.recv_into(view)
        if not n:
            raise EOFError
        return n

    def send(self) -> None:
        """The body written into `outbuf` from HEADROOM on, as one frame in one write."""
        with framed(self.outbuf) as frame:
            self.sock.sendall(frame)
        if len(self.outbuf) > 1 << 22:  # do not keep a one-off large answer's buffer
            self.outbuf = bytearray(1 << 16)
