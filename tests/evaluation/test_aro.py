"""ARO: VG-Relation / VG-Attribution crops and macro vs micro accuracy, COCO/Flickr-Order
perturbations and Precision@1, all hand-worked, and one-line errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import nltk
import numpy as np
import pytest
from evaluation_fixtures import (
    LookupModel,
    id_preprocess,
    write_id_image,
    write_id_strips,
)

from clipflow.evaluation import BenchmarkDataError, evaluate, get_benchmark
from clipflow.evaluation.perturbations import OrderPerturber, load_tagger, pre_caption

E0, E1, E2 = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]
LEFT, RIGHT, WHOLE = (0, 0, 16, 16), (16, 0, 16, 16), (0, 0, 8, 8)


def write_aro_json(path: Path, records: list[dict]) -> Path:
    """As the released files are: one line, json.dumps defaults, no trailing newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def relation_record(image_id: str, box: tuple, true: str, false: str, relation: str) -> dict:
    """One record of visual_genome_relation.json, keys in the released order."""
    x, y, w, h = box
    return {
        "image_id": image_id,
        "true_caption": true,
        "false_caption": false,
        "relation_info": {"object": "227262", "name": relation},
        "primary_object_id": "227260",
        "primary_object_name": true.split()[1],
        "bbox_x": x,
        "bbox_y": y,
        "bbox_w": w,
        "bbox_h": h,
        "relation_name": relation,
        "image_path": f"{image_id}.jpg",
    }


# (image, box, true caption, false caption, relation); image 2410049 is two 16-px strips, id 0
# then id 1, so only a crop to RIGHT embeds to e1; 2410050 is all id 2.
RELATIONS = [
    ("2410049", LEFT, "the cup is on the table", "the table is on the cup", "on"),  # right
    ("2410049", RIGHT, "the man is on the horse", "the horse is on the man", "on"),  # right
    ("2410050", WHOLE, "the hat is on the man", "the man is on the hat", "on"),  # .71 < 1
    ("2410050", WHOLE, "the book is on the shelf", "the shelf is on the book", "on"),  # right
    ("2410049", RIGHT, "the man is wearing the hat", "the hat is wearing the man", "wearing"),
    ("2410050", WHOLE, "the cat is next to the dog", "the dog is next to the cat", "next to"),
    ("2410050", WHOLE, "the cup is next to the plate", "the plate is next to the cup", "next to"),
]
RELATION_TEXTS = {
    "the cup is on the table": E0,
    "the table is on the cup": E1,
    "the man is on the horse": E1,
    "the horse is on the man": E0,
    "the hat is on the man": [1.0, 0.0, 1.0],
    "the man is on the hat": E2,
    "the book is on the shelf": E2,
    "the shelf is on the book": E0,
    "the man is wearing the hat": E1,
    "the hat is wearing the man": E0,
    "the cat is next to the dog": E2,  # a tie: wrong
    "the dog is next to the cat": E2,
    "the cup is next to the plate": E0,  # wrong
    "the plate is next to the cup": E2,
}


def make_vg_relation(root: Path) -> Path:
    write_id_strips(root / "images" / "2410049.jpg", [0, 1])
    write_id_image(root / "images" / "2410050.jpg", 2)
    write_aro_json(
        root / "visual_genome_relation.json", [relation_record(*row) for row in RELATIONS]
    )
    return root


def run(benchmark: str, root: Path, texts: dict, **options) -> dict[str, float]:
    model = LookupModel([E0, E1, E2], texts)
    return evaluate(benchmark, model, id_preprocess, model.tokenizer, root, **options)


def test_vg_relation_macro_and_micro(tmp_path: Path) -> None:
    metrics = run("aro_vg_relation", make_vg_relation(tmp_path), RELATION_TEXTS)
    # "next to" is in the notebook's symmetric list and dropped: "on" 3/4, "wearing" 1/1.
    # Without the crops, "on" would be 2/4 and "wearing" 0/1.
    assert metrics == pytest.approx({"macro_accuracy": (3 / 4 + 1) / 2, "micro_accuracy": 4 / 5})


