"""`make bench` runs the scripts in bench/: each file must compile, and each script with options must answer
`--help` (a bench that only breaks when someone measures is found a session late)."""

from __future__ import annotations

import os
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
FILES = sorted(BENCH.glob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_bench_file_compiles_and_answers_help(path: Path) -> None:
    py_compile.compile(str(path), cfile=None, doraise=True, optimize=-1)
    if "argparse" not in path.read_text(encoding="utf-8"):
        return  # a module the scripts import (ws_client, hassil_grammar), or a script without options
    done = subprocess.run([sys.executable, str(path), "--help"], cwd=BENCH, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout.lower()


def test_the_fan_out_bench_moves_its_organ_only_by_legal_steps(tmp_path: Path) -> None:
    """The WebSocket fan-out bench drives a real server's lifecycle routes: a few rounds with a few subscribers,
    once round the whole cycle (it broke once when the transition table refused its moves)."""
    env = {**os.environ, "NEIRA_BENCH_RESULTS": str(tmp_path)}
    done = subprocess.run([sys.executable, str(BENCH / "ws_fanout.py"), "--subscribers", "3", "--rounds", "6"],
                          cwd=BENCH, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "3 subscribers x 6 changes" in done.stdout and (tmp_path / "ws_fanout.json").exists()
