"""CE-CLIP negatives for real English captions: spaCy parses, WordNet decides (docs/algorithms.md
§4).

Each generator edits one thing of a parsed caption and is registered in the ``english`` set:

- ``swap_noun_phrases`` (relation): swap the two noun phrases around a verb ("a dog chasing a
  cat" -> "a cat chasing a dog") or an asymmetric preposition ("a cat on a car" -> "a car on a
  cat"); subject/object swaps first. Relations whose swap says the same ("next to", "with",
  "and") or that are not relations ("a slice of pizza") are skipped, and so are swaps that would
  break subject-verb agreement. The words stay the same (up to case and "a"/"an").
- ``replace_adjective`` (attribute): one adjective to a contrasting one of the same category:
  another group of :data:`~clipflow.negatives.lexicon.ATTRIBUTE_CATEGORIES` (colour -> colour,
  large -> small) or a WordNet antonym of its first sense; never a WordNet synonym.
- ``swap_adjectives`` (attribute): exchange two different adjectives of two different nouns
  ("a red car and a blue bus" -> "a blue car and a red bus"); same-category pairs first.
- ``replace_noun`` (object): one noun to a co-hyponym: a sibling under a shared WordNet
  hypernym of its sense (or, where it has fewer than three, a cousin under the hypernym's
  hypernym), whose own first sense is that sibling, of the same lexicographer category, neither
  a synonym nor a hypernym or hyponym of it; the most familiar (WordNet sense counts) first.
- ``replace_verb`` (action): one verb to another verb of :data:`~clipflow.negatives.lexicon.
  VERB_FORMS` with the same transitivity, in the caption's form; same WordNet verb category
  first; never a synonym, a hypernym or a troponym of it.

A generator returns ``[]`` when the caption lacks what it edits (no verb, no adjective, one
noun), so a caption gets fewer negatives, never filler. Randomness only orders the valid edits
(which word first, which replacement first), so a seed changes the choice, not the validity.
At most :data:`MAX_CANDIDATES` per generator and caption: :func:`generate` takes a few.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterable, Iterator
from typing import Any

from clipflow.negatives import nlp
from clipflow.negatives.generate import register_generator
from clipflow.negatives.lexicon import (
    ATTRIBUTE_CATEGORIES,
    LIGHT_VERBS,
    NON_RELATIONS,
    RELATIONAL_NOUNS,
    VAGUE_NOUNS,
    VERB_FORMS,
)
from clipflow.negatives.nlp import Parse, Token

MAX_CANDIDATES = 8  # per generator and caption: generate() keeps per_caption (4) of all kinds
PER_WORD = 6  # replacements tried per edited word: the most plausible few, in a seeded order
NOUN_CHOICES = 4  # co-hyponyms kept per noun: the most familiar (fewer odd ones like "elder")
# WordNet lexicographer files of nouns a photo shows; other senses (noun.group "table" as an
# array, noun.act, noun.cognition) are not objects to replace.
CONCRETE_NOUNS = frozenset(
    {
        "noun.animal",
        "noun.artifact",
        "noun.body",
        "noun.food",
        "noun.location",
        "noun.object",
        "noun.person",
        "noun.plant",
        "noun.substance",
    }
)
_SENSES_CONSIDERED = 3  # a noun's sense is its first concrete one among its first three
_FEW_SIBLINGS = 3  # fewer co-hyponyms than this: add cousins (under the grandparent)


def interleave(lists: Iterable[list[str]]) -> list[str]:
    """One of each list in turn, duplicates dropped, at most MAX_CANDIDATES."""
    iterators = [iter(items) for items in lists]
    seen: dict[str, None] = {}
    while iterators and len(seen) < MAX_CANDIDATES:
        alive = []
        for iterator in iterators:
            item = next(iterator, None)
            if item is not None:
                alive.append(iterator)
                seen.setdefault(item)
        iterators = alive
    return list(seen)[:MAX_CANDIDATES]


def _shuffled(items: Iterable, rng: random.Random) -> list:
    order = list(items)
    rng.shuffle(order)
    return order


# --- positions: which tokens each kind edits -------------------------------------------------


def noun_positions(parsed: Parse) -> list[int]:
    """Common nouns naming an object: tagged NN/NNS, plain words, not vague ("photo", "side")."""
    return [
        i
        for i, w in enumerate(parsed.words)
        if w.pos == "NOUN"
        and w.tag in nlp.NOUN_TAGS
        and nlp.is_plain_word(w.text)
        and w.text.lower() not in VAGUE_NOUNS
    ]


def adjective_positions(parsed: Parse) -> list[int]:
    """Adjectives in their plain form (JJ: not "bigger", "biggest")."""
    return [
        i
        for i, w in enumerate(parsed.words)
        if w.pos == "ADJ" and w.tag == "JJ" and nlp.is_plain_word(w.text)
    ]


def verb_positions(parsed: Parse) -> list[int]:
    """Main verbs (not auxiliaries, not light verbs such as "be", "have")."""
    return [
        i
        for i, w in enumerate(parsed.words)
        if w.pos == "VERB"
        and w.tag in nlp.VERB_TAGS
        and nlp.is_plain_word(w.text)
        and (nlp.base_form(w.text, "v") or w.text.lower()) not in LIGHT_VERBS
    ]


# --- relation --------------------------------------------------------------------------------


def _noun_phrase(parsed: Parse, head: int) -> tuple[int, int] | None:
    """The span (first, last) of the noun phrase of noun ``head``, if it is one clean phrase.

    Its left dependents (determiner, adjectives, compounds) and a partitive "of" phrase ("a
    slice of pizza" moves whole); None if a clause, a coordination or another preposition
    would be cut.
    """
    words = parsed.words
    last = head
    for of in parsed.child(head, "prep"):
        if words[of].text.lower() == "of":
            last = max(last, words[of].right)
    inside = [w for w in words[words[head].left : last + 1] if w.text.lower() != "of"]
    if any(w.pos in ("VERB", "AUX", "ADP", "PUNCT", "CCONJ", "SCONJ") for w in inside):
        return None
    return words[head].left, last


def _prepositional_objects(parsed: Parse, anchor: int) -> Iterator[tuple[str, int]]:
    """(relation phrase, object noun) for each preposition hanging from ``anchor``.

    "on a bench" -> ("on", bench); "in front of a car" -> ("in front of", car);
    "next to a car" (an adverb carrying the preposition) -> ("next to", car).
    """
    words = parsed.words
    carriers = [(anchor, "")] + [
        (a, words[a].text.lower() + " ") for a in parsed.child(anchor, "advmod", "amod")
    ]
    for carrier, prefix in carriers:
        for prep in parsed.child(carrier, "prep"):
            for obj in parsed.child(prep, "pobj"):
                phrase = prefix + words[prep].text.lower()
                if words[obj].text.lower() in RELATIONAL_NOUNS:
                    for of in parsed.child(obj, "prep"):
                        if words[of].text.lower() == "of":
                            for inner in parsed.child(of, "pobj"):
                                yield f"{phrase} {words[obj].text.lower()} of", inner
                    continue
                yield phrase, obj


def relation_pairs(parsed: Parse) -> list[list[tuple[int, int]]]:
    """Pairs of noun heads related by a verb or an asymmetric preposition, in two tiers.

    Tier one: a verb's subject and direct object; tier two: a subject and the object of the
    verb's preposition, and a noun and the object of its own preposition.
    """
    words = parsed.words
    is_noun = {i for i, w in enumerate(words) if w.pos == "NOUN" and w.tag in nlp.NOUN_TAGS}
    primary: list[tuple[int, int]] = []
    secondary: list[tuple[int, int]] = []
    for verb, word in enumerate(words):
        if word.pos != "VERB":
            continue
        subjects = [s for s in parsed.child(verb, "nsubj", "nsubjpass") if s in is_noun]
        if not subjects and word.dep in ("acl", "relcl") and word.head in is_noun:
            subjects = [word.head]  # "a dog chasing a cat": the participle modifies the subject
        for subject in subjects:
            primary += [(subject, o) for o in parsed.child(verb, "dobj") if o in is_noun]
            secondary += [
                (subject, o)
                for phrase, o in _prepositional_objects(parsed, verb)
                if o in is_noun and phrase not in NON_RELATIONS
            ]
    for noun in sorted(is_noun):
        secondary += [
            (noun, o)
            for phrase, o in _prepositional_objects(parsed, noun)
            if o in is_noun and phrase not in NON_RELATIONS
        ]
    ordered = [sorted(set(tier), key=tier.index) for tier in (primary, secondary)]
    return [[tuple(sorted(pair)) for pair in tier if pair[0] != pair[1]] for tier in ordered]


def _agreement_safe(parsed: Parse, first: int, second: int) -> bool:
    """False when the nouns differ in number and one is a finite verb's subject."""
    a, b = parsed.words[first], parsed.words[second]
    if a.tag == b.tag:
        return True
    return not any(parsed.words[i].dep in ("nsubj", "nsubjpass") for i in (first, second))


def swap_spans(parsed: Parse, a: tuple[int, int], b: tuple[int, int]) -> str:
    """The caption with spans ``a`` and ``b`` (``a`` first) exchanged, spacing and case kept."""
    items = nlp.tokens(parsed)
    span_a, span_b = items[a[0] : a[1] + 1], items[b[0] : b[1] + 1]
    span_a[-1].ws, span_b[-1].ws = span_b[-1].ws, span_a[-1].ws
    if a[0] == 0 and items[0].text[:1].isupper():
        # the capitalised first word moves: lower-case it (unless a name), capitalise the new one
        if parsed.words[0].pos != "PROPN" and items[0].text != "I":
            span_a[0].text = span_a[0].text[:1].lower() + span_a[0].text[1:]
        span_b[0].text = span_b[0].text[:1].upper() + span_b[0].text[1:]
    edited = items[: a[0]] + span_b + items[a[1] + 1 : b[0]] + span_a + items[b[1] + 1 :]
    return nlp.render(edited)


@register_generator("swap_noun_phrases", kind="relation", family="english", prepare=nlp.prepare)
def swap_noun_phrases(caption: str, rng: random.Random) -> list[str]:
    parsed = nlp.parse(caption)
    found: list[str] = []
    for tier in relation_pairs(parsed):
        for first, second in _shuffled(tier, rng):
            span_a, span_b = _noun_phrase(parsed, first), _noun_phrase(parsed, second)
            if span_a is None or span_b is None or span_a[1] >= span_b[0]:
                continue  # not clean phrases, or one inside the other ("a slice of pizza")
            if parsed.words[first].text.lower() == parsed.words[second].text.lower():
                continue  # the same noun on both sides: at most an attribute swap
            if _agreement_safe(parsed, first, second):
                found.append(swap_spans(parsed, span_a, span_b))
    return list(dict.fromkeys(found))[:MAX_CANDIDATES]


# --- attribute -------------------------------------------------------------------------------


@functools.cache
def categories_of(adjective: str) -> tuple[str, ...]:
    """The :data:`ATTRIBUTE_CATEGORIES` that list ``adjective``."""
    return tuple(
        name
        for name, groups in ATTRIBUTE_CATEGORIES.items()
        if any(adjective in group for group in groups)
    )


@functools.cache
def antonyms(adjective: str) -> tuple[str, ...]:
    """WordNet antonyms of ``adjective`` in its first sense that has any (plain words only)."""
    for synset in nlp.synsets(adjective, "a")[:2]:
        found = [
            antonym.name().lower()
            for lemma in synset.lemmas()
            if lemma.name().lower() == adjective
            for antonym in lemma.antonyms()
        ]
        found = [a for a in found if nlp.is_plain_word(a) and nlp.is_familiar(a)]
        if found:
            return tuple(dict.fromkeys(found))
    return ()


@functools.cache
def contrasting_adjectives(adjective: str) -> tuple[str, ...]:
    """Adjectives contrasting with ``adjective``: other groups of its categories, antonyms.

    A WordNet synonym of it is never one (replacing "big" by "large" changes nothing).
    """
    adjective = adjective.lower()
    found: list[str] = []
    for name in categories_of(adjective):
        for group in ATTRIBUTE_CATEGORIES[name]:
            if adjective not in group:
                found += sorted(group)
    found += antonyms(adjective)
    same = nlp.synonyms(adjective, "a")
    return tuple(a for a in dict.fromkeys(found) if a not in same and a != adjective)


@register_generator("replace_adjective", kind="attribute", family="english", prepare=nlp.prepare)
def replace_adjective(caption: str, rng: random.Random) -> list[str]:
    parsed = nlp.parse(caption)
    per_word = []
    for index in _shuffled(adjective_positions(parsed), rng):
        options = contrasting_adjectives(parsed.words[index].text)
        per_word.append(
            [nlp.replace_word(parsed, index, new) for new in _shuffled(options, rng)[:PER_WORD]]
        )
    return interleave(per_word)


@register_generator("swap_adjectives", kind="attribute", family="english", prepare=nlp.prepare)
def swap_adjectives(caption: str, rng: random.Random) -> list[str]:
    parsed = nlp.parse(caption)
    words = parsed.words
    attributive = [
        i
        for i in adjective_positions(parsed)
        if words[i].dep == "amod" and words[words[i].head].pos == "NOUN"
    ]
    pairs = [
        (a, b)
        for a in attributive
        for b in attributive
        if a < b
        and words[a].head != words[b].head
        and words[a].text.lower() != words[b].text.lower()
    ]
    # pairs of one category first ("red"/"blue" before "red"/"tall")
    pairs = sorted(
        _shuffled(pairs, rng),
        key=lambda p: (
            not set(categories_of(words[p[0]].text.lower()))
            & set(categories_of(words[p[1]].text.lower()))
        ),
    )
    found = []
    for a, b in pairs:
        edited = nlp.tokens(parsed)
        edited[a] = Token(nlp.match_case(words[b].text.lower(), words[a].text), words[a].ws, True)
        edited[b] = Token(nlp.match_case(words[a].text.lower(), words[b].text), words[b].ws, True)
        found.append(nlp.render(edited))
    return found[:MAX_CANDIDATES]


# --- object ----------------------------------------------------------------------------------


@functools.cache
def noun_sense(noun: str) -> Any | None:
    """The sense of ``noun`` to replace: its first concrete one among its first three."""
    for synset in nlp.synsets(noun, "n")[:_SENSES_CONSIDERED]:
        if synset.lexname() in CONCRETE_NOUNS:
            return synset
    return None


def _usable_name(synset: Any) -> str | None:
    """The synset's head word if usable: one familiar lower-case word, whose own first noun
    sense is this synset ("hyena", not its spelling "hyaena"; not "head" for a cattle head)."""
    name = synset.lemmas()[0].name()
    if not (nlp.is_plain_word(name) and name.islower() and len(name) > 2):
        return None
    senses = nlp.synsets(name, "n")
    if not senses or senses[0] != synset or not nlp.is_familiar(name):
        return None
    return name


@functools.cache
def co_hyponyms(noun: str) -> tuple[str, ...]:
    """Co-hyponyms of ``noun``'s sense, most familiar first (WordNet sense counts).

    Siblings under a direct hypernym; cousins under a hypernym's hypernym only where fewer than
    three siblings exist; both of the noun's lexicographer category (animal for an animal) and
    familiar (:func:`~clipflow.negatives.nlp.is_familiar`). No sense of a candidate may be an
    ancestor or a descendant of any sense of the noun ("man" is no co-hyponym of "boy": one
    sense of "boy" is a man), and it shares no synset with the noun.
    """
    noun = noun.lower()
    sense = noun_sense(noun)
    if sense is None:
        return ()
    parents = list(sense.hypernyms()) + list(sense.instance_hypernyms())
    tiers = [
        [s for p in parents for s in p.hyponyms() + p.instance_hyponyms()],
        [
            s
            for p in parents
            for g in p.hypernyms()
            for u in g.hyponyms()
            if u not in parents
            for s in u.hyponyms()
        ],
    ]
    same = nlp.synonyms(noun, "n")
    own = set(nlp.synsets(noun, "n"))
    above = frozenset().union(*(nlp.ancestors(s) for s in own))
    found: list[str] = []
    for tier in tiers:
        names = []
        for synset in tier:
            if synset == sense or synset.lexname() != sense.lexname():
                continue
            name = _usable_name(synset)
            if name is None or name in same:
                continue
            if any(s in above or own & nlp.ancestors(s) for s in nlp.synsets(name, "n")):
                continue  # a sense of one is above or below a sense of the other ("boy", "man")
            names.append(name)
        found += sorted(set(names) - set(found), key=lambda n: (-nlp.familiarity(n, "n"), n))
        if len(found) >= _FEW_SIBLINGS:
            break
    return tuple(found)


@register_generator("replace_noun", kind="object", family="english", prepare=nlp.prepare)
def replace_noun(caption: str, rng: random.Random) -> list[str]:
    parsed = nlp.parse(caption)
    per_word = []
    for index in _shuffled(noun_positions(parsed), rng):
        word = parsed.words[index]
        base = nlp.base_form(word.text, "n") or word.text.lower()
        plural = word.tag == "NNS" and word.text.lower() != base  # not "broccoli" (tagged NNS)
        options = _shuffled(co_hyponyms(base)[:NOUN_CHOICES], rng)
        forms = [nlp.pluralize(o) if plural else o for o in options]
        per_word.append([nlp.replace_word(parsed, index, form) for form in forms])
    return interleave(per_word)


# --- action ----------------------------------------------------------------------------------


@functools.cache
def _verb_sense(verb: str) -> Any | None:
    found = nlp.synsets(verb, "v")
    return found[0] if found else None


@functools.cache
def replacement_verbs(verb: str, transitive: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Replacement verbs of base form ``verb``: (same WordNet category, other categories).

    From :data:`VERB_FORMS`, of the same transitivity, never ``verb``, a synonym of it, or a
    verb above or below it in WordNet's hierarchy ("walk" never becomes "stroll" or "move").
    """
    sense = _verb_sense(verb)
    same = nlp.synonyms(verb, "v")
    kinds = ("t", "b") if transitive else ("i", "b")
    same_category, other = [], []
    for candidate, forms in VERB_FORMS.items():
        if forms["transitivity"] not in kinds or candidate in same or candidate == verb:
            continue
        theirs = _verb_sense(candidate)
        if sense is not None and theirs is not None:
            if theirs in nlp.ancestors(sense) or sense in nlp.ancestors(theirs):
                continue
            if theirs.lexname() == sense.lexname():
                same_category.append(candidate)
                continue
        other.append(candidate)
    return tuple(same_category), tuple(other)


@register_generator("replace_verb", kind="action", family="english", prepare=nlp.prepare)
def replace_verb(caption: str, rng: random.Random) -> list[str]:
    parsed = nlp.parse(caption)
    per_word = []
    for index in _shuffled(verb_positions(parsed), rng):
        word = parsed.words[index]
        base = nlp.base_form(word.text, "v") or word.text.lower()
        transitive = bool(parsed.child(index, "dobj"))
        same_category, other = replacement_verbs(base, transitive)
        options = (_shuffled(same_category, rng) + _shuffled(other, rng))[:PER_WORD]
        per_word.append([nlp.replace_word(parsed, index, VERB_FORMS[v][word.tag]) for v in options])
    return interleave(per_word)


# The tokens each kind of single-word edit targets, and their WordNet part of speech (fill-mask).
POSITIONS = {"object": noun_positions, "attribute": adjective_positions, "action": verb_positions}
WORDNET_POS = {"object": "n", "attribute": "a", "action": "v"}