def test_vg_relation_keeping_symmetric_relations(tmp_path: Path) -> None:
    metrics = run(
        "aro_vg_relation", make_vg_relation(tmp_path), RELATION_TEXTS, exclude_symmetric=False
    )
    # "next to" 0/2: its tie counts wrong (ARO's argmax over [false, true] picks false).
    assert metrics == pytest.approx(
        {"macro_accuracy": (3 / 4 + 1 + 0) / 3, "micro_accuracy": 4 / 7}
    )


WHITE_BLACK = ("the white cat and the black dog", "the black cat and the white dog")
SMALL_LARGE = ("the small cup and the large plate", "the large cup and the small plate")
RED_BLUE = ("the red car and the blue bus", "the blue car and the red bus")
ATTRIBUTE_TEXTS = {
    **dict.fromkeys([WHITE_BLACK[0], SMALL_LARGE[0], RED_BLUE[0]], E0),
    **dict.fromkeys([WHITE_BLACK[1], SMALL_LARGE[1], RED_BLUE[1]], E1),
}


def attribute_record(image: str, captions: tuple[str, str], attributes: list[str]) -> dict:
    """One record of visual_genome_attribution.json (the fields ARO's loader and others read)."""
    x, y, w, h = WHOLE
    return {
        "image_id": image,
        "true_caption": captions[0],
        "false_caption": captions[1],
        "obj1_name": captions[0].split()[2],
        "obj2_name": captions[0].split()[-1],
        "attributes": attributes,
        "bbox_x": x,
        "bbox_y": y,
        "bbox_w": w,
        "bbox_h": h,
        "image_path": f"{image}.jpg",
    }


def make_vg_attribution(root: Path) -> Path:
    # On image 1 (e1) the false caption wins. white_black: 20 right of 25; small_large: 21 of
    # 30; red_blue: 24 of 24, but fewer than 25 items.
    write_id_image(root / "images" / "1.jpg", 0)
    write_id_image(root / "images" / "2.jpg", 1)
    plan = [
        (WHITE_BLACK, ["white", "black"], 20, 5),
        (SMALL_LARGE, ["small", "large"], 21, 9),
        (RED_BLUE, ["red", "blue"], 24, 0),
    ]
    records = [
        attribute_record(image, captions, attributes)
        for captions, attributes, right, wrong in plan
        for image in ["1"] * right + ["2"] * wrong
    ]
    write_aro_json(root / "visual_genome_attribution.json", records)
    return root


def test_vg_attribution_drops_classes_under_25(tmp_path: Path) -> None:
    metrics = run("aro_vg_attribution", make_vg_attribution(tmp_path), ATTRIBUTE_TEXTS)
    assert metrics == pytest.approx(
        {"macro_accuracy": (0.8 + 0.7) / 2, "micro_accuracy": (20 + 21) / 55}
    )


def test_vg_attribution_min_class_size_option(tmp_path: Path) -> None:
    metrics = run(
        "aro_vg_attribution", make_vg_attribution(tmp_path), ATTRIBUTE_TEXTS, min_class_size=1
    )
    assert metrics == pytest.approx(
        {"macro_accuracy": (0.8 + 0.7 + 1) / 3, "micro_accuracy": (20 + 21 + 24) / 79}
    )


def test_vg_attribution_with_no_class_left_names_the_file(tmp_path: Path) -> None:
    root = make_vg_attribution(tmp_path)
    with pytest.raises(BenchmarkDataError) as error:
        run("aro_vg_attribution", root, ATTRIBUTE_TEXTS, min_class_size=31)
    assert str(error.value) == (
        f"{root / 'visual_genome_attribution.json'}: classes: "
        "none of 3 is left with >= 31 items after dropping 0 excluded"
    )


