"""The Training Orchestrator: iterations, score, reviews, convergence, metrics, routes."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from neira.core import Core
from neira.errors import NotFound, NotRunnable
from tests.conftest import auth
from tests.evidence.conftest import GOOD, HALF_BAD, cell, record_of


def metric(core: Core, name: str) -> float:
    return core.metrics.registry.get_sample_value(name) or 0.0


async def accept(core: Core, record: str, iteration: int, verdict: str = "accept") -> bool:
    return (await core.training.review(record, iteration, {"verdict": verdict, "comment": "ok"}, "admin")).converged


async def test_an_iteration_scores_the_share_of_passing_samples(ecore: Core) -> None:
    record = await record_of(ecore, cell("picky", HALF_BAD))
    it = await ecore.training.train(record, "admin")
    assert (it.iteration, it.score, it.passed, it.failed, it.errors) == (1, 0.5, 2, 2, 1)
    assert [(r.sample, r.passed, r.error) for r in it.results] == [(0, True, None), (1, False, "input_invalid"), (2, False, None), (3, True, None)]
    assert it.results[2].reason == 'output "CD" does not equal "nope"'
    assert it.p99_ms >= max(r.ms for r in it.results) - 1e-6 and it.at > 0
    assert (await ecore.training.train(record, "admin")).iteration == 2


async def test_three_accepted_good_iterations_converge_once(ecore: Core) -> None:
    record = await record_of(ecore, cell("picky", GOOD))
    for n in (1, 2, 3):
        assert (await ecore.training.train(record, "admin")).score == 1.0
    assert [await accept(ecore, record, n) for n in (1, 2, 3)] == [False, False, True]
    assert await accept(ecore, record, 3)  # a second review of the same iteration is no new convergence
    view = await ecore.training.training(record)
    assert (view.converged, view.policy.min_score, view.policy.consecutive) == (True, 0.95, 3)
    assert [i.review.verdict for i in view.iterations if i.review] == ["accept"] * 3
    assert (metric(ecore, "training_iterations_total"), metric(ecore, "training_converged_total")) == (3, 1)
    audit = [(a.action, a.subject) for a in await ecore.audit.list(limit=1000) if a.action.startswith("training.")]
    assert audit == [("training.iteration", f"cell:{record}")] * 3 + [("training.review", f"cell:{record}")] * 4
    events = [e.type for e in await ecore.events.list(0, 1000) if e.type.startswith("training.")]
    assert events.count("training.converged") == 1 and events.count("training.iteration") == 3


async def test_a_reject_or_a_low_score_breaks_convergence(ecore: Core) -> None:
    record = await record_of(ecore, cell("picky", GOOD))
    for _ in range(4):
        await ecore.training.train(record, "admin")
    assert [await accept(ecore, record, n, v) for n, v in ((1, "accept"), (2, "accept"), (3, "reject"), (4, "accept"))] == [False] * 4
    low = await record_of(ecore, cell("picky", HALF_BAD, "analysis.e_low.v1"))
    for n in (1, 2, 3):
        await ecore.training.train(low, "admin")
        assert not await accept(ecore, low, n)
    assert metric(ecore, "training_converged_total") == 0


async def test_policy_comes_from_the_template(ecore: Core) -> None:
    record = await record_of(ecore, cell("picky", HALF_BAD, training={"min_score": 0.5, "consecutive": 1}))
    await ecore.training.train(record, "admin")
    assert await accept(ecore, record, 1)
    assert (await ecore.training.training(record)).policy.consecutive == 1


async def test_unknown_iterations_records_and_unrunnable_records(ecore: Core) -> None:
    record = await record_of(ecore, cell("picky", GOOD))
    with pytest.raises(NotFound):
        await accept(ecore, record, 1)
    with pytest.raises(NotFound):
        await ecore.training.train("cell-999", "admin")
    await ecore.factory.disable(record, "admin")
    with pytest.raises(NotRunnable):
        await ecore.training.train(record, "admin")
    bare = await record_of(ecore, {**cell("picky", []), "id": "analysis.e_bare.v1"})
    with pytest.raises(NotRunnable, match="no samples"):
        await ecore.training.train(bare, "admin")
    assert metric(ecore, "training_iterations_total") == 0


async def test_the_routes(eclient: AsyncTestClient) -> None:
    r = await eclient.post("/factory/cells", json={"template": cell("picky", GOOD)}, headers=auth())
    record = r.json()["id"]
    r = await eclient.post(f"/factory/cells/{record}/train", headers=auth())
    assert r.status_code == 200, r.text
    body = r.json()
    assert {k: body[k] for k in ("iteration", "score", "passed", "failed", "errors")} == {
        "iteration": 1, "score": 1.0, "passed": 4, "failed": 0, "errors": 0}
    assert set(body) >= {"p99_ms", "results", "at"}
    r = await eclient.post(f"/factory/cells/{record}/training/1/review", json={"verdict": "accept", "comment": "looks right"}, headers=auth())
    assert (r.status_code, r.json()["verdict"], r.json()["converged"]) == (200, "accept", False)
    r = await eclient.get(f"/factory/cells/{record}/training", headers=auth())
    assert r.status_code == 200
    view = r.json()
    assert (view["converged"], view["policy"], len(view["iterations"])) == (False, {"min_score": 0.95, "consecutive": 3}, 1)
    assert view["iterations"][0]["review"]["comment"] == "looks right"
    r = await eclient.post(f"/factory/cells/{record}/training/7/review", json={"verdict": "accept"}, headers=auth())
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = await eclient.post(f"/factory/cells/{record}/training/1/review", json={"verdict": "maybe"}, headers=auth())
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")
    r = await eclient.post(f"/factory/cells/{record}/train", headers=auth("viewer"))
    assert r.status_code == 403
    r = await eclient.get("/factory/cells/cell-404/training", headers=auth())
    assert r.status_code == 404
    await eclient.post(f"/factory/cells/{record}/disable", headers=auth())
    r = await eclient.post(f"/factory/cells/{record}/train", headers=auth())
    assert (r.status_code, r.json()["code"]) == (409, "not_runnable")
    metrics = (await eclient.get("/metrics")).text
    assert "training_iterations_total 1.0" in metrics and "training_converged_total 0.0" in metrics


async def test_an_iteration_that_is_no_number_is_not_found(eclient: AsyncTestClient) -> None:
    r = await eclient.post("/factory/cells", json={"template": cell("picky", GOOD)}, headers=auth())
    for bad in ("x1", "0", "-1", "99999999999999999999"):
        r2 = await eclient.post(f"/factory/cells/{r.json()['id']}/training/{bad}/review", json={"verdict": "accept"}, headers=auth())
        assert (r2.status_code, r2.json()["code"]) == (404, "not_found"), bad
