"""The pathway runner: each cell's output is the next cell's input; every cell leaves a trace entry.

Consecutive pool implementations go to a worker as one job (one round trip per run for the example
organs); implementations that run on the loop (memory) run between jobs, and `inline` ones (linear-time
text work such as reverse) run on the loop when their input is short, on a worker otherwise. One deadline
covers the run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from neira.runtime.backends import Step
from neira.runtime.payloads import AnyPayload, type_of
from neira.runtime.pool import Deadline, Pool, WorkerLost
from neira.runtime.registry import BadInput, Memory
from neira.runtime.results import CellError, TraceEntry
from neira.runtime.worker import MAX_STEPS, Job, public_reason, run_steps


@dataclass
class Outcome:
    """What a run produced: the last output (when it got through), the trace, and the error that stopped it."""

    output: AnyPayload | None = None
    trace: list[TraceEntry] = field(default_factory=list)
    error: CellError | None = None


INLINE_MAX_CHARS = 4096  # inline implementations run on the loop only for text this short (else on a worker)


def _ms(value: float) -> float:
    return round(value, 3)


def _small(payload: AnyPayload | None) -> bool:
    """Whether an inline implementation may take this payload on the loop: text (or phonemes) of at most
    INLINE_MAX_CHARS characters, or any other payload an `any` implementation passes on untouched."""
    text = getattr(payload, "text", None)
    return text is None or len(text) <= INLINE_MAX_CHARS


class Runner:
    """Runs Steps on the pool (and the loop) within a deadline."""

    def __init__(self, pool: Pool, memory: Memory) -> None:
        self.pool, self.memory = pool, memory

    async def run(self, steps: Sequence[Step], payload: AnyPayload, timeout_s: float, scope: str,
                  wait: bool = True) -> Outcome:
        """Run every step in order; stop at the first failure. With `wait` false a pool step that finds no
        free worker raises Busy instead of queueing (shadow runs never wait ahead of callers)."""
        out = Outcome(output=payload)
        deadline = time.monotonic() + timeout_s
        i = 0
        while i < len(steps) and out.error is None:
            if steps[i].impl.place == "loop":
                await self._loop_step(steps[i], out, deadline, scope)
                i += 1
                continue
            if steps[i].impl.place == "inline" and _small(out.output):
                self._inline_step(steps[i], out)
                i += 1
                continue
            j = i
            while j < len(steps) and j - i < MAX_STEPS and steps[j].impl.place != "loop":
                j += 1
            await self._segment(steps[i:j], out, deadline, wait)
            i = j
        if out.error is not None:
            out.output = None
        return out

    def _mismatch(self, steps: Sequence[Step], payload: AnyPayload) -> int | None:
        """Index of the first step whose declared input does not take what reaches it (declared types)."""
        current = type_of(payload)
        for k, step in enumerate(steps):
            if not step.impl.accepts(current):
                return k
            current = step.impl.output_for(current)
        return None

    def _fail(self, out: Outcome, step: Step, code: str, reason: str, ms: float = 0.0, limit: str | None = None) -> None:
        out.error = CellError(code=code, cell=step.cell, reason=reason, limit=limit)
        out.trace.append(TraceEntry(cell=step.cell, record_id=step.record_id, impl=step.impl.name, ms=_ms(ms),
                                    ok=False, output_type=None, error=out.error))

    def _passed(self, out: Outcome, step: Step, ms: float, output: AnyPayload) -> None:
        out.trace.append(TraceEntry(cell=step.cell, record_id=step.record_id, impl=step.impl.name, ms=_ms(ms),
                                    ok=True, output_type=type_of(output)))
        out.output = output

    async def _segment(self, steps: Sequence[Step], out: Outcome, deadline: float, wait: bool = True) -> None:
        assert out.output is not None
        bad = self._mismatch(steps, out.output)
        run = steps if bad is None else steps[:bad]
        if run:
            started = time.perf_counter()
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise Deadline(0, [])
                results, _ = await self.pool.run(Job(tuple((s.impl.fn, s.params) for s in run), out.output), remaining, wait)
            except (Deadline, WorkerLost) as exc:
                current = type_of(out.output)
                for s, ms in zip(run[:exc.step], exc.done_ms, strict=False):  # finished; their outputs were lost
                    current = s.impl.output_for(current)
                    out.trace.append(TraceEntry(cell=s.cell, record_id=s.record_id, impl=s.impl.name, ms=_ms(ms),
                                                ok=True, output_type=current))
                spent = max(0.0, (time.perf_counter() - started) * 1000 - sum(exc.done_ms))
                if isinstance(exc, Deadline) and run[exc.step].impl.sandboxed:  # stuck in native code (a Lua
                    # pattern, a WASI sleep) where neither hook nor epoch reaches: the kill is its deadline
                    self._fail(out, run[exc.step], "sandbox_limit",
                               "the sandbox went past the run's time limit; the worker was stopped", spent, "time")
                elif isinstance(exc, Deadline):
                    self._fail(out, run[exc.step], "timeout", "the run went past its time limit; the worker was stopped", spent)
                else:
                    self._fail(out, run[exc.step], "cell_failed", "the worker process running the cell died", spent)
                return
            for s, r in zip(run, results, strict=False):
                if r.output is None:
                    self._fail(out, s, r.code or "cell_failed", r.reason or "failed", r.ms, r.limit)
                    return
                self._passed(out, s, r.ms, r.output)
        if bad is not None:
            s = steps[bad]
            got = type_of(out.output)
            self._fail(out, s, "type_mismatch",
                       f"{s.cell} ({s.impl.name}) takes {', '.join(sorted(s.impl.inputs))}, not {got}")

    def _inline_step(self, step: Step, out: Outcome) -> None:
        """A linear-time implementation on a short input, on the loop: a worker round trip would cost more."""
        assert out.output is not None
        if self._mismatch([step], out.output) is not None:
            self._fail(out, step, "type_mismatch", f"{step.cell} ({step.impl.name}) takes "
                       f"{', '.join(sorted(step.impl.inputs))}, not {type_of(out.output)}")
            return
        [result] = run_steps(Job(((step.impl.fn, step.params),), out.output))
        if result.output is None:
            self._fail(out, step, result.code or "cell_failed", result.reason or "failed", result.ms)
        else:
            self._passed(out, step, result.ms, result.output)

    async def _loop_step(self, step: Step, out: Outcome, deadline: float, scope: str) -> None:
        assert out.output is not None
        got = type_of(out.output)
        if not step.impl.accepts(got):
            self._fail(out, step, "type_mismatch",
                       f"{step.cell} ({step.impl.name}) takes {', '.join(sorted(step.impl.inputs))}, not {got}")
            return
        start = time.perf_counter()
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):  # not wait_for (3.11 can lose a cancel)
                result = await step.impl.fn(out.output, step.params, self.memory, scope)
        except TimeoutError:
            self._fail(out, step, "timeout", "the run went past its time limit", (time.perf_counter() - start) * 1000)
            return
        except BadInput as exc:
            self._fail(out, step, "input_invalid", str(exc), (time.perf_counter() - start) * 1000)
            return
        except Exception as exc:
            self._fail(out, step, "cell_failed", public_reason(exc), (time.perf_counter() - start) * 1000)
            return
        self._passed(out, step, (time.perf_counter() - start) * 1000, result)
