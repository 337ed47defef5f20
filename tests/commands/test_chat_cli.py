"""`neira say` / `neira chat` helpers against a stub transport (the HTTP routes have their own tests)."""

from __future__ import annotations

import io
import json

import httpx

from neira.commands import chat_cli


def _stub(monkeypatch, replies):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((request.headers["authorization"], body))
        return httpx.Response(200, json=replies(body))

    real = httpx.Client

    def client(**kw):
        return real(transport=httpx.MockTransport(handler), **kw)

    monkeypatch.setattr(chat_cli.httpx, "Client", client)
    return seen


def test_say_prints_the_reply_and_keeps_a_stable_session(monkeypatch):
    seen = _stub(monkeypatch, lambda b: {"understood": True, "reply": f"ok: {b['text']}"})
    out = io.StringIO()
    assert chat_cli.say("http://x", "tok", "создай голосовой орган v1", None, out) == 0
    assert chat_cli.say("http://x", "tok", "применить", None, out) == 0
    assert out.getvalue() == "ok: создай голосовой орган v1\nok: применить\n"
    assert seen[0][0] == "Bearer tok" and seen[0][1]["session_id"] == seen[1][1]["session_id"]


def test_say_exit_code_when_not_understood(monkeypatch):
    _stub(monkeypatch, lambda b: {"understood": False, "error": {"code": "unknown_command"}, "reply": "?"})
    assert chat_cli.say("http://x", "tok", "свари кофе", "s1", io.StringIO()) == 1


def test_chat_reads_until_exit_with_one_session(monkeypatch):
    seen = _stub(monkeypatch, lambda b: {"understood": True, "reply": b["text"].upper()})
    out = io.StringIO()
    assert chat_cli.chat("http://x", "tok", None, io.StringIO("help\n\napply\nвыход\nignored\n"), out) == 0
    assert [b["text"] for _, b in seen] == ["help", "apply"]
    assert len({b["session_id"] for _, b in seen}) == 1
    assert out.getvalue().splitlines()[1:] == ["HELP", "APPLY"]


def test_chat_yes_accepts_the_suggested_phrase(monkeypatch):
    def reply(b):
        if b["text"] == "создай голосовй орган v1":
            return {"understood": False, "reply": "Возможно, вы имели в виду…?",
                    "error": {"code": "unrecognized_word", "suggestions": ["голосовой"], "corrected": "создай голосовой орган v1"}}
        return {"understood": True, "reply": f"ok: {b['text']}"}

    seen = _stub(monkeypatch, reply)
    out = io.StringIO()
    lines = "создай голосовй орган v1\nда\nда\nstatus\nyes\nвыход\n"
    assert chat_cli.chat("http://x", "tok", None, io.StringIO(lines), out) == 0
    # «да» after the suggestion sends it; «да» after a reply without one is sent as typed; so is "yes" later
    assert [b["text"] for _, b in seen] == ["создай голосовй орган v1", "создай голосовой орган v1", "да", "status", "yes"]
    assert "› создай голосовой орган v1" in out.getvalue()
