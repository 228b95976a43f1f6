"""Chunked reading and appending of CSV, JSONL and Parquet, so a file of any size is scored in constant
memory, and a writer that can be cut back to its last finished chunk (resume after an interruption)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from triage_ml.data.io import csv_quoting, table_format
from triage_ml.errors import DataValidationError


def read_chunks(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    """The input in chunks of ``chunk_size`` rows, every cell as read (CSV cells as strings). Lines of a
    JSONL file that are not JSON objects come back as rows whose ``__invalid__`` column says why."""
    fmt = table_format(path)
    if not path.is_file():
        raise DataValidationError("file not found; check the path", source=str(path))
    if fmt == "csv":
        try:
            yield from pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=chunk_size, encoding="utf-8")
        except pd.errors.EmptyDataError:
            raise DataValidationError("the file is empty; it needs a header row", source=str(path)) from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataValidationError(f"cannot be parsed as csv: {str(exc).splitlines()[0]}",
                                      source=str(path)) from None
    elif fmt == "jsonl":
        yield from _jsonl_chunks(path, chunk_size)
    else:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size):
            yield batch.to_pandas()


def _jsonl_chunks(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    records: list[dict[str, Any]] = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    record = {"__invalid__": f"line {lineno} is {type(record).__name__}, not a JSON object"}
            except json.JSONDecodeError as exc:
                record = {"__invalid__": f"line {lineno} is not JSON ({exc.msg})", "__raw__": line[:1000]}
            records.append(record)
            if len(records) == chunk_size:
                yield pd.DataFrame.from_records(records)
                records = []
    if records:
        yield pd.DataFrame.from_records(records)


class ChunkWriter:
    """Appends chunks to a CSV/JSONL file, or to part files of a Parquet output that ``finish`` joins.

    ``position()`` is what a checkpoint records; ``truncate(position)`` cuts the output back to it, so a
    chunk that was half written when the run died is written again, once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format = table_format(path)
        self.parts = path.with_name(path.name + ".parts")
        path.parent.mkdir(parents=True, exist_ok=True)

    def position(self) -> int:
        if self.format == "parquet":
            return len(list(self.parts.glob("part-*.parquet"))) if self.parts.is_dir() else 0
        return self.path.stat().st_size if self.path.exists() else 0

    def truncate(self, position: int) -> None:
        if self.format == "parquet":
            for part in sorted(self.parts.glob("part-*.parquet")) if self.parts.is_dir() else []:
                if int(part.stem.split("-")[1]) >= position:
                    part.unlink()
            return
        if self.path.exists():
            with self.path.open("r+b") as fh:
                fh.truncate(position)

    def write(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        if self.format == "csv":
            frame.to_csv(self.path, mode="a", header=self.position() == 0, index=False, lineterminator="\n",
                         quoting=csv_quoting(frame))  # a chunk with a bare CR is quoted whole
        elif self.format == "jsonl":
            with self.path.open("a", encoding="utf-8") as fh:
                frame.to_json(fh, orient="records", lines=True, force_ascii=False)
        else:
            self.parts.mkdir(parents=True, exist_ok=True)
            part = self.parts / f"part-{self.position():06d}.parquet"
            tmp = part.with_suffix(".tmp")
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
            tmp.replace(part)  # a part is there whole, or not at all

    def finish(self) -> None:
        """Parquet: join the parts into the output file, one part in memory at a time."""
        if self.format != "parquet":
            self.path.touch()
            return
        parts = sorted(self.parts.glob("part-*.parquet")) if self.parts.is_dir() else []
        tmp = self.path.with_name(self.path.name + ".tmp")
        writer = None
        for part in parts:
            table = pq.read_table(part)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table.cast(writer.schema))
        if writer is not None:
            writer.close()
            tmp.replace(self.path)
        shutil.rmtree(self.parts, ignore_errors=True)
