"""The chat's training intents: `train` runs one iteration at once (it moves no lifecycle state: evidence,
like a run), `review` records the human's verdict at once (the verdict is the decision; a plan to confirm it
would ask twice). A review names its cell, or falls back on the record this session trained last."""

from __future__ import annotations

from typing import Any, Protocol

from neira.commands.answer import Target, Told
from neira.commands.reply import say
from neira.commands.resolve import Resolution
from neira.errors import NotFound, NotRunnable
from neira.training import Iteration, Reviewed


class Trainer(Protocol):
    """What the chat needs of the Training Orchestrator."""

    async def train(self, record_id: str, actor: str, session_id: str | None = None) -> Iteration: ...
    async def review(self, record_id: str, iteration: int, body: Any, actor: str) -> Reviewed: ...
    async def last_trained(self, session_id: str) -> str | None: ...


class Records(Protocol):
    """A template id → its active record (stable, else the newest live one)."""

    async def __call__(self, ref: str) -> dict[str, Any]: ...


class Refused(Exception):
    """A training command that cannot go on; `reply` says why in the command's language."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


async def _record(res: Resolution, active: Records) -> str:
    target = res.target or {}
    if target.get("kind") == "organ":
        raise Refused(say(res.lang, "train_organ", organ=target["id"]))
    return str((await active(target["id"]))["id"])


async def answer(res: Resolution, trainer: Trainer, active: Records, session_id: str, said: str,
                 actor: str) -> Told:
    """The reply to a `train` or `review` command; refusals are worded in the command's language."""
    try:
        if res.intent == "train":
            return await train(res, trainer, active, session_id, actor)
        return await review(res, trainer, active, session_id, said, actor)
    except Refused as exc:
        return Told(review=None, reply=exc.reply) if res.intent == "review" else Told(training=None, reply=exc.reply)


async def train(res: Resolution, trainer: Trainer, active: Records, session_id: str, actor: str) -> Told:
    """`{training, target, reply}` for «обучи клетку summarize» / "train the summarize cell"."""
    if res.target is None:
        return Told(training=None, reply=say(res.lang, "train_needs_cell"))
    record_id = await _record(res, active)
    try:
        it = await trainer.train(record_id, actor, session_id)
    except NotRunnable:
        raise Refused(say(res.lang, "train_not_runnable", record=record_id)) from None
    reply = say(res.lang, "trained", record=record_id, iteration=it.iteration, passed=it.passed,
                total=it.passed + it.failed, score=f"{it.score:.0%}", p99=f"{it.p99_ms:.1f}")
    failing = [r for r in it.results if not r.passed]
    if failing:
        reply += " " + say(res.lang, "trained_failing", samples=", ".join(str(r.sample + 1) for r in failing))
    return Told(training=it, target=Target(kind="cell", id=record_id), reply=reply)


async def review(res: Resolution, trainer: Trainer, active: Records, session_id: str, said: str,
                 actor: str) -> Told:
    """`{review, target, reply}` for «прими итерацию 3» / "accept iteration 3"."""
    record_id = await _record(res, active) if res.target is not None else await trainer.last_trained(session_id)
    if record_id is None:
        return Told(review=None, reply=say(res.lang, "review_needs_cell", iteration=res.iteration))
    try:
        done = await trainer.review(record_id, res.iteration or 0, {"verdict": res.verdict, "comment": said}, actor)
    except NotFound:
        raise Refused(say(res.lang, "no_iteration", record=record_id, iteration=res.iteration)) from None
    key = "reviewed_converged" if done.converged else "reviewed"
    verdict = say(res.lang, f"verdict_{done.verdict}")
    return Told(review=done, target=Target(kind="cell", id=record_id),
                reply=say(res.lang, key, record=record_id, iteration=done.iteration, verdict=verdict))
