"""`neira say "<text>"` and `neira chat`: the Command Cell from a terminal, over the HTTP API.

Both keep a session so «применить» / "apply" carries out the plan shown last: `say` uses a stable
per-user session unless --session is given (so two separate `neira say` calls work together), `chat` one
session per run. Exit codes of `say`: 0 understood and done, 1 not understood or refused, 2 transport error.
"""

from __future__ import annotations

import getpass
import secrets
import sys
from typing import Any, TextIO

import httpx

PATH = "/api/neira/commands"
QUIT = {"exit", "quit", "выход", "выйти", ":q"}
YES = {"да", "yes", "y", "д", "ага", "ok", "ок"}


def default_session() -> str:
    """The session `neira say` uses when none is given: one per local user."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = "user"
    return f"cli-{user}"


def send(client: httpx.Client, text: str, session: str) -> tuple[int, dict[str, Any]]:
    """POST one phrase; (HTTP status, JSON body)."""
    r = client.post(PATH, json={"text": text, "session_id": session})
    try:
        return r.status_code, r.json()
    except ValueError:
        return r.status_code, {"code": "internal", "reason": r.text[:200]}


def show(status: int, body: dict[str, Any], out: TextIO) -> int:
    """Print the reply; the exit code for it."""
    if status != 200:  # the server answered and refused (401, 403, 409, ...): like a refusal in a reply
        print(f"error {status}: {body.get('code')}: {body.get('reason')}", file=out)
        return 1
    print(body.get("reply", ""), file=out)
    return 0 if body.get("understood") and "error" not in body else 1


def suggestion(status: int, body: dict[str, Any]) -> str | None:
    """The corrected phrase a not-understood reply offers ("did you mean …?"), if any."""
    error = body.get("error") if status == 200 else None
    corrected = error.get("corrected") if isinstance(error, dict) else None
    return corrected if isinstance(corrected, str) and corrected else None


def accepts(line: str) -> bool:
    """Whether a line says yes to a suggestion («да», "yes", ...)."""
    return line.strip().strip(".!").casefold() in YES


def say(url: str, token: str, text: str, session: str | None = None, out: TextIO = sys.stdout) -> int:
    """Send one command and print the reply."""
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            return show(*send(client, text, session or default_session()), out)
    except httpx.HTTPError as exc:
        print(f"neira: cannot reach {url}: {exc}", file=sys.stderr)
        return 2


def chat(url: str, token: str, session: str | None = None, inp: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    """Read commands line by line until EOF or «выход»/"exit"; history with the arrow keys on a terminal.
    After a "did you mean …?" reply, «да» / "yes" sends the suggested phrase."""
    if inp.isatty():
        try:
            import readline  # noqa: F401 - enables line editing and history for input()
        except ImportError:  # pragma: no cover - Windows without pyreadline
            pass
    session = session or f"chat-{secrets.token_hex(6)}"
    print("neira chat — «помощь» / 'help' for commands, «выход» / 'exit' to leave.", file=out)
    offered: str | None = None
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            while True:
                line = _read(inp, out)
                if line is None or line.strip().lower() in QUIT:
                    return 0
                if not line.strip():
                    continue
                if offered is not None and accepts(line):
                    print(f"› {offered}", file=out)
                    line = offered
                status, body = send(client, line, session)
                show(status, body, out)
                offered = suggestion(status, body)
    except httpx.HTTPError as exc:
        print(f"neira: cannot reach {url}: {exc}", file=sys.stderr)
        return 2


def _read(inp: TextIO, out: TextIO) -> str | None:
    if inp is sys.stdin and inp.isatty():
        try:
            return input("› ")
        except EOFError:
            return None
    line = inp.readline()
    return line.rstrip("\n") if line else None
