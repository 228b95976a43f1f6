"""The MLflow pyfunc flavour of ``TriageModel``: what ``mlflow models serve`` and ``spark_udf`` load."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from triage_ml.features.onnx_backend import OnnxExports
from triage_ml.messages import FIELDS
from triage_ml.model.triage_model import TriageModel
from triage_ml.taxonomy import SENTIMENT_COLUMNS
from triage_ml.thread import REPLY_COLUMNS, reply_turn

logger = logging.getLogger(__name__)
ARTIFACT_KEY = "triage_model"
SIGNATURE = ModelSignature(
    # the message's fields (triage_ml.messages); the model reads the text, the rest travels for the caller
    inputs=Schema([ColSpec("string", "text")] + [ColSpec("boolean" if f == "is_private" else "string", f,
                                                         required=False) for f in FIELDS]
                  # the turn a message answers, read by the thread head (model.thread_head) when the model has one
                  + [ColSpec("string", c, required=False) for c in REPLY_COLUMNS]),
    outputs=Schema([
        ColSpec("boolean", "actionable"), ColSpec("double", "actionable_prob"),
        ColSpec("long", "priority_tier", required=False), ColSpec("double", "tier1_prob", required=False),
        ColSpec("double", "tier2_prob", required=False), ColSpec("double", "crisis_risk"),
        ColSpec("boolean", "crisis"), ColSpec("string", "crisis_kind", required=False),
        ColSpec("double", "crisis_kind_prob", required=False), ColSpec("boolean", "thread_used"),
        ColSpec("string", "sentiment", required=False),
        *[ColSpec("double", c, required=False) for c in SENTIMENT_COLUMNS],
    ]),
)
INPUT_EXAMPLE = pd.DataFrame({
    "text": ["@SkyLarkAir flight cancelled and no hotel, stuck at the airport with two kids",
             "RT + follow to win a year of free flights!!"],
    "message_id": ["example-1", "example-2"], "channel": ["twitter", "twitter"],
})


class TriagePyfunc(mlflow.pyfunc.PythonModel):
    """Input: a DataFrame with a ``text`` column. Output: one row per message (see SIGNATURE)."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        from triage_ml.settings import Settings

        settings = Settings()  # TRIAGE_ENCODER_BACKEND / TRIAGE_TORCH_THREADS apply to `mlflow models serve` too
        self.model = TriageModel.load(context.artifacts[ARTIFACT_KEY], backend=settings.encoder_backend,
                                      threads=settings.torch_threads)
        heads = "compiled" if self.model.compiled is not None else "scikit-learn"
        logger.info("triage model loaded from %s: encoder backend %s, heads %s", context.artifacts[ARTIFACT_KEY],
                    self.model.encoder.backend, heads)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        if "text" not in model_input:
            raise ValueError("input needs a 'text' column")
        texts = model_input["text"].map(lambda t: "" if t is None else str(t)).tolist()
        return self.model.predict_frame(texts, answered=[reply_turn(row) for row in model_input.to_dict("records")])


def requirements() -> list[str]:
    from importlib.metadata import version

    pins = ["torch", "sentence-transformers", "scikit-learn", "pandas", "numpy", "mlflow", "joblib", "pydantic",
            "pydantic-settings", "triage-ml"]
    return [f"{p}=={version(p)}" for p in pins]


def log_triage_model(model: TriageModel, *, registered_model_name: str | None = None,
                     export_onnx: bool = True, onnx_exports: OnnxExports | None = None) -> Any:
    """Log ``model`` as pyfunc artifact ``model`` of the active run; register it when a name is given.

    Returns MLflow's ModelInfo (``registered_model_version`` is set when registered)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = model.save(Path(tmp) / ARTIFACT_KEY, export_onnx=export_onnx, onnx_exports=onnx_exports)
        return mlflow.pyfunc.log_model(
            name="model", python_model=TriagePyfunc(), artifacts={ARTIFACT_KEY: str(folder)},
            signature=SIGNATURE, input_example=INPUT_EXAMPLE, pip_requirements=requirements(),
            registered_model_name=registered_model_name)

