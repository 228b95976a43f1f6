"""Read and write tables (CSV, JSONL, Parquet) with pandas, turning every failure into one clear line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd

from triage_ml.errors import DataValidationError, UnsupportedFormatError

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def table_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UnsupportedFormatError(
            f"{path}: unsupported file type '{path.suffix or '(none)'}'; use .csv, .jsonl or .parquet")
    return fmt


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a whole table. CSV cells are read as strings so that validation sees exactly what is written."""
    path = Path(path)
    fmt = table_format(path)
    if not path.is_file():
        raise DataValidationError("file not found; check the path", source=str(path))
    try:
        if fmt == "csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        if fmt == "jsonl":
            return _read_jsonl(path)
        return pd.read_parquet(path)
    except DataValidationError:
        raise
    except UnicodeDecodeError as exc:
        raise DataValidationError(f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8",
                                  source=str(path)) from None
    except pd.errors.EmptyDataError:
        raise DataValidationError("the file is empty; it needs a header row and at least one message",
                                  source=str(path)) from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataValidationError(f"cannot be parsed as {fmt}: {first_line}", source=str(path)) from None


def _read_jsonl(path: Path) -> pd.DataFrame:
    records = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataValidationError(f"invalid JSON ({exc.msg}); each line must be one JSON object",
                                          source=str(path), row=lineno) from None
            if not isinstance(record, dict):
                raise DataValidationError("each line must be a JSON object like {\"text\": ...}",
                                          source=str(path), row=lineno)
            records.append(record)
    if not records:
        raise DataValidationError("the file has no records", source=str(path))
    return pd.DataFrame.from_records(records)


def csv_quoting(df: pd.DataFrame) -> int:
    """Quote every cell when any holds a carriage return. The csv writer quotes a cell with a newline, a comma
    or a quote, but not one with a bare CR, which readers (pandas, spreadsheets) take for the end of a row."""
    text = df.select_dtypes(include=["object", "string"])
    has_cr = any(text[c].map(lambda v: isinstance(v, str) and "\r" in v).any() for c in text.columns)
    return csv.QUOTE_ALL if has_cr else csv.QUOTE_MINIMAL


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a table in the format its extension names; parent folders are created."""
    path = Path(path)
    fmt = table_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        df.to_csv(path, index=False, lineterminator="\n", quoting=csv_quoting(df))
    elif fmt == "jsonl":
        df.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        df.to_parquet(path, index=False)
    return path
