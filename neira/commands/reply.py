"""What the Command Cell says back, in the user's language (ru or en). Plain text, short, concrete."""

from __future__ import annotations

from typing import Any

from neira.commands.answer import Violation
from neira.commands.model import ParseFailure
from neira.lifecycle import CellState, OrganState

STATES = frozenset({*(s.value for s in CellState), *(s.value for s in OrganState)})

_T: dict[str, dict[str, str]] = {
    "ru": {
        "help": ("Я понимаю команды вроде: «создай голосовой орган v1», «обнови зрение до v2 (grayscale)», "
                 "«собери speak-pipeline normalize→phonemes→adapter», «создай клетку анализа summarize v1», "
                 "«одобри organ-1», «отключи клетку …», «откати …», «статус organ-1», «покажи органы», "
                 "«отмени сборку organ-2», «пересобери organ-1», «применить», «запусти голосовой орган: привет, мир», "
                 "«скажи голосом „привет“», «обучи клетку summarize», «прими итерацию 3»."),
        "planned": "План готов ({summary}). Скажите «применить», чтобы выполнить его.",
        "planned_denied": "План готов, но политика не разрешает его выполнить: {violations}.",
        "applied": "Готово: {done}.",
        "nothing_to_apply": "Применять нечего: в этой сессии нет плана. Сначала попросите что-нибудь создать.",
        "already_applied": "Этот план уже применён.",
        "stale": "План устарел: {reason}.",
        "refused": "Нельзя: {violations}.",
        "invalid_transition": "Так нельзя: {target} сейчас в состоянии {from_state}, переход в {to_state} не предусмотрен.",
        "missing": "Не нашёл: {reason}.",
        "no_organ": "Органа {organ} нет. Соберите его сначала: «создай орган {organ}».",
        "no_organ_id": "Органа {organ} нет. Скажите «покажи органы», чтобы увидеть все.",
        "no_record": "Записи клетки {record} нет.",
        "no_cell_record": "У клетки {cell} ещё нет записи. Создайте её: «создай клетку {cell}».",
        "organ_failed": "{organ} провален, запустить его нельзя. Скажите «пересобери {organ}».",
        "not_stable_yet": "{organ} ещё не стабилен: его последняя сборка {newest} сейчас в состоянии {state}. "
                          "Её можно запустить по номеру: «запусти {newest}: …».",
        "no_live_build": "У {organ} нет ни одной живой сборки: все провалены. Скажите «пересобери {organ}».",
        "missing_target": "Для «{target}» нет ни одной живой записи или органа.",
        "status": "{target}: {state}.",
        "status_all": "Органов: {organs}, записей клеток: {records}, безопасный режим: {safe}.",
        "list_organs": "Органы: {items}.",
        "list_cells": "Клетки: {items}.",
        "empty_list": "Пока ничего нет.",
        "service_error": "Не получилось: {reason}",
        "unknown_command": "Не понимаю эту команду. Попробуйте, например: «{example}». Скажите «помощь», чтобы увидеть все.",
        "unrecognized_word": "Не знаю слова «{word}».",
        "did_you_mean": " Возможно, вы имели в виду: «{corrected}»?",
        "ambiguous": "«{word}» может означать разное: {candidates}. Уточните, пожалуйста.",
        "ambiguous_reading": "Не уверен, как понять: {candidates}? Скажите точнее, пожалуйста.",
        "understood_as": "Понял так: {reading}. ",
        "incomplete": "Команда не закончена.",
        "unexpected_word": "Слово «{word}» здесь не к месту.",
        "empty": "Напишите команду, например: «{example}».",
        "not_found": "Не нашёл «{word}» в каталоге.",
        "version_exists": "{word} уже есть; для изменений нужна новая версия, например {candidates}.",
        "expected": " Здесь подошло бы: {expected}.",
        "options": " Есть: {candidates}.",
        "ran_text": "{organ}: {text}",
        "ran_audio": "{organ} говорит: {seconds} с речи.",
        "ran_image": "{organ}: изображение {width}×{height}.",
        "ran_json": "{organ}: {data}",
        "ran_failed": "{organ} не справился: клетка {cell}, {code}: {reason}",
        "run_needs_input": "Что подать на вход? Например: «запусти голосовой орган: привет, мир».",
        "train_needs_cell": "Какую клетку обучить? Например: «обучи клетку summarize».",
        "trained": "{record}: итерация {iteration}, прошло {passed} из {total} примеров ({score}), p99 {p99} мс. Скажите «прими итерацию {iteration}» или «отклони итерацию {iteration}».",
        "trained_failing": "Не прошли примеры: {samples}.",
        "review_needs_cell": "Какой клетки итерация {iteration}? Например: «прими итерацию {iteration} клетки summarize».",
        "reviewed": "{record}: итерация {iteration} {verdict}.",
        "reviewed_converged": "{record}: итерация {iteration} {verdict}. Обучение сошлось.",
        "verdict_accept": "принята", "verdict_reject": "отклонена",
        "train_organ": "Обучаются клетки, а {organ} — орган. Назовите клетку, например: «обучи клетку summarize».",
        "train_not_runnable": "{record} сейчас нельзя обучить: запись не запускается или у её шаблона нет примеров (metadata.samples).",
        "no_iteration": "У {record} нет итерации обучения {iteration}.",
        "example": "создай голосовой орган v1",
        "yes": "да", "no": "нет",
    },
    "en": {
        "help": ("I understand commands such as: 'create voice organ v1', 'update vision to v2 (grayscale)', "
                 "'build speak-pipeline normalize -> phonemes -> adapter', 'create analysis cell summarize v1', "
                 "'approve organ-1', 'disable cell …', 'rollback …', 'status of organ-1', 'list organs', "
                 "'cancel build organ-2', 'rebuild organ-1', 'apply', 'run the reverse organ on hello world', "
                 "'say \"hello\"', 'train the summarize cell', 'accept iteration 3'."),
        "planned": "Plan ready ({summary}). Say 'apply' to carry it out.",
        "planned_denied": "Plan ready, but policy does not allow it: {violations}.",
        "applied": "Done: {done}.",
        "nothing_to_apply": "Nothing to apply: this session has no plan yet. Ask me to create something first.",
        "already_applied": "That plan was already applied.",
        "stale": "The plan is stale: {reason}.",
        "refused": "Not allowed: {violations}.",
        "invalid_transition": "That move is not possible: {target} is {from_state}, and {to_state} is not a legal next state.",
        "missing": "Not found: {reason}.",
        "no_organ": "There is no organ {organ}. Build it first: 'create organ {organ}'.",
        "no_organ_id": "There is no organ {organ}. Say 'list organs' to see them all.",
        "no_record": "There is no cell record {record}.",
        "no_cell_record": "Cell {cell} has no record yet. Create one: 'create cell {cell}'.",
        "organ_failed": "{organ} has failed and cannot run. Say 'rebuild {organ}'.",
        "not_stable_yet": "{organ} is not stable yet: its newest build {newest} is {state}. "
                          "That build runs when you name it: 'run {newest} on …'.",
        "no_live_build": "{organ} has no live build: every one failed. Say 'rebuild {organ}'.",
        "missing_target": "Not found: {reason}.",
        "status": "{target}: {state}.",
        "status_all": "Organs: {organs}, cell records: {records}, safe mode: {safe}.",
        "list_organs": "Organs: {items}.",
        "list_cells": "Cells: {items}.",
        "empty_list": "Nothing yet.",
        "service_error": "That did not work: {reason}",
        "ran_text": "{organ}: {text}",
        "ran_audio": "{organ} says it: {seconds} s of speech.",
        "ran_image": "{organ}: an image of {width}×{height}.",
        "ran_json": "{organ}: {data}",
        "ran_failed": "{organ} failed: cell {cell}, {code}: {reason}",
        "run_needs_input": "What should it run on? For example: 'run the reverse organ on hello world'.",
        "train_needs_cell": "Which cell should I train? For example: 'train the summarize cell'.",
        "trained": "{record}: iteration {iteration}, {passed} of {total} samples passed ({score}), p99 {p99} ms. Say 'accept iteration {iteration}' or 'reject iteration {iteration}'.",
        "trained_failing": "Failing samples: {samples}.",
        "review_needs_cell": "Iteration {iteration} of which cell? For example: 'accept iteration {iteration} of the summarize cell'.",
        "reviewed": "{record}: iteration {iteration} {verdict}.",
        "reviewed_converged": "{record}: iteration {iteration} {verdict}. Training has converged.",
        "verdict_accept": "accepted", "verdict_reject": "rejected",
        "train_organ": "Training is for cells, and {organ} is an organ. Name a cell, e.g. 'train the summarize cell'.",
        "train_not_runnable": "{record} cannot be trained now: the record cannot run, or its template has no samples (metadata.samples).",
        "no_iteration": "{record} has no training iteration {iteration}.",
        "unknown_command": "I don't understand that command. Try, for example: '{example}'. Say 'help' to see them all.",
        "unrecognized_word": "I don't know the word '{word}'.",
        "did_you_mean": " Did you mean: '{corrected}'?",
        "ambiguous": "'{word}' could mean several things: {candidates}. Please say which.",
        "ambiguous_reading": "I'm not sure which you mean: {candidates}? Please say it more exactly.",
        "understood_as": "I understood: {reading}. ",
        "incomplete": "The command is not finished.",
        "unexpected_word": "The word '{word}' does not fit here.",
        "empty": "Type a command, for example: '{example}'.",
        "not_found": "I could not find '{word}' in the catalog.",
        "version_exists": "{word} exists already; changes need a new version, e.g. {candidates}.",
        "expected": " Expected here: {expected}.",
        "options": " Known: {candidates}.",
        "example": "create voice organ v1",
        "yes": "yes", "no": "no",
    },
}