@pytest.mark.parametrize(
    ("benchmark", "edit", "field", "problem"),
    [
        ("aro_vg_relation", lambda r: r[1].pop("bbox_w"), "[1].bbox_w", "missing"),
        (
            "aro_vg_relation",
            lambda r: r[0].update(bbox_x="42"),
            "[0].bbox_x",
            "expected a number >= 0, got '42'",
        ),
        ("aro_vg_relation", lambda r: r[2].pop("false_caption"), "[2].false_caption", "missing"),
        ("aro_vg_relation", lambda r: r[3].pop("relation_name"), "[3].relation_name", "missing"),
        (
            "aro_vg_attribution",
            lambda r: r[0].update(attributes=["white"]),
            "[0].attributes",
            "expected 2 strings, got ['white']",
        ),
    ],
)
def test_malformed_vg_record_is_one_line(tmp_path, benchmark, edit, field, problem) -> None:
    relation = benchmark == "aro_vg_relation"
    root = make_vg_relation(tmp_path) if relation else make_vg_attribution(tmp_path)
    path = root / ("visual_genome_relation.json" if relation else "visual_genome_attribution.json")
    records = json.loads(path.read_text())
    edit(records)
    write_aro_json(path, records)
    texts = RELATION_TEXTS if relation else ATTRIBUTE_TEXTS
    with pytest.raises(BenchmarkDataError) as error:
        run(benchmark, root, texts)
    assert str(error.value) == f"{path}: {field}: {problem}"


def test_missing_vg_file_and_image(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkDataError, match=r"visual_genome_attribution\.json: file: not"):
        run("aro_vg_attribution", tmp_path, ATTRIBUTE_TEXTS)
    root = make_vg_relation(tmp_path)
    (root / "images" / "2410050.jpg").unlink()
    with pytest.raises(BenchmarkDataError, match=r"\[2\]\.image_path: image file not found"):
        run("aro_vg_relation", root, RELATION_TEXTS)


# COCO-Order. Image 0 embeds to e0, image 1 to e1 (2-d); any caption not listed here (every
# perturbation that differs from its original) embeds to (.6, .8).
ORDER_CAPTIONS = {
    "val2014/COCO_val2014_000000391895.jpg": {
        "A small dog chases a red ball.": [1.0, 0.0],  # 1 > .6: right
        "Two horses graze in a green field.": [0.0, 1.0],  # 0 < .6: wrong
        "Dog.": [0.0, 1.0],  # every perturbation is "dog" too: ties, right
    },
    "val2014/COCO_val2014_000000522418.jpg": {
        "A man riding a wave on top of a surfboard.": [0.8, 0.6],  # .6 < .8: wrong
        "People walk down the street.": [0.0, 1.0],  # 1 > .8: right
    },
}


def make_order(root: Path, name: str, captions: dict[str, dict[str, list[float]]]) -> Path:
    for i, image in enumerate(captions):
        write_id_image(root / image, i)
    records = [{"image": image, "caption": list(texts)} for image, texts in captions.items()]
    write_aro_json(root / name, records)
    return root


def order_model(captions: dict[str, dict[str, list[float]]]) -> LookupModel:
    texts = {pre_caption(t): v for per_image in captions.values() for t, v in per_image.items()}
    return LookupModel([[1.0, 0.0], [0.0, 1.0]], texts, default_text=[0.6, 0.8])


def test_coco_order_precision_at_1(tmp_path: Path) -> None:
    root = make_order(tmp_path, "coco_karpathy_test.json", ORDER_CAPTIONS)
    model = order_model(ORDER_CAPTIONS)
    metrics = evaluate("aro_coco_order", model, id_preprocess, model.tokenizer, root)
    assert metrics == pytest.approx({"Precision@1": 3 / 5})


def test_flickr_order_reads_flickr30k_test_json(tmp_path: Path) -> None:
    captions = {
        "flickr30k-images/1000092795.jpg": {
            "Two young guys with shaggy hair look at their hands while hanging out in the yard.": [
                1.0,
                0.0,
            ],
            "Two friends enjoy time spent together.": [0.0, 1.0],
        }
    }
    model = order_model(captions)
    with pytest.raises(BenchmarkDataError, match=r"flickr30k_test\.json: file: not found"):
        evaluate("aro_flickr_order", model, id_preprocess, model.tokenizer, tmp_path)
    root = make_order(tmp_path, "flickr30k_test.json", captions)
    metrics = evaluate("aro_flickr_order", model, id_preprocess, model.tokenizer, root)
    assert metrics == pytest.approx({"Precision@1": 1 / 2})


