"""What the context lookup (``triage_ml.context.lookup``) costs on a large label store, in one run:

1. a fresh PostgreSQL database (``--url``, default the machine's) gets ``--messages`` generated messages from
   ``--authors`` authors over 120 days (about one conversation per three messages), each with a recorded
   prediction, and a decision on a third of them, bulk-loaded with COPY; the schema is the product's own
   (Alembic migrations), indexes included;
2. single messages: the lookup for one new message from a known author in a known conversation, p50 and p95 of
   ``--single`` lookups; batches: the lookup for ``--batch`` such messages at once, median of ``--batches``.

The figure to hold against is the issue's budget: at most 2 ms p50 a message. Prints the figures, then one
JSON line. Usage: .venv/bin/python benchmarks/context.py [--messages 1000000] [--authors 100000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from triage_ml.context import lookup
from triage_ml.messages import Message
from triage_ml.store.db import Store

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
RESULT = {1: '{"actionable": true, "priority_tier": 1, "crisis": false, "route": {"rule": "tier 1"}}',
          2: '{"actionable": true, "priority_tier": 2, "crisis": false, "route": {"rule": "tier 2"}}',
          0: '{"actionable": false, "priority_tier": null, "crisis": false, "route": {"rule": "noise"}}'}


def fill(store: Store, n: int, authors: int, rng: random.Random) -> float:
    """Bulk-load n messages, their predictions and a decision on a third; returns the seconds it took."""
    start = time.perf_counter()
    messages, predictions, decisions = io.StringIO(), io.StringIO(), io.StringIO()
    for i in range(n):
        author, posted = rng.randrange(authors), NOW - timedelta(minutes=rng.uniform(0, 120 * 24 * 60))
        conversation = f"c{author}-{i // 3 % 5}"
        stamp = posted.isoformat()
        messages.write(f"m{i}\tgenerated message {i}\t\\N\t\\N\t@u{author}\t{conversation}\t\\N\t{stamp}\t{stamp}\n")
        predictions.write(f"m{i}\ttriage-ml\t1\t{RESULT[rng.choice((0, 1, 1, 2))]}\t{stamp}\n")
        if i % 3 == 0:
            decided = (posted + timedelta(minutes=30)).isoformat()
            decisions.write(f"e{i}\tm{i}\tagent-{i % 12}\tresponded\t\\N\t{{}}\t{'0' * 64}\t{{}}\t{decided}\t"
                            f"{decided}\n")
    raw = store.engine.raw_connection()
    try:
        with raw.cursor() as cur:
            for table, columns, data in (
                    ("messages", "id, text, channel, brand, author, conversation_id, is_private, created_at, "
                     "first_seen", messages),
                    ("predictions", "message_id, model_name, model_version, result, created_at", predictions),
                    ("decisions", "event_id, message_id, agent, action, model_version, payload, payload_hash, "
                     "response, received_at, decided_at", decisions)):
                data.seek(0)
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    while chunk := data.read(1 << 20):
                        copy.write(chunk)
        raw.commit()
        with raw.cursor() as cur:
            cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - start


@contextlib.contextmanager
def generated_store(url: str, messages: int, authors: int, rng: random.Random) -> Iterator[str]:
    """A fresh PostgreSQL database under the server of ``url`` (its admin database), with the product's schema and
    ``fill``'s messages; its URL. Dropped afterwards. ``benchmarks/serving.py`` serves from one too."""
    name = f"triage_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    db_url = sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)
    store = Store(db_url)
    try:
        store.ensure_schema()
        seconds = fill(store, messages, authors, rng)
        print(f"{messages:,} messages from {authors:,} authors loaded in {seconds:.0f} s", flush=True)
        store.dispose()
        yield db_url
    finally:
        store.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--authors", type=int, default=100_000)
    parser.add_argument("--single", type=int, default=500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--url", default=ADMIN_URL, help="a PostgreSQL server's admin database")
    args = parser.parse_args()
    rng = random.Random(7)
    with generated_store(args.url, args.messages, args.authors, rng) as url:
        measure(Store(url), args, rng)


def measure(store: Store, args: argparse.Namespace, rng: random.Random) -> None:
    try:

        def probe() -> Message:
            author = rng.randrange(args.authors)
            return Message("any news?", author=f"@u{author}", conversation_id=f"c{author}-{rng.randrange(5)}",
                           created_at=NOW)

        lookup(store, [probe() for _ in range(8)])  # warm the pool and the caches
        single = []
        for _ in range(args.single):
            start = time.perf_counter()
            [ctx] = lookup(store, [probe()])
            single.append((time.perf_counter() - start) * 1000)
        batches = []
        for _ in range(args.batches):
            messages = [probe() for _ in range(args.batch)]
            start = time.perf_counter()
            lookup(store, messages)
            batches.append((time.perf_counter() - start) * 1000)
        single.sort()
        out = {"messages": args.messages, "authors": args.authors, "single_p50_ms": round(statistics.median(single), 2),
               "single_p95_ms": round(single[int(0.95 * len(single))], 2),
               "batch": args.batch, "batch_median_ms": round(statistics.median(batches), 1),
               "batch_ms_per_message": round(statistics.median(batches) / args.batch, 2),
               "example": ctx.to_dict()}
        print(f"one message: p50 {out['single_p50_ms']} ms, p95 {out['single_p95_ms']} ms ({args.single} lookups)")
        print(f"batches of {args.batch}: median {out['batch_median_ms']} ms, {out['batch_ms_per_message']} ms a "
              f"message ({args.batches} batches)")
        print(json.dumps(out))
    finally:
        store.dispose()


if __name__ == "__main__":
    main()