def say(lang: str, key: str, **values: Any) -> str:
    """One message in `lang` (en when the language is unknown)."""
    table = _T.get(lang, _T["en"])
    return table[key].format(example=table["example"], **values)


def failure_reply(f: ParseFailure) -> str:
    """A not-understood reply: what went wrong, where it could go on, and the suggestion if there is one."""
    if f.code == "ambiguous" and not f.word:  # two readings of the whole phrase (frames.py), said back
        return say(f.lang, "ambiguous_reading", candidates=" / ".join(f"«{c}»" for c in f.candidates))
    text = say(f.lang, f.code, word=f.word or "", candidates=", ".join(f.candidates))
    if f.corrected:
        text += say(f.lang, "did_you_mean", corrected=f.corrected)
    if f.code == "not_found" and f.candidates:
        text += say(f.lang, "options", candidates=", ".join(f.candidates))
    if f.expected and f.code in ("incomplete", "unexpected_word", "unrecognized_word"):
        text += say(f.lang, "expected", expected=", ".join(f.expected))
    return text


def failure_body(f: ParseFailure) -> dict[str, Any]:
    """The contract's `error` object: {code, position?, expected?, suggestions?} (+ candidates, word)."""
    out: dict[str, Any] = {"code": f.code}
    if f.position is not None:
        out["position"] = f.position
    if f.word:
        out["word"] = f.word
    if f.expected:
        out["expected"] = list(f.expected)
    if f.suggestions:
        out["suggestions"] = list(f.suggestions)
    if f.candidates:
        out["candidates"] = list(f.candidates)
    if f.corrected:
        out["corrected"] = f.corrected
    return out


