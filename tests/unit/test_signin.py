"""api/signin.py without HTTP: the code and session store, cookie parsing and the WebSocket origin check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from api import signin
from api.signin import SignIn, cookie_value, same_origin
from neira.policy import Role
from neira.storage import tables
from neira.storage.db import Database


async def test_codes_are_single_use_and_sessions_close() -> None:
    store = SignIn(clock=lambda: 0.0)
    code = await store.issue_code()
    sid, session = await store.redeem(code)  # type: ignore[misc]
    assert session.role is Role.ADMIN and await store.session(sid) == session
    assert await store.redeem(code) is None and await store.redeem("") is None
    assert await store.close(sid) and await store.session(sid) is None and not await store.close(sid)


async def test_the_stores_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signin, "MAX_CODES", 3)
    monkeypatch.setattr(signin, "MAX_SESSIONS", 2)
    store = SignIn(clock=lambda: 0.0)
    codes = [await store.issue_code() for _ in range(5)]
    assert await store.redeem(codes[0]) is None and await store.redeem(codes[1]) is None  # the oldest were dropped
    sids = [(await store.redeem(c))[0] for c in codes[2:]]  # type: ignore[index]
    assert await store.session(sids[0]) is None and await store.session(sids[1]) and await store.session(sids[2])


async def test_nothing_secret_is_kept_in_clear(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'neira.db'}")
    await db.create()
    try:
        for store in (SignIn(clock=lambda: 0.0), shared(db)):
            code = await store.issue_code()
            sid, session = await store.redeem(await store.issue_code())  # type: ignore[misc]
            async with db.read() as conn:
                rows = repr((await conn.execute(select(tables.signins))).all())
            kept = repr(store._codes) + repr(store._sessions) + rows
            assert code not in kept and sid not in kept
            assert session.csrf not in rows  # derived from the session id when needed, never stored
    finally:
        await db.close()


def shared(db: Database, clock: Any = lambda: 0.0) -> SignIn:
    store = SignIn(clock=clock)
    store.attach(db)
    return store


async def test_on_a_shared_database_every_process_honours_a_code_and_a_sign_out(tmp_path: Path) -> None:
    """Two stores on one database stand for two replicas: a code minted by one is redeemed by the other,
    once; the session works on both, with the same CSRF token; a sign-out on one ends it on the other
    (its cached copy dropped by the change feed); an ended session is not read back."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'neira.db'}")
    await db.create()
    now = [0.0]
    try:
        a, b = shared(db, lambda: now[0]), shared(db, lambda: now[0])
        code = await a.issue_code(Role.OPERATOR)
        sid, session = await b.redeem(code)  # type: ignore[misc]
        assert await a.redeem(code) is None
        here, there = await a.session(sid), await b.session(sid)
        assert here == there == session and session.role is Role.OPERATOR
        assert await a.close(sid)
        assert await b.session(sid) is None and await a.session(sid) is None
        sid2, _ = await a.redeem(await b.issue_code())  # type: ignore[misc]
        now[0] += signin.SESSION_TTL_S
        assert await b.session(sid2) is None and await a.session(sid2) is None
        late = await a.issue_code()
        now[0] += signin.CODE_TTL_S
        assert await b.redeem(late) is None
    finally:
        await db.close()


COOKIES = [
    ([(b"cookie", b"neira_session=abc")], "abc"),
    ([(b"cookie", b"a=1; neira_session=abc; b=2")], "abc"),
    ([(b"cookie", b"neira_sessionx=abc")], None),
    ([(b"cookie", b"a=1"), (b"cookie", b"neira_session=def")], "def"),
    ([(b"authorization", b"Bearer x")], None),
    ([], None),
]


@pytest.mark.parametrize(("headers", "expected"), COOKIES)
def test_cookie_value(headers: list[tuple[bytes, bytes]], expected: str | None) -> None:
    assert cookie_value(headers) == expected


ORIGINS = [
    ({b"origin": b"http://127.0.0.1:8000", b"host": b"127.0.0.1:8000"}, True),
    ({b"origin": b"https://neira.example", b"host": b"neira.example"}, True),
    ({b"origin": b"http://evil.example", b"host": b"127.0.0.1:8000"}, False),
    ({b"origin": b"http://127.0.0.1:8001", b"host": b"127.0.0.1:8000"}, False),
    ({b"origin": b"http://127.0.0.1:8000.evil", b"host": b"127.0.0.1:8000"}, False),
    ({b"origin": b"null", b"host": b"127.0.0.1:8000"}, False),
    ({b"host": b"127.0.0.1:8000"}, False),
]


@pytest.mark.parametrize(("headers", "expected"), ORIGINS)
def test_same_origin(headers: dict[bytes, bytes], expected: bool) -> None:
    assert same_origin(list(headers.items())) is expected
