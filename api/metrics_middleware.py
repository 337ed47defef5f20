"""HTTP request metrics: a plain ASGI middleware that counts into dicts, and a Prometheus collector that turns
the counts into metric families when `/metrics` is scraped.

Litestar's Prometheus middleware builds a Request, label dicts and four locked prometheus_client children per
request: about 35 µs of a 120 µs status request (bench/asgi_cpu.py). Here a request costs one dict lookup, a
bisect and a few integer additions on the event loop's thread; the names and labels are the same
(`<prefix>_requests_total`, `_request_duration_seconds`, `_requests_in_progress`, `_requests_error_total`;
labels method, path (the route's template), status_code, app_name)."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from api.errors import STATUS_BY_CODE
from neira.errors import NeiraError
from neira.metrics import cumulative

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)  # prometheus_client's
LABELS = ["method", "path", "status_code", "app_name"]


class _Series:
    """One (method, path, status) series: per-bucket counts (not cumulative), the sum and the count."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.count = 0
        self.total = 0.0


class HttpMetrics(Collector):
    """The counts behind the HTTP metric families. Written only from the event loop's thread."""

    def __init__(self, prefix: str = "neira_http", app_name: str = "neira") -> None:
        self.prefix, self.app_name = prefix, app_name
        self.series: dict[tuple[str, str, int], _Series] = {}
        self.in_progress: dict[tuple[str, str], int] = {}

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        """One finished request."""
        key = (method, path, status)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = _Series()
        series.buckets[bisect_left(BUCKETS, seconds)] += 1
        series.count += 1
        series.total += seconds

    def collect(self) -> Iterator[Any]:
        """The four families, built from a snapshot of the counts."""
        p, app = self.prefix, self.app_name
        requests = CounterMetricFamily(f"{p}_requests", "Total requests.", labels=LABELS)
        errors = CounterMetricFamily(f"{p}_requests_error", "Total requests answered with a 5xx.", labels=LABELS)
        durations = HistogramMetricFamily(f"{p}_request_duration_seconds", "Request duration, in seconds.", labels=LABELS)
        progress = GaugeMetricFamily(f"{p}_requests_in_progress", "Requests in progress.", labels=LABELS)
        for (method, path, status), s in list(self.series.items()):
            labels = [method, path, str(status), app]
            requests.add_metric(labels, s.count)
            if status >= 500:
                errors.add_metric(labels, s.count)
            durations.add_metric(labels, cumulative(BUCKETS, s.buckets), s.total)
        for (method, path), n in list(self.in_progress.items()):
            progress.add_metric([method, path, "200", app], n)
        yield from (requests, durations, progress, errors)


def _status_of(exc: BaseException) -> int:
    """The status an exception raised under this middleware will be answered with (api/errors.py)."""
    if isinstance(exc, NeiraError):
        return STATUS_BY_CODE.get(exc.code, 500)
    if isinstance(exc, HTTPException):
        return exc.status_code
    return 500


class HttpMetricsMiddleware:
    """Counts every HTTP request of a route except `/metrics` itself, by the route's path template."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope.get("path_template") or scope["path"]
        status = 200
        start = time.perf_counter()

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        key = (method, path)
        progress = self.metrics.in_progress
        progress[key] = progress.get(key, 0) + 1
        try:
            await self.app(scope, receive, send_and_note)
        except BaseException as exc:
            status = _status_of(exc)  # answered by the app's exception handler, outside this middleware
            raise
        finally:
            progress[key] -= 1
            self.metrics.observe(method, path, status, time.perf_counter() - start)
