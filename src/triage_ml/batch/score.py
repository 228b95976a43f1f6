"""``triage-ml score-batch``: a file of messages of any size scored in constant memory, with the API's
fields, resumable after an interruption, and every row that fails validation written to a reject file.

A checkpoint beside the output (``<output>.progress.json``) records, after each finished chunk, how far
the input was read and where the output and reject files ended. A new run with the same input, model
version and chunk size starts from there; anything written after the last checkpoint is cut off first,
so no row is written twice and none is lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError
from tqdm.auto import tqdm

from triage_ml.batch.files import ChunkWriter, read_chunks
from triage_ml.errors import ConfigError
from triage_ml.messages import FIELDS, STRING_FIELDS, Message, MessageIn
from triage_ml.routing import EscalationMap
from triage_ml.scoring import LoadedModel, ScoredMessage, route_for, score
from triage_ml.taxonomy import parse_yes_no
from triage_ml.thread import REPLY_COLUMNS

ID_FIELDS = ("message_id", *STRING_FIELDS)  # read as text when a file's reader saw numbers

OUTPUT = {"row": "Int64", "message_id": "string", "actionable": "boolean", "actionable_prob": "Float64",
          "priority_tier": "Int64", "tier1_prob": "Float64", "tier2_prob": "Float64", "crisis_risk": "Float64",
          "crisis": "boolean", "crisis_kind": "string", "crisis_kind_prob": "Float64", "route_action": "string",
          "route_team": "string", "route_rule": "string", "route_sign_off": "string", "explanation": "string",
          "terms": "string", "topics": "string", "language": "string", "language_confidence": "Float64",
          "low_confidence": "boolean", "thread_used": "boolean", "sentiment": "string", "model_version": "string"}
# optional input columns (thread.REPLY_COLUMNS): the turn a row answers, its text and who wrote it, as in_reply_to
_REPLY_KEYS = dict(zip(REPLY_COLUMNS, ("text", "from"), strict=True))


@dataclass
class Progress:
    """What the checkpoint holds (and the final report)."""

    input: str
    input_digest: str
    model: str
    chunk_size: int
    chunks: int = 0
    rows_read: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    output_position: int = 0
    rejects_position: int = 0
    seconds: float = 0.0
    done: bool = False
    repeated: int = 0  # rows whose text this run had scored already
    peak_rss_mb: float = 0.0
    peak_rss_mb_early: float = 0.0  # after the first 5 chunks: constant memory keeps the end close to it


def file_digest(path: Path) -> str:
    """Identity of the input: size, modification time and the first and last MiB."""
    stat = path.stat()
    digest = hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    with path.open("rb") as fh:
        digest.update(fh.read(1 << 20))
        if stat.st_size > 1 << 20:
            fh.seek(-(1 << 20), 2)
            digest.update(fh.read())
    return digest.hexdigest()[:32]


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    return value.item() if hasattr(value, "item") else value


def parse_row(record: dict[str, Any], text_column: str) -> tuple[Message | None, str | None]:
    """A record -> a message, or the reason it was refused (naming the field and the fix)."""
    invalid = _cell(record.get("__invalid__"))  # the JSONL reader's note on a line that is not a record
    if invalid is not None:
        return None, str(invalid)
    values = {"text": _cell(record.get(text_column))}
    for name in FIELDS:
        value = _cell(record.get(name))
        if isinstance(value, str) and value == "":
            value = None
        if name == "is_private" and isinstance(value, str):
            with contextlib.suppress(ValueError):  # left as it is, the message's check names the field
                value = parse_yes_no(value)
        if name in ID_FIELDS and isinstance(value, int | float):
            value = str(value)
        values[name] = value
    if values["text"] is None:
        return None, f"{text_column}: missing; every row needs the message's text"
    if not isinstance(values["text"], str):
        values["text"] = str(values["text"])
    reply = {key: _cell(record.get(column)) for column, key in _REPLY_KEYS.items()}
    if reply["text"] not in (None, ""):
        values["in_reply_to"] = {k: v for k, v in reply.items() if v not in (None, "")}
    try:
        return MessageIn.model_validate(values).to_message(), None
    except ValidationError as exc:
        problems = []
        columns = {f"in_reply_to.{key}": column for column, key in _REPLY_KEYS.items()}
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "row"
            field = text_column if field == "text" else columns.get(field, field)
            problems.append(f"{field}: {str(err['msg']).removeprefix('Value error, ')}")
        return None, "; ".join(problems)


class TextMemo:
    """Results per distinct text, most recently used kept (at most ``size``): a backlog of social posts
    repeats itself (retweets, copy-paste complaints, spam), and a repeated text is scored once per run.
    Only what depends on the text (and the turn it answers) is kept; the route, which also reads the message's author,
    channel and brand, is worked out again for every row."""

    def __init__(self, loaded: LoadedModel, routes: EscalationMap, size: int = 20_000) -> None:
        self.loaded, self.routes, self.size = loaded, routes, size
        self._memo: OrderedDict[tuple, ScoredMessage] = OrderedDict()
        self.hits = 0

    def score(self, messages: list[Message]) -> list[ScoredMessage]:
        keys = [_memo_key(m) for m in messages]
        new = {k: m for k, m in zip(keys, messages, strict=True) if k not in self._memo}
        fresh = dict(zip(new, score(self.loaded, self.routes, [Message(text=m.text, thread=m.thread)
                                                               for m in new.values()]), strict=True))
        out = []
        for m, key in zip(messages, keys, strict=True):
            known = self._memo.get(key)
            if known is None:
                known = fresh[key]
            else:
                self.hits += 1
            self._memo[key] = known
            self._memo.move_to_end(key)
            route = route_for(self.routes, m, actionable=known.actionable, priority_tier=known.priority_tier,
                              crisis=known.crisis, topics=list(known.topics),
                              crisis_kind=known.crisis_kind.kind if known.crisis_kind else None)
            out.append(replace(known, message_id=m.message_id, route=route))
        while len(self._memo) > self.size:
            self._memo.popitem(last=False)
        return out


def _memo_key(message: Message) -> tuple:
    """What a result depends on besides the route: the text, and the turn it answers when one was given."""
    answered = message.thread.answered if message.thread else None
    return (message.text,) if answered is None else (message.text, answered.text, answered.speaker)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB.

    Linux's ``VmHWM`` first: ``ru_maxrss`` carries the parent's resident set over fork and exec, so a command
    started by a large process (a test runner holding a model) would report the parent's peak as its own."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def result_rows(rows: list[int], results: list[ScoredMessage], version: str) -> pd.DataFrame:
    """Results flattened to the output's columns (OUTPUT): ``ScoredMessage.flat`` and the explanation."""
    records = []
    for row, r in zip(rows, results, strict=True):
        explanation = r.explanation or {}
        records.append({"row": row, **r.flat(), "explanation": explanation.get("summary"),
                        "terms": "; ".join(explanation.get("terms", ())), "topics": "; ".join(r.topics),
                        "model_version": version})
    return pd.DataFrame(records, columns=list(OUTPUT)).astype(OUTPUT)


