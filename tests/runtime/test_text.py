"""Text implementations against tables of (input, expected), whole values."""

from __future__ import annotations

import pytest

from neira.runtime.builtin.text import SummaryParams, echo, normalize, reverse, summarize
from neira.runtime.payloads import JsonData, Text
from neira.runtime.registry import BadInput, NoParams

P = NoParams()


@pytest.mark.parametrize(("given", "expected"), [
    ("Привет,   МИР", "привет, мир"),
    ("  Ёлка\tи\nЁж  ", "елка и еж"),
    ("HELLO World", "hello world"),
    ("ﬁne ２０２４", "fine 2024"),  # NFKC: ligature and full-width digits
])
def test_normalize(given: str, expected: str) -> None:
    assert normalize(Text(text=given), P) == Text(text=expected)


@pytest.mark.parametrize(("given", "expected"), [
    ("hello world", "dlrow olleh"),
    ("привет", "тевирп"),
    ("e\u0301a", "ae\u0301"),  # a combining accent stays on its letter
    ("a", "a"),
])
def test_reverse(given: str, expected: str) -> None:
    assert reverse(Text(text=given), P) == Text(text=expected)


@pytest.mark.parametrize("payload", [Text(text="hi"), JsonData(data={"a": [1, 2]})])
def test_echo_returns_its_input(payload: object) -> None:
    assert echo(payload, P) is payload  # type: ignore[arg-type]


ARTICLE = (
    "Cats sleep a lot during the day. The weather was sunny on Monday. "
    "Cats hunt at night, and cats see well in the dark. Bread is made from flour. "
    "Many owners say cats choose when to sleep and when to hunt."
)


@pytest.mark.parametrize(("text", "n", "expected"), [
    (ARTICLE, 2, "Cats sleep a lot during the day. Cats hunt at night, and cats see well in the dark."),
    (ARTICLE, 1, "Cats hunt at night, and cats see well in the dark."),
    ("One sentence only.", 2, "One sentence only."),
    ("Кошки спят днём. Погода была хорошей. Кошки охотятся ночью, кошки видят в темноте.", 1,
     "Кошки охотятся ночью, кошки видят в темноте."),
])
def test_summarize_keeps_the_most_topical_sentences_in_order(text: str, n: int, expected: str) -> None:
    assert summarize(Text(text=text), SummaryParams(sentences=n)) == Text(text=expected)


def test_summarize_refuses_text_without_words() -> None:
    with pytest.raises(BadInput, match="no words"):
        summarize(Text(text="... 123 !!!"), SummaryParams())
