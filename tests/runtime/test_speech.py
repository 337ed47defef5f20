"""Speech on eSpeak NG: phonemes as whole values, WAV files that parse and last as long as the words."""

from __future__ import annotations

import io
import wave

import pytest

from neira.runtime.builtin.speech import VoiceParams, language, speak, to_phonemes
from neira.runtime.payloads import Audio, Phonemes, Text
from neira.runtime.registry import BadInput

V = VoiceParams()


@pytest.mark.parametrize(("text", "expected"), [
    ("привет, мир", Phonemes(text="p@-r;iv;'et _: m;'ir", lang="ru", ipa="prʲivʲˈet mʲˈir")),
    ("hello world", Phonemes(text="h@l'oU w'3:ld", lang="en", ipa="həlˈoʊ wˈɜːld")),
    ("да", Phonemes(text="d'A", lang="ru", ipa="dˈɑ")),
])
def test_phonemes(text: str, expected: Phonemes) -> None:
    assert to_phonemes(Text(text=text), V) == expected


@pytest.mark.parametrize(("text", "lang"), [("привет", "ru"), ("hello", "en"), ("hello мир мир", "ru"), ("2024", "en")])
def test_language_follows_the_letters(text: str, lang: str) -> None:
    assert language(text, None) == lang


def frames(audio: Audio) -> tuple[int, int, int, int]:
    with wave.open(io.BytesIO(audio.data_b64)) as w:
        return w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()


@pytest.mark.parametrize(("payload", "low_ms", "high_ms"), [
    (Text(text="привет, мир"), 500, 2000),
    (Text(text="hello world, this is a longer sentence with more words"), 2000, 6000),
    (Phonemes(text="p@-r;iv;'et _: m;'ir", lang="ru"), 400, 2000),
])
def test_speech_is_a_wav_as_long_as_its_words(payload: Text | Phonemes, low_ms: int, high_ms: int) -> None:
    audio = speak(payload, V)
    channels, width, rate, n = frames(audio)
    assert (channels, width, rate, audio.media_type) == (1, 2, 22050, "audio/wav")
    assert audio.duration_ms == round(n * 1000 / rate)
    assert low_ms <= audio.duration_ms <= high_ms
    with wave.open(io.BytesIO(audio.data_b64)) as w:
        samples = w.readframes(n)
    assert max(abs(int.from_bytes(samples[i:i + 2], "little", signed=True)) for i in range(0, len(samples), 2)) > 3000  # audible


def test_a_slower_rate_speaks_longer() -> None:
    fast = speak(Text(text="hello world"), VoiceParams(rate=300)).duration_ms
    slow = speak(Text(text="hello world"), VoiceParams(rate=100)).duration_ms
    assert slow > 2 * fast


@pytest.mark.parametrize("text", ["!!!", "x" * 2001])
def test_speech_refuses_what_it_cannot_say(text: str) -> None:
    with pytest.raises(BadInput):
        speak(Text(text=text), V)


def test_voice_params_are_checked() -> None:
    with pytest.raises(ValueError, match="rate"):
        VoiceParams(rate=5)
