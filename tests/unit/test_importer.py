import pandas as pd
import pytest

from tests.conftest import XCI
from triage_ml.data.importers import import_xci
from triage_ml.errors import DataValidationError


def test_xci_maps_only_what_the_source_says():
    df = import_xci(XCI)
    random = df["xci_domain"].str.startswith("random")
    complaint = df["xci_complaint"] == 1
    assert (df.loc[random, "actionable"] == False).all()  # noqa: E712
    assert df.loc[complaint, "actionable"].all() and (df.loc[complaint, "priority_tier"] == 1).all()
    assert (df.loc[complaint, "reason"] == "complaint").all()
    other = ~random & ~complaint
    assert other.sum() > 0 and df.loc[other, ["actionable", "priority_tier", "crisis", "reason"]].isna().all().all()
    assert df.loc[complaint, "crisis"].isna().all(), "the source says nothing about crisis"
    assert set(df.loc[complaint, "xci_severity"]) == {1, 2, 3, 4}
    assert df["message_id"].is_unique


def test_xci_refuses_other_files(tmp_path):
    path = tmp_path / "other.csv"
    pd.DataFrame({"tweet": ["x"]}).to_csv(path, index=False)
    with pytest.raises(DataValidationError, match="missing column"):
        import_xci(path)
