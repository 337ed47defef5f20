"""api/signin.py without HTTP: the code and session store, cookie parsing and the WebSocket origin check."""

from __future__ import annotations

import pytest

from api import signin
from api.signin import SignIn, cookie_value, same_origin
from neira.policy import Role


def test_codes_are_single_use_and_sessions_close() -> None:
    store = SignIn(clock=lambda: 0.0)
    code = store.issue_code()
    sid, session = store.redeem(code)  # type: ignore[misc]
    assert session.role is Role.ADMIN and store.session(sid) == session
    assert store.redeem(code) is None and store.redeem("") is None
    assert store.close(sid) and store.session(sid) is None and not store.close(sid)


def test_the_stores_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signin, "MAX_CODES", 3)
    monkeypatch.setattr(signin, "MAX_SESSIONS", 2)
    store = SignIn(clock=lambda: 0.0)
    codes = [store.issue_code() for _ in range(5)]
    assert store.redeem(codes[0]) is None and store.redeem(codes[1]) is None  # the oldest were dropped
    sids = [store.redeem(c)[0] for c in codes[2:]]  # type: ignore[index]
    assert store.session(sids[0]) is None and store.session(sids[1]) and store.session(sids[2])


def test_nothing_secret_is_kept_in_clear() -> None:
    store = SignIn(clock=lambda: 0.0)
    code = store.issue_code()
    sid, session = store.redeem(store.issue_code())  # type: ignore[misc]
    kept = repr(store._codes) + repr(store._sessions)
    assert code not in kept and sid not in kept


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