_RULES = {
    "ru": {"role": "роль «{role}» может только читать", "admin": "это может только администратор",
           "safe_mode": "включён безопасный режим: менять может только администратор",
           "capability": "возможность {capability} закрыта ({state})"},
    "en": {"role": "the {role} role may only read", "admin": "only the admin may do this",
           "safe_mode": "safe mode is on: only the admin may change things",
           "capability": "capability {capability} is {state}"},
}


def violations_text(lang: str, violations: list[Violation]) -> str:
    """The policy's refusals in `lang` (the decisions' own reasons are kept in the JSON)."""
    words = _RULES.get(lang, _RULES["en"])
    out = []
    for v in violations:
        rule, reason = v.rule, v.reason
        if rule.startswith("capability.") and v.capability:
            out.append(words["capability"].format(capability=v.capability, state=reason.rsplit(" ", 1)[-1]))
        elif rule == "role":
            out.append(words["admin"] if "admin" in reason else words["role"].format(role=reason.split()[1]))
        elif rule == "safe_mode":
            out.append(words["safe_mode"])
        else:
            out.append(reason)
    return "; ".join(out)


def error_reply(lang: str, exc: Any) -> str:
    """A service error as a reply in `lang`: lifecycle refusals and stale plans are worded here."""
    body = exc.body()
    if exc.code == "invalid_transition":
        return say(lang, "invalid_transition", target=body.get("target", ""), from_state=body["from"], to_state=body["to"])
    if exc.code == "plan_stale":
        return say(lang, "stale", reason=exc.reason)
    if exc.code == "not_found":
        if "organ" in body:
            return say(lang, "no_organ_id" if body["organ"].startswith("organ-") else "no_organ", organ=body["organ"])
        if "record" in body:
            return say(lang, "no_record", record=body["record"])
        if "cell" in body:
            return say(lang, "no_cell_record", cell=body["cell"])
        return say(lang, "missing_target" if "target" in body else "missing", reason=exc.reason, target=body.get("target"))
    if exc.code == "not_runnable" and "organ" in body and "cell" not in body:
        if body.get("state") == "failed":
            return say(lang, "organ_failed", organ=body["organ"])
        if "newest" in body:  # a run by name found no stable organ
            if body["newest"] is None:
                return say(lang, "no_live_build", organ=body["organ"])
            return say(lang, "not_stable_yet", organ=body["organ"], newest=body["newest"], state=body["newest_state"])
    return say(lang, "service_error", reason=exc.reason)


_KINDS = {"ru": {"cell": "клетка", "organ": "орган", "template": "шаблон"}}
_NOTHING = {"ru": "ничего не изменилось", "en": "nothing changed"}


def done_text(lang: str, applied: list[dict[str, Any]]) -> str:
    """What an apply did, one item per change: `cell cell-3 (analysis.x.v1)`, a move with its new state
    (`cell cell-5 (analysis.x.v1): disabled`), in `lang`."""
    items = []
    for a in applied:
        if a["action"] in ("reuse", "no-op"):
            continue
        ident = a.get("organ_id") or a.get("record_id")
        kind = _KINDS.get(lang, {}).get(a["kind"], a["kind"])
        label = f"{kind} {ident} ({a['id']})" if ident and ident != a["id"] else f"{kind} {a['id']}"
        moved = a["action"] == "update" and a.get("before") in STATES and a.get("after") in STATES
        items.append(f"{label}: {a['after']}" if moved else label)
    return ", ".join(items) or _NOTHING.get(lang, _NOTHING["en"])
