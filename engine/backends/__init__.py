"""Backends: one per model family. resolve_backend() maps a model name to one."""

from __future__ import annotations

import json
from pathlib import Path

from engine.errors import InvalidRequest

STARTER_ID = "kinemo-starter"


def available_models() -> list[str]:
    return [STARTER_ID]


def resolve_backend(model: str, device: str = "cpu"):
    """A backend for a model id or a local model folder; raises InvalidRequest for unknown names."""
    from engine.backends.bundled import BundledBackend

    if model == STARTER_ID:
        return BundledBackend(device=device)
    folder = Path(model).expanduser()
    config = folder / "config.json"
    if folder.is_dir() and config.is_file():
        try:
            model_type = json.loads(config.read_text()).get("model_type")
        except (ValueError, OSError):
            model_type = None
        if model_type == "kinemo-dit":
            return BundledBackend(folder, device=device, model_id=str(folder))
        raise InvalidRequest(f"{folder} is not a Kinemo model folder (model_type {model_type!r})")
    raise InvalidRequest(f"unknown model {model!r}; available: {', '.join(available_models())} or a model folder")
