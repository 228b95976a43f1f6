"""Folders kept on disk by a key (fine-tuned encoders, ONNX exports): built beside their final place and
renamed into it, so that a reader never sees half a folder, and pruned to the most recently used."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def build_into(root: Path, key: str, build: Callable[[Path], T]) -> T:
    """``build(folder)`` on a private folder under ``root``, then renamed to ``root/key`` (atomic on one file
    system); a concurrent builder of the same key may win the rename, and its identical folder is kept.
    Returns what ``build`` returned."""
    root.mkdir(parents=True, exist_ok=True)
    target = root / f".build-{key}-{os.getpid()}"
    shutil.rmtree(target, ignore_errors=True)
    value = build(target)
    try:
        os.replace(target, root / key)
    except OSError:
        shutil.rmtree(target, ignore_errors=True)
    return value


def keep_newest(root: Path, keep: int, marker: str) -> None:
    """Remove all but the ``keep`` most recently used folders under ``root`` (those holding ``marker``; a
    reuse touches its folder)."""
    folders = sorted((p for p in root.iterdir() if (p / marker).is_file()), key=lambda p: p.stat().st_mtime,
                     reverse=True)
    for old in folders[keep:]:
        shutil.rmtree(old, ignore_errors=True)
