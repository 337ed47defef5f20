"""The `neira` command: `serve` runs the HTTP server; `chat`, `say` and `run` talk to a running one.

It lives in api/ because it wires the HTTP layer; the core in neira/ never imports api/.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

import msgspec

from neira.config import Settings, settings_from_env
from neira.data_dir import make_private, running_server_url
from neira.errors import NeiraError
from neira.logs import configure_logging, level_from
from neira.policy import validate_overrides

DEFAULT_URL = "http://127.0.0.1:8000"


def _admin_token(settings: Settings) -> tuple[str, bool]:
    """The admin token: from the environment, else stored in <data-dir>/admin_token (0600), else new."""
    if settings.admin_token:
        return settings.admin_token, False
    path = settings.data_path / "admin_token"
    if path.exists():
        token = path.read_text().strip()
        if not token:
            raise SystemExit(f"neira: {path} is empty; delete it to have a new token made, or set NEIRA_ADMIN_TOKEN")
        if path.stat().st_mode & 0o077:
            print(f"neira: warning: {path} is readable by others; chmod 600 it", file=sys.stderr)
        return token, False
    settings.data_path.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token, True


def page_base(settings: Settings) -> str:
    """The pages' address for a person: `localhost` for the loopback and wildcard binds."""
    host = "localhost" if settings.host in ("0.0.0.0", "127.0.0.1", "::") else settings.host
    return f"http://{host}:{settings.port}"


def serve(args: argparse.Namespace) -> int:
    """Start uvicorn with the app on the embedded default (or NEIRA_DATABASE_URL). Once it listens, print a
    one-time sign-in link for the pages (contract §10); the admin token itself is never printed."""
    import uvicorn

    from api.app import create_app
    from api.controllers.signin import login_url
    from api.server import Server, lock_data_dir, make_core, warn_short_tokens
    from api.signin import SignIn

    configure_logging(level_from(os.environ.get("NEIRA_LOG_LEVEL")))
    try:
        settings = settings_from_env(host=args.host, port=args.port, data_dir=args.data_dir)
        validate_overrides(settings.capabilities)
    except (ValueError, NeiraError) as exc:
        raise SystemExit(f"neira: {exc}") from None
    os.umask(0o077)  # every file the server makes is its owner's alone (0600; dirs 0700)
    make_private(settings.data_path)
    lock = lock_data_dir(settings)
    warn_short_tokens(os.environ)
    token, created = _admin_token(settings)
    settings = msgspec.structs.replace(settings, admin_token=token)
    sign_in = SignIn()
    app = create_app(make_core(settings), tune_gc_on_start=True, sign_in=sign_in, start_workers=True)

    async def listening() -> None:
        if created:
            print(f"neira: a new admin token was stored in {settings.data_path / 'admin_token'} (mode 0600)", flush=True)
        url = login_url(page_base(settings), await sign_in.issue_code())
        print(f"neira: listening on {page_base(settings)}; sign in to the pages at {url}", flush=True)
        print("neira: (the link works once, for 10 minutes; `neira login-url` prints a new one)", flush=True)

    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, access_log=False, log_config=None,
        timeout_graceful_shutdown=5, ws_max_size=settings.max_body_bytes, ws_per_message_deflate=False,
    )
    try:
        Server(config, settings.data_path, on_listening=[listening]).run()
    finally:
        if lock is not None:
            lock.release()
    return 0


def _client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=None, help=f"server URL (else env NEIRA_URL, else <data-dir>/server.json, else {DEFAULT_URL})")
    p.add_argument("--token", default=None, help="bearer token (env NEIRA_TOKEN, else NEIRA_ADMIN_TOKEN, else <data-dir>/admin_token)")
    p.add_argument("--data-dir", default=os.environ.get("NEIRA_DATA_DIR", "./var"), help="the server's data dir: its admin_token and server.json")
    p.add_argument("--session", default=None, help="session id (keeps 'apply' working across calls)")


def client_token(args: argparse.Namespace) -> str:
    """The token for chat/say."""
    token = args.token or os.environ.get("NEIRA_TOKEN") or os.environ.get("NEIRA_ADMIN_TOKEN")
    if not token:
        path = Path(args.data_dir) / "admin_token"
        if path.exists():
            token = path.read_text().strip()
    if not token:
        raise SystemExit("neira: no token: pass --token, set NEIRA_TOKEN, or run next to the server's data dir")
    return token


