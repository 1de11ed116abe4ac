"""--quantize int8 for the diffusers families: the denoiser in int8, cached once, reloaded without quantising."""

import numpy as np
import pytest
from tiny_diffusers.animatediff import save_tiny_motion_adapter, save_tiny_sd_base
from tiny_diffusers.cases import CASES
from tiny_diffusers.direct import gradient_picture
from tiny_diffusers.hub_cache import put_in_hub_cache

from engine.accel.quantize_diffusers import WEIGHTS_FILE, denoiser_name
from engine.api.events import Frames
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.backends.base import open_backend
from engine.registry.catalog import find_entry


def _request(case, tmp_path, model):
    image = str(gradient_picture(tmp_path / "first.png")) if case.image_to_video else None
    return GenerationRequest(
        "a fox runs through snow",
        model=model,
        image=image,
        frames=case.frames,
        width=case.size,
        height=case.size,
        steps=2,
        guidance=case.guidance,
        fps=case.fps,
        seed=1,
    )


def _run(model, request, **options):
    backend = open_backend(model, RunOptions(device="cpu", **options))
    frames = next(e.frames for e in backend.generate(request) if isinstance(e, Frames))
    return backend, frames


def _int8_layers(module) -> int:
    from optimum.quanto import quantization_map

    return len(quantization_map(module))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_int8_denoiser_is_made_once_then_reloaded(case, build, tmp_path, cache_dir):
    folder = str(build(case))
    request = _request(case, tmp_path, folder)
    _, fp = _run(folder, request)

    # 1. first int8 run: quantised now and written to the cache
    first, int8 = _run(folder, request, quantize="int8")
    denoiser = getattr(first.pipe, denoiser_name(first.pipe))
    assert first.int8_from_cache is False and _int8_layers(denoiser) > 0
    assert all(not p.requires_grad for p in denoiser.parameters())
    assert int8.shape == fp.shape and int8.dtype == np.uint8
    assert np.abs(int8.astype(int) - fp.astype(int)).mean() < 8  # close to the float clip (tiny random weights)

    # 2. a new backend reads the int8 weights back instead of quantising: the same clip
    second, again = _run(folder, request, quantize="int8")
    assert second.int8_from_cache is True and _int8_layers(getattr(second.pipe, denoiser_name(second.pipe))) > 0
    assert np.array_equal(again, int8)


def test_a_damaged_cache_entry_is_rebuilt(build, tmp_path, cache_dir):
    case = CASES[0]
    folder = str(build(case))
    request = _request(case, tmp_path, folder)
    _, int8 = _run(folder, request, quantize="int8")
    weights = next(cache_dir.glob(f"quantized-diffusers/*/{WEIGHTS_FILE}"))
    weights.write_bytes(weights.read_bytes()[:-100])  # truncated
    backend, again = _run(folder, request, quantize="int8")
    assert backend.int8_from_cache is False and np.array_equal(again, int8)
    assert _run(folder, request, quantize="int8")[0].int8_from_cache is True


def test_catalog_animatediff_caches_the_unet_with_its_motion_modules(hub_cache, tmp_path, cache_dir):
    entry = find_entry("animatediff-v1-5-3")
    put_in_hub_cache(hub_cache, entry.hub_id, save_tiny_sd_base(tmp_path / "base"))
    put_in_hub_cache(hub_cache, entry.adapter.hub_id, save_tiny_motion_adapter(tmp_path / "adapter"))
    request = GenerationRequest("a fox", model=entry.id, frames=8, width=32, height=32, steps=2, guidance=1.0, seed=2)
    first, int8 = _run(entry.id, request, quantize="int8")
    second, again = _run(entry.id, request, quantize="int8")
    assert (first.int8_from_cache, second.int8_from_cache) == (False, True)
    assert type(second.pipe.unet).__name__ == "UNetMotionModel" and _int8_layers(second.pipe.unet.mid_block) > 0
    assert np.array_equal(again, int8)
