"""Where the bundled models live and what their configs say, read as JSON (no torch).

The bundled weights are package data: assets/ beside the engine in a source checkout, or the copy a
wheel installs; KINEMO_ASSETS points elsewhere (tests, a model trained by hand).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from engine.api.errors import ModelLoadError

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def _assets_dir() -> Path:
    """KINEMO_ASSETS, else the installed package kinemo_assets (assets/ in a checkout), found without importing it."""
    if os.environ.get("KINEMO_ASSETS"):
        return Path(os.environ["KINEMO_ASSETS"])
    spec = importlib.util.find_spec("kinemo_assets")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[2] / "assets"


ASSETS_DIR = _assets_dir()
STARTER_DIR = ASSETS_DIR / "kinemo-starter"
FAST_DIR = ASSETS_DIR / "kinemo-starter-fast"  # the starter distilled to a few steps (engine.training.distill)
CAMERA_DIR = ASSETS_DIR / "kinemo-camera"  # the camera model that animates a given picture (camera_train)
UPSCALER_DIR = ASSETS_DIR / "kinemo-upscaler"  # draws the pixel model's frames 8x larger (upscaler_train)


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
