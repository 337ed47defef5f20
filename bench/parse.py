"""Parse latency of the Command Cell over the phrase table, side by side with hassil in one run.

    .venv/bin/python bench/parse.py [--rounds 200] [--json out.json]

For every phrase of tests/commands/phrases.tsv: per-call latency of neira's parse() (p50/p99), and on the
create/update/build subset the same for neira and for hassil (bench/hassil_grammar.py, the same intents
and word lists), plus the share of phrases each one understands. Not a timed test: run it by hand.
parse() memoises successful parses per canonical token stream; the "memo off" row runs Lark on every
call, so both the steady state and the grammar's own cost are on record.
Targets (issue 4): neira parse p50 ≤ 50 µs, p99 ≤ 500 µs, ≥ 3× faster than hassil.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neira.commands import Known, Lexicon, ParseFailure, parse, resolve  # noqa: E402
from tests.commands.conftest import load_examples  # noqa: E402
from tests.commands.phrase_table import load_rows  # noqa: E402

SUBSET = {"create_organ", "update_organ", "build_pipeline"}
SEEDS = ["создай голосовой орган v1", "обнови зрение до v2 (grayscale)", "собери speak-pipeline normalize→phonemes→adapter"]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def time_calls(fn, texts: list[str], rounds: int) -> list[float]:
    """Per-call seconds over `rounds` shuffled passes (one warm-up pass first, GC off while timing)."""
    for text in texts:
        fn(text)
    samples: list[float] = []
    order = list(texts)
    rng = random.Random(4)
    clock = time.perf_counter
    gc.disable()
    try:
        for _ in range(rounds):
            rng.shuffle(order)
            for text in order:
                start = clock()
                fn(text)
                samples.append(clock() - start)
    finally:
        gc.enable()
    return samples


def summary(name: str, samples: list[float], understood: int, total: int) -> dict:
    return {"system": name, "phrases": total, "understood": understood, "share": round(understood / total, 3),
            "p50_us": round(percentile(samples, 0.50) * 1e6, 1), "p99_us": round(percentile(samples, 0.99) * 1e6, 1),
            "mean_us": round(statistics.fmean(samples) * 1e6, 1)}


def neira_understands(row, lexicon, known) -> bool:
    command = parse(row.text, lexicon)
    if isinstance(command, ParseFailure):
        return False
    resolved = resolve(command, known)
    return not isinstance(resolved, ParseFailure) and resolved.intent == row.intent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    cells, organs = load_examples()
    lexicon = Lexicon.from_templates(cells, organs)
    known = Known(cells, organs, lexicon)
    rows = [r for r in load_rows() if r.text.strip()]
    subset = [r for r in rows if r.intent in SUBSET]
    results = []

    neira = lambda text: parse(text, lexicon)  # noqa: E731
    all_ok = sum(neira_understands(r, lexicon, known) for r in rows if r.expect.get("understood", True))
    all_total = sum(1 for r in rows if r.expect.get("understood", True))
    results.append(summary("neira (whole table)", time_calls(neira, [r.text for r in rows], args.rounds), all_ok, all_total))
    sub_ok = sum(neira_understands(r, lexicon, known) for r in subset)
    neira_sub = summary("neira (create/update/build)", time_calls(neira, [r.text for r in subset], args.rounds),
                        sub_ok, len(subset))
    results.append(neira_sub)
    cold = lambda text: parse(text, lexicon, memo=False)  # noqa: E731  the grammar runs on every call
    results.append(summary("neira, parse memo off (whole table)", time_calls(cold, [r.text for r in rows], args.rounds),
                           all_ok, all_total))

    try:
        from bench.hassil_grammar import build_intents, recognize
    except ImportError:  # pragma: no cover
        build_intents = None
    if build_intents is not None:
        try:
            intents, skip = build_intents(json.loads((ROOT / "grammar" / "lexicon.json").read_text()), cells, organs)
        except ImportError:
            intents = None
            print("hassil is not installed: pip install hassil (pyproject extra `bench`)", file=sys.stderr)
        if intents is not None:
            hassil = lambda text: recognize(text, intents, skip)  # noqa: E731
            h_ok = sum(1 for r in subset if (hassil(r.text) or ("",))[0] == r.intent)
            h = summary("hassil (create/update/build)", time_calls(hassil, [r.text for r in subset], max(args.rounds // 10, 5)),
                        h_ok, len(subset))
            h["neira_speedup_p50"] = round(h["p50_us"] / neira_sub["p50_us"], 1)
            results.append(h)
            n_seed = summary("neira (3 seed phrases)", time_calls(neira, SEEDS, args.rounds), len(SEEDS), len(SEEDS))
            h_seed = summary("hassil (3 seed phrases)", time_calls(hassil, SEEDS, args.rounds),
                             sum(1 for t in SEEDS if hassil(t) is not None), len(SEEDS))
            h_seed["neira_speedup_p50"] = round(h_seed["p50_us"] / n_seed["p50_us"], 1)
            results += [n_seed, h_seed]

    width = max(len(r["system"]) for r in results)
    print(f"{'system':<{width}}  phrases  understood  p50 µs  p99 µs  mean µs")
    for r in results:
        print(f"{r['system']:<{width}}  {r['phrases']:>7}  {r['share']:>9.1%}  {r['p50_us']:>6}  {r['p99_us']:>6}"
              f"  {r['mean_us']:>7}" + (f"   neira is {r['neira_speedup_p50']}× faster (p50)" if "neira_speedup_p50" in r else ""))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
