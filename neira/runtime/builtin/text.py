"""Text implementations: normalise, reverse, echo, and an offline extractive summariser."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

import msgspec

from neira.runtime.payloads import Payload, Text
from neira.runtime.registry import BadInput, NoParams

_SPACE = re.compile(r"\s+")
_SENTENCE = re.compile(r"(?<=[.!?…])\s+")
_WORD = re.compile(r"[^\W\d_]+(?:[-'][^\W\d_]+)*")
# function words that carry no topic: kept short on purpose (frequency does the rest)
STOP_WORDS = frozenset("""
a an and are as at be but by for from has have he her his i in is it its of on or she that the their them
they this to was were will with you your we our not no so if than then there these those which who what
и в во не что он она оно они на я с со как а то все всё так его её их но да ты к у же вы за бы по только
ее мне было вот от меня еще ещё нет о из ему теперь когда даже ну вдруг ли если уже или ни быть был была
были него до вас нибудь опять уж вам ведь там потом себя ничего ей может тут где есть надо ней для мы тебя
чем сам чтобы без будто чего раз тоже себе под будет ж тогда кто этот того потому этого какой совсем ним
здесь этом один почти мой тем чтоб нее сейчас куда зачем всех никогда можно при наконец два об другой
хоть после над больше тот через эти нас про всего них какая много разве три эту моя впрочем хорошо свою
этой перед иногда лучше чуть том нельзя такой им более всегда конечно всю между это
""".split())


class SummaryParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """`sentences`: how many sentences to keep (1..20)."""

    sentences: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.sentences <= 20:
            raise ValueError("sentences must be between 1 and 20")


def normalize(payload: Text, _: NoParams) -> Text:
    """NFKC, lower case, ё → е, whitespace collapsed to single spaces."""
    folded = unicodedata.normalize("NFKC", payload.text).lower().replace("ё", "е")
    return Text(text=_SPACE.sub(" ", folded).strip())


def reverse(payload: Text, _: NoParams) -> Text:
    """The text backwards, keeping combining marks on their letters (grapheme clusters of one base)."""
    clusters: list[str] = []
    for ch in payload.text:
        if clusters and unicodedata.combining(ch):
            clusters[-1] += ch
        else:
            clusters.append(ch)
    return Text(text="".join(reversed(clusters)))


def echo(payload: Payload, _: NoParams) -> Payload:
    """The input, unchanged."""
    return payload


def words(text: str) -> list[str]:
    """Lower-cased words (letters, with inner hyphens or apostrophes), ё folded into е."""
    return [w.lower().replace("ё", "е") for w in _WORD.findall(text)]


def summarize(payload: Text, params: SummaryParams) -> Text:
    """The `sentences` sentences whose content words are most frequent in the whole text, in their order.

    Extractive and offline (no model): a sentence scores the mean document frequency of its content words,
    so long sentences are not favoured merely for being long. A text no longer than the summary is kept."""
    sentences = [s.strip() for s in _SENTENCE.split(_SPACE.sub(" ", payload.text).strip()) if s.strip()]
    content = [[w for w in words(s) if w not in STOP_WORDS] for s in sentences]
    if not any(content):
        raise BadInput("the text has no words to summarise")
    if len(sentences) <= params.sentences:
        return Text(text=" ".join(sentences))
    freq = Counter(w for ws in content for w in ws)
    top = max(freq.values())
    scores = [sum(freq[w] / top for w in ws) / len(ws) if ws else 0.0 for ws in content]
    keep = sorted(sorted(range(len(sentences)), key=lambda i: (-scores[i], i))[: params.sentences])
    return Text(text=" ".join(sentences[i] for i in keep))
