"""Temporal attention in onnxruntime: per-block and whole-clip agreement with torch, and the export cache."""

import json

import numpy as np
import pytest
import torch

import engine.accel.onnx_temporal as onnx_module
from engine.accel.onnx_temporal import OnnxTemporal, OnnxTemporalAttention, block_file
from engine.accel.quantize import quantize_model
from engine.api.events import Notice
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.backends.bundled import BundledBackend
from engine.kinemo.files import load_model, save_model
from engine.kinemo.model import KinemoConfig, KinemoDiT
from engine.kinemo.temporal_attention import TemporalAttention
from engine.registry.assets import STARTER_DIR

PROMPT = "a red circle moves right on a black background"
SHAPES = [(1, 1), (3, 2), (64, 16), (128, 7), (17, 11)]  # (n = batch x tokens, f = frames)


@pytest.fixture
def exports(monkeypatch):
    """Indices of the blocks exported (by any prepare) during the test."""
    calls = []
    real = onnx_module.export_block

    def counting(module, path):
        calls.append(int(path.stem.rsplit("_", 1)[1]))
        return real(module, path)

    monkeypatch.setattr(onnx_module, "export_block", counting)
    return calls


@pytest.fixture(scope="module")
def shipped():
    """The shipped model and its ONNX blocks (exported once into the session's cache)."""
    model = load_model(STARTER_DIR)
    return model, OnnxTemporal.prepare(model)


def _two_block_model(folder):
    torch.manual_seed(1)
    model = KinemoDiT(KinemoConfig(dim=16, depth=2, heads=2, text_dim=16, text_depth=1))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    save_model(model, folder)
    return load_model(folder)


def _positions(kind: str, f: int) -> torch.Tensor | None:
    if kind == "none":
        return None
    if kind == "int":
        return torch.arange(f)
    return torch.linspace(0, 15, f) if f > 1 else torch.tensor([2.5])  # fractional, as long clips place frames


def _blocks_agree(model, fast, dim):
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    with fast.attached(model), torch.inference_mode():
        for block in model.blocks:
            assert isinstance(block.temporal, OnnxTemporalAttention)
            torch_block = block.temporal.torch_module
            for n, f in SHAPES:
                x = torch.randn(n, f, dim, generator=gen)
                for kind in ("none", "int", "fractional"):
                    positions = _positions(kind, f)
                    got, want = block.temporal(x, positions), torch_block(x, positions)
                    assert got.shape == want.shape == (n, f, dim)
                    worst = max(worst, float((got - want).abs().max()))
    assert worst <= 1e-4, worst


def _clip(backend, request, notices=None):
    events = list(backend.generate(request))
    if notices is not None:
        notices.extend(e.message for e in events if isinstance(e, Notice))
    return events[-2].frames


# -- each block -----------------------------------------------------------------------------------------
def test_every_shipped_block_matches_torch_within_1e_4(shipped):
    model, fast = shipped
    assert len(fast.sessions) == len(model.blocks) == model.config.depth
    _blocks_agree(model, fast, model.config.dim)


def test_every_tiny_block_matches_torch_within_1e_4(tiny_model_dir, cache_dir):
    model = load_model(tiny_model_dir)
    _blocks_agree(model, OnnxTemporal.prepare(model), model.config.dim)


def test_int8_blocks_are_exported_as_the_int8_model_computes_them(tiny_model_dir, cache_dir):
    model = quantize_model(load_model(tiny_model_dir))
    fast = OnnxTemporal.prepare(model)
    assert fast.entry != OnnxTemporal.prepare(load_model(tiny_model_dir)).entry  # other weights, other key
    _blocks_agree(model, fast, model.config.dim)


def test_graphs_have_dynamic_frames_and_tokens(shipped):
    import onnx

    _, fast = shipped
    graph = onnx.load(str(fast.entry / block_file(0))).graph
    x, positions = graph.input
    dims = [d.dim_param or d.dim_value for d in x.type.tensor_type.shape.dim]
    assert isinstance(dims[0], str) and isinstance(dims[1], str) and dims[2] == 128
    assert positions.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param for d in positions.type.tensor_type.shape.dim] == [dims[1]]


def test_attaching_swaps_the_blocks_and_restores_them(tiny_model_dir, cache_dir):
    model = load_model(tiny_model_dir)
    originals = [b.temporal for b in model.blocks]
    fast = OnnxTemporal.prepare(model)
    with pytest.raises(RuntimeError), fast.attached(model):
        assert all(isinstance(b.temporal, OnnxTemporalAttention) for b in model.blocks)
        assert sum(p.numel() for p in model.parameters()) < sum(
            p.numel() for p in load_model(tiny_model_dir).parameters()
        )
        raise RuntimeError("stop")
    assert [b.temporal for b in model.blocks] == originals
    assert all(isinstance(b.temporal, TemporalAttention) for b in model.blocks)