def test_order_file_errors_are_one_line(tmp_path: Path) -> None:
    root = make_order(tmp_path, "coco_karpathy_test.json", ORDER_CAPTIONS)
    model = order_model(ORDER_CAPTIONS)
    path = root / "coco_karpathy_test.json"
    records = json.loads(path.read_text())
    records[1]["caption"] = "People walk down the street."
    write_aro_json(path, records)
    with pytest.raises(BenchmarkDataError) as error:
        evaluate("aro_coco_order", model, id_preprocess, model.tokenizer, root)
    assert str(error.value) == f"{path}: [1].caption: expected a non-empty list"


def test_pre_caption_is_aros() -> None:
    assert pre_caption(' A man (left) rides: a "horse"!!  \n') == "a man left rides a horse"
    assert pre_caption("one two three four", max_words=3) == "one two three"


CAPTIONS = [
    "A small dog chases a red ball.",
    "A man with a red helmet on a small moped on a dirt road. ",
    "Two people in t-shirts, one wearing a hat!",
    "Dog.",
    'A man\'s hat,  on the 2nd floor of a "red" barn',
]


class AroTextShuffler:
    """ARO's ``TextShuffler`` (``dataset_zoo/perturbations.py``), re-typed: its spaCy pipeline,
    the global generators that ``seed_all`` seeds, ``nltk.word_tokenize`` for the trigrams
    (without Punkt's sentence split, which needs downloaded data)."""

    def __init__(self, nlp) -> None:
        self.nlp = nlp

    def shuffle_nouns_and_adj(self, ex):
        doc = self.nlp(ex)
        tokens = [token.text for token in doc]
        text = np.array(tokens)
        noun_idx = [i for i, token in enumerate(doc) if token.tag_ in ["NN", "NNS", "NNP", "NNPS"]]
        adjective_idx = [i for i, token in enumerate(doc) if token.tag_ in ["JJ", "JJR", "JJS"]]
        text[noun_idx] = np.random.permutation(text[noun_idx])
        text[adjective_idx] = np.random.permutation(text[adjective_idx])
        return " ".join(text)

    def shuffle_allbut_nouns_and_adj(self, ex):
        doc = self.nlp(ex)
        tokens = [token.text for token in doc]
        text = np.array(tokens)
        noun_adj_idx = [
            i
            for i, token in enumerate(doc)
            if token.tag_ in ["NN", "NNS", "NNP", "NNPS", "JJ", "JJR", "JJS"]
        ]
        else_idx = np.ones(text.shape[0])
        else_idx[noun_adj_idx] = 0
        else_idx = else_idx.astype(bool)
        text[else_idx] = np.random.permutation(text[else_idx])
        return " ".join(text)

    def get_trigrams(self, sentence):
        trigrams = []
        trigram = []
        for i in range(len(sentence)):
            trigram.append(sentence[i])
            if i % 3 == 2:
                trigrams.append(trigram[:])
                trigram = []
        if trigram:
            trigrams.append(trigram)
        return trigrams

    def trigram_shuffle(self, sentence):
        trigrams = self.get_trigrams(sentence)
        for trigram in trigrams:
            random.shuffle(trigram)
        return " ".join([" ".join(trigram) for trigram in trigrams])

    def shuffle_within_trigrams(self, ex):
        tokens = nltk.word_tokenize(ex, preserve_line=True)
        return self.trigram_shuffle(tokens)

    def shuffle_trigrams(self, ex):
        tokens = nltk.word_tokenize(ex, preserve_line=True)
        trigrams = self.get_trigrams(tokens)
        random.shuffle(trigrams)
        return " ".join([" ".join(trigram) for trigram in trigrams])


def aro_perturbations(seed: int, captions: list[str]) -> list[list[str]]:
    """What ``COCO_Order`` builds after ``seed_all(seed)``: per caption, the four shuffles."""
    shuffler = AroTextShuffler(load_tagger())
    functions = [
        shuffler.shuffle_nouns_and_adj,
        shuffler.shuffle_allbut_nouns_and_adj,
        shuffler.shuffle_within_trigrams,
        shuffler.shuffle_trigrams,
    ]
    states = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        return [[function(caption) for function in functions] for caption in captions]
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])


def test_perturbations_follow_aros_random_streams() -> None:
    for seed in (1, 2):
        assert OrderPerturber(seed).perturb(CAPTIONS) == aro_perturbations(seed, CAPTIONS)


