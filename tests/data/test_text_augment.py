"""EDA text augmentation (docs/algorithms.md §3): each operation's property, cleaning and
determinism."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pytest
import torch

from clipflow.data.text_augment import (
    EDA,
    STOP_WORDS,
    clean_words,
    random_deletion,
    random_swap,
    synonym_replacement,
    synonyms,
)

CAPTIONS = [
    "A small dog is running on the beach.",
    "two red cars parked next to a tall building",
    "Children playing football in the park!",
    "a bowl of fresh fruit on a wooden table",
]
SEEDS = range(8)


def test_clean_lowercases_strips_punctuation_and_decodes_entities() -> None:
    assert clean_words("A Dog &amp; a CAT, running... (fast)!") == [
        "a",
        "dog",
        "a",
        "cat",
        "running",
        "fast",
    ]
    assert clean_words("Don\u2019t stop") == ["don't", "stop"]


def test_nltk_stop_words() -> None:
    assert len(STOP_WORDS) == 179
    assert {"a", "the", "on", "is", "don't"} <= STOP_WORDS
    assert not {"dog", "red", "beach"} & STOP_WORDS


def test_synonyms_come_from_wordnet() -> None:
    dog = synonyms("dog")
    assert {"domestic dog", "canis familiaris", "hound"} <= set(dog)
    assert "dog" not in dog
    # WordNet's morphy finds the base form; only the word itself is excluded (as textaugment)
    assert set(synonyms("dogs")) == {*dog, "dog"}
    assert synonyms("qwzxv") == ()
    assert all(name and set(name) <= set("abcdefghijklmnopqrstuvwxyz ") for name in dog)


def test_synonym_replacement_replaces_one_word_by_a_wordnet_synonym() -> None:
    for caption in CAPTIONS:
        words = clean_words(caption)
        for seed in SEEDS:
            out = synonym_replacement(words, np.random.default_rng(seed))
            assert len(out) == len(words)
            changed = {(a, b) for a, b in zip(words, out, strict=True) if a != b}
            assert len(changed) == 1  # every caption here has a non-stop word with synonyms
            ((original, replacement),) = changed
            assert original not in STOP_WORDS
            assert replacement in synonyms(original)
            # every occurrence of the chosen word is replaced
            assert original not in out


def test_synonym_replacement_without_candidates_is_identity() -> None:
    words = ["the", "qwzxv", "of"]
    assert synonym_replacement(words, np.random.default_rng(0)) == words


def test_random_swap_keeps_the_multiset_and_moves_two_words() -> None:
    for caption in CAPTIONS:
        words = clean_words(caption)
        for seed in SEEDS:
            out = random_swap(words, np.random.default_rng(seed))
            assert Counter(out) == Counter(words)
            moved = [i for i, (a, b) in enumerate(zip(words, out, strict=True)) if a != b]
            assert len(moved) in (0, 2)  # 0 only when the two swapped words are equal
    assert random_swap(["dog"], np.random.default_rng(0)) == ["dog"]
    assert random_swap(["red", "dog"], np.random.default_rng(0)) == ["dog", "red"]


def _is_subsequence(short: list[str], long: list[str]) -> bool:
    remaining = iter(long)
    return all(word in remaining for word in short)


def test_random_deletion_removes_words_and_never_empties() -> None:
    words = clean_words(CAPTIONS[0])
    outs = [random_deletion(words, np.random.default_rng(seed), p=0.5) for seed in SEEDS]
    for out in outs:
        assert 1 <= len(out) <= len(words)
        assert _is_subsequence(out, words)
    assert any(len(out) < len(words) for out in outs)
    for seed in SEEDS:
        assert len(random_deletion(words, np.random.default_rng(seed), p=1.0)) == 1
    assert random_deletion(words, np.random.default_rng(0), p=0.0) == words
    assert random_deletion(["dog"], np.random.default_rng(0), p=1.0) == ["dog"]


def test_eda_cleans_and_drops_stop_words_before_augmenting() -> None:
    swap_only = EDA(seed=0, op_probs=(0, 1, 0), remove_stopwords_prob=1.0)
    for caption in CAPTIONS:
        content = [w for w in clean_words(caption) if w not in STOP_WORDS]
        assert Counter(swap_only(caption).split()) == Counter(content)
    # a caption of stop words only keeps them rather than becoming empty
    assert Counter(swap_only("On the of it").split()) == Counter(["on", "the", "of", "it"])
    delete_all = EDA(seed=0, op_probs=(0, 0, 1), deletion_prob=1.0)
    assert all(len(delete_all(caption).split()) == 1 for caption in CAPTIONS)
    assert EDA(seed=0)("?!") == "?!"


def test_eda_applies_one_op_per_view_with_clip_rocket_probabilities() -> None:
    eda = EDA(seed=0)
    counts: Counter[str] = Counter()

    def recorder(name: str):
        def op(words: list[str], rng: np.random.Generator) -> list[str]:
            counts[name] += 1
            return words

        return op

    eda.ops = (recorder("synonym"), recorder("swap"), recorder("delete"))
    views = 2000
    for _ in range(views):
        eda("a dog on the beach")
    assert sum(counts.values()) == views
    for name, p in (("synonym", 0.4), ("swap", 0.4), ("delete", 0.2)):
        assert counts[name] / views == pytest.approx(p, abs=0.04)


def test_eda_is_deterministic_given_a_seed_or_generator() -> None:
    def views(eda: EDA, rng_factory) -> list[str]:
        rng = rng_factory()
        return [eda(caption, rng) for caption in CAPTIONS for _ in range(3)]

    eda = EDA()
    for factory in (
        lambda: np.random.default_rng(7),
        lambda: torch.Generator().manual_seed(7),
    ):
        assert views(eda, factory) == views(eda, factory)
    assert [eda(c, 7) for c in CAPTIONS] == [eda(c, 7) for c in CAPTIONS]
    seeded = [EDA(seed=3) for _ in range(2)]
    assert views(seeded[0], lambda: None) == views(seeded[1], lambda: None)
    assert views(eda, lambda: np.random.default_rng(7)) != views(
        eda, lambda: np.random.default_rng(8)
    )


def test_eda_pickles_for_dataloader_workers() -> None:
    eda = EDA(seed=1)
    assert pickle.loads(pickle.dumps(eda))(CAPTIONS[0], 5) == eda(CAPTIONS[0], 5)
