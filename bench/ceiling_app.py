"""The ceiling: a bare Litestar JSON GET/POST handler, served with the same uvicorn settings as neira."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, get, post


@get("/status", sync_to_thread=False)
def status() -> dict[str, Any]:
    """A small JSON document, about the size of an organ status."""
    return {"id": "organ-1", "state": "stable", "cells": [{"id": "analysis.a.v1", "state": "stable"}], "metrics": {"attempts": 1}}


@post("/echo", status_code=200, sync_to_thread=False)
def echo(data: dict[str, Any]) -> dict[str, Any]:
    """Decode a JSON body and answer with it: the least a POST route can do."""
    return {"ok": True, "received": data}


app = Litestar([status, echo], debug=False)
