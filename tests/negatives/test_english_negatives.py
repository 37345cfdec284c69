"""Hard negatives for real English captions (docs/algorithms.md §4): spaCy + WordNet, and fill-mask.

Every negative of 42 COCO-style captions is checked against its kind's property, with WordNet
queried here, independently of the generators: a relation swap keeps the caption's words; an
attribute replacement changes one adjective to one of its category (or a WordNet antonym); an
object replacement changes one noun to a WordNet co-hyponym; an action replacement changes one
verb. Captions lacking a verb, an adjective or a second noun get no negative of the kind that
needs it. Seeds make the choice, and the fill-mask generators are wired to a tiny random masked
LM saved here (no download: its words are random, its wiring is what is tested).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from wn.morphy import morphy

from clipflow.io import read_parquet
from clipflow.negatives import (
    KINDS,
    NEGATIVE_GENERATORS,
    fill_mask_generators,
    generate,
    generate_for_table,
    generator_set,
)
from clipflow.negatives.english import co_hyponyms
from clipflow.negatives.nlp import is_familiar, model_words, parse, wordnet

ROOT = Path(__file__).resolve().parents[2]

CAPTIONS = [
    "A dog chasing a cat on the grass.",
    "Two men riding horses down a dirt road.",
    "A red bus parked next to a tall building.",
    "A woman holding an umbrella in the rain.",
    "A kitchen with white cabinets and a black stove.",
    "A man is throwing a frisbee to his dog.",
    "A giraffe standing next to a tree in a field.",
    "A young boy eating a slice of pizza.",
    "A cat sleeping on top of a laptop.",
    "An old man sitting on a wooden bench.",
    "A large elephant walking through the tall grass.",
    "A little girl flying a kite on the beach.",
    "A surfer riding a big wave in the ocean.",
    "A brown horse pulling a cart down the street.",
    "A man in a blue shirt holding a tennis racket.",
    "Several people standing around a table with food.",
    "A black cat lying on a white bed.",
    "A skateboarder doing a trick on a ramp.",
    "A plate with a sandwich and a pickle on it.",
    "A white toilet next to a small sink in a bathroom.",
    "A yellow train traveling down the tracks.",
    "A woman cutting a large cake on a table.",
    "Two zebras grazing in a dry field.",
    "A small bird perched on a wooden fence.",
    "A clock on the side of a tall building.",
    "A child holding a red balloon in a park.",
    "A man driving a green truck on a highway.",
    "A bowl of fresh fruit on a kitchen counter.",
    "A dog carrying a stick in its mouth.",
    "A person skiing down a snowy hill.",
    "A boat floating on a calm lake.",
    "A brown bear sitting on a chair.",
    "A cow eating grass in a green pasture.",
    "A woman reading a book on a couch.",
    "A pizza with cheese and tomatoes on a wooden board.",
    "A man wearing a hat and a jacket.",
    "A laptop computer on a desk next to a lamp.",
    "An airplane flying over a large city.",
    "A baseball player swinging a bat at a ball.",
    "A young woman walking a dog on a leash.",
    "A bear catching a fish in a river.",
    "A motorcycle parked in front of a shop.",
]
NO_VERB = ["A bowl of soup.", "A red apple on a white plate.", "Kitchen with a wooden table."]
NO_ADJECTIVE = ["A dog chasing a cat.", "A man riding a horse on the beach."]
ONE_NOUN = ["Pizza.", "A sunset.", "Snow"]


def word_set(text: str) -> set[str]:
    return set(text.split())


# This test's own categories (a replacement adjective must share one with the original)
CATEGORIES = [
    word_set("white black red blue green yellow orange purple pink brown gray grey silver gold")
    | {"golden"},
    word_set("large big huge giant enormous small little tiny"),
    {"tall", "short"},
    {"long", "short"},
    {"old", "young", "new"},
    {"hot", "warm", "cold", "cool"},
    word_set("wooden metal metallic plastic glass stone brick leather paper concrete"),
    {"wet", "dry"},
    {"clean", "dirty"},
    {"full", "empty"},
    {"open", "closed"},
    {"bright", "sunny", "dark"},
    {"crowded", "busy", "empty", "deserted"},
    {"heavy", "light"},
    {"fast", "slow"},
    {"happy", "sad"},
]


def words(text: str) -> list[str]:
    """Lower-case words without punctuation; "an" read as "a" (fixed to the next word)."""
    found = re.findall(r"[a-z']+", text.lower())
    return ["a" if w == "an" else w for w in found]


def one_change(caption: str, negative: str) -> tuple[str, str]:
    """The (old, new) word of a single-word edit; fails unless exactly one word changed."""
    old, new = words(caption), words(negative)
    assert len(old) == len(new), (caption, negative)
    changed = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    assert len(changed) == 1, (caption, negative)
    return changed[0]


def synsets(word: str, pos: str) -> list:
    found = list(wordnet().synsets(word, pos))
    if pos == "a":
        found += wordnet().synsets(word, "s")
    return found


def antonyms(a: str, b: str) -> bool:
    return any(
        ant.name() == b
        for s in synsets(a, "a")
        for lemma in s.lemmas()
        if lemma.name() == a
        for ant in lemma.antonyms()
    )


def upward(synset, levels: int) -> set:
    """The hypernyms of ``synset`` up to ``levels`` steps."""
    found, frontier = set(), {synset}
    for _ in range(levels):
        frontier = {h for s in frontier for h in s.hypernyms() + s.instance_hypernyms()}
        found |= frontier
    return found


def is_co_hyponym(old: str, new: str) -> bool:
    """Senses of the two nouns under a shared hypernym (parent, or grandparent), no synonyms,
    and no sense of one above or below any sense of the other."""
    olds, news = synsets(old, "n"), synsets(new, "n")
    if not olds or not news or set(olds) & set(news):
        return False
    for s in olds:
        for t in news:
            if t in s.closure(lambda x: x.hypernyms()) or s in t.closure(lambda x: x.hypernyms()):
                return False
    return any(
        upward(s, 1) & upward(t, 1) or upward(s, 2) & upward(t, 2) for s in olds for t in news
    )


def check_relation(caption: str, negative: str) -> None:
    assert Counter(words(caption)) == Counter(words(negative)), (caption, negative)
    assert words(caption) != words(negative)


def check_attribute_replacement(caption: str, negative: str) -> None:
    old, new = one_change(caption, negative)
    assert not set(synsets(old, "a")) & set(synsets(new, "a")), (old, new)  # not a synonym
    assert any({old, new} <= c for c in CATEGORIES) or antonyms(old, new), (old, new)


def check_attribute_swap(caption: str, negative: str) -> None:
    old, new = words(caption), words(negative)
    changed = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    assert len(changed) == 2, (caption, negative)
    i, j = changed
    assert (old[i], old[j]) == (new[j], new[i])
    assert all(synsets(old[k], "a") for k in changed)


def check_object(caption: str, negative: str) -> None:
    old, new = one_change(caption, negative)
    assert is_co_hyponym(old, new), (caption, negative)


def check_action(caption: str, negative: str) -> None:
    old, new = one_change(caption, negative)
    assert synsets(old, "v") and synsets(new, "v"), (old, new)  # both verbs
    assert morphy(old, "v") != morphy(new, "v"), (old, new)  # a different verb
    assert not set(synsets(old, "v")) & set(synsets(new, "v")), (old, new)  # not a synonym


CHECKS: dict[str, Callable[[str, str], None]] = {
    "swap_noun_phrases": check_relation,
    "replace_adjective": check_attribute_replacement,
    "swap_adjectives": check_attribute_swap,
    "replace_noun": check_object,
    "replace_verb": check_action,
}


def test_the_english_set_has_one_generator_per_property() -> None:
    found = {g.name: g.kind for g in generator_set("english")}
    assert found == {
        "swap_noun_phrases": "relation",
        "replace_adjective": "attribute",
        "swap_adjectives": "attribute",
        "replace_noun": "object",
        "replace_verb": "action",
    }
    assert set(found) == set(CHECKS)
    assert len(CAPTIONS) >= 40 and len(set(CAPTIONS)) == len(CAPTIONS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_every_candidate_has_its_kinds_property(name: str) -> None:
    kind = NEGATIVE_GENERATORS.get(name).kind
    produced = 0
    for caption in CAPTIONS + NO_VERB + NO_ADJECTIVE + ONE_NOUN:
        for negative, got in generate(caption, [kind], per_caption=50, generators=[name]):
            assert got == kind
            assert words(negative) != words(caption)
            CHECKS[name](caption, negative)
            produced += 1
    assert produced >= 5  # every generator has work among these captions


def test_no_negative_needs_a_part_of_speech_the_caption_lacks() -> None:
    def kinds(caption: str) -> set[str]:
        return {k for _, k in generate(caption, per_caption=50, generator_set="english")}

    for caption in NO_VERB:
        assert "action" not in kinds(caption), caption
        assert not [w for w in parse(caption).words if w.pos == "VERB"]
    for caption in NO_ADJECTIVE:
        assert "attribute" not in kinds(caption), caption
    for caption in ONE_NOUN:
        assert kinds(caption) <= {"object"}, caption  # no relation, attribute or action
    assert generate("", generator_set="english") == []
    assert generate("   ", generator_set="english") == []


def test_nine_in_ten_captions_get_three_valid_negatives() -> None:
    table = generate_for_table(
        CAPTIONS, per_caption=4, seed=0, generator_set="english", progress=False
    )
    for row in table.itertuples():
        CHECKS[row.generator](row.caption, row.negative)  # each one valid
        assert words(row.negative) != words(row.caption)
    per_caption = table.groupby("caption_index").size().reindex(range(len(CAPTIONS)), fill_value=0)
    assert (per_caption >= 3).mean() >= 0.9, per_caption[per_caption < 3]
    assert not table.duplicated(["caption_index", "negative"]).any()
    # one of each kind first: most captions get three or four different kinds
    kinds = table.groupby("caption_index")["kind"].nunique()
    assert (kinds >= 3).mean() >= 0.75
    assert set(table["kind"]) == set(KINDS)


def test_seed_decides_the_choice_deterministically() -> None:
    for caption in CAPTIONS[:10]:
        assert generate(caption, seed=3, generator_set="english") == generate(
            caption, seed=3, generator_set="english"
        )
    varied = sum(
        len({tuple(generate(c, seed=s, generator_set="english")) for s in range(4)}) > 1
        for c in CAPTIONS
    )
    assert varied >= 0.9 * len(CAPTIONS)
    # where one generator has several valid edits, seeds pick different first ones
    firsts = {
        generate(CAPTIONS[0], ["object"], 1, seed=s, generators=["replace_noun"])[0]
        for s in range(8)
    }
    assert len(firsts) > 1


def test_table_is_the_same_batched_or_in_two_processes() -> None:
    captions = pd.Series(CAPTIONS[:24] + ONE_NOUN, index=range(500, 527))
    alone = generate_for_table(captions, seed=2, generator_set="english", progress=False)
    two = generate_for_table(
        captions, seed=2, generator_set="english", n_process=2, batch_size=5, progress=False
    )
    pd.testing.assert_frame_equal(alone, two)
    for index, caption in captions.items():
        rows = alone[alone["caption_index"] == index]
        assert list(zip(rows["negative"], rows["kind"], strict=True)) == generate(
            caption, seed=2, generator_set="english"
        )


def test_familiar_words_do_not_depend_on_the_captions_seen() -> None:
    # spaCy adds every word it reads to its string store: familiarity uses the model's own
    parse("A zorblefax chasing a bassarisk.")
    assert "bassarisk" not in model_words() and "zorblefax" not in model_words()
    assert "dog" in model_words() and not is_familiar("bassarisk") and is_familiar("zebra")
    assert "bassarisk" not in co_hyponyms("cat") and "fox" in co_hyponyms("cat")


def test_capitalisation_and_articles_follow_the_edit() -> None:
    caption = "A man riding an elephant."
    swapped = generate(caption, ["relation"], 5, generator_set="english")
    assert swapped == [("An elephant riding a man.", "relation")]
    replaced = generate(
        "An old man sitting on a bench.", ["attribute"], 20, generators=["replace_adjective"]
    )
    assert ("A young man sitting on a bench.", "attribute") in replaced
    plural = generate("Two men riding horses.", ["object"], 20, generators=["replace_noun"])
    assert all(re.match(r"Two \w+s riding horses\.|Two men riding \w+s\.", t) for t, _ in plural)


# --- fill-mask -----------------------------------------------------------------------------

VOCAB = sorted(
    word_set(
        "a an the dog cat horse men man woman boy girl chasing riding holding eating sitting"
        " running on in grass road red blue tall small old young wooden bench bird pizza table"
        " fence . ,"
    )
)


@pytest.fixture(scope="module")
def tiny_masked_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 1-layer BERT masked LM and a word-level tokenizer, saved locally."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {word: i for i, word in enumerate(special + VOCAB)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    path = tmp_path_factory.mktemp("tiny_masked_lm")
    wrapped.save_pretrained(path)
    BertForMaskedLM(config).save_pretrained(path)
    return path


def test_fill_mask_masks_the_target_word(tiny_masked_lm: Path) -> None:
    by_kind = {g.kind: g for g in fill_mask_generators(tiny_masked_lm, top_k=len(VOCAB))}
    assert sorted(by_kind) == ["action", "attribute", "object"]
    assert {g.name for g in by_kind.values()} == {
        "fill_mask_action",
        "fill_mask_attribute",
        "fill_mask_object",
    }
    caption = "An old man sitting on a wooden bench."
    parsed = parse(caption)
    texts = by_kind["object"].fn.masked_texts(parsed, [2, 7])
    assert texts == [
        "An old [MASK] sitting on a wooden bench.",
        "An old man sitting on a wooden [MASK].",
    ]
    predictions = by_kind["object"].fn.predictions(texts)
    assert [len(p) for p in predictions] == [len(VOCAB)] * 2


def test_fill_mask_negatives_change_one_word_of_their_kind(tiny_masked_lm: Path) -> None:
    generators = fill_mask_generators(tiny_masked_lm, top_k=len(VOCAB))
    targets = {"object": {"NOUN"}, "attribute": {"ADJ"}, "action": {"VERB"}}
    seen = set()
    for caption in ["An old man sitting on a wooden bench.", "A dog chasing a cat on the grass."]:
        parsed = parse(caption)
        negatives = generate(caption, per_caption=12, seed=1, generators=generators)
        assert negatives and all(words(t) != words(caption) for t, _ in negatives)
        for text, kind in negatives:
            old, new = one_change(caption, text)
            position = words(caption).index(old)
            assert parsed.words[position].pos in targets[kind], (caption, text, kind)
            assert new in VOCAB
            seen.add(kind)
        assert negatives == generate(caption, per_caption=12, seed=1, generators=generators)
    assert seen == {"object", "attribute", "action"}
    # workers forked after this process ran the model: no OpenMP deadlock, the same rows
    both = [g.name for g in generator_set("english")] + generators
    table = generate_for_table(
        CAPTIONS[:12], generators=both, n_process=2, batch_size=4, progress=False
    )
    assert table.equals(generate_for_table(CAPTIONS[:12], generators=both, progress=False))
    assert {"fill_mask_object", "replace_noun"} <= set(table["generator"])
    # the seed chooses which word is masked first
    firsts = {
        generate("A dog chasing a cat on the grass.", ["object"], 1, s, generators)[0]
        for s in range(8)
    }
    assert len(firsts) > 1


def test_fill_mask_model_must_be_a_local_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="fill-mask model .*nope: no such directory"):
        fill_mask_generators(tmp_path / "nope")


def test_script_english_set_with_fill_mask(tmp_path: Path, tiny_masked_lm: Path) -> None:
    pairs = pd.DataFrame(
        {
            "index": range(8),
            "caption": CAPTIONS[:6] + ["Pizza.", "A dog chasing a cat."],
            "status": ["success"] * 7 + ["failed_to_download"],
        }
    )
    pairs.to_parquet(tmp_path / "pairs.parquet")
    command = [
        sys.executable,
        str(ROOT / "workflow_scripts" / "generate_negatives.py"),
        "--pairs",
        str(tmp_path / "pairs.parquet"),
        "--output",
        str(tmp_path / "n.parquet"),
        "--report",
        str(tmp_path / "r.md"),
        "--generator-set",
        "english",
        "--fill-mask-model",
        str(tiny_masked_lm),
        "--n-process",
        "2",
        "--batch-size",
        "3",
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    table = read_parquet(tmp_path / "n.parquet")
    assert list(table.columns) == ["caption_index", "caption", "negative", "kind", "generator"]
    assert set(table["caption_index"]) <= set(range(7)) and 5 in set(table["caption_index"])
    assert {"fill_mask_object", "replace_noun"} <= set(table["generator"])
    report = (tmp_path / "r.md").read_text()
    assert "generator set english" in report and "fill_mask_object" in report
    assert "## Examples per kind" in report

    command[command.index("--generator-set") + 1] = "synthetic"
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "generate_negatives: error: --fill-mask-model needs --generator-set english"
    )