# -- whole clips --------------------------------------------------------------------------------------
def test_shipped_clip_matches_torch_within_one_level(shipped):
    request = GenerationRequest(PROMPT, steps=25, frames=16, width=64, height=64, seed=0)
    want = _clip(BundledBackend(), request)
    got = _clip(BundledBackend(options=RunOptions(onnx_temporal=True)), request)
    assert want.std() > 5
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_tiny_clip_matches_torch_within_one_level(tiny_model_dir, cache_dir, quantize):
    request = GenerationRequest("a blue square moves up", steps=4, frames=16, seed=2, guidance=3)
    want = _clip(BundledBackend(tiny_model_dir, options=RunOptions(quantize=quantize)), request)
    backend = BundledBackend(tiny_model_dir, options=RunOptions(quantize=quantize, onnx_temporal=True))
    got = _clip(backend, request)
    assert want.std() > 1
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert all(isinstance(b.temporal, TemporalAttention) for b in backend.model.blocks)  # restored after the run


def test_long_clip_falls_back_to_torch_with_a_notice(tiny_model_dir, cache_dir):
    request = GenerationRequest("a red circle", steps=2, frames=20, seed=1)
    notices = []
    got = _clip(BundledBackend(tiny_model_dir, options=RunOptions(onnx_temporal=True)), request, notices)
    want = _clip(BundledBackend(tiny_model_dir), request)
    assert any("ONNX" in n and "torch" in n for n in notices)
    assert np.array_equal(got, want)


# -- the export cache ---------------------------------------------------------------------------------
def test_export_happens_once_and_is_reused(tiny_model_dir, cache_dir, exports):
    model = load_model(tiny_model_dir)
    first = OnnxTemporal.prepare(model)
    assert exports == [0] and first.exported == [0]
    assert first.entry.parent.parent == cache_dir
    assert OnnxTemporal.prepare(load_model(tiny_model_dir)).exported == [] and exports == [0]
    request = GenerationRequest("a red circle", steps=1)
    for _ in range(2):
        _clip(BundledBackend(tiny_model_dir, options=RunOptions(onnx_temporal=True)), request)
    assert exports == [0]
    manifest = json.loads((first.entry / "manifest.json").read_text())
    assert manifest["torch"] == torch.__version__ and set(manifest["files"]) == {block_file(0)}


@pytest.mark.parametrize(("damage", "block"), [("truncate", 0), ("garbage", 1), ("delete", 0)])
def test_a_corrupt_graph_is_rebuilt(tmp_path, cache_dir, exports, damage, block):
    model = _two_block_model(tmp_path / "two")
    entry = OnnxTemporal.prepare(model).entry
    target = entry / block_file(block)
    good = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(good[: len(good) // 3])
    elif damage == "garbage":
        target.write_bytes(b"\x00not an onnx graph" * 100)
    else:
        target.unlink()
    again = OnnxTemporal.prepare(model)
    assert again.exported == [block] and exports == [0, 1, block]  # only the damaged block
    _blocks_agree(model, again, 16)
    assert OnnxTemporal.prepare(model).exported == []


def test_a_graph_that_passes_its_checksum_but_computes_something_else_is_rebuilt(tmp_path, cache_dir, exports):
    model = _two_block_model(tmp_path / "two")
    entry = OnnxTemporal.prepare(model).entry
    a, b = (entry / block_file(0)).read_bytes(), (entry / block_file(1)).read_bytes()
    (entry / block_file(0)).write_bytes(b)
    (entry / block_file(1)).write_bytes(a)
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest["files"] = {
        block_file(0): manifest["files"][block_file(1)],
        block_file(1): manifest["files"][block_file(0)],
    }
    (entry / "manifest.json").write_text(json.dumps(manifest))
    again = OnnxTemporal.prepare(model)
    assert again.exported == [0, 1]
    _blocks_agree(model, again, 16)


@pytest.mark.parametrize("field", ["key", "torch", "onnx", "format", "garbage"])
def test_a_stale_entry_is_rebuilt(tiny_model_dir, cache_dir, exports, field):
    model = load_model(tiny_model_dir)
    entry = OnnxTemporal.prepare(model).entry
    path = entry / "manifest.json"
    if field == "garbage":
        path.write_text("[1, 2")
    else:
        manifest = json.loads(path.read_text())
        manifest[field] = "0" * 64 if field == "key" else "0.0"
        path.write_text(json.dumps(manifest))
    assert OnnxTemporal.prepare(model).exported == [0] and exports == [0, 0]
    assert OnnxTemporal.prepare(model).exported == []


def test_new_weights_are_exported_under_a_new_key(tiny_model_dir, cache_dir, exports):
    model = load_model(tiny_model_dir)
    first = OnnxTemporal.prepare(model).entry
    with torch.no_grad():
        model.blocks[0].temporal.to_out.bias.add_(0.01)
    second = OnnxTemporal.prepare(model)
    assert second.entry != first and second.exported == [0] and exports == [0, 0]
    _blocks_agree(model, second, model.config.dim)
