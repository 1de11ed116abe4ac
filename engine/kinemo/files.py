"""Saving and loading the bundled model: safetensors weights beside a JSON config."""

from __future__ import annotations

import json
from pathlib import Path

from engine.api.errors import ModelLoadError
from engine.registry.assets import CONFIG_NAME, STARTER_DIR, WEIGHTS_NAME, read_config
from engine.util.files import atomic_write_bytes


def save_model(model, folder: Path, extra_config: dict | None = None, model_type: str = "kinemo-dit") -> None:
    """model's weights and config (model.config.to_dict(), tagged with model_type) into folder, atomically."""
    from safetensors.torch import save

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    config = {"model_type": model_type, **model.config.to_dict(), **(extra_config or {})}
    atomic_write_bytes(Path(folder) / WEIGHTS_NAME, save(state))
    atomic_write_bytes(Path(folder) / CONFIG_NAME, (json.dumps(config, indent=2) + "\n").encode())


def load_model(folder: Path = STARTER_DIR):
    """Build the model from folder/config.json and load folder/model.safetensors (fp32, eval mode)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from engine.kinemo.model import KinemoConfig, KinemoDiT

    folder = Path(folder)
    weights_path = folder / WEIGHTS_NAME
    raw = read_config(folder)
    if not weights_path.is_file():
        raise ModelLoadError(f"model file missing: {weights_path}")
    try:
        config = KinemoConfig.from_dict(raw)
    except (ValueError, TypeError) as exc:
        raise ModelLoadError(f"unreadable model config {folder / CONFIG_NAME}: {exc}") from exc
    model = KinemoDiT(config)
    try:
        state = load_file(weights_path)
    except (SafetensorError, OSError) as exc:
        raise ModelLoadError(f"unreadable weights {weights_path}: {exc}") from exc
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelLoadError(
            f"weights {weights_path} do not fit the config: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    return model.eval().requires_grad_(False)
