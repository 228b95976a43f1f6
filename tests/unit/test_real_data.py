"""The real labeled tweets (data/README.md): every tweet labeled, the real-test split stable and kept out of
training, the double annotation's agreement as the README states it, and a repository that stands alone."""

import re
import subprocess

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT, XCI
from triage_ml.data.agreement import pass_agreement
from triage_ml.data.real import REAL_LABELS, TEST_FRACTION, is_real_test, load_real, read_label_file
from triage_ml.errors import DataValidationError
from triage_ml.taxonomy import CRISIS_KINDS


@pytest.fixture(scope="module")
def real():
    return load_real(XCI, ROOT / REAL_LABELS)


def test_every_tweet_has_every_label(real):
    tweets = pd.read_csv(XCI, dtype=str)
    assert len(tweets) == 3448 and len(real) == 3448
    assert set(real["message_id"]) == {f"xci-{i}" for i in tweets["id"]}
    for column in ("actionable", "crisis", "reason"):
        assert real[column].notna().all(), column
    assert real.loc[real["actionable"] == True, "priority_tier"].notna().all()  # noqa: E712
    crises = real[real["crisis"] == True]  # noqa: E712
    assert len(crises) >= 30 and set(crises["crisis_kind"]) <= set(CRISIS_KINDS)
    assert crises["crisis_kind"].notna().all() and (crises["priority_tier"] == 1).all()


def test_every_tweet_carries_its_sources_sentiment_case_folded(real):
    source = pd.read_csv(XCI, dtype=str)["sentiment"].str.strip()
    assert set(source) == {"Positive", "Neutral", "Negative", "positive", "neutral", "negative"}
    assert real["sentiment"].notna().all() and set(real["sentiment"]) == {"positive", "neutral", "negative"}
    assert real["sentiment"].value_counts().to_dict() == source.str.lower().value_counts().to_dict()


def test_real_test_is_a_stable_third(real):
    test = real["real_split"] == "test"
    assert abs(test.mean() - TEST_FRACTION) < 0.03
    # membership depends on the id alone: the same in any order, in any subset
    shuffled = real.sample(frac=1.0, random_state=3)
    assert (is_real_test(shuffled["message_id"]) == (shuffled["real_split"] == "test")).all()
    assert not is_real_test(["seed-00001", "row-000001"]).any()
    # every head has both classes on each side
    for side in ("train", "test"):
        part = real[real["real_split"] == side]
        assert part["actionable"].nunique() == 2 and part["crisis"].sum() >= 10
        assert set(part["priority_tier"].dropna()) == {1, 2}


def test_label_file_is_checked(tmp_path):
    rows = read_label_file(ROOT / REAL_LABELS).head(3)
    twice = tmp_path / "twice.csv"
    pd.concat([rows, rows.head(1)]).to_csv(twice, index=False)
    with pytest.raises(DataValidationError, match="labeled twice"):
        read_label_file(twice)
    stranger = tmp_path / "stranger.csv"
    rows.assign(tweet_id=["1", "2", "999999"]).to_csv(stranger, index=False)
    with pytest.raises(DataValidationError, match="999999 is not in"):
        load_real(XCI, stranger)
    badkind = tmp_path / "badkind.csv"
    rows.assign(crisis=["true", "false", "false"], crisis_kind=["riot", "", ""],
                reason=["crisis", "question", "question"]).to_csv(badkind, index=False)
    with pytest.raises(DataValidationError, match="unknown crisis kind 'riot'"):
        load_real(XCI, badkind)


def test_double_annotation_kappas_are_the_readme_figures():
    figures = pass_agreement(ROOT / REAL_LABELS)
    assert figures["tweets"] >= 400
    readme = (ROOT / "data" / "README.md").read_text()
    for label in ("actionable", "priority_tier", "crisis", "crisis_kind", "reason"):
        one = figures[label]
        assert f"| `{label}` | {one['n']} | {one['agreement']:.3f} | {one['kappa']:.3f} |" in readme, label


def test_the_repository_stands_alone():
    """No tracked file reads or names the reference folder beside the checkout."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    pattern = re.compile(r"\.\./shared|shared/(TAXONOMY|NOTES|STYLE|data)")
    offenders = []
    for name in files:
        path = ROOT / name
        if path.suffix in {".csv", ".parquet", ".png"} or not path.is_file():
            continue
        if pattern.search(path.read_text(encoding="utf-8", errors="replace")):
            offenders.append(name)
    assert offenders == [], f"these files point outside the repository: {offenders}"
    assert (ROOT / "docs" / "taxonomy.md").is_file() and (ROOT / "data" / "public" / "xci_complaints.LICENSE").is_file()


def test_training_never_sees_real_test(tmp_path):
    from triage_ml.pipeline.config import TrainConfig
    from triage_ml.pipeline.tracking import load_training_data

    everything = tmp_path / "all.csv"
    load_real(XCI, ROOT / REAL_LABELS).drop(columns=["real_split"]).to_csv(everything, index=False)
    data = load_training_data([everything])
    assert len(data) > 2000 and not is_real_test(data["message_id"]).any()
    config = TrainConfig.from_dict({"real_data": {"texts": str(XCI), "labels": str(ROOT / REAL_LABELS)}})
    with_seed = load_training_data([ROOT / "data" / "seed" / "messages.csv"], config=config)
    assert not is_real_test(with_seed["message_id"]).any()
    assert np.count_nonzero(with_seed["message_id"].str.startswith("xci-")) == len(data)
