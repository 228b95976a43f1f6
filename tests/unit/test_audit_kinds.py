"""The README's audit table and the code's list of audit kinds are the same list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from triage_ml.store.audit import FAMILIES, KINDS, check_kind


def test_the_readme_lists_every_audit_kind_and_no_other():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Team operations", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z._]+)` \| (.+) \|$", section, re.M)
    assert [kind for kind, _ in listed] == list(KINDS)
    assert dict(listed) == KINDS


def test_a_kind_or_a_family_is_accepted_and_anything_else_names_them():
    assert check_kind("draft.approved") == "draft.approved" and check_kind("dispute") == "dispute"
    assert {"dispute", "draft", "model", "key", "map"} <= set(FAMILIES)
    with pytest.raises(ValueError, match=r"unknown kind 'coffee'; use one of decision, label.lead, .* or a family: "):
        check_kind("coffee")
