"""Catalog AnimateDiff models are a Stable Diffusion base plus a motion adapter from another
repository: a whole adapter folder, or one file with a few-step schedule (AnimateDiff-Lightning)."""

import json
from dataclasses import replace

import pytest
from tiny_diffusers.animatediff import save_tiny_motion_adapter, save_tiny_sd_base
from tiny_diffusers.hub_cache import put_in_hub_cache

from engine.api.events import Frames
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.backends.base import open_backend
from engine.registry import catalog as catalog_module
from engine.registry.catalog import Adapter, find_entry


@pytest.fixture(scope="module")
def pieces(tmp_path_factory):
    root = tmp_path_factory.mktemp("animatediff")
    return save_tiny_sd_base(root / "base"), save_tiny_motion_adapter(root / "adapter")


def _generate(model: str, steps: int):
    backend = open_backend(model, RunOptions(device="cpu"))
    request = GenerationRequest("a fox", model=model, frames=8, width=32, height=32, steps=steps, guidance=1.0, seed=2)
    frames = next(e.frames for e in backend.generate(request) if isinstance(e, Frames))
    return backend, frames


def test_base_plus_adapter_folder(hub_cache, pieces):
    entry = find_entry("animatediff-v1-5-3")
    put_in_hub_cache(hub_cache, entry.hub_id, pieces[0])
    put_in_hub_cache(hub_cache, entry.adapter.hub_id, pieces[1])
    backend, frames = _generate(entry.id, steps=2)
    assert type(backend.pipe).__name__ == "AnimateDiffPipeline" and frames.shape == (8, 32, 32, 3)


def test_lightning_single_file_adapter_and_its_schedule(hub_cache, pieces, monkeypatch):
    lightning = find_entry("animatediff-lightning-4step")
    config = {k: v for k, v in json.loads((pieces[1] / "config.json").read_text()).items() if not k.startswith("_")}
    tiny = replace(lightning, adapter=Adapter(lightning.adapter.hub_id, lightning.adapter.filename, config))
    monkeypatch.setattr(catalog_module, "catalog", lambda: {**catalog_module.read_catalog(), tiny.id: tiny})
    put_in_hub_cache(hub_cache, tiny.hub_id, pieces[0])
    weights = next(pieces[1].glob("*.safetensors"))
    single = weights.parent.parent / lightning.adapter.filename
    single.write_bytes(weights.read_bytes())
    put_in_hub_cache(hub_cache, tiny.adapter.hub_id, single)

    backend, frames = _generate(tiny.id, steps=tiny.steps)
    scheduler = backend.pipe.scheduler
    assert type(scheduler).__name__ == "EulerDiscreteScheduler"
    assert scheduler.config.timestep_spacing == "trailing" and scheduler.config.beta_schedule == "linear"
    assert frames.shape == (8, 32, 32, 3) and frames.std() > 1
