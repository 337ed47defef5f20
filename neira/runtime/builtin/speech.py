"""Speech on eSpeak NG: text → phonemes (RU, EN) and phonemes or text → a WAV a person can listen to."""

from __future__ import annotations

import io
import re
import wave
from typing import Literal

import msgspec

from neira.runtime.builtin.espeak import IPA, engine
from neira.runtime.payloads import Audio, Phonemes, Text
from neira.runtime.registry import BadInput

MAX_SPEECH_CHARS = 2_000  # about two minutes of speech, ~5 MB of WAV
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
_LATIN = re.compile(r"[a-z]", re.IGNORECASE)
_NOT_MNEMONIC = re.compile(r"[\[\]]")


class VoiceParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """`lang`: ru | en (default: Russian when the text has more Cyrillic than Latin letters);
    `rate`: words per minute (80..450)."""

    lang: Literal["ru", "en"] | None = None
    rate: int = 165

    def __post_init__(self) -> None:
        if not 80 <= self.rate <= 450:
            raise ValueError("rate must be between 80 and 450 words per minute")


def language(text: str, wanted: str | None) -> str:
    """The language to speak `text` in."""
    if wanted:
        return wanted
    return "ru" if len(_CYRILLIC.findall(text)) >= max(1, len(_LATIN.findall(text))) else "en"


def _bounded(text: str) -> str:
    if len(text) > MAX_SPEECH_CHARS:
        raise BadInput(f"text for speech is longer than {MAX_SPEECH_CHARS} characters")
    if not any(ch.isalnum() for ch in text):
        raise BadInput("the text has nothing to pronounce")
    return text


def to_phonemes(payload: Text, params: VoiceParams) -> Phonemes:
    """eSpeak NG mnemonics (clauses joined by a short pause `_:`) and the IPA of the same text."""
    text = _bounded(payload.text)
    lang = language(text, params.lang)
    e = engine()
    mnemonics = e.phonemes(text, lang, 0)
    if not mnemonics:
        raise BadInput("the text has nothing to pronounce")
    return Phonemes(text=" _: ".join(mnemonics), lang=lang, ipa=" ".join(e.phonemes(text, lang, IPA)))  # type: ignore[arg-type]


def wav(pcm: bytes, sample_rate: int) -> bytes:
    """A mono 16-bit WAV file around PCM samples."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
    return out.getvalue()


def speak(payload: Phonemes | Text, params: VoiceParams) -> Audio:
    """Speech as `audio/wav` with its duration; phonemes are spoken as they are, text is read."""
    e = engine()
    if isinstance(payload, Phonemes):
        pcm = e.synth(_NOT_MNEMONIC.sub("", _bounded(payload.text)), params.lang or payload.lang, params.rate, True)
    else:
        text = _bounded(payload.text)
        pcm = e.synth(text, language(text, params.lang), params.rate, False)
    if not pcm:
        raise BadInput("nothing was spoken")
    samples = len(pcm) // 2
    return Audio(data_b64=wav(pcm, e.sample_rate), duration_ms=round(samples * 1000 / e.sample_rate))
