"""The service imports what serving needs, not the training pipeline or plotting (a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

CHECK = """
import json, sys
import serving.main
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("triage_ml.pipeline", "matplotlib")))))
"""


def test_importing_the_service_pulls_in_neither_the_pipeline_nor_matplotlib():
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
