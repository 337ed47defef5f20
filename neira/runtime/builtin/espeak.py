"""eSpeak NG through ctypes, from the `espeakng-loader` wheel (the library and its RU/EN data, no system
package). One engine per process, initialised on first use; calls are serialised (the library is not
re-entrant)."""

from __future__ import annotations

import ctypes
import threading

import espeakng_loader

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000
CHARS_UTF8 = 1
PHONEMES_INPUT = 0x100  # espeakPHONEMES: text between [[ and ]] is phoneme mnemonics
POS_CHARACTER = 1
IPA = 0x02
VOICES = {"ru": b"ru", "en": b"en-us"}

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class Engine:
    """The process's eSpeak NG: phonemes and 16-bit mono PCM."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(),
                                                 INITIALIZE_DONT_EXIT)
        if self.sample_rate <= 0:
            raise RuntimeError("eSpeak NG did not start")
        self._chunks: list[bytes] = []
        self._callback = _CALLBACK(self._collect)  # kept referenced: the library holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.lib = lib
        self.lock = threading.Lock()
        self._voice_now: tuple[str, int] | None = None

    def _collect(self, wav: ctypes.Array, samples: int, _events: int) -> int:
        if samples > 0:
            self._chunks.append(ctypes.string_at(wav, samples * 2))
        return 0

    def _voice(self, lang: str, rate: int) -> None:
        if self._voice_now == (lang, rate):  # switching voices reloads the language's dictionary
            return
        if self.lib.espeak_SetVoiceByName(VOICES[lang]) != 0:
            raise RuntimeError(f"eSpeak NG has no voice {lang}")
        self.lib.espeak_SetParameter(1, rate, 0)  # espeakRATE, words per minute, absolute
        self._voice_now = (lang, rate)

    def phonemes(self, text: str, lang: str, mode: int) -> list[str]:
        """The phonemes of each clause of `text` (mode 0: eSpeak mnemonics, IPA: the IPA alphabet)."""
        with self.lock:
            self._voice(lang, self._voice_now[1] if self._voice_now else 165)
            buf = ctypes.create_string_buffer(text.encode())
            ptr = ctypes.c_void_p(ctypes.addressof(buf))
            clauses: list[str] = []
            while ptr.value:
                out = self.lib.espeak_TextToPhonemes(ctypes.byref(ptr), CHARS_UTF8, mode)
                if out and out.strip():
                    clauses.append(out.decode().strip())
            return clauses

    def synth(self, text: str, lang: str, rate: int, phonemes: bool) -> bytes:
        """16-bit mono PCM of `text` (or of phoneme mnemonics) at `sample_rate`."""
        data = (f"[[{text}]]" if phonemes else text).encode()
        with self.lock:
            self._voice(lang, rate)
            self._chunks = []
            flags = CHARS_UTF8 | (PHONEMES_INPUT if phonemes else 0)
            if self.lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, flags, None, None) != 0:
                raise RuntimeError("eSpeak NG could not synthesise")
            pcm, self._chunks = b"".join(self._chunks), []
            return pcm


_engine: Engine | None = None
_start = threading.Lock()


def engine() -> Engine:
    """The process's engine, started on first use."""
    global _engine
    with _start:
        if _engine is None:
            _engine = Engine()
        return _engine
