import json

import pandas as pd
import pytest

from triage_ml.data import dataset_hash, load_labeled, validate_labeled, write_table
from triage_ml.errors import DataValidationError, UnsupportedFormatError


def frame(**cols):
    n = max(len(v) for v in cols.values())
    cols.setdefault("text", [f"message {i}" for i in range(n)])
    return pd.DataFrame(cols)


@pytest.mark.parametrize(("cols", "row", "column", "fragment"), [
    ({"priority_tier": ["1", "3"]}, 2, "priority_tier", "'3' is not a tier"),
    ({"actionable": ["yes", "maybe"]}, 2, "actionable", "'maybe' is not a yes/no value"),
    ({"text": ["fine", "   "]}, 2, "text", "empty text"),
    ({"crisis": ["true", "false"], "actionable": ["false", "true"]}, 1, "crisis", "always actionable"),
    ({"priority_tier": ["2", "1"], "actionable": ["true", "false"]}, 2, "priority_tier", "has no tier"),
    ({"priority_tier": ["none", "1"], "actionable": ["true", "true"]}, 1, "priority_tier", "tier 1 or 2"),
    ({"reason": ["praise", "complaint"], "priority_tier": ["1", "1"]}, 1, "reason", "disagree"),
    ({"reason": ["spam", "crisis"], "actionable": ["true", "true"]}, 1, "reason", "noise reason"),
    ({"reason": ["sarcasm", "question"]}, 1, "reason", "unknown reason code 'sarcasm'"),
    ({"message_id": ["a", "a"]}, 2, "message_id", "duplicate message_id 'a'"),
    ({"crisis": ["true", "false"], "priority_tier": ["2", "2"]}, 1, "priority_tier", "a crisis is always tier 1"),
    ({"sentiment": ["Negative", "angry"]}, 2, "sentiment", "unknown sentiment 'angry'; use one of negative, neutral"),
])
def test_bad_rows_name_row_and_column(cols, row, column, fragment):
    with pytest.raises(DataValidationError) as err:
        validate_labeled(frame(**cols), source="f.csv")
    assert err.value.row == row
    assert err.value.column == column
    assert fragment in str(err.value)
    assert str(err.value).startswith(f"f.csv, row {row}, column '{column}'")


def test_error_counts_further_problems():
    with pytest.raises(DataValidationError, match=r"row 1, column 'priority_tier'.*\(and 2 more problems"):
        validate_labeled(frame(priority_tier=["7", "8", "9"]), source="f.csv")


def test_missing_text_column_lists_columns():
    with pytest.raises(DataValidationError, match=r"no 'text' column.*body"):
        validate_labeled(pd.DataFrame({"body": ["x"]}), source="f.csv")


def test_labels_implied_by_taxonomy():
    df = validate_labeled(frame(
        actionable=["", "", "false", "", "", ""],
        priority_tier=["", "2", "", "none", "", ""],
        crisis=["true", "", "", "", "", ""],
        reason=["", "", "", "", "question", "spam"],
    ))
    assert df["actionable"].tolist() == [True, True, False, False, True, False]
    assert df["priority_tier"].tolist() == [1, 2, pd.NA, pd.NA, 1, pd.NA]
    assert df["crisis"].tolist() == [True, pd.NA, False, False, pd.NA, False]


def test_partial_labels_stay_unknown():
    df = validate_labeled(frame(actionable=["true"]))
    assert pd.isna(df.loc[0, "priority_tier"]) and pd.isna(df.loc[0, "crisis"])


def test_formats_give_the_same_hash(tmp_path):
    raw = pd.read_csv("data/seed/messages.csv", dtype=str, keep_default_na=False).head(50)
    hashes = set()
    for ext in ("csv", "jsonl", "parquet"):
        path = write_table(raw, tmp_path / f"sample.{ext}")
        hashes.add(dataset_hash(load_labeled(path)))
    assert len(hashes) == 1


def test_hash_changes_with_a_label(seed):
    changed = seed.copy()
    changed["crisis"] = changed["crisis"].astype("boolean")
    changed.loc[0, "crisis"] = not changed.loc[0, "crisis"]
    assert dataset_hash(changed) != dataset_hash(seed)


def test_unreadable_files_give_one_line(tmp_path):
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text(json.dumps({"text": "ok"}) + "\n{not json\n")
    with pytest.raises(DataValidationError, match=r"bad.jsonl, row 2: invalid JSON"):
        load_labeled(bad_json)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(DataValidationError, match="not UTF-8"):
        load_labeled(latin)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataValidationError, match="empty"):
        load_labeled(empty)
    with pytest.raises(UnsupportedFormatError, match=r"'\.xlsx'"):
        load_labeled(tmp_path / "sheet.xlsx")
    with pytest.raises(DataValidationError, match="file not found"):
        load_labeled(tmp_path / "missing.csv")
    for err in (DataValidationError, UnsupportedFormatError):
        assert issubclass(err, ValueError)
