"""CE-CLIP's fill-mask step (docs/algorithms.md §4): a masked language model proposes the new word.

The released CE-CLIP code masks a noun, adjective or verb of the caption and lets RoBERTa fill
it in. Here the model is loaded from a local path (``negatives.fill_mask.model``; no hub can be
reached, dependencies.md) with ``transformers``' ``AutoModelForMaskedLM``/``AutoTokenizer``.
One generator per kind (``fill_mask_object``, ``fill_mask_attribute``, ``fill_mask_action``)
targets the same words as the WordNet rules (:data:`clipflow.negatives.english.POSITIONS`),
masks each in turn (one batch per caption), and keeps the model's top-``top_k`` predictions that
are a plain lower-case word WordNet knows in the same part of speech, and neither the word, its
base form nor a WordNet synonym of it: a synonym-only rewrite is no negative (§4). The first
kept prediction (model order) of each masked word comes first; the seed orders the words.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clipflow.negatives import nlp
from clipflow.negatives.english import PER_WORD, POSITIONS, WORDNET_POS, interleave
from clipflow.negatives.generate import NegativeGenerator, check_kind
from clipflow.negatives.nlp import Parse

FILL_MASK_KINDS: tuple[str, ...] = tuple(POSITIONS)  # object, attribute, action
# Penn tag -> does a predicted word (with WordNet base form) have that form?
_FORM_FITS = {
    "NN": lambda word, base: word == base,
    "NNS": lambda word, base: word != base,
    "VBG": lambda word, base: word.endswith("ing"),
    "VBZ": lambda word, base: word.endswith("s"),
}


@functools.cache
def load_masked_lm(path: str) -> tuple[Any, Any]:
    """(tokenizer, model in eval mode) of the local masked LM at ``path``, once per process."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tokenizer.mask_token is None:
        raise ValueError(f"fill-mask model {path}: its tokenizer has no mask token")
    model = AutoModelForMaskedLM.from_pretrained(path, local_files_only=True).eval()
    return tokenizer, model


@dataclass(frozen=True)
class FillMask:
    """A fill-mask generator function for one kind; picklable (a path, not a model)."""

    model: str
    kind: str
    top_k: int = 20

    def masked_texts(self, parsed: Parse, positions: list[int]) -> list[str]:
        """The caption with the word at each of ``positions`` replaced by the mask token."""
        mask = load_masked_lm(self.model)[0].mask_token
        texts = []
        for position in positions:
            edited = nlp.tokens(parsed)
            edited[position].text = mask
            texts.append("".join(t.text + t.ws for t in edited).strip())
        return texts

    def valid(self, original: str, tag: str, predicted: str) -> bool:
        """A different plain word of the same part of speech and form (``tag``), no synonym.

        The form check is coarse (a plural noun for NNS, an -ing form for VBG, ...): enough
        to keep a real model's "A dog chase a cat" out, not a morphological analysis.
        """
        pos = WORDNET_POS[self.kind]
        original = original.lower()
        if not (nlp.is_plain_word(predicted) and predicted.islower()) or predicted == original:
            return False
        base = nlp.base_form(predicted, pos)
        return (
            base is not None
            and _FORM_FITS.get(tag, lambda word, base: True)(predicted, base)
            and base != nlp.base_form(original, pos)
            and predicted not in nlp.synonyms(original, pos)
        )

    def predictions(self, texts: list[str]) -> list[list[str]]:
        """The ``top_k`` words the model puts at the mask of each text, best first."""
        import torch

        tokenizer, model = load_masked_lm(self.model)
        batch = tokenizer(texts, return_tensors="pt", padding=True, truncation=True)
        with torch.inference_mode():
            logits = model(**batch).logits
        found = []
        for row in range(len(texts)):
            at = (batch["input_ids"][row] == tokenizer.mask_token_id).nonzero().flatten()
            if len(at) != 1:  # truncated away (or split): nothing to fill in
                found.append([])
                continue
            top = logits[row, int(at[0])].topk(min(self.top_k, logits.shape[-1])).indices
            found.append([tokenizer.decode([int(t)]).strip() for t in top])
        return found

    def __call__(self, caption: str, rng: random.Random) -> list[str]:
        parsed = nlp.parse(caption)
        positions = POSITIONS[self.kind](parsed)
        rng.shuffle(positions)
        if not positions:
            return []
        per_word = []
        for position, words in zip(
            positions, self.predictions(self.masked_texts(parsed, positions)), strict=True
        ):
            original, tag = parsed.words[position].text, parsed.words[position].tag
            kept = [w for w in dict.fromkeys(words) if self.valid(original, tag, w)][:PER_WORD]
            per_word.append([nlp.replace_word(parsed, position, w) for w in kept])
        return interleave(per_word)


def fill_mask_generators(
    model: str | Path, top_k: int = 20, kinds: tuple[str, ...] = FILL_MASK_KINDS
) -> list[NegativeGenerator]:
    """Generators ``fill_mask_<kind>`` (English set) filling in with the masked LM at ``model``.

    Pass them to :func:`~clipflow.negatives.generate` through ``generators`` (alone, or with the
    English set's). The model loads on first use, once per process.
    """
    if not Path(model).is_dir():
        raise FileNotFoundError(f"fill-mask model {model}: no such directory")
    if top_k < 1:
        raise ValueError(f"fill-mask top_k must be >= 1, got {top_k}")
    made = []
    for kind in kinds:
        check_kind(f"fill_mask_{kind}", kind)
        if kind not in POSITIONS:
            raise ValueError(f"fill-mask kinds are {', '.join(FILL_MASK_KINDS)}, not {kind!r}")
        made.append(
            NegativeGenerator(
                f"fill_mask_{kind}",
                kind,
                FillMask(str(model), kind, top_k),
                family="english",
                prepare=nlp.prepare,
            )
        )
    return made
