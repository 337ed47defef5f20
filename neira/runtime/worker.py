"""The worker process: runs a segment of a pathway (one or more pool implementations in a row) per job.

It talks to the pool over one pipe: a pickled Job in, a pickled list of StepResults out. It writes the
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
from typing import Any

from neira.runtime.payloads import Payload
from neira.runtime.registry import BadInput
from neira.runtime.sandbox.limits import SandboxError, SandboxLimit

MAX_STEPS = 32  # steps in one job; a longer pathway is several jobs
MEMORY_LIMIT = 2 << 30  # address space of a worker: a runaway allocation fails there, not in the server
_PATH = re.compile(r"(?:/[\w.-]+)+")


@dataclass(frozen=True)
class Job:
    """Steps `(fn, params)` run in order on `payload`, each taking the previous one's output."""

    steps: tuple[tuple[Callable[..., Any], Any], ...]
    payload: Payload


@dataclass(frozen=True)
class StepResult:
    """One step's outcome: its output or the error (`input_invalid` | `cell_failed` | `sandbox_limit` with
    its `limit`) and its time."""

    ms: float
    output: Payload | None = None
    code: str | None = None
    reason: str | None = None
    limit: str | None = None


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
            if not isinstance(out, Payload):
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
    """The worker's loop: until the pool closes its end of the pipe."""
    try:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ValueError, OSError):
        pass
    for warm in warmers:  # e.g. start eSpeak NG now, not inside the first run's deadline
        try:
            warm()
        except Exception:
            pass
    out = socket.socket(fileno=os.dup(conn.fileno()))  # answers go out in one write (see `_send`)
    try:
        _send(out, b"")  # ready: the pool hands this worker a run only now, so no deadline covers the warm-up
    except OSError:
        return
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        results = run_steps(pickle.loads(data), progress)
        _send(out, pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL))


def _send(sock: socket.socket, data: bytes) -> None:
    """One frame as `Connection.send_bytes` frames it, in one write: for a message over 16 kB (a WAV) that
    method writes the header and the body apart, so the pool woke for the 4-byte header and again for the
    body."""
    n = len(data)
    header = struct.pack("!i", n) if n <= 0x7FFFFFFF else struct.pack("!iQ", -1, n)
    sock.sendall(header + data)
