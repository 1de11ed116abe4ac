"""Saving and loading the bundled model: safetensors weights beside a JSON config."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from engine.errors import ModelLoadError

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
ASSETS_DIR = Path(os.environ.get("KINEMO_ASSETS", Path(__file__).resolve().parent.parent / "assets"))
STARTER_DIR = ASSETS_DIR / "kinemo-starter"
FAST_DIR = ASSETS_DIR / "kinemo-starter-fast"  # the starter distilled to a few steps (engine.distill)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model(model, folder: Path, extra_config: dict | None = None) -> None:
    from safetensors.torch import save

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    config = {"model_type": "kinemo-dit", **model.config.to_dict(), **(extra_config or {})}
    atomic_write_bytes(Path(folder) / WEIGHTS_NAME, save(state))
    atomic_write_bytes(Path(folder) / CONFIG_NAME, (json.dumps(config, indent=2) + "\n").encode())


def read_config(folder: Path) -> dict:
    """The model's config.json as a dict (without the model_type tag or private "_" keys)."""
    config_path = Path(folder) / CONFIG_NAME
    if not config_path.is_file():
        raise ModelLoadError(f"model file missing: {config_path}")
    try:
        raw = json.loads(config_path.read_text())
    except ValueError as exc:
        raise ModelLoadError(f"unreadable model config {config_path}: {exc}") from exc
    return {k: v for k, v in raw.items() if k != "model_type" and not k.startswith("_")}


def read_sampling(folder: Path) -> list[int] | None:
    """The explicit timesteps a distilled model was trained for ("_sampling" in its config), else None."""
    try:
        raw = json.loads((Path(folder) / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return None
    timesteps = (raw.get("_sampling") or {}).get("timesteps") if isinstance(raw, dict) else None
    if not timesteps or not all(isinstance(t, int) for t in timesteps):
        return None
    return list(timesteps)


def load_model(folder: Path = STARTER_DIR):
    """Build the model from folder/config.json and load folder/model.safetensors (fp32, eval mode)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from engine.models.kinemo_dit import KinemoConfig, KinemoDiT

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
