"""Data: registered real datasets, cached tokenization, client partitions."""

from fl_core.data.partition import (
    PartitionError,
    client_test_split,
    label_counts,
    natural_client_test,
    partition,
)
from fl_core.data.sources import (
    DATASETS,
    DataNotInstalledError,
    is_local_dataset,
    load_source,
    register_dataset,
)
from fl_core.data.splits import Splits, TokenizedData, load_splits

__all__ = [
    "DATASETS",
    "DataNotInstalledError",
    "PartitionError",
    "Splits",
    "TokenizedData",
    "client_test_split",
    "is_local_dataset",
    "label_counts",
    "load_source",
    "load_splits",
    "natural_client_test",
    "partition",
    "register_dataset",
]
