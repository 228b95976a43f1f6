"""The agent report on a generated month of a care team (no real people, no real messages), in one run:

1. a fresh SQLite label store gets ``--messages`` messages over 30 days, each with a recorded prediction
   (tier 1, tier 2 or noise), and a first decision by one of six agents after a delay drawn from that agent's
   own log-normal; one message in ten gets a second agent's decision, and where the two disagree a lead
   resolves the dispute; the newest agent is on probation, so their crisis replies go through drafts that a
   lead approves or rejects, and a few replies go out without the sign-off they needed;
2. ``agent_report`` over the month, timed (median of ``--repeats``);
3. `triage-ml report agents` on that store: the table, JSON and PNG under ``--out``.

The history is written through the library's own write paths (record_predictions, record_decisions,
resolve_dispute, drafts.submit/decide), so it is what the service would have stored. Prints the figures, then
one JSON line. Usage: .venv/bin/python benchmarks/team_report.py [--messages 4000] [--out reports/team]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from triage_ml.labels import drafts
from triage_ml.labels.decisions import Decision
from triage_ml.labels.disputes import DisputePolicy
from triage_ml.labels.feedback import record_decisions, record_predictions, resolve_dispute
from triage_ml.messages import Message
from triage_ml.monitoring.agents import SLA, agent_report
from triage_ml.routing import EscalationMap
from triage_ml.store.db import Store

BIN = Path(sys.executable).parent
START = datetime(2026, 11, 1, tzinfo=UTC)
# agent -> median minutes to a first decision (tier 1; tier 2 waits 8x longer), log-normal spread
AGENTS = {"ana": 18, "bo": 35, "chen": 50, "dara": 25, "eli": 90, "nina": 40}
PROBATION = "nina"
TEXT = {1: "my order never arrived and nobody answers", 2: "love the new store layout", None: "lol"}


def replay(store: Store, n: int, rng: np.random.Generator) -> dict[str, int]:
    text = Path("serving/routing.yaml").read_text()
    routes = EscalationMap.from_text(text.replace("probation: []", f"probation: [{{agent: {PROBATION}, until: "
                                                  f"{(START + timedelta(days=40)).date()}}}]"), "routing.yaml")
    policy = DisputePolicy(0.9, 0.8, 0.2)
    names = list(AGENTS)
    counts = {"decisions": 0, "disputes": 0, "drafts": 0}
    tier_of: dict[str, int | None] = {}
    batch: list[Decision] = []
    for i in range(n):
        message_id = f"t{i}"
        created = START + timedelta(minutes=float(rng.uniform(0, 30 * 24 * 60)))
        tier = [1, 2, None][int(rng.choice(3, p=[0.45, 0.2, 0.35]))]
        crisis = tier == 1 and rng.random() < 0.04
        rule = "crisis" if crisis else {1: "tier 1", 2: "tier 2", None: "noise"}[tier]
        result = {"message_id": message_id, "priority_tier": tier, "actionable": tier is not None, "crisis": crisis,
                  "route": {"action": "respond", "team": "care", "rule": rule,
                            "approval": routes.sign_off(rule).to_dict()}}
        record_predictions(store, "triage-ml", "1", [(Message(f"{TEXT[tier]} #{i}", message_id=message_id,
                                                              created_at=created), result)])
        tier_of[message_id] = tier
        agent = names[int(rng.integers(len(names)))]
        wait = float(rng.lognormal(np.log(AGENTS[agent] * (8 if tier == 2 else 1)), 0.8))
        when = created + timedelta(minutes=wait)
        action = {1: "escalated" if crisis else "responded", 2: "responded", None: "marked_spam"}[tier]
        fields = {"team": "pr"} if action == "escalated" else {}
        if agent == PROBATION and tier is not None:  # every reply of hers goes through a lead's sign-off
            action, fields = "responded", {}
            for attempt in range(3):  # a rejected draft is rewritten and sent again
                draft = drafts.submit(store, routes, event_id=f"d{i}.{attempt}", message_id=message_id, agent=agent,
                                      text=f"Sorry to hear that; please DM us (take {attempt + 1})", role="agent")
                counts["drafts"] += 1
                if drafts.decide(store, draft["id"], approve=bool(rng.random() < 0.85), lead="lena", role="lead",
                                 note=None)["state"] == "approved":
                    break
        elif crisis and rng.random() < 0.3:
            action, fields = "responded", {}  # a reply that needed PR's sign-off, sent without it
        batch.append(Decision(event_id=f"e{i}", message_id=message_id, agent=agent, action=action, decided_at=when,
                              **fields))
        if rng.random() < 0.1:  # a second agent looks at it too, and sometimes disagrees
            other = names[(names.index(agent) + 1) % len(names)]
            second = "marked_spam" if rng.random() < 0.4 else action
            batch.append(Decision(event_id=f"e{i}b", message_id=message_id, agent=other, action=second,
                                  decided_at=when + timedelta(minutes=float(rng.uniform(5, 120))),
                                  **(fields if second == action else {})))
        if len(batch) >= 200 or i == n - 1:
            results = record_decisions(store, batch, policy, "agent", routes)
            counts["decisions"] += len(batch)
            open_disputes = sorted({(d, r["message_id"]) for r in results for d in r["disputes"]})
            for dispute, message in open_disputes:
                if rng.random() < 0.9:  # a lead settles most of them: the truth is the message's tier
                    resolve_dispute(store, dispute, "lena", {"actionable": int(tier_of[message] is not None)}, None)
                    counts["disputes"] += 1
            batch = []
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("reports/team"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'team.db'}"
        store = Store(url)
        t0 = time.perf_counter()
        counts = replay(store, args.messages, rng)
        replay_s = time.perf_counter() - t0
        window = (START, START + timedelta(days=31))
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            report = agent_report(store, *window, SLA())
            times.append(time.perf_counter() - t)
        store.dispose()
        env = {**os.environ, "TRIAGE_DATABASE_URL": url, "TRIAGE_MLRUNS_DIR": str(Path(tmp) / "mlruns")}
        run = subprocess.run([str(BIN / "triage-ml"), "report", "agents", "--since", window[0].isoformat(),
                              "--until", window[1].isoformat(), "--out", str(args.out)], env=env, text=True,
                             capture_output=True)
        if run.returncode:
            sys.exit(run.stderr)
    print(run.stdout)
    print(f"{args.messages} messages, {counts['decisions']} decisions, {counts['disputes']} disputes resolved, "
          f"{counts['drafts']} drafts, written in {replay_s:.1f} s")
    print(f"agent_report over the month: median {statistics.median(times) * 1000:.0f} ms of {args.repeats}")
    print(json.dumps({"messages": args.messages, **counts, "report_ms_median": round(statistics.median(times) * 1000),
                      "team": {k: report["team"][k] for k in ("decisions", "tiers", "replies_without_sign_off")}}))


if __name__ == "__main__":
    main()
