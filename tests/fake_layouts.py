"""Model folders laid out like the real thing but without real weights: for tests that only inspect them."""

from __future__ import annotations

import json
from pathlib import Path

from tiny_diffusers.hub_cache import put_in_hub_cache


def fake_diffusers_folder(folder: Path, pipeline_class: str = "WanPipeline") -> Path:
    """model_index.json, a weighted component (placeholder bytes) and a scheduler: passes inspect_folder."""
    folder = Path(folder)
    (folder / "transformer").mkdir(parents=True)
    (folder / "scheduler").mkdir()
    index = {
        "_class_name": pipeline_class,
        "transformer": ["diffusers", "SomeTransformer"],
        "scheduler": ["diffusers", "SomeScheduler"],
    }
    (folder / "model_index.json").write_text(json.dumps(index))
    (folder / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"not loaded by these tests")
    (folder / "scheduler" / "scheduler_config.json").write_text("{}")
    return folder


def fake_kinemo_folder(folder: Path, **config) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "kinemo-dit", **config}))
    return folder


def hub_cache_with(cache: Path, repo_id: str, work: Path, pipeline_class: str = "WanPipeline") -> Path:
    """Put a fake diffusers pipeline into the hub cache as repo_id; returns the snapshot folder."""
    return put_in_hub_cache(
        cache, repo_id, fake_diffusers_folder(Path(work) / repo_id.replace("/", "--"), pipeline_class)
    )
