"""Real-data benchmark: a training config judged on real tweets no model has seen (data/README.md).

Prints, per variant, one JSON line with per-head metrics on the seed gold set and on real-test (macro F1,
per-class precision/recall, PR-AUC, Brier; crisis recall at its threshold and the best recall at
precision >= 0.5), the crisis-kind head's accuracy on real-test's crises, and the out-of-fold figures on
real-train; then a table. `--lodo` adds leave-one-domain-out figures for the first variant.

Usage:
  .venv/bin/python benchmarks/real.py [--config training/configs/default.yaml]
      [--variant NAME:key=value,key=value ...] [--lodo] [--out FILE.jsonl]
A variant overrides config keys, e.g. `seed-only:real_data=null` or `weight2:real_data.weight=2`; with no
--variant the config is run as it is ("default"). Training is the product's own code (`pipeline.train`).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from triage_ml.benchmark.real import TARGETS, override, parse_variant, run_lodo, run_variant
from triage_ml.pipeline.config import TrainConfig
from triage_ml.settings import get_settings


def _row(name: str, result: dict) -> str:
    cells = [name]
    for where in ("seed_gold", "real_test"):
        m = result[where]
        cells += [f"{m[h]['macro_f1']:.3f}" for h in ("actionable", "priority_tier", "crisis")]
        cells.append(f"{m['crisis']['best_recall_at_precision_0.5']:.3f}")
    cells.append(f"{result['real_test']['crisis']['recall_at_threshold']:.3f}/"
                 f"{result['real_test']['crisis']['precision_at_threshold']:.3f}")
    cells.append(f"{result['real_test']['crisis']['pr_auc']:.3f}")
    mapped = result["real_test_crisis_with_map"]
    cells.append(f"{mapped['recall_at_threshold']:.3f}/{mapped['precision_at_threshold']:.3f}")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="training/configs/default.yaml")
    parser.add_argument("--seed-data", default="data/seed/messages.csv")
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument("--lodo", action="store_true", help="leave-one-domain-out for the first variant")
    parser.add_argument("--out", type=Path, help="also append each JSON line to this file")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()

    settings = get_settings()
    base = TrainConfig.from_yaml(args.config)
    variants = [parse_variant(v) for v in args.variant] or [("default", {})]
    rows = []

    def emit(record: dict) -> None:
        line = json.dumps(record)
        print(line, flush=True)
        if args.out:
            with args.out.open("a") as fh:
                fh.write(line + "\n")

    for name, changes in variants:
        config = override(base, changes)
        result = run_variant(config, settings, [args.seed_data], progress=args.progress)
        emit({"variant": name, "changes": changes, **result})
        rows.append(_row(name, result))
    print("\n| variant | seed gold actionable | tier | crisis | crisis R@P>=.5 | real-test actionable | tier | crisis "
          "| crisis R@P>=.5 | real-test crisis R/P at threshold | crisis PR-AUC | with the map: R/P |")
    print("|" + "---|" * 13)
    print("\n".join(rows))
    print(f"\ntargets on real-test: {TARGETS}")
    if args.lodo:
        name, changes = variants[0]
        lodo = run_lodo(override(base, changes), settings, [args.seed_data], progress=args.progress)
        emit({"variant": name, "lodo": lodo})
        print("\n| held-out domain | tweets (noise) | actionable recall | noise recall | accuracy "
              "| actionable macro F1 | tier macro F1 (tier 2) | crises |\n|---|---|---|---|---|---|---|---|")
        for domain, m in lodo.items():
            print(f"| {domain} | {m['n']} ({m['noise']}) | {m['actionable.recall']:.3f} | {m['noise.recall']:.3f} | "
                  f"{m['actionable.accuracy']:.3f} | {m['actionable.macro_f1']:.3f} | "
                  f"{m.get('priority_tier.macro_f1', float('nan')):.3f} ({m.get('tier2', 0)}) | {m['crises']} |")


if __name__ == "__main__":
    main()
