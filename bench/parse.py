"""Parse latency of the Command Cell over the understanding corpus, side by side with hassil in one run.

    .venv/bin/python bench/parse.py [--rounds 100] [--json out.json]

Phrases: tests/commands/corpus.tsv (686 phrases RU+EN as people type them, a held-out quarter), fallback tier
included. Rows:
- neira, whole corpus, steady state (parse memo on: grammar parses per canonical stream, the rest per text);
- neira, a phrase never seen before: both memos off (`memo=False`), and "cold": the word memo cleared too;
  and each phrase's best of 7 calls (memos off), which takes the other helpers' load out of the tail;
- neira and hassil (bench/hassil_grammar.py: the same create/update/build intents and word lists) on the
  phrases of those intents that *both* understand, and the speedup;
- the share each understands on the held-out split (neira: the whole meaning; hassil: the intent, on the
  create/update/build rows it has a grammar for);
- what a catalog change costs: the lexicon rebuilt for the examples plus 500 cells, next to it built whole.
Targets (issue 13): whole corpus p50 ≤ 50 µs, p99 ≤ 500 µs; unseen p50 ≤ 100 µs; ≥ 3× faster than hassil.
Not a timed test: run it by hand; the machine's load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neira.commands import Known, Lexicon, parse  # noqa: E402
from tests.commands.conftest import load_examples  # noqa: E402
from tests.commands.corpus_table import load_rows, summary  # noqa: E402

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


def best_of(fn, texts: list[str], n: int) -> list[float]:
    """Each phrase's fastest of `n` calls: its cost with the other load on this shared machine taken out."""
    out = []
    clock = time.perf_counter
    gc.disable()
    try:
        for text in texts:
            best = 1.0
            for _ in range(n):
                start = clock()
                fn(text)
                best = min(best, clock() - start)
            out.append(best)
    finally:
        gc.enable()
    return out


def summary_row(name: str, samples: list[float], understood: int, total: int) -> dict:
    return {"system": name, "phrases": total, "understood": understood, "share": round(understood / total, 3),
            "p50_us": round(percentile(samples, 0.50) * 1e6, 1), "p99_us": round(percentile(samples, 0.99) * 1e6, 1),
            "mean_us": round(statistics.fmean(samples) * 1e6, 1)}


