"""The bundled model's whole step in onnxruntime (--onnx): agreement with torch, the runs it refuses or hands to
torch, and the export cache."""

import numpy as np
import pytest
import torch
from PIL import Image

import engine.accel.onnx_denoiser as denoiser_module
from engine.accel.onnx_denoiser import GRAPH_FILE, OnnxDenoiser, example_inputs
from engine.api.errors import InvalidRequest
from engine.api.events import Notice
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.backends.base import open_backend
from engine.backends.bundled import BundledBackend
from engine.kinemo.files import load_model
from engine.kinemo.model import Conditioning

PROMPT = "a red circle moves right on a black background"


@pytest.fixture
def exports(monkeypatch):
    """How many graphs were exported (by any prepare) during the test."""
    calls = []
    real = denoiser_module.export_denoiser

    def counting(model, path):
        calls.append(path)
        return real(model, path)

    monkeypatch.setattr(denoiser_module, "export_denoiser", counting)
    return calls


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny model folder and a cache folder holding its graph, exported once for the module."""
    from tiny_models import save_tiny_model

    root = tmp_path_factory.mktemp("onnx-denoiser")
    folder, cache = save_tiny_model(root / "tiny-model"), root / "cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KINEMO_CACHE_DIR", str(cache))
        OnnxDenoiser.prepare(load_model(folder))
    return folder, cache


@pytest.fixture
def tiny_model_dir(tiny, monkeypatch):
    """The module's tiny model, with the cache that holds its graph."""
    monkeypatch.setenv("KINEMO_CACHE_DIR", str(tiny[1]))
    return tiny[0]


def _clip(backend, request, notices=None):
    events = list(backend.generate(request))
    if notices is not None:
        notices.extend(e.message for e in events if isinstance(e, Notice))
    return events[-2].frames.astype(int)


# -- the graph against torch ------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 16, 3), (3, 7, 12)])
def test_the_graph_matches_torch_for_any_batch_frames_and_text(tiny_model_dir, shape):
    model = load_model(tiny_model_dir)
    fast = OnnxDenoiser.prepare(model)
    args = example_inputs(model, *shape, seed=5)
    cond = Conditioning(*args[2:7])
    with torch.inference_mode():
        want = model.predict(args[0], args[1], cond, args[7])
        with fast.attached(model):
            got = model.predict(args[0], args[1], cond, args[7])
    assert got.shape == want.shape == args[0].shape
    assert float((got - want).abs().max()) <= 1e-4


def test_attaching_replaces_predict_and_restores_it(tiny_model_dir):
    model = load_model(tiny_model_dir)
    fast = OnnxDenoiser.prepare(model)
    calls = []
    fast.session = _Counting(fast.session, calls)
    with pytest.raises(RuntimeError), fast.attached(model):
        args = example_inputs(model, 1, 2, 3)
        with torch.inference_mode():
            model(args[0], args[1], Conditioning(*args[2:7]))
        raise RuntimeError("stop")
    assert len(calls) == 1
    assert "predict" not in vars(model)  # the class's own method shows through again


class _Counting:
    def __init__(self, session, calls):
        self.session, self.calls = session, calls

    def run(self, *args):
        self.calls.append(args)
        return self.session.run(*args)


@pytest.mark.parametrize("guidance", [1.0, 3.0])  # batch 1, and prompt + negative in one batch of 2
def test_tiny_clip_matches_torch_within_one_level(tiny_model_dir, guidance):
    request = GenerationRequest("a blue square moves up", steps=4, frames=16, seed=2, guidance=guidance)
    want = _clip(BundledBackend(tiny_model_dir), request)
    got = _clip(BundledBackend(tiny_model_dir, options=RunOptions(onnx_denoiser=True)), request)
    assert want.std() > 1
    assert np.abs(got - want).max() <= 1


def test_picture_to_video_matches_torch_within_one_level(tiny_model_dir, tmp_path):
    y, x = np.mgrid[0:48, 0:80]
    picture = tmp_path / "picture.png"
    Image.fromarray(np.stack([x * 3, y * 5, (x + y) * 2], -1).astype(np.uint8)).save(picture)
    request = GenerationRequest(PROMPT, image=str(picture), steps=3, frames=8, width=64, height=64, seed=1)
    want = _clip(BundledBackend(tiny_model_dir), request)
    got = _clip(BundledBackend(tiny_model_dir, options=RunOptions(onnx_denoiser=True)), request)
    assert np.abs(got - want).max() <= 1


