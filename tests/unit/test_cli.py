"""The `neira` command's client side: which server `say` / `chat` talk to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from api.cli import DEFAULT_URL, build_parser, client_url
from neira.data_dir import write_server_info


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("NEIRA_URL", raising=False)
    write_server_info(tmp_path, "http://127.0.0.1:9000")  # as a server of this process would
    return tmp_path


def url_for(argv: list[str]) -> str:
    return client_url(build_parser().parse_args(["say", *argv, "статус"]))


def test_flag_then_env_then_server_file_then_default(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEIRA_URL", "http://env:1")
    assert url_for(["--url", "http://flag:1", "--data-dir", str(data_dir)]) == "http://flag:1"
    assert url_for(["--data-dir", str(data_dir)]) == "http://env:1"
    monkeypatch.delenv("NEIRA_URL")
    assert url_for(["--data-dir", str(data_dir)]) == "http://127.0.0.1:9000"
    assert url_for(["--data-dir", str(data_dir / "elsewhere")]) == DEFAULT_URL


def test_the_file_of_a_dead_server_is_ignored(data_dir: Path) -> None:
    info = (data_dir / "server.json").read_text().replace(f'"pid":{os.getpid()}', '"pid":999999999')
    (data_dir / "server.json").write_text(info)
    assert url_for(["--data-dir", str(data_dir)]) == DEFAULT_URL
