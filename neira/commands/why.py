"""«почему organ-1 ждёт?» / "why is organ-1 waiting?": what an organ's promotion waits for, said with the evidence
(runs, errors, p99 against the stable version). The same words announce an organ that waits for approval
(`organ.waiting` events, neira/graduation.py). Read only: it changes nothing, so it is answered at once."""

from __future__ import annotations

from typing import Any

_T: dict[str, dict[str, str]] = {
    "ru": {
        "approval": "{id} ждёт одобрения: {evidence}. Скажите «одобри {id}».",
        "held": "{id} придержан ({who}{reason}): ждёт одобрения. {evidence_line}Скажите «одобри {id}», чтобы продолжить.",
        "analysis": "{id} ждёт анализа: {runs} из {min_runs} {runs_word}, {errors} {errors_word}{p99}.",
        "inconclusive": "{id} ждёт: данных для вердикта мало ({reasons}); сам он не продвинется — только одобрение с force и причиной.",
        "delay": "{id} выдерживает минимальное время стадии {state}.",
        "gate": "{id} ждёт: шлюз organs_builder закрыт.",
        "none": "{id} ничего не ждёт: {state}.",
        "paused": "{id} остановлен вручную в {state}; дальше его двигает только человек.",
        "cell": "{id} ({state}): вердикт {verdict}, {evidence}.",
        "p99": "p99 {p99} мс",
        "baseline": " (стабильная {p99} мс)",
    },
    "en": {
        "approval": "{id} waits for approval: {evidence}. Say \"approve {id}\".",
        "held": "{id} is on hold ({who}{reason}): it waits for approval. {evidence_line}Say \"approve {id}\" to go on.",
        "analysis": "{id} waits for its analysis: {runs} of {min_runs} {runs_word}, {errors} {errors_word}{p99}.",
        "inconclusive": "{id} waits: too little data for a verdict ({reasons}); it will not move by itself — only an approval with force and a reason.",
        "delay": "{id} is in its stage's minimum time ({state}).",
        "gate": "{id} waits: the organs_builder gate is closed.",
        "none": "{id} waits for nothing: {state}.",
        "paused": "{id} was moved by hand and stays in {state}; only a person moves it on.",
        "cell": "{id} ({state}): verdict {verdict}, {evidence}.",
        "p99": "p99 {p99} ms",
        "baseline": " (stable {p99} ms)",
    },
}


def _plural_ru(n: int, one: str, few: str, many: str) -> str:
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def _words(lang: str, n: int, what: str) -> str:
    if lang == "ru":
        return _plural_ru(n, "прогон", "прогона", "прогонов") if what == "runs" else _plural_ru(n, "ошибка", "ошибки", "ошибок")
    singular = {"runs": "run", "errors": "error"}[what]
    return singular if n == 1 else singular + "s"


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def evidence(v: dict[str, Any], lang: str) -> str:
    """`20 прогонов, 0 ошибок, p99 12 мс (стабильная 11 мс)` from a verdict summary."""
    t = _T.get(lang, _T["en"])
    base = t["baseline"].format(p99=_ms(v["baseline_p99_ms"])) if v.get("baseline_p99_ms") is not None else ""
    return (f"{v['runs']} {_words(lang, v['runs'], 'runs')}, {v['errors']} {_words(lang, v['errors'], 'errors')}, "
            + t["p99"].format(p99=_ms(v["p99_ms"])) + base)


def waiting_text(organ_id: str, v: dict[str, Any], lang: str) -> str:
    """The announcement of an organ that waits for approval."""
    return _T.get(lang, _T["en"])["approval"].format(id=organ_id, evidence=evidence(v, lang))


def explain(status: dict[str, Any], lang: str) -> str:
    """Why an organ (its status) or a cell record (`{id, state, analysis}`) waits, in `lang`."""
    t = _T.get(lang, _T["en"])
    organ_id, state, v = status["id"], status["state"], status.get("analysis")
    if "waiting_for" not in status:  # a cell record
        if v is None:
            return t["none"].format(id=organ_id, state=state)
        return t["cell"].format(id=organ_id, state=state, verdict=v["verdict"], evidence=evidence(v, lang))
    waiting, hold = status.get("waiting_for"), status.get("hold")
    if hold is not None:
        reason = f": {hold['reason']}" if hold.get("reason") else ""
        line = (evidence(v, lang) + ". ") if v else ""
        return t["held"].format(id=organ_id, who=hold["actor"], reason=reason, evidence_line=line)
    if waiting == "approval" and v is not None:
        return t["approval"].format(id=organ_id, evidence=evidence(v, lang))
    if waiting == "analysis" and v is not None:
        if v["verdict"] == "inconclusive":
            return t["inconclusive"].format(id=organ_id, reasons="; ".join(v["reasons"]))
        p99 = (", " + t["p99"].format(p99=_ms(v["p99_ms"]))) if v["runs"] else ""
        return t["analysis"].format(id=organ_id, runs=v["runs"], min_runs=v["min_runs"], runs_word=_words(lang, v["min_runs"], "runs"),
                                    errors=v["errors"], errors_word=_words(lang, v["errors"], "errors"), p99=p99)
    if waiting in ("delay", "gate"):
        return t[waiting].format(id=organ_id, state=state)
    if not status.get("auto", True) and state in ("draft", "canary", "experimental"):
        return t["paused"].format(id=organ_id, state=state)
    return t["none"].format(id=organ_id, state=state)
