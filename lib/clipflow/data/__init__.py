"""Data: the synthetic default dataset, real sources (``sources``, ``ingest``), download via
img2dataset, metadata and loading (batch samplers are ``clipflow.sampling``)."""
