"""Mining: HELIP hard pairs (docs/algorithms.md §2) from frozen image and text embeddings.

``embed`` turns (image, caption) pairs into normalised embeddings, ``search`` ranks pairs by
HELIP's product score with an exact or approximate faiss strategy (:data:`MINING_INDEXES`),
``report`` measures recall and score spread; HELIP's file formats are read and written by
``clipflow.helip_formats`` (re-exported here).
"""

from clipflow.helip_formats import (
    read_hard_sample_csv,
    read_hard_sample_dict,
    write_helip_outputs,
)
from clipflow.mining.embed import (
    embed_pairs,
    embed_shards,
    iter_shard_samples,
    load_embeddings,
    read_pairs,
    save_embeddings,
)
from clipflow.mining.report import mining_report, plot_score_histogram
from clipflow.mining.search import (
    MINING_INDEXES,
    hard_pair_scores,
    mine_hard_pairs,
    pair_scores,
    recall_at_k,
)

__all__ = [
    "MINING_INDEXES",
    "embed_pairs",
    "embed_shards",
    "hard_pair_scores",
    "iter_shard_samples",
    "load_embeddings",
    "mine_hard_pairs",
    "mining_report",
    "pair_scores",
    "plot_score_histogram",
    "read_hard_sample_csv",
    "read_hard_sample_dict",
    "read_pairs",
    "recall_at_k",
    "save_embeddings",
    "write_helip_outputs",
]