def test_shipped_clip_matches_torch_within_one_level():
    request = GenerationRequest(PROMPT, steps=25, frames=16, width=64, height=64, seed=0)
    want = _clip(BundledBackend(), request)
    got = _clip(BundledBackend(options=RunOptions(onnx_denoiser=True)), request)
    assert want.std() > 5
    assert np.abs(got - want).max() <= 1


def test_long_clip_runs_in_torch_with_a_notice(tiny_model_dir):
    request = GenerationRequest("a red circle", steps=2, frames=20, seed=1)
    notices = []
    got = _clip(BundledBackend(tiny_model_dir, options=RunOptions(onnx_denoiser=True)), request, notices)
    want = _clip(BundledBackend(tiny_model_dir), request)
    assert any("ONNX" in n and "torch" in n for n in notices)
    assert np.array_equal(got, want)


# -- what --onnx refuses ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options, says",
    [
        (RunOptions(onnx_denoiser=True, cache="first-block"), "--cache first-block"),
        (RunOptions(onnx_denoiser=True, quantize="int8"), "--quantize int8"),
        (RunOptions(onnx_denoiser=True, device="cuda"), "on cuda"),
    ],
)
def test_combinations_the_graph_cannot_run_are_refused(options, says):
    with pytest.raises(InvalidRequest, match=says):
        open_backend("kinemo-starter", options)


def test_diffusers_models_point_to_onnx_temporal():
    with pytest.raises(InvalidRequest, match="--onnx-temporal"):
        open_backend("wan2.1-t2v-1.3b", RunOptions(onnx_denoiser=True))


def test_both_onnx_switches_at_once_are_refused():
    with pytest.raises(InvalidRequest, match="drop --onnx-temporal"):
        RunOptions(onnx_denoiser=True, onnx_temporal=True).validate()


# -- the export cache -----------------------------------------------------------------------------------------
def test_export_happens_once_per_weights_and_a_damaged_graph_is_exported_again(tmp_path, cache_dir, exports):
    from tiny_models import save_tiny_model

    folder = save_tiny_model(tmp_path / "tiny-model")
    first = OnnxDenoiser.prepare(load_model(folder))
    assert first.exported and len(exports) == 1 and first.entry.parent.parent == cache_dir
    again = OnnxDenoiser.prepare(load_model(folder))
    assert not again.exported and again.entry == first.entry and len(exports) == 1

    graph = first.entry / GRAPH_FILE
    graph.write_bytes(graph.read_bytes()[:1000])  # a crash mid-copy, a bad disk
    model = load_model(folder)
    repaired = OnnxDenoiser.prepare(model)
    assert repaired.exported and len(exports) == 2
    args = example_inputs(model, 1, 3, 4)
    with torch.inference_mode(), repaired.attached(model):
        assert model.predict(args[0], args[1], Conditioning(*args[2:7]), args[7]).shape == args[0].shape

    with torch.no_grad():
        model.patch_out.bias.add_(0.01)  # other weights: another graph
    assert OnnxDenoiser.prepare(model).entry != first.entry and len(exports) == 3


def test_the_graph_has_dynamic_batch_frames_and_text(tiny_model_dir):
    import onnx

    fast = OnnxDenoiser.prepare(load_model(tiny_model_dir))
    inputs = {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in onnx.load(str(fast.entry / GRAPH_FILE)).graph.input
    }
    b, _, f, h, w = inputs["sample"]
    graph = onnx.load(str(fast.entry / GRAPH_FILE)).graph
    fused = [n for n in graph.node if n.op_type == "MultiHeadAttention" and n.domain == "com.microsoft"]
    assert len(fused) == 3 * len(load_model(tiny_model_dir).blocks)  # spatial, temporal and cross attention
    assert isinstance(b, str) and isinstance(f, str) and (h, w) == (64, 64)
    assert inputs["frame_indices"] == [f] and isinstance(inputs["text_states"][1], str)
