"""The error-analysis notebook runs top to bottom against a real MLflow store, so it cannot rot."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_error_analysis_notebook_runs(trained_store, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    settings, outcome = trained_store
    monkeypatch.setenv("TRIAGE_MLRUNS_DIR", str(settings.mlruns_dir))  # the kernel inherits this environment
    notebook = nbformat.read(ROOT / "notebooks" / "01-error-analysis.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()  # raises on any cell's error
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", []))
    assert f"triage-ml v{outcome.version}:" in text
    assert "gold macro F1" in text and "candidates shown" in text
    images = [o for cell in notebook.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 3  # a confusion matrix per head
