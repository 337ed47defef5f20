"""The pages' sign-in routes (contract §10): exchange a one-time code for a session cookie, tell the page its
role and CSRF token, sign out, and mint a new sign-in link with the admin token."""

from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import Parameter
from litestar.response import Redirect

from api.apidoc import doc
from api.controllers.common import NeiraRequest
from api.signin import CODE_TTL_S, COOKIE, CSRF_HEADER, SESSION_TTL_S, SignIn, csrf_matches
from neira.errors import Forbidden, Unauthorized
from neira.structs import Frozen

NO_STORE = {"Cache-Control": "no-store"}


class SessionInfo(Frozen):
    """`GET /api/neira/session`: who the caller is; `csrf` is the page session's token (null for bearer callers)."""

    role: str
    csrf: str | None


class SignedOut(Frozen):
    """`POST /logout`: whether a session was ended (the cookie is cleared either way)."""

    signed_out: bool


class LoginLink(Frozen):
    """`POST /api/neira/login-codes`: a fresh one-time sign-in link and how long it works."""

    url: str
    expires_in: int


def _sign_in(request: NeiraRequest) -> SignIn:
    return request.app.state.sign_in  # type: ignore[no-any-return]


def _cookie(request: NeiraRequest, value: str, max_age: int) -> Cookie:
    """The session cookie: never readable by scripts, never sent by another site, for every path."""
    return Cookie(key=COOKIE, value=value, path="/", httponly=True, samesite="strict", max_age=max_age,
                  secure=request.url.scheme == "https")


def login_url(base: str, code: str) -> str:
    """The sign-in link for `code` on the server at `base` (`http://host:port`)."""
    return f"{base.rstrip('/')}/login?code={code}"


class SignInController(Controller):
    """`/login`, `/logout` and the page session."""

    tags = ["sign-in"]

    @get("/login", opt=doc(errors=(401,), exclude_from_auth=True), status_code=303)
    async def login(self, request: NeiraRequest, code: str = Parameter(default="", max_length=200)) -> Redirect:
        """Exchange a one-time code (valid 10 minutes, used once) for the session cookie and go to the chat
        page, leaving the code out of the address. 401 for an unknown, used or expired code."""
        sign_in = _sign_in(request)
        found = await sign_in.redeem(code)
        if found is None:
            raise Unauthorized("this sign-in link is unknown, used or expired; `neira login-url` prints a new one")
        await sign_in.close(request.cookies.get(COOKIE))  # a session this browser had before is replaced, not kept
        sid, _ = found
        return Redirect("/", status_code=303, headers=NO_STORE, cookies=[_cookie(request, sid, int(SESSION_TTL_S))])

    @post("/logout", opt=doc(errors=(403,), exclude_from_auth=True), status_code=200)
    async def logout(self, request: NeiraRequest) -> Response[SignedOut]:
        """End the page's session and clear its cookie. A live session needs its X-Neira-CSRF header here too,
        so another site cannot sign a page out."""
        sign_in, sid = _sign_in(request), request.cookies.get(COOKIE)
        session = await sign_in.session(sid)
        if session is not None and not csrf_matches(session, request.headers.get(CSRF_HEADER)):
            raise Forbidden("a signed-in page's writes need its X-Neira-CSRF header")
        ended = await sign_in.close(sid)
        return Response(SignedOut(signed_out=ended), headers=NO_STORE, cookies=[_cookie(request, "", 0)])

    @get("/api/neira/session")
    async def session(self, request: NeiraRequest) -> Response[SessionInfo]:
        """The caller's role and, for a signed-in page, the CSRF token its writes send as `X-Neira-CSRF`."""
        session = await _sign_in(request).session(request.cookies.get(COOKIE))
        return Response(SessionInfo(role=request.user, csrf=session.csrf if session else None), headers=NO_STORE)

    @post("/api/neira/login-codes", opt={"admin": True}, status_code=201)
    async def login_code(self, request: NeiraRequest) -> Response[LoginLink]:
        """A new one-time sign-in link for the pages (admin), e.g. for a server started earlier."""
        code = await _sign_in(request).issue_code()
        return Response(LoginLink(url=login_url(str(request.base_url), code), expires_in=int(CODE_TTL_S)),
                        status_code=201, headers=NO_STORE)


CONTROLLERS = [SignInController]