def test_trigram_shuffles_split_words_as_nltk() -> None:
    # spaCy splits "t-shirts" in three and keeps "  " as a token; NLTK keeps "t-shirts" whole
    # and drops the spaces, so the trigrams (and how many draws they take) are ARO's. Each
    # trigram shuffle keeps NLTK's tokens, and "mat." keeps its period (no Punkt split).
    captions = ["Two people in t-shirts, one wearing a hat!", "A cat  on a mat. A dog."]
    [[*_, within, trigrams], [*_, within_2, trigrams_2]] = OrderPerturber(seed=1).perturb(captions)
    assert within == "people in Two one t-shirts , wearing hat a !"
    assert trigrams == "Two people in t-shirts , one wearing a hat !"  # drew the same order
    assert within_2 == "cat on A A a mat. dog ."
    assert trigrams_2 == "dog . A cat on a mat. A"


def test_perturbations_move_only_their_words() -> None:
    caption = "A brown dog chases a big red ball."
    doc = load_tagger()(caption)
    tokens, tags = [t.text for t in doc], [t.tag_ for t in doc]
    assert tokens == ["A", "brown", "dog", "chases", "a", "big", "red", "ball", "."]
    nouns = [i for i, tag in enumerate(tags) if tag.startswith("NN")]
    adjectives = [i for i, tag in enumerate(tags) if tag.startswith("JJ")]
    others = [i for i in range(len(tokens)) if i not in nouns + adjectives]
    assert nouns and len(adjectives) == 3  # brown, big, red
    [perturbed] = OrderPerturber(seed=3).perturb([caption])
    shuffled_nouns_adj, shuffled_others, within, trigrams = (t.split(" ") for t in perturbed)

    def at(words: list[str], positions: list[int]) -> list[str]:
        return [words[i] for i in positions]

    for words in (shuffled_nouns_adj, shuffled_others, within, trigrams):
        assert sorted(words) == sorted(tokens)
    assert at(shuffled_nouns_adj, others) == at(tokens, others)
    assert sorted(at(shuffled_nouns_adj, nouns)) == sorted(at(tokens, nouns))
    assert at(shuffled_others, nouns + adjectives) == at(tokens, nouns + adjectives)
    for start in (0, 3, 6):
        assert sorted(within[start : start + 3]) == sorted(tokens[start : start + 3])
    blocks = [" ".join(trigrams[i : i + 3]) for i in (0, 3, 6)]
    assert sorted(blocks) == sorted(" ".join(tokens[i : i + 3]) for i in (0, 3, 6))
    # Seeded: the same seed gives the same perturbations, another seed other ones.
    assert OrderPerturber(seed=3).perturb([caption]) == [perturbed]
    assert OrderPerturber(seed=4).perturb([caption]) != [perturbed]


def test_registered_tasks_and_options() -> None:
    for name in ("aro_vg_relation", "aro_vg_attribution", "aro_coco_order", "aro_flickr_order"):
        assert get_benchmark(name).task == "image_caption_selection"
    assert get_benchmark("aro_flickr_order").option_names() == [
        "annotation",
        "image_root",
        "split",
        "seed",
        "max_words",
    ]


def test_embedding_cache_is_keyed_by_the_crops(tmp_path: Path) -> None:
    root = make_vg_relation(tmp_path / "aro")
    cache = tmp_path / "cache"
    first = run("aro_vg_relation", root, RELATION_TEXTS, embedding_cache=cache)
    assert first == run("aro_vg_relation", root, RELATION_TEXTS, embedding_cache=cache)
    path = root / "visual_genome_relation.json"
    records = json.loads(path.read_text())
    for record in records:
        if record["image_id"] == "2410049":  # swap LEFT and RIGHT crops: items 1, 2, 5 flip
            record["bbox_x"] = 16 - record["bbox_x"]
    write_aro_json(path, records)
    # Now "on" is 1/4 (only the WHOLE-image book) and "wearing" 0/1; stale crops would repeat
    # the first result.
    assert run("aro_vg_relation", root, RELATION_TEXTS, embedding_cache=cache) == pytest.approx(
        {"macro_accuracy": (1 / 4 + 0) / 2, "micro_accuracy": 1 / 5}
    )
