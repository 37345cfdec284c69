"""Negatives: hard negative captions, CE-CLIP style (algorithms.md §4).

Generators live in :data:`NEGATIVE_GENERATORS`, each making one CE-CLIP kind of negative
(``relation``, ``attribute``, ``object``, ``action``); importing this package registers the
rule-based generators for the synthetic grammar. :func:`generate` serves one caption,
:func:`generate_for_table` a column of them, :func:`negatives_report` summarises the result.
"""

from clipflow.negatives import synthetic as _synthetic  # noqa: F401  (registers its generators)
from clipflow.negatives.generate import (
    KINDS,
    NEGATIVE_COLUMNS,
    NEGATIVE_GENERATORS,
    NegativeGenerator,
    generate,
    generate_for_table,
    read_captions,
    register_generator,
)
from clipflow.negatives.report import negatives_report

__all__ = [
    "KINDS",
    "NEGATIVE_COLUMNS",
    "NEGATIVE_GENERATORS",
    "NegativeGenerator",
    "generate",
    "generate_for_table",
    "negatives_report",
    "read_captions",
    "register_generator",
]
