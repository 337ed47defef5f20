"""create_app(): the Litestar app around a Core. Controllers stay thin; the core does the work."""

from __future__ import annotations

import gc
from pathlib import Path

from litestar import Litestar
from litestar.datastructures import CacheControlHeader, State
from litestar.middleware import DefineMiddleware
from litestar.static_files import create_static_files_router
from prometheus_client import CollectorRegistry

from api.apidoc import document_api
from api.auth import AccessMiddleware, TokenTable
from api.controllers import analysis, cells, commands, factory, immune, organs, runs, signin, templates, training
from api.controllers.common import NeiraRequest, NeiraSocket
from api.controllers.platform import HealthController, PlatformController
from api.errors import EXCEPTION_HANDLERS
from api.headers import add_security_headers
from api.head import HeadAsGet
from api.metrics_middleware import HttpMetrics, HttpMetricsMiddleware
from api.openapi_pages import openapi_config
from api.signin import SignIn
from neira.core import Core

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
CONTROLLERS = [
    HealthController, PlatformController, *cells.CONTROLLERS, *factory.CONTROLLERS, *organs.CONTROLLERS, *commands.CONTROLLERS,
    *signin.CONTROLLERS, *templates.CONTROLLERS, *runs.CONTROLLERS, *training.CONTROLLERS, *analysis.CONTROLLERS,
    *immune.CONTROLLERS,
]


GC_THRESHOLDS = (2000, 50, 10)  # CPython's are (700, 10, 10)


def tune_gc() -> None:
    """For a long-running server (`neira serve` runs this after start-up):

    - move everything alive now out of the cyclic GC's view (`gc.freeze`): full collections then skip the
      imported modules, the OpenAPI schema and the catalog (~90k objects; ~20% of the builder's CPU at 10k
      builds in flight);
    - promote young objects to the oldest generation less often. Every open WebSocket keeps ~150 tracked
      objects, and a full collection over 1,000 of them stalls the loop ~130 ms; with CPython's thresholds one
      ran every ~100 fan-outs, with these none in 200 (bench/ws_fanout.py, docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_app(core: Core, *, tune_gc_on_start: bool = False, sign_in: SignIn | None = None,
               start_workers: bool = False) -> Litestar:
    """The HTTP app for `core`: auth, policy guard, error bodies, metrics, OpenAPI and the web pages.
    `tune_gc_on_start` is for the server process (`neira serve`), not for apps made in tests; `sign_in` holds
    the pages' sign-in codes and sessions (app.state.sign_in; a new one unless given); `start_workers` starts
    the run workers in the background at start-up (the server's first run then finds them warm)."""
    tokens = TokenTable(core.settings)
    sign_in = sign_in or SignIn()
    sign_in.attach(core.db)  # codes and sessions in the database: every replica honours them
    http_metrics = CollectorRegistry()
    counts = HttpMetrics()
    http_metrics.register(counts)
    static = create_static_files_router(
        path="/",
        directories=[WEB_DIR],
        html_mode=True,
        opt={"exclude_from_auth": True, "page": True},
        cache_control=CacheControlHeader(no_cache=True, public=True),
        include_in_schema=False,
    )
    app = Litestar(
        route_handlers=[*CONTROLLERS, static],
        request_class=NeiraRequest,
        websocket_class=NeiraSocket,
        state=State({"core": core, "tokens": tokens, "http_metrics": http_metrics, "sign_in": sign_in}),
        middleware=[
            DefineMiddleware(HttpMetricsMiddleware, metrics=counts),
            DefineMiddleware(AccessMiddleware, tokens=tokens, policy=core.policy, max_body_bytes=core.settings.max_body_bytes,
                             sign_in=sign_in),
        ],
        before_send=[add_security_headers],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=core.settings.max_body_bytes,
        openapi_config=openapi_config(),
        on_startup=[core.start, document_api, *([tune_gc] if tune_gc_on_start else []),
                    *([core.runs.pool.start] if start_workers else [])],
        on_shutdown=[core.stop],
        debug=False,
        logging_config=None,
    )
    app.asgi_handler = HeadAsGet(app.asgi_handler)
    return app

