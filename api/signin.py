"""The pages' sign-in (contract §10): one-time sign-in codes, exchanged for a server-side session behind an
HttpOnly, SameSite=Strict cookie, with a CSRF token the page sends on every write.

Codes and sessions are rows of the `signins` table, so every replica on a shared database honours a code
minted or a session opened on any other (a load balancer may send each request anywhere), and a sign-out
ends the session everywhere (the change feed drops the other replicas' cached copy). Only SHA-256 digests of
codes and session ids are stored or held in memory, so neither a row nor a memory dump holds anything a
caller could replay. The CSRF token is derived from the session id (an HMAC keyed by it), so it is never
stored either. The bearer tokens stay the one credential for the CLI and REST clients.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from sqlalchemy import delete, insert, select

from neira.errors import Forbidden
from neira.policy import Role
from neira.storage import tables
from neira.storage.db import Database
from neira.storage.feed import RESET, Changed
from neira.structs import Frozen

CODE_TTL_S = 600.0  # a printed sign-in link is good for ten minutes
SESSION_TTL_S = 12 * 3600.0  # a page session lasts a working day, then asks for a new link
MAX_CODES = 100  # unredeemed codes held in memory at most (oldest dropped) without a database
MAX_SESSIONS = 1000  # sessions held in memory at most (oldest dropped; with a database they are read again)
COOKIE = "neira_session"
CSRF_HEADER = "x-neira-csrf"
S = tables.signins


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _csrf(sid: str) -> str:
    """The session's CSRF token: an HMAC keyed by its id, so any replica can tell it without storing it."""
    return hmac.new(sid.encode(), b"neira-csrf", hashlib.sha256).hexdigest()


class Session(Frozen):
    """A signed-in page: its role, the CSRF token its writes must carry, and when it ends (clock s)."""

    role: Role
    csrf: str
    expires: float


class _Code(Frozen):
    """An unredeemed sign-in code: the role it signs in as, and when it stops working (clock s)."""

    role: Role
    expires: float


class SignIn:
    """Sign-in codes and page sessions: in the database once `attach`ed (a server), else in memory (a
    process of its own). `clock` is wall-clock seconds (tests pass their own to expire things)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._db: Database | None = None
        self._codes: OrderedDict[bytes, _Code] = OrderedDict()
        self._sessions: OrderedDict[bytes, Session] = OrderedDict()  # with a database: a cache of its rows

    def attach(self, db: Database) -> None:
        """Keep codes and sessions in `db` from now on, shared with every process on it."""
        self._db = db
        db.feed.subscribe("signins", self._changed)

    def _changed(self, changes: list[Changed]) -> None:
        for c in changes:  # a sign-out here or on another replica: the cached copy goes
            if c.key == RESET:
                self._sessions.clear()
            else:
                self._sessions.pop(bytes.fromhex(c.key), None)

    # --- codes -------------------------------------------------------------------------------------------
    async def issue_code(self, role: Role = Role.ADMIN) -> str:
        """A new one-time code for `role`, good for CODE_TTL_S."""
        code = secrets.token_urlsafe(24)
        expires = self._clock() + CODE_TTL_S
        if self._db is None:
            self._drop_expired()
            self._codes[_digest(code)] = _Code(role=role, expires=expires)
            while len(self._codes) > MAX_CODES:
                self._codes.popitem(last=False)
            return code
        async with self._db.transaction() as tx:
            await tx.conn.execute(delete(S).where(S.c.expires_at <= self._clock()))  # the ended ones, any kind
            await tx.conn.execute(insert(S).values(digest=_digest(code).hex(), kind="code", role=role.value,
                                                   expires_at=expires))
        return code

    async def redeem(self, code: str) -> tuple[str, Session] | None:
        """Exchange a code for a new session `(session id, session)`; None for an unknown, used or expired
        code. A code is gone after its first use, whether that use was in time or not, on every replica."""
        if not code:
            return None
        if self._db is None:
            found = self._codes.pop(_digest(code), None)
            if found is None or found.expires <= self._clock():
                return None
            return self._open_here(found.role)
        async with self._db.transaction() as tx:
            row = (await tx.conn.execute(delete(S).where(S.c.digest == _digest(code).hex(), S.c.kind == "code")
                                         .returning(S.c.role, S.c.expires_at))).first()
            if row is None or row.expires_at <= self._clock():
                return None
            sid, session = self._session_of(Role(row.role))
            await tx.conn.execute(insert(S).values(digest=_digest(sid).hex(), kind="session", role=session.role.value,
                                                   expires_at=session.expires))
        self._keep(_digest(sid), session)
        return sid, session

    # --- sessions ----------------------------------------------------------------------------------------
    def _session_of(self, role: Role) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        return sid, Session(role=role, csrf=_csrf(sid), expires=self._clock() + SESSION_TTL_S)

    def _open_here(self, role: Role) -> tuple[str, Session]:
        self._drop_expired()
        sid, session = self._session_of(role)
        self._keep(_digest(sid), session)
        return sid, session

    def _keep(self, key: bytes, session: Session) -> None:
        self._sessions[key] = session
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)

    async def session(self, sid: str | None) -> Session | None:
        """The live session of a cookie value, or None (from memory; with a database, read once per process)."""
        if not sid:
            return None
        key = _digest(sid)
        found = self._sessions.get(key)
        if found is None and self._db is not None:
            async with self._db.read() as conn:
                row = (await conn.execute(select(S.c.role, S.c.expires_at).where(
                    S.c.digest == key.hex(), S.c.kind == "session"))).first()
            if row is not None:
                found = Session(role=Role(row.role), csrf=_csrf(sid), expires=row.expires_at)
                self._keep(key, found)
        if found is not None and found.expires <= self._clock():
            self._sessions.pop(key, None)
            return None
        return found

    async def close(self, sid: str | None) -> bool:
        """End a session (sign-out), on every replica; whether there was one."""
        if not sid:
            return False
        key = _digest(sid)
        here = self._sessions.pop(key, None) is not None
        if self._db is None:
            return here
        async with self._db.transaction() as tx:
            gone = (await tx.conn.execute(delete(S).where(S.c.digest == key.hex(), S.c.kind == "session")
                                          .returning(S.c.digest))).first()
            tx.changed("signins", key.hex())
        return gone is not None or here

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


async def page_role(sign_in: SignIn, headers: Iterable[tuple[bytes, bytes]], write: bool) -> Role | None:
    """The role of a request signed in by the session cookie, or None without a live session. A write
    (any method but GET, HEAD, OPTIONS) must also carry the session's CSRF token: 403 `forbidden` without."""
    session = await sign_in.session(cookie_value(headers))
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
