"""Plug our recognizers (the Chinese ones above all: Presidio has none) into Presidio's AnalyzerEngine.

Optional: needs the `pii-presidio` extra (presidio-analyzer). deeplocal's own scanner does not use
Presidio (see docs/privacy.md for why); this is for operators who already run Presidio and want
our zh recognizers and checksums in it. Nothing here is imported unless called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deeplocal.gateway.pii.types import EntityRecognizer


class PresidioUnavailable(ImportError):
    pass


def _presidio() -> Any:
    try:
        import presidio_analyzer
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise PresidioUnavailable("Presidio is not installed: pip install 'deeplocal[pii-presidio]'") from exc
    return presidio_analyzer


def to_presidio(recognizer: EntityRecognizer, language: str) -> Any:
    """A `presidio_analyzer.EntityRecognizer` that runs `recognizer` for `language`."""
    pa = _presidio()

    class DeeplocalRecognizer(pa.EntityRecognizer):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__(supported_entities=[recognizer.supported_entity],
                             name=f"deeplocal_{recognizer.name}", supported_language=language)

        def load(self) -> None:
            return None

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            return [pa.RecognizerResult(f.entity_type, f.start, f.end, f.score)
                    for f in recognizer.analyze(text, entities or None)]

    return DeeplocalRecognizer()


def build_analyzer(recognizers: Sequence[EntityRecognizer], *, languages: Sequence[str] = ("en", "zh"),
                   with_presidio_defaults: bool = False) -> Any:
    """An AnalyzerEngine with no NLP model (NoOpNlpEngine) and our recognizers for each language.

    `with_presidio_defaults` also loads Presidio's own pattern recognizers (English only).
    """
    pa = _presidio()
    from presidio_analyzer.nlp_engine import NoOpNlpEngine

    engine = NoOpNlpEngine(models=[{"lang_code": lang, "model_name": "none"} for lang in languages])
    registry = pa.RecognizerRegistry(supported_languages=list(languages))
    if with_presidio_defaults:
        registry.load_predefined_recognizers(languages=["en"], nlp_engine=engine)
    for lang in languages:
        for rec in recognizers:
            if rec.supported_language in ("any", lang):
                registry.add_recognizer(to_presidio(rec, lang))
    return pa.AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=list(languages))
