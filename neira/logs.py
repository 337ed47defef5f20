"""Logging set-up: one format, and a filter that keeps tokens out of every log line."""

from __future__ import annotations

import logging
import re

# the value runs to the next separator, whatever it holds: a wrong token may be URL-encoded (`%2F`) or short
_SECRET = re.compile(r"(?i)(bearer\s+|token=|token[\"']?\s*[:=]\s*[\"']?)[^\s&\"',;]+")


class RedactTokens(logging.Filter):
    """Replaces anything that looks like a bearer token or `token=` value with `***`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET.sub(lambda m: m.group(1) + "***", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """Root logging to stderr, with token redaction on every handler (uvicorn's included)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactTokens())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
