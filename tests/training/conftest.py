"""The tiny download's metadata, as a table and as the parquet file the train script reads."""

import pytest

from clipflow.data.metadata import build_metadata
from clipflow.io import write_with


@pytest.fixture(scope="session")
def metadata(tiny_download):
    return build_metadata(tiny_download["shards"])


@pytest.fixture(scope="session")
def metadata_file(metadata, tmp_path_factory):
    path = tmp_path_factory.mktemp("meta") / "pairs.parquet"
    write_with(path, lambda tmp: metadata.to_parquet(tmp, index=False))
    return path
