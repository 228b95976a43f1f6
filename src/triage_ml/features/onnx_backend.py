"""ONNX Runtime backend for the sentence encoder: the same embeddings (fp32) at ~1.7x PyTorch's speed
on CPU, or ~3.4x with dynamic int8 quantization (embeddings then differ: cosine ~0.95 to fp32).

Exported with ``torch.onnx.export`` (opset 17, dynamic batch and sequence axes), mean pooling and L2
normalisation done here to match sentence-transformers (README, "Serving speed", has the measurements)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from triage_ml.features.folders import build_into, keep_newest

ONNX_DIR = "onnx"
FP32 = "model.onnx"
INT8 = "model_int8.onnx"


def export_onnx(encoder_dir: Path, *, quantize: bool = True, out: Path | None = None) -> Path:
    """Write ``model.onnx`` (and ``model_int8.onnx``) into ``out`` (default ``encoder_dir/onnx``); returns it."""
    import torch
    from transformers import AutoModel

    out = encoder_dir / ONNX_DIR if out is None else out
    out.mkdir(parents=True, exist_ok=True)
    model = AutoModel.from_pretrained(str(encoder_dir), local_files_only=True).eval()

    class _Body(torch.nn.Module):  # BertModel.forward must get keyword arguments under transformers 5
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    dummy = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    with torch.inference_mode():
        torch.onnx.export(_Body(model), (dummy, dummy, torch.zeros_like(dummy)), str(out / FP32), opset_version=17,
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["last_hidden_state"], dynamic_axes={"input_ids": axes, "attention_mask": axes,
                                                                           "token_type_ids": axes,
                                                                           "last_hidden_state": axes},
                          dynamo=False)
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(out / FP32), str(out / INT8), weight_type=QuantType.QInt8)
    return out


class OnnxExports:
    """ONNX exports kept under ``root`` by encoder fingerprint, so that an encoder is exported once however
    many models are saved with it (the frozen base encoder, a fine-tune reused by a retrain): 3-9 s each,
    most of it importing the exporter in a fresh process. The ``keep`` most recently used are kept (~113 MB
    each for MiniLM), as fine-tuned encoders are."""

    def __init__(self, root: Path, *, keep: int = 16) -> None:
        self.root = root
        self.keep = keep

    def get(self, encoder_dir: Path, fingerprint: str) -> Path:
        """The folder holding the fp32 and int8 exports of the encoder ``encoder_dir`` (fingerprint given)."""
        done = self.root / fingerprint
        if (done / FP32).is_file() and (done / INT8).is_file():
            os.utime(done)
            return done
        build_into(self.root, fingerprint, lambda build: export_onnx(encoder_dir, out=build))
        keep_newest(self.root, self.keep, FP32)
        return done

    def copy_into(self, encoder_dir: Path, fingerprint: str, dest: Path, names: tuple[str, ...] = (FP32, INT8)) -> None:
        """Put the exports ``names`` of the encoder into ``dest`` (an encoder folder's ``onnx``)."""
        source = self.get(encoder_dir, fingerprint)
        dest.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(source / name, dest / name)


def max_seq_length(encoder_dir: Path, default: int = 256) -> int:
    """Tokens per text, as sentence-transformers reads it: ``sentence_bert_config.json`` (older folders),
    else the tokenizer's ``model_max_length`` (what sentence-transformers 6 saves)."""
    for name, key in (("sentence_bert_config.json", "max_seq_length"), ("tokenizer_config.json", "model_max_length")):
        path = encoder_dir / name
        if path.is_file():
            value = json.loads(path.read_text()).get(key)
            if isinstance(value, int) and 0 < value <= 100_000:
                return value
    return default


class OnnxEncoderSession:
    """Tokenise with the folder's ``tokenizer.json``, run the ONNX body, mean-pool and normalise."""

    def __init__(self, encoder_dir: Path, *, int8: bool = False, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        path = encoder_dir / ONNX_DIR / (INT8 if int8 else FP32)
        if not path.is_file():
            from triage_ml.errors import EncoderNotFoundError

            raise EncoderNotFoundError(f"{path} not found; models trained before the ONNX export need "
                                       "TRIAGE_ENCODER_BACKEND=torch (or retrain)")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # ONNX Runtime's pool threads spin after each run waiting for more work. In a service, the event
        # loop and the heads need that core between runs: with spinning, single-message p50 over HTTP was
        # 18-25 ms on 2 cores, without it 11-12 ms.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(encoder_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_seq_length(encoder_dir))
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def encode(self, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                         "token_type_ids": np.zeros_like(ids)})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return (pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)).astype(np.float32)