def lexicon_rebuild(cells: list[dict], organs: list[dict], rounds: int) -> list[dict]:
    """What a catalog change costs the Command Cell: the lexicon built again, as the server does it
    (grammar/lexicon.json's words built once, the catalog's aliases on top), next to its peer in the same run,
    the lexicon built whole (`data` passed: nothing kept); for the examples, and with 500 created cells."""
    data = json.loads((ROOT / "grammar" / "lexicon.json").read_text(encoding="utf-8"))
    out = []
    for extra in (0, 500):
        grown = cells + [{"id": f"analysis.grown{i}.v1", "version": "1.0.0", "analysis_type": f"grown{i}", "links": [],
                          "metadata": {"schema": "v1", "aliases": {"ru": [f"рост{i}"], "en": [f"grown{i}"]}}}
                         for i in range(extra)]
        Lexicon.from_templates(grown, organs)  # the shared words, built once (as at the server's first command)
        kept, whole = [], []
        for _ in range(rounds):  # interleaved, so the machine's load falls on both alike
            t = time.perf_counter()
            Lexicon.from_templates(grown, organs)
            kept.append(time.perf_counter() - t)
            t = time.perf_counter()
            Lexicon.from_templates(grown, organs, data=data)
            whole.append(time.perf_counter() - t)
        row = summary_row(f"lexicon rebuilt after a catalog change (+{extra} cells)", kept, rounds, rounds)
        peer = summary_row(f"lexicon built whole (+{extra} cells; the peer)", whole, rounds, rounds)
        row["whole_over_rebuild_p50"] = round(peer["p50_us"] / row["p50_us"], 1)
        out += [row, peer]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    cells, organs = load_examples()
    lexicon = Lexicon.from_templates(cells, organs)
    known = Known(cells, organs, lexicon)
    rows = load_rows()
    texts = [r.text for r in rows]
    exact = {r.text: summary(r.text, lexicon, known) == r.expect for r in rows}
    results = []

    def neira(text):
        return parse(text, lexicon)

    def unseen(text):
        return parse(text, lexicon, memo=False)

    def cold(text):
        lexicon.word_memo.clear()
        return parse(text, lexicon, memo=False)

    n_ok = sum(exact.values())
    results.append(summary_row("neira, whole corpus (memo on)", time_calls(neira, texts, args.rounds), n_ok, len(rows)))
    results.append(summary_row("neira, unseen phrase (memos off)", time_calls(unseen, texts, max(args.rounds // 4, 5)),
                               n_ok, len(rows)))
    results.append(summary_row("neira, unseen phrase, cold words", time_calls(cold, texts, max(args.rounds // 10, 3)),
                               n_ok, len(rows)))
    results.append(summary_row("neira, unseen phrase, best of 7 per phrase", best_of(unseen, texts, 7), n_ok, len(rows)))
    held = [r for r in rows if r.split == "held"]
    held_ok = sum(exact[r.text] for r in held)
    results.append({"system": "neira, held-out split", "phrases": len(held), "understood": held_ok,
                    "share": round(held_ok / len(held), 3)})

    try:
        from bench.hassil_grammar import build_intents, recognize
        intents, skip = build_intents(json.loads((ROOT / "grammar" / "lexicon.json").read_text()), cells, organs)
    except ImportError:
        print("hassil is not installed: pip install hassil (pyproject extra `bench`)", file=sys.stderr)
        intents = None
    if intents is not None:
        def hassil(text):
            return recognize(text, intents, skip)

        h_intent = {r.text: (hassil(r.text) or ("",))[0] for r in rows}
        sub_held = [r for r in held if r.expect.get("intent") in SUBSET]
        h_held = sum(h_intent[r.text] == r.expect["intent"] for r in sub_held)
        n_sub_held = sum(exact[r.text] for r in sub_held)
        results.append({"system": "hassil, held-out split (create/update/build rows)", "phrases": len(sub_held),
                        "understood": h_held, "share": round(h_held / len(sub_held), 3)})
        results.append({"system": "neira, held-out split (create/update/build rows)", "phrases": len(sub_held),
                        "understood": n_sub_held, "share": round(n_sub_held / len(sub_held), 3)})
        both = [r.text for r in rows if r.expect.get("intent") in SUBSET and exact[r.text]
                and h_intent[r.text] == r.expect["intent"]]
        n_both = summary_row("neira (phrases both understand)", time_calls(neira, both, args.rounds), len(both), len(both))
        h_both = summary_row("hassil (phrases both understand)", time_calls(hassil, both, max(args.rounds // 10, 3)),
                             len(both), len(both))
        h_both["neira_speedup_p50"] = round(h_both["p50_us"] / n_both["p50_us"], 1)
        n_cold = summary_row("neira unseen (phrases both understand)", time_calls(unseen, both, max(args.rounds // 4, 5)),
                             len(both), len(both))
        h_both["neira_unseen_speedup_p50"] = round(h_both["p50_us"] / n_cold["p50_us"], 1)
        results += [n_both, n_cold, h_both]

    results += lexicon_rebuild(cells, organs, max(args.rounds // 10, 5))

    width = max(len(r["system"]) for r in results)
    print(f"load average {os.getloadavg()[0]:.1f} (2 cores)")
    print(f"{'system':<{width}}  phrases  understood  p50 µs  p99 µs  mean µs")
    for r in results:
        timing = f"  {r['p50_us']:>6}  {r['p99_us']:>6}  {r['mean_us']:>7}" if "p50_us" in r else ""
        extra = (f"   neira is {r['neira_speedup_p50']}× faster (p50; {r['neira_unseen_speedup_p50']}× unseen)"
                 if "neira_speedup_p50" in r else
                 f"   the whole build takes {r['whole_over_rebuild_p50']}× as long (p50)" if "whole_over_rebuild_p50" in r else "")
        print(f"{r['system']:<{width}}  {r['phrases']:>7}  {r['share']:>9.1%}{timing}{extra}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
