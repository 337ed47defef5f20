"""HTTP request metrics through Litestar's Prometheus middleware, with the label children bound once.

The stock middleware builds a Request, two label dicts and four `labels()` lookups per request; this subclass
keeps the same metric families, names and labels but caches the children per (method, path template, status)."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from litestar.plugins.prometheus import PrometheusMiddleware
from litestar.types import Message, Receive, Scope, Send


class HttpMetricsMiddleware(PrometheusMiddleware):
    """`<prefix>_requests_total`, `_request_duration_seconds`, `_requests_in_progress`, `_requests_error_total`."""

    _children: ClassVar[dict[tuple[Any, ...], Any]] = {}

    def _child(self, kind: str, method: str, path: str, status: int) -> Any:
        key = (self._config.prefix, kind, method, path, status)
        child = self._children.get(key)
        if child is None:
            labels: dict[str, str | int | float] = {"method": method, "path": path, "status_code": status, "app_name": self._config.app_name}
            family = {"progress": self.requests_in_progress, "count": self.request_count,
                      "time": self.request_time, "errors": self.requests_error_count}[kind](labels)
            child = self._children[key] = family.labels(*labels.values())
        return child

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"] if scope["type"] == "http" else scope["type"]
        path = scope.get("path_template", scope["path"]) if self._config.group_path else scope["path"]
        status = 200
        start = time.perf_counter()

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        progress = self._child("progress", method, path, 200)
        progress.inc()
        try:
            await self.app(scope, receive, send_and_note)
        finally:
            progress.dec()
            self._child("count", method, path, status).inc()
            self._child("time", method, path, status).observe(time.perf_counter() - start)
            if status >= 500:
                self._child("errors", method, path, status).inc()
