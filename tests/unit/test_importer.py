import pandas as pd
import pytest

from tests.conftest import XCI
from triage_ml.data.importers import IMPORTERS, import_xci
from triage_ml.errors import DataValidationError


def test_xci_takes_no_label_from_the_source():
    df = import_xci(XCI)
    assert len(df) == 3448 and df["message_id"].is_unique
    assert df[["actionable", "priority_tier", "crisis", "reason"]].isna().all().all(), \
        "the source's complaint flag is not the taxonomy: every label comes from the team's label file"
    assert set(df.loc[df["xci_complaint"] == 1, "xci_severity"]) == {1, 2, 3, 4}
    assert {"xci_domain", "xci_sentiment", "xci_emotion"} <= set(df.columns)


def test_xci_import_joins_the_team_labels():
    df = IMPORTERS["xci"](XCI)
    assert df["actionable"].notna().all() and set(df["real_split"]) == {"train", "test"}
    complaints = df[df["xci_complaint"] == 1]
    # the source's complaints are mostly, not all, actionable tier 1 in our judgment
    assert 0.8 < (complaints["priority_tier"] == 1).mean() < 1.0


def test_xci_refuses_other_files(tmp_path):
    path = tmp_path / "other.csv"
    pd.DataFrame({"tweet": ["x"]}).to_csv(path, index=False)
    with pytest.raises(DataValidationError, match="missing column"):
        import_xci(path)
