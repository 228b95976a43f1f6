"""Language detection (``triage_ml.language``, py3langid) measured, in one run:

1. data/multilingual/messages.csv: 210 social messages to brands written for this test, 15 in each of 14
   languages (a third of them 1-4 words), their language confirmed by a blind second pass: accuracy, the share
   left undetermined and the share named wrongly, at the detector's floor of 0.5 and at 0.0 and 0.8 beside it;
2. English traffic, where a false "foreign" flag costs the most: the share of the seed set's messages and of the
   3,448 real tweets to brands (data/public) that get a language other than English;
3. speed: microseconds per message (median of 5 passes over the 210 messages, one thread).

Prints the figures, then one JSON line. Usage: .venv/bin/python benchmarks/language.py
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pandas as pd

from triage_ml.language import ENGLISH, UNDETERMINED, detect

ROOT = Path(__file__).resolve().parents[1]
FLOORS = (0.0, 0.5, 0.8)


def multilingual(floor: float, data: pd.DataFrame) -> dict[str, float]:
    found = [detect(t, floor).code for t in data["text"]]
    right = [f == g for f, g in zip(found, data["language"], strict=True)]
    und = [f == UNDETERMINED for f in found]
    short = (data["length"] == "short").tolist()
    named = [r for r, u in zip(right, und, strict=True) if not u]
    return {"accuracy": sum(right) / len(right), "undetermined": sum(und) / len(und),
            "wrong": 1 - (sum(right) + sum(und)) / len(right),
            "precision_when_named": sum(named) / max(len(named), 1),
            "short_accuracy": sum(r for r, s in zip(right, short, strict=True) if s) / sum(short),
            "short_undetermined": sum(u for u, s in zip(und, short, strict=True) if s) / sum(short)}


def foreign_share(texts: list[str], floor: float) -> float:
    return sum(detect(t, floor).code not in (ENGLISH, UNDETERMINED) for t in texts) / len(texts)


def main() -> None:
    data = pd.read_csv(ROOT / "data/multilingual/messages.csv", dtype=str, keep_default_na=False)
    second = pd.read_csv(ROOT / "data/multilingual/second_pass.csv", dtype=str, keep_default_na=False)
    agree = (data.set_index("id")["language"] == second.set_index("id")["language"].reindex(data["id"])).mean()
    seed = pd.read_csv(ROOT / "data/seed/messages.csv", dtype=str, keep_default_na=False)["text"].tolist()
    real = pd.read_csv(ROOT / "data/public/xci_complaints.csv", dtype=str, keep_default_na=False)["tweet"].tolist()
    out: dict = {"messages": len(data), "languages": data["language"].nunique(), "second_pass_agreement": agree}
    print(f"{len(data)} messages in {data['language'].nunique()} languages; the blind second pass agrees on "
          f"{agree:.1%} of them")
    print("floor  accuracy  undetermined  wrong  right-when-named  short: accuracy  undetermined  "
          "seed non-English  real tweets non-English")
    for floor in FLOORS:
        m = multilingual(floor, data)
        seed_share, real_share = foreign_share(seed, floor), foreign_share(real, floor)
        out[f"floor_{floor}"] = {**m, "seed_foreign": seed_share, "real_tweets_foreign": real_share}
        print(f"{floor:>5}  {m['accuracy']:>8.1%}  {m['undetermined']:>12.1%}  {m['wrong']:>5.1%}  "
              f"{m['precision_when_named']:>16.1%}  {m['short_accuracy']:>15.1%}  {m['short_undetermined']:>12.1%}  "
              f"{seed_share:>16.2%}  {real_share:>23.2%}")
    detect("warm up")
    passes = []
    for _ in range(5):
        start = time.perf_counter()
        for text in data["text"]:
            detect(text)
        passes.append((time.perf_counter() - start) / len(data) * 1e6)
    out["microseconds_per_message"] = round(statistics.median(passes), 1)
    print(f"speed: {out['microseconds_per_message']} µs a message (median of 5 passes, one thread)")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
