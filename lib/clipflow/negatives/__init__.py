"""Negatives: hard negative captions, CE-CLIP style (docs/algorithms.md §4).

Generators live in :data:`NEGATIVE_GENERATORS`, each making one CE-CLIP kind of negative
(``relation``, ``attribute``, ``object``, ``action``) and belonging to one set: importing this
package registers the ``synthetic`` set (rules for the synthetic grammar, the default) and the
``english`` set (spaCy + WordNet rules for real captions; spaCy and WordNet load on first use).
:func:`fill_mask_generators` makes CE-CLIP's fill-mask generators from a local masked-LM path.
:func:`generate` serves one caption, :func:`generate_for_table` a column of them,
:func:`negatives_report` summarises the result.
"""

from clipflow.negatives import english as _english  # noqa: F401  (registers its generators)
from clipflow.negatives import synthetic as _synthetic  # noqa: F401  (registers its generators)
from clipflow.negatives.fill_mask import fill_mask_generators
from clipflow.negatives.generate import (
    DEFAULT_SET,
    KINDS,
    NEGATIVE_COLUMNS,
    NEGATIVE_GENERATORS,
    NegativeGenerator,
    generate,
    generate_for_table,
    generator_set,
    generator_sets,
    read_captions,
    register_generator,
)
from clipflow.negatives.report import negatives_report

__all__ = [
    "DEFAULT_SET",
    "KINDS",
    "NEGATIVE_COLUMNS",
    "NEGATIVE_GENERATORS",
    "NegativeGenerator",
    "fill_mask_generators",
    "generate",
    "generate_for_table",
    "generator_set",
    "generator_sets",
    "negatives_report",
    "read_captions",
    "register_generator",
]
