"""`neira run ORGAN INPUT [--out FILE]`: run an organ on a running server and write what it answers.

ORGAN is an organ id (`organ-3`) or a name («voice», `organ.voice`, `organ.voice.v1`: that family's stable
organ). INPUT is text, or with `--image` the path of a PNG, JPEG or WebP file. Text and JSON answers are
printed (or written to --out); audio is written as WAV and images as PNG to --out. The trace goes to stderr.
Exit codes: 0 the run went through, 1 it failed or was refused, 2 the server could not be reached."""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
from pathlib import Path
from typing import Any, TextIO

import httpx

ORGAN_ID = re.compile(r"^organ-\d+$")
MEDIA = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"RIFF": "image/webp"}
SUFFIX = {"audio": ".wav", "image": ".png"}


def image_input(path: str) -> dict[str, Any]:
    """An image payload from a file (its type from its first bytes)."""
    data = Path(path).read_bytes()
    media = next((m for magic, m in MEDIA.items() if data.startswith(magic)), None)
    if media is None:
        raise SystemExit(f"neira: {path} is not a PNG, JPEG or WebP file")
    return {"type": "image", "media_type": media, "data_b64": base64.b64encode(data).decode()}


def request(organ: str, payload: Any, pathway: str | None) -> tuple[str, dict[str, Any]]:
    """The route and body for a run of `organ`."""
    body: dict[str, Any] = {"input": payload, **({"pathway": pathway} if pathway else {})}
    if ORGAN_ID.match(organ):
        return f"/organs/{organ}/run", body
    return "/organs/run", {"organ": organ, **body}


def write_output(output: dict[str, Any], out_path: str | None, out: TextIO, err: TextIO) -> int:
    """Text and JSON to `out` (or the file), audio and images to the file; the exit code."""
    kind = output.get("type")
    if kind in SUFFIX:
        if not out_path:
            print(f"neira: the answer is {kind}; give --out FILE{SUFFIX[kind]} to keep it", file=err)
            return 1
        Path(out_path).write_bytes(base64.b64decode(output["data_b64"]))
        extra = f", {output['duration_ms']} ms" if kind == "audio" else f", {output.get('width')}×{output.get('height')}"
        print(f"{kind} written to {out_path}{extra}", file=out)
        return 0
    text = output["text"] if kind in ("text", "phonemes") else json.dumps(output.get("data"), ensure_ascii=False, indent=2)
    if out_path:
        Path(out_path).write_text(text + "\n", encoding="utf-8")
        print(f"{kind} written to {out_path}", file=out)
    else:
        print(text, file=out)
    return 0


def trace_line(body: dict[str, Any]) -> str:
    """`analysis.reverse.v1 0.1 ms → action.echo.v1 0.0 ms (1.2 ms)`."""
    steps = " → ".join(f"{t['cell']} {t['ms']:.1f} ms{'' if t['ok'] else ' ✗'}" for t in body.get("trace", []))
    return f"{steps} ({body.get('ms', 0):.1f} ms)"


def run(args: argparse.Namespace, token: str, url: str, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Send the run to the server at `url` and show its answer."""
    payload = image_input(args.input) if args.image else args.input
    path, body = request(args.organ, payload, args.pathway)
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            r = client.post(path, json=body)
    except httpx.HTTPError as exc:
        print(f"neira: cannot reach {url}: {exc}", file=err)
        return 2
    answer = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code != 200:
        print(f"error {r.status_code}: {answer.get('code')}: {answer.get('reason')}", file=err)
        return 1
    print(trace_line(answer), file=err)
    if not answer.get("ok"):
        e = answer.get("error") or {}
        print(f"run failed: {e.get('code')} in {e.get('cell')}: {e.get('reason')}", file=err)
        return 1
    return write_output(answer["output"], args.out, out, err)


def add_parser(sub: Any, client_args: Any) -> argparse.ArgumentParser:
    """`neira run` on the CLI's subcommands."""
    p = sub.add_parser(
        "run", help="run an organ on text or an image and write its answer",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        epilog="examples: neira run voice 'Привет, мир' --out hello.wav · neira run reverse 'hello world' · "
               "neira run vision photo.jpg --image (prints its features) · "
               "neira run organ-5 photo.jpg --image --out grey.png (an organ whose last cell answers an image)",
    )
    p.add_argument("organ", help="organ id (organ-3) or name (voice, organ.voice, organ.voice.v1)")
    p.add_argument("input", help="the text, or with --image the path of an image file")
    p.add_argument("--image", action="store_true", help="INPUT is an image file (PNG, JPEG or WebP)")
    p.add_argument("--out", default=None, help="write the answer here (needed for audio: .wav, and images: .png)")
    p.add_argument("--pathway", default=None, help="which pathway of the organ (default: its first)")
    client_args(p)
    return p
