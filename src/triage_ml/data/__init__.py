"""Labeled-message data: the file contract, readers and importers."""

from triage_ml.data.io import read_table, write_table
from triage_ml.data.schema import LABEL_COLUMNS, dataset_hash, load_labeled, validate_labeled

__all__ = ["LABEL_COLUMNS", "dataset_hash", "load_labeled", "read_table", "validate_labeled", "write_table"]
