"""--onnx-temporal for AnimateDiff: every motion module exported to ONNX once, then run in onnxruntime."""

import numpy as np
import pytest
import torch
from tiny_diffusers.cases import CASES

from engine.accel.onnx_motion import OnnxMotion, OnnxMotionModule, module_file, motion_modules
from engine.accel.onnx_temporal import TOLERANCE
from engine.api.events import Frames, Notice
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.backends.base import open_backend

CASE = next(c for c in CASES if c.family == "animatediff")


def _run(folder, frames=8, **options):
    backend = open_backend(folder, RunOptions(device="cpu", **options))
    request = GenerationRequest(
        "a fox runs", model=folder, frames=frames, width=32, height=32, steps=2, guidance=1.0, seed=3
    )
    events = list(backend.generate(request))
    return backend, next(e.frames for e in events if isinstance(e, Frames)), events


@pytest.fixture(scope="module")
def motion_cache(tmp_path_factory):
    """One cache folder for this module: exporting AnimateDiff's motion modules takes half a minute, so the
    graphs the first test exports serve the others (each test that damages the cache repairs it)."""
    folder = tmp_path_factory.mktemp("onnx-motion-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KINEMO_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="module")
def first_export(build, motion_cache):
    """(folder, backend, frames) of the first --onnx-temporal run, into the empty module cache."""
    folder = str(build(CASE))
    backend, frames, _ = _run(folder, onnx_temporal=True)
    return folder, backend, frames


def test_motion_modules_run_in_onnxruntime_and_match_torch(first_export):
    folder, backend, onnx_frames = first_export
    _, torch_frames, _ = _run(folder)
    count = len(backend.onnx.sessions)
    assert count == len(motion_modules(backend.pipe.unet)) >= 2 and backend.onnx.exported == list(range(count))
    assert np.abs(onnx_frames.astype(int) - torch_frames.astype(int)).max() <= 1  # within 1 level of 8 bits
    # the swap is undone after the run: the UNet holds its torch modules again
    assert not any(isinstance(m, OnnxMotionModule) for m in backend.pipe.unet.modules())

    # each graph against its torch module, on a shape it was not exported with
    found = motion_modules(backend.pipe.unet)
    for (_, _, module), session in zip(found, backend.onnx.sessions):
        x = torch.randn(3 * 7, module.proj_in.in_features, 5, 2)
        with torch.inference_mode():
            ref = module(x, num_frames=7)
            got = OnnxMotionModule(session, module)(x, num_frames=7)
        assert (got - ref).abs().max() <= TOLERANCE

    # a second backend reuses the cached graphs
    again, frames, _ = _run(folder, onnx_temporal=True)
    assert again.onnx.exported == [] and np.array_equal(frames, onnx_frames)


def test_a_damaged_graph_is_exported_again(first_export):
    folder, _, _ = first_export
    first, frames, _ = _run(folder, onnx_temporal=True)
    assert first.onnx.exported == []  # from the cache
    (first.onnx.entry / module_file(1)).write_bytes(b"not a graph")
    unet = first.pipe.unet
    rebuilt = OnnxMotion.prepare(unet)
    assert rebuilt.exported == [1]
    assert OnnxMotion.prepare(unet).exported == []


def test_long_clips_say_their_motion_modules_run_in_torch(first_export):
    folder, _, _ = first_export
    _, frames, events = _run(folder, frames=20, onnx_temporal=True)
    assert frames.shape[0] == 20
    assert any(isinstance(e, Notice) and "runs its motion modules in torch" in e.message for e in events)
