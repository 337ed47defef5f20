"""Caller latency of runs by name with shadow traffic on against off (contract §7, issue 12's benchmark).

Two `neira serve` processes set up alike: the reverse organ v1 stable and a v2 of the same family in canary
(both set by hand, with stage delays long enough that nothing moves by itself, and the analysis' sample rounds
off, so that only shadow traffic differs). One shadows at the default share (`NEIRA_CANARY_SHARE` 0.2, "on"),
the other not at all (0, "off"). `POST /organs/run {"organ": "reverse"}` at 16 connections (wrk, 1 thread),
in interleaved rounds (on/off, then off/on, ...), so that the machine's drift falls on both alike. The figure
is the p99 ratio on/off (target ≤ 1.1), per round and over the rounds' medians; the "on" server's
`canary_shadow_runs_total` shows that the shadows ran (or were dropped while the pool was busy).
Usage: `python bench/shadow.py [--duration 3] [--rounds 6]`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import ROOT, save
from api_load import TOKEN, free_port, wait_ready, wrk

H = {"Authorization": f"Bearer {TOKEN}"}
V2 = {"id": "organ.reverse.v2", "version": "2.0.0", "roles": ["reverse"], "cells": ["analysis.reverse.v1", "action.echo.v1"],
      "pathways": [{"name": "main", "cells": ["analysis.reverse.v1", "action.echo.v1"]}],
      "policies": {"stage": "draft", "hitl": True}, "metadata": {"schema": "v1"}}
BODY = json.dumps({"organ": "reverse", "input": "hello world, this is a run"})


def start(data_dir: Path, share: str) -> tuple[subprocess.Popen, str]:
    """A server shadowing at `share`; nothing advances by itself and no sample rounds run."""
    port = free_port()
    env = {**os.environ, "NEIRA_ADMIN_TOKEN": TOKEN, "NEIRA_CANARY_SHARE": share, "NEIRA_ANALYSIS_INTERVAL_MS": "0",
           "ORGANS_BUILDER_STAGE_DELAYS": "3600000,3600000,3600000"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "neira"), "serve", "--port", str(port), "--data-dir", str(data_dir)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/healthz")
    return proc, url


def prepare(url: str) -> tuple[str, str]:
    """v1 stable and v2 in canary, by hand; a few warm runs by name."""
    ids = []
    for template, state in (("organ.reverse.v1", "stable"), (V2, "canary")):
        organ = httpx.post(f"{url}/organs/build", json={"organ_template": template}, headers=H).json()["organ_id"]
        r = httpx.post(f"{url}/organs/{organ}/status", json={"state": state}, headers=H)
        assert r.status_code == 200, r.text
        ids.append(organ)
    for _ in range(50):
        r = httpx.post(f"{url}/organs/run", content=BODY, headers={**H, "Content-Type": "application/json"})
        assert r.status_code == 200 and r.json()["organ_id"] == ids[0], r.text
    return ids[0], ids[1]


def shadow_counts(url: str) -> dict[str, float]:
    """`canary_shadow_runs_total` by outcome."""
    text = httpx.get(f"{url}/metrics").text
    return {m.group(1): float(m.group(2)) for m in re.finditer(r'^canary_shadow_runs_total\{outcome="(\w+)"\} (\S+)$', text, re.MULTILINE)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=6, help="on/off pairs")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (Debian package `wrk`)")
    with tempfile.TemporaryDirectory() as tmp:
        servers = {mode: start(Path(tmp) / mode, share) for mode, share in (("on", "0.2"), ("off", "0"))}
        try:
            canary = {mode: prepare(url)[1] for mode, (_, url) in servers.items()}
            rounds: list[dict[str, dict[str, float]]] = []
            for i in range(args.rounds):
                order = ("on", "off") if i % 2 == 0 else ("off", "on")
                rounds.append({mode: wrk(f"{servers[mode][1]}/organs/run", "POST", BODY, args.connections, args.duration)
                               for mode in order})
            counts = shadow_counts(servers["on"][1])
            measured = httpx.get(f"{servers['on'][1]}/organs/{canary['on']}/analysis", headers=H).json()
            off_counts = shadow_counts(servers["off"][1])
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(15)
    med = {mode: {k: statistics.median(r[mode][k] for r in rounds) for k in ("rps", "p50_ms", "p99_ms")} for mode in ("on", "off")}
    ratios = [r["on"]["p99_ms"] / r["off"]["p99_ms"] for r in rounds]
    result = {
        "connections": args.connections, "duration_s": args.duration, "rounds": rounds, "median": med,
        "p99_ratio_of_medians": round(med["on"]["p99_ms"] / med["off"]["p99_ms"], 3),
        "p99_ratio_per_round": [round(x, 3) for x in ratios], "p99_ratio_median": round(statistics.median(ratios), 3),
        "shadow_runs_on": counts, "shadow_runs_off": off_counts,
        "canary_analysis_on": {k: measured.get(k) for k in ("runs", "errors", "divergence", "p99_ms", "verdict")},
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))
    print("wrote", save("shadow", result))


if __name__ == "__main__":
    main()
