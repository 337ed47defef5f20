"""The pages' sign-in (contract §10): one-time sign-in codes, exchanged for a server-side session behind an
HttpOnly, SameSite=Strict cookie, with a CSRF token the page sends on every write.

Both live in this process's memory, on purpose: a code is good for ten minutes and a session is only a
convenience for the pages, so losing them on a restart costs one new sign-in link (`neira login-url`), while
keeping them out of the database keeps every stored row free of credentials. The bearer tokens stay the one
durable credential, for the CLI and REST clients. Codes and session ids are kept as SHA-256 digests, so even
this process's memory holds nothing a caller could replay from a dump.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from neira.errors import Forbidden
from neira.policy import Role
from neira.structs import Frozen

CODE_TTL_S = 600.0  # a printed sign-in link is good for ten minutes
SESSION_TTL_S = 12 * 3600.0  # a page session lasts a working day, then asks for a new link
MAX_CODES = 100  # unredeemed codes kept at most (oldest dropped): minting them needs the admin token anyway
MAX_SESSIONS = 1000  # open sessions kept at most (oldest dropped)
COOKIE = "neira_session"
CSRF_HEADER = "x-neira-csrf"


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class Session(Frozen):
    """A signed-in page: its role, the CSRF token its writes must carry, and when it ends (monotonic s)."""

    role: Role
    csrf: str
    expires: float


class _Code(Frozen):
    """An unredeemed sign-in code: the role it signs in as, and when it stops working (monotonic s)."""

    role: Role
    expires: float


class SignIn:
    """Sign-in codes and page sessions. `clock` is monotonic seconds (tests pass their own to expire things)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._codes: OrderedDict[bytes, _Code] = OrderedDict()
        self._sessions: OrderedDict[bytes, Session] = OrderedDict()

    # --- codes -------------------------------------------------------------------------------------------
    def issue_code(self, role: Role = Role.ADMIN) -> str:
        """A new one-time code for `role`, good for CODE_TTL_S."""
        self._drop_expired()
        code = secrets.token_urlsafe(24)
        self._codes[_digest(code)] = _Code(role=role, expires=self._clock() + CODE_TTL_S)
        while len(self._codes) > MAX_CODES:
            self._codes.popitem(last=False)
        return code

    def redeem(self, code: str) -> tuple[str, Session] | None:
        """Exchange a code for a new session `(session id, session)`; None for an unknown, used or expired
        code. A code is gone after its first use, whether that use was in time or not."""
        found = self._codes.pop(_digest(code), None) if code else None
        if found is None or found.expires <= self._clock():
            return None
        return self._open(found.role)

    # --- sessions ----------------------------------------------------------------------------------------
    def _open(self, role: Role) -> tuple[str, Session]:
        self._drop_expired()
        sid = secrets.token_urlsafe(32)
        session = Session(role=role, csrf=secrets.token_urlsafe(32), expires=self._clock() + SESSION_TTL_S)
        self._sessions[_digest(sid)] = session
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return sid, session

    def session(self, sid: str | None) -> Session | None:
        """The live session of a cookie value, or None."""
        if not sid:
            return None
        key = _digest(sid)
        found = self._sessions.get(key)
        if found is not None and found.expires <= self._clock():
            del self._sessions[key]
            return None
        return found

    def close(self, sid: str | None) -> bool:
        """End a session (sign-out); whether there was one."""
        return bool(sid) and self._sessions.pop(_digest(sid or ""), None) is not None

    def _drop_expired(self) -> None:
        now = self._clock()
        for store in (self._codes, self._sessions):
            for key in [k for k, v in store.items() if v.expires <= now]:
                del store[key]  # type: ignore[attr-defined]


def csrf_matches(session: Session, given: str | bytes | None) -> bool:
    """Whether a request's `X-Neira-CSRF` value is this session's token (constant-time)."""
    raw = given.encode() if isinstance(given, str) else (given or b"")
    return bool(raw) and hmac.compare_digest(session.csrf.encode(), raw)


def cookie_value(headers: Iterable[tuple[bytes, bytes]], name: str = COOKIE) -> str | None:
    """The value of cookie `name` in raw ASGI headers (the first one wins), or None."""
    for key, value in headers:
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, sep, v = part.strip().partition("=")
                if sep and k == name:
                    return v
    return None


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def page_role(sign_in: SignIn, headers: Iterable[tuple[bytes, bytes]], write: bool) -> Role | None:
    """The role of a request signed in by the session cookie, or None without a live session. A write
    (any method but GET, HEAD, OPTIONS) must also carry the session's CSRF token: 403 `forbidden` without."""
    session = sign_in.session(cookie_value(headers))
    if session is None:
        return None
    if write and not csrf_matches(session, _header(headers, CSRF_HEADER.encode())):
        raise Forbidden("a signed-in page's writes need its X-Neira-CSRF header")
    return session.role


def same_origin(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a WebSocket handshake comes from a page of this server (its Origin names the Host it asks).
    Browsers always send Origin on a WebSocket handshake; a cookie alone must not open a stream for a page of
    another site (SameSite=Strict already keeps the cookie off cross-site handshakes: this is the second lock)."""
    origin, host = _header(headers, b"origin"), _header(headers, b"host")
    if not origin or not host:
        return False
    return origin.partition(b"://")[2].rstrip(b"/") == host
