"""Tokens: compounds split into known parts (ids kept whole), number words and ordinals as versions, «прошлую версию»."""

from __future__ import annotations

import pytest

from neira.commands import ParseFailure, parse, resolve
from neira.commands.tokens import stream


@pytest.mark.parametrize("text, canon", [
    ("создай реверс-орган v1", "!make@реверс#organ v1"),
    ("create a vision-organ v1", "!make@vision#organ v1"),
    ("одобри organ-1", "!approve organ-1"),
    ("собери speak-pipeline normalize→phonemes→adapter", "!make speak#pipeline@normalize>@phonemes>@adapter"),
    ("отключи клетку analysis.summarize.v1", "!disable#cell analysis.summarize.v1"),
    ("создай голосовой орган третьей версии", "!make@голосовой#organ^version 3"),
    ("создай голосовой орган версии три", "!make@голосовой#organ^version 3"),
    ("create voice organ version three", "!make@voice#organ^version 3"),
    ("create the voice organ, 2nd version", "!make@voice#organ,^version 2"),
    ("обнови зрение до второй версии", "!update@зрение^to^version 2"),
    ("обнови зрение до второй", "!update@зрение^to 2"),
    ("обнови зрение до 3-й версии", "!update@зрение^to^version 3"),
    ("создай прошлую версию зрения", "!make^version^previous@зрение"),
    ("create the previous version of vision", "!make^version^previous@vision"),
    ("прими итерацию три", "!accept_iteration 3"),
    ("first normalize then phonemes", "@normalize>@phonemes"),
])
def test_canonical_stream(text, canon, lexicon):
    assert stream(text, lexicon).canon == canon


@pytest.mark.parametrize("text, template", [
    ("создай реверс-орган v1", "organ.reverse.v1"),
    ("create a vision-organ v1", "organ.vision.v1"),
    ("создай голосовой орган первой версии", "organ.voice.v1"),
    ("create voice organ version one", "organ.voice.v1"),
    ("обнови зрение до второй версии", "organ.vision.v2"),
    ("upgrade vision to version two", "organ.vision.v2"),
    ("обнови зрение до следующей версии", "organ.vision.v2"),
])
def test_versions_from_words(text, template, lexicon, known):
    resolved = resolve(parse(text, lexicon), known)
    assert resolved.spec["template"]["id"] == template


def test_previous_version_is_resolved_against_the_catalog(lexicon, known, examples):
    from neira.commands import Known

    cells, organs = examples
    v2 = {**next(o for o in organs if o["id"] == "organ.vision.v1"), "id": "organ.vision.v2", "version": "2.0.0"}
    with_v2 = Known(cells, organs + [v2], lexicon)
    for text in ("создай зрение прошлой версии", "create the vision organ, the previous version"):
        resolved = resolve(parse(text, lexicon), with_v2)
        assert resolved.spec["template"]["id"] == "organ.vision.v1", text
    only_v1 = resolve(parse("создай зрение прошлой версии", lexicon), known)
    assert isinstance(only_v1, ParseFailure) and only_v1.code == "not_found"


@pytest.mark.parametrize("text", ["create a vision-organ v1", "создай реверс-орган v1", "make the echo-organ",
                                  "создай клетку голосовой-орган", "make foo-organ v1"])
def test_a_compound_of_catalog_nouns_never_creates_a_cell(text, lexicon, known):
    command = parse(text, lexicon)
    result = command if isinstance(command, ParseFailure) else resolve(command, known)
    assert isinstance(result, ParseFailure) or result.intent != "create_cell", result