def client_url(args: argparse.Namespace) -> str:
    """The server for chat/say: `--url`, else NEIRA_URL, else the URL the server running on `--data-dir`
    wrote into its server.json, else the default."""
    return args.url or os.environ.get("NEIRA_URL") or running_server_url(Path(args.data_dir)) or DEFAULT_URL


def talk(args: argparse.Namespace) -> int:
    """`neira chat` / `neira say`: the Command Cell over HTTP."""
    from neira.commands import chat_cli

    token, url = client_token(args), client_url(args)
    if args.cmd == "say":
        return chat_cli.say(url, token, " ".join(args.text), args.session)
    return chat_cli.chat(url, token, args.session)


def login_link(args: argparse.Namespace) -> int:
    """`neira login-url`: a new one-time sign-in link from a running server (admin token)."""
    import httpx

    headers = {"Authorization": f"Bearer {client_token(args)}"}
    url = client_url(args)
    try:
        res = httpx.post(f"{url.rstrip('/')}/api/neira/login-codes", headers=headers, timeout=10)
    except httpx.HTTPError:
        raise SystemExit(f"neira: no server answers at {url} (pass --url or set NEIRA_URL)") from None
    if res.status_code != 201:
        try:
            reason = res.json().get("reason") or res.status_code
        except ValueError:
            reason = res.status_code
        raise SystemExit(f"neira: the server refused: {reason}")
    print(res.json()["url"])
    return 0


def run_organ(args: argparse.Namespace) -> int:
    """`neira run`: one organ run over HTTP (api/run_cli.py)."""
    from api import run_cli

    return run_cli.run(args, client_token(args), client_url(args))


def migrate(args: argparse.Namespace) -> int:
    """`neira migrate`: bring the database (the data dir's SQLite, or NEIRA_DATABASE_URL) to the newest schema
    revision and say where it was; `neira serve` does the same at start. A SQLite data dir held by a running
    server is refused (exit 3): migrate before starting it, or let the server do it."""
    import asyncio

    from api.server import lock_data_dir, no_driver
    from neira.storage.db import Database

    try:
        settings = settings_from_env(data_dir=args.data_dir)
    except ValueError as exc:
        raise SystemExit(f"neira: {exc}") from None
    os.umask(0o077)
    make_private(settings.data_path)
    lock = lock_data_dir(settings)

    async def upgrade() -> tuple[str | None, str]:
        try:
            db = Database(settings.db_url)
        except ImportError as exc:
            raise no_driver(exc) from None
        try:
            return await db.create()
        finally:
            await db.close()

    try:
        before, after = asyncio.run(upgrade())
    finally:
        if lock is not None:
            lock.release()
    print(f"schema at revision {after}" + (" (it was already)" if before == after else f" (from {before or 'none'})"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="neira", description="neira: grow an assistant out of cells and organs.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("serve", help="run the HTTP server (REST, WebSockets, metrics, web pages)")
    p.add_argument("--host", default=None, help="bind address (env NEIRA_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (env NEIRA_PORT, default 8000)")
    p.add_argument("--data-dir", default=None, help="data directory (env NEIRA_DATA_DIR, default ./var)")
    p.set_defaults(func=serve)
    p = sub.add_parser("migrate", help="bring the database to the newest schema revision (serve does it at start)")
    p.add_argument("--data-dir", default=None, help="data directory (env NEIRA_DATA_DIR, default ./var)")
    p.set_defaults(func=migrate)
    p = sub.add_parser("chat", help="interactive chat with a running server (history with the arrow keys)")
    _client_args(p)
    p.set_defaults(func=talk)
    p = sub.add_parser("say", help="send one command to a running server and print the reply")
    p.add_argument("text", nargs="+", help="the command, e.g. 'создай голосовой орган v1'")
    _client_args(p)
    p.set_defaults(func=talk)
    p = sub.add_parser("login-url", help="print a new one-time sign-in link for the pages of a running server")
    _client_args(p)
    p.set_defaults(func=login_link)
    from api.run_cli import add_parser

    add_parser(sub, _client_args).set_defaults(func=run_organ)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `neira` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
