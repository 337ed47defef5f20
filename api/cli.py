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
from neira.errors import NeiraError
from neira.policy import validate_overrides
from neira.logs import configure_logging


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


def chat_url(settings: Settings, token: str, from_env: bool) -> str:
    """The chat page's URL. The token goes in the fragment (never sent to a server), and is printed only when
    neira made or stored it: a token given in NEIRA_ADMIN_TOKEN is already known and stays out of the output."""
    host = "localhost" if settings.host in ("0.0.0.0", "127.0.0.1", "::") else settings.host
    fragment = "#token=<NEIRA_ADMIN_TOKEN>" if from_env else f"#token={token}"
    return f"http://{host}:{settings.port}/{fragment}"


def serve(args: argparse.Namespace) -> int:
    """Start uvicorn with the app on the embedded default (or NEIRA_DATABASE_URL)."""
    import uvicorn

    from api.app import create_app
    from neira.core import Core

    configure_logging()
    try:
        settings = settings_from_env(host=args.host, port=args.port, data_dir=args.data_dir)
        validate_overrides(settings.capabilities)
    except (ValueError, NeiraError) as exc:
        raise SystemExit(f"neira: {exc}") from None
    from_env = bool(settings.admin_token)
    token, created = _admin_token(settings)
    settings = msgspec.structs.replace(settings, admin_token=token)
    app = create_app(Core(settings), tune_gc_on_start=True)
    print(f"neira: chat page at {chat_url(settings, token, from_env)}", flush=True)
    if created:
        print(f"neira: a new admin token was stored in {settings.data_path / 'admin_token'} (mode 0600)", flush=True)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, access_log=False, log_config=None,
        timeout_graceful_shutdown=5, ws_max_size=settings.max_body_bytes, ws_per_message_deflate=False,
    )
    uvicorn.Server(config).run()
    return 0


def _client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=os.environ.get("NEIRA_URL", "http://127.0.0.1:8000"), help="server URL (env NEIRA_URL)")
    p.add_argument("--token", default=None, help="bearer token (env NEIRA_TOKEN, else NEIRA_ADMIN_TOKEN, else <data-dir>/admin_token)")
    p.add_argument("--data-dir", default=os.environ.get("NEIRA_DATA_DIR", "./var"), help="where to find admin_token")
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


def talk(args: argparse.Namespace) -> int:
    """`neira chat` / `neira say`: the Command Cell over HTTP."""
    from neira.commands import chat_cli

    token = client_token(args)
    if args.cmd == "say":
        return chat_cli.say(args.url, token, " ".join(args.text), args.session)
    return chat_cli.chat(args.url, token, args.session)


def run_organ(args: argparse.Namespace) -> int:
    """`neira run`: one organ run over HTTP (api/run_cli.py)."""
    from api import run_cli

    return run_cli.run(args, client_token(args))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="neira", description="neira: grow an assistant out of cells and organs.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("serve", help="run the HTTP server (REST, WebSockets, metrics, web pages)")
    p.add_argument("--host", default=None, help="bind address (env NEIRA_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (env NEIRA_PORT, default 8000)")
    p.add_argument("--data-dir", default=None, help="data directory (env NEIRA_DATA_DIR, default ./var)")
    p.set_defaults(func=serve)
    p = sub.add_parser("chat", help="interactive chat with a running server (history with the arrow keys)")
    _client_args(p)
    p.set_defaults(func=talk)
    p = sub.add_parser("say", help="send one command to a running server and print the reply")
    p.add_argument("text", nargs="+", help="the command, e.g. 'создай голосовой орган v1'")
    _client_args(p)
    p.set_defaults(func=talk)
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
