"""Logging set-up: one format, no query strings and no tokens in any line, and the per-connection chatter of
uvicorn at DEBUG."""

from __future__ import annotations

import logging
import re

# the value runs to the next separator, whatever it holds: a wrong token may be URL-encoded (`%2F`) or short
_SECRET = re.compile(r"(?i)(bearer\s+|token=|token[\"']?\s*[:=]\s*[\"']?)[^\s&\"',;]+")
# a query string after a path: `?%74oken=…` or `?token%3D…` authenticate or not, but are never logged
_QUERY = re.compile(r"(/[^\s?\"']*)\?[^\s\"']+")
QUERY_MARK = "?[query hidden]"
# uvicorn's line per WebSocket (`"WebSocket /organs/organ-1/stream?…" [accepted]`, `connection open`, `connection
# closed`): thousands an hour with the pages open, and nothing an operator acts on
_CHATTER = re.compile(r'^(connection (open|closed)$|%s - "WebSocket %s" )')


def redact(message: str) -> str:
    """`message` without query strings and without anything that looks like a bearer token or `token=` value."""
    message = _QUERY.sub(lambda m: m.group(1) + QUERY_MARK, message)
    return _SECRET.sub(lambda m: m.group(1) + "***", message)


class RedactTokens(logging.Filter):
    """Rewrites every record through `redact`: query strings hidden, tokens replaced with `***`. Query strings
    are cut whole, not parsed: a parser and this filter could disagree on an encoded name (`%74oken`,
    `token%3D`), but no name survives the cut."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class DemoteChatter(logging.Filter):
    """On uvicorn's logger: its line per WebSocket open and close goes to DEBUG (dropped unless DEBUG is on)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and isinstance(record.msg, str) and _CHATTER.match(record.msg):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def level_from(name: str | None) -> int:
    """`debug` / `INFO` / `warning` … → a logging level; INFO for anything else."""
    level = logging.getLevelName((name or "INFO").strip().upper())
    return level if isinstance(level, int) else logging.INFO


def configure_logging(level: int = logging.INFO) -> None:
    """Root logging to stderr, with redaction on every handler (uvicorn's included)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactTokens())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("aiosqlite").setLevel(max(level, logging.INFO))  # a line per SQL call even at DEBUG
    chatty = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, DemoteChatter) for f in chatty.filters):
        chatty.addFilter(DemoteChatter())
