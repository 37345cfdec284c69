"""Data: the synthetic default dataset, download via img2dataset, metadata, loading, samplers."""
