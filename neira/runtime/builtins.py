"""The registry of built-in implementations: one for every cell in examples/ (code in builtin/)."""

from __future__ import annotations

from neira.runtime.builtin import espeak, image, memory, speech, text
from neira.runtime.registry import ANY, SAME, Registry, impl


def builtin_registry() -> Registry:
    """A fresh registry with every built-in implementation."""
    r = Registry()
    r.register(impl("text_normalize", ["text"], "text", text.normalize, place="inline"))
    r.register(impl("reverse", ["text"], "text", text.reverse, place="inline"))
    r.register(impl("echo", [ANY], SAME, text.echo, place="inline"))
    r.register(impl("summarize", ["text"], "text", text.summarize, text.SummaryParams))
    r.register(impl("text_to_phonemes", ["text"], "phonemes", speech.to_phonemes, speech.VoiceParams, warm=espeak.engine))
    r.register(impl("speak_adapter", ["phonemes", "text"], "audio", speech.speak, speech.VoiceParams, warm=espeak.engine))
    r.register(impl("image_decode", ["image"], "image", image.decode, image.DecodeParams))
    r.register(impl("grayscale", ["image"], "image", image.grayscale, image.DecodeParams))
    r.register(impl("edge_detect", ["image"], "image", image.edge_detect, image.DecodeParams))
    r.register(impl("vision_adapter", ["image"], "json", image.features, image.DecodeParams))
    r.register(impl("context", [ANY], "json", memory.context, memory.ContextParams, place="loop"))
    return r