def _reject_rows(rows: list[int], reasons: list[str], records: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame({"row": rows, "reason": reasons,
                         "record": [json.dumps({k: _cell(v) for k, v in r.items()}, default=str, ensure_ascii=False)
                                    for r in records]}).astype({"row": "Int64", "reason": "string",
                                                                "record": "string"})


def score_file(source: Path, output: Path, loaded: LoadedModel, routes: EscalationMap, *, rejects: Path | None = None,
               chunk_size: int = 2000, text_column: str = "text", restart: bool = False, progress: bool = True,
               on_chunk: Callable[[Progress], None] | None = None) -> Progress:
    """Score ``source`` into ``output`` (CSV/JSONL/Parquet by extension). Returns the final Progress."""
    checkpoint = Checkpoint(output, rejects or output.with_name(f"{output.stem}.rejects.jsonl"))
    state = checkpoint.start(Progress(str(source.resolve()), file_digest(source), f"{loaded.name} v{loaded.version}",
                                      chunk_size), restart=restart)
    if state.done:
        return state
    bar = tqdm(total=None, desc="scoring", unit="msg", disable=not progress, initial=state.rows_read)
    start = time.perf_counter() - state.seconds
    memo = TextMemo(loaded, routes)
    for index, chunk in enumerate(read_chunks(source, chunk_size)):
        if index < state.chunks:
            continue  # finished before the interruption
        records = chunk.to_dict(orient="records")
        parsed = _parse_chunk(records, state.rows_read + 1, text_column)
        if parsed.messages:
            hits = memo.hits
            checkpoint.writer.write(result_rows(parsed.rows, memo.score(parsed.messages), loaded.version))
            state.repeated += memo.hits - hits
        if parsed.bad_rows:
            checkpoint.reject_writer.write(_reject_rows(parsed.bad_rows, parsed.reasons, parsed.bad_records))
        state.chunks = index + 1
        state.rows_read += len(records)
        state.rows_scored += len(parsed.messages)
        state.rows_rejected += len(parsed.bad_rows)
        state.seconds = time.perf_counter() - start
        state.peak_rss_mb = peak_rss_mb()
        if state.chunks <= 5:
            state.peak_rss_mb_early = state.peak_rss_mb
        checkpoint.save(state)
        bar.update(len(records))
        bar.set_postfix(msgs_per_s=f"{state.rows_read / max(state.seconds, 1e-9):.0f}", rejected=state.rows_rejected)
        if on_chunk is not None:
            on_chunk(state)
    bar.close()
    checkpoint.finish(state)
    return state


@dataclass
class _Chunk:
    """One chunk's rows: the messages to score (and their row numbers), the refused rows and why."""

    messages: list[Message] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    bad_rows: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    bad_records: list[dict[str, Any]] = field(default_factory=list)


def _parse_chunk(records: list[dict[str, Any]], first_row: int, text_column: str) -> _Chunk:
    chunk = _Chunk()
    for offset, record in enumerate(records):
        message, reason = parse_row(record, text_column)
        if message is None:
            chunk.bad_rows.append(first_row + offset)
            chunk.reasons.append(str(reason))
            chunk.bad_records.append(record)
        else:
            chunk.messages.append(message)
            chunk.rows.append(first_row + offset)
    return chunk


class Checkpoint:
    """Where a run stands: ``<output>.progress.json``, saved after every chunk (whole, or the previous one stays),
    with the output and rejects files' positions, so an interrupted run resumes after its last chunk."""

    def __init__(self, output: Path, rejects: Path) -> None:
        self.output, self.rejects = output, rejects
        self.path = output.with_name(output.name + ".progress.json")
        self.writer, self.reject_writer = ChunkWriter(output), ChunkWriter(rejects)

    def start(self, fresh: Progress, *, restart: bool) -> Progress:
        """The saved progress of an unfinished run of the same input, model and chunk size (a finished one is
        returned as it is), else ``fresh``; the files are cut back to where that progress ends. ConfigError when
        another run's checkpoint or an output file is in the way and ``restart`` is not set."""
        state = fresh
        if self.path.is_file() and not restart:
            saved = Progress(**json.loads(self.path.read_text()))
            if (saved.input_digest, saved.model, saved.chunk_size) != (fresh.input_digest, fresh.model,
                                                                       fresh.chunk_size):
                raise ConfigError(f"{self.output}: an unfinished run of another input, model or chunk size left "
                                  f"{self.path.name}; use --restart to start over (or another --out)")
            if saved.done:
                return saved
            state = saved
        elif (self.output.exists() or self.writer.parts.exists()) and not restart:
            raise ConfigError(f"{self.output} exists; use --restart to overwrite it (or another --out)")
        else:
            state.output_position = state.rejects_position = 0
        self.writer.truncate(state.output_position)
        self.reject_writer.truncate(state.rejects_position)
        if state.output_position == 0 and self.output.exists() and self.writer.format != "parquet":
            self.output.unlink()
        if state.rejects_position == 0 and self.rejects.exists():
            self.rejects.unlink()
        return state

    def save(self, state: Progress) -> None:
        """Record ``state`` after a chunk, with where the files end now."""
        state.output_position, state.rejects_position = self.writer.position(), self.reject_writer.position()
        self._write(state)

    def _write(self, state: Progress) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state)))
        tmp.replace(self.path)  # a checkpoint is there whole, or the previous one is

    def finish(self, state: Progress) -> None:
        self.writer.finish()
        if state.rows_rejected:
            self.reject_writer.finish()
        state.done = True
        self._write(state)
        self.path.unlink()
