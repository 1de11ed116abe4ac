"""The bundled model's whole denoiser step in onnxruntime: one graph per model, one call per step.

Per-block ONNX (engine.accel.onnx_temporal) loses to torch on the CPU: each of its calls pays a hop into
onnxruntime and back, and the rest of the block still runs in torch. Here everything KinemoDiT.predict does
— patch embedding, every factorised block (spatial, temporal and cross attention, MLP), the overlapping patch
decoder and the pixel refiner — is one graph, which onnxruntime optimises whole (fused layer norms, GELUs and
matmuls, NCHWc convolutions) and runs without returning to Python between operators; its attention is ORT's
fused MultiHeadAttention (engine.accel.onnx_attention). Exported by
torch.onnx's dynamo exporter with dynamic batch (b), frames (f) and text length (l)::

    sample (b, 3, f, h, w) float32, timestep (b,) float32, text_states (b, l, c) float32, text_mask (b, l) bool,
    text_pooled (b, c) float32, image (b, 3, h, w) float32, image_mask (b,) float32, frame_indices (f,) float32
        ->  out (b, 3, f, h, w) float32

The text encoder stays in torch (it runs once per request). The graph is cached as the temporal graphs are
(engine.accel.artifacts): keyed by the model's weights, config and code, checked against torch on a probe
input before use, exported again when anything does not match.

    fast = OnnxDenoiser.prepare(model)     # exports or reuses, opens the session
    with fast.attached(model):             # model.predict runs in onnxruntime
        model(sample, timestep, cond)

A run whose hooks reach inside the model (the rolling temporal K/V cache of long clips, the step cache, the
conditioning K/V cache) cannot see inside one graph: the backend runs those in torch (engine.backends.bundled).
CPU only: on CUDA torch already runs the model fast, and the graph's inputs would go through the host.
"""

from __future__ import annotations

import hashlib
import inspect
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from engine.accel import onnx_attention
from engine.accel.artifacts import cache_root
from engine.accel.onnx_attention import attention_stand_ins, translation_table
from engine.accel.onnx_temporal import cached_sessions, onnx_versions, quiet_exporter
from engine.kinemo import model as model_code
from engine.kinemo import temporal_attention
from engine.kinemo.model import Conditioning, KinemoDiT
from engine.util.files import atomic_path
from engine.util.patching import patched

FORMAT = 2  # bump when the graph's inputs, outputs or layout change
INPUTS = (
    "sample",
    "timestep",
    "text_states",
    "text_mask",
    "text_pooled",
    "image",
    "image_mask",
    "frame_indices",
)
OUTPUT = "out"
GRAPH_FILE = "denoiser.onnx"
# Whether onnxruntime's idle threads spin between steps. Per-block graphs must not (they took the cores from
# torch's threads between graphs, engine.accel.onnx_temporal); a whole step leaves torch little to do between
# graphs (the DDIM update, the preview), so bench/bench_onnx.py measures both.
SPINNING = False


class _Exportable(nn.Module):
    """KinemoDiT.predict with plain tensor inputs (Conditioning unpacked), as the exporter needs them."""

    def __init__(self, model: KinemoDiT):
        super().__init__()
        self.model = model

    def forward(self, sample, timestep, text_states, text_mask, text_pooled, image, image_mask, frame_indices):
        cond = Conditioning(text_states, text_mask, text_pooled, image, image_mask)
        return self.model.predict(sample, timestep, cond, frame_indices)


def example_inputs(model: KinemoDiT, batch: int, frames: int, text: int, seed: int = 0) -> tuple:
    """Inputs in INPUTS order: a noisy clip, a timestep per clip, random text states with a padded tail, a
    first-frame picture on the first clip only, fractional frame positions (as long clips give)."""
    config = model.config
    gen = torch.Generator().manual_seed(seed)
    size, c = config.size, config.text_dim
    mask = torch.ones(batch, text, dtype=torch.bool)
    mask[1:, text // 2 :] = False  # later clips' prompts are shorter: their padding is masked
    image_mask = torch.zeros(batch)
    image_mask[0] = 1.0
    return (
        torch.randn(batch, 3, frames, size, size, generator=gen),
        torch.linspace(999, 1, batch),
        torch.randn(batch, text, c, generator=gen),
        mask,
        torch.randn(batch, c, generator=gen),
        torch.rand(batch, 3, size, size, generator=gen) * 2 - 1,
        image_mask,
        torch.linspace(0, config.max_frames - 1, frames),
    )


def denoiser_key(model: KinemoDiT) -> str:
    """Hash of what the graph computes: the code, the config and every weight (the text encoder's included:
    hashing them is cheaper than telling them apart)."""
    digest = hashlib.sha256(f"kinemo-onnx-denoiser/{FORMAT}".encode())
    for module in (model_code, temporal_attention, onnx_attention):
        digest.update(Path(inspect.getfile(module)).read_bytes())
    digest.update(repr(sorted(model.config.to_dict().items())).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def export_denoiser(model: KinemoDiT, path: Path) -> None:
    """Export model.predict to path (written whole or not at all), dynamic in batch, frames and text length."""
    b, length = torch.export.Dim("b"), torch.export.Dim("l")
    f = torch.export.Dim("f", min=1, max=model.config.max_frames)
    dynamic = {
        "sample": {0: b, 2: f},
        "timestep": {0: b},
        "text_states": {0: b, 1: length},
        "text_mask": {0: b, 1: length},
        "text_pooled": {0: b},
        "image": {0: b},
        "image_mask": {0: b},
        "frame_indices": {0: f},
    }
    # 2 clips, 5 frames, 7 text tokens: no size is 1, so the exporter keeps every dynamic axis dynamic
    args = example_inputs(model, batch=2, frames=5, text=7)
    with quiet_exporter(), torch.no_grad(), patched(attention_stand_ins(model)), atomic_path(path) as partial:
        program = torch.onnx.export(
            _Exportable(model).eval(),
            args,
            dynamo=True,
            input_names=list(INPUTS),
            output_names=[OUTPUT],
            dynamic_shapes=dynamic,
            custom_translation_table=translation_table(),  # fused attention (engine.accel.onnx_attention)
            optimize=True,
            verbose=False,
        )
        program.save(str(partial))


def run_graph(session, sample, timestep, cond: Conditioning, frame_indices) -> torch.Tensor:
    """One denoiser call in onnxruntime: KinemoDiT.predict's arguments -> (b, 3, f, h, w) on sample's device."""
    b = sample.shape[0]
    values = (
        sample.float(),
        timestep.float().expand(b),
        cond.text_states.float(),
        cond.text_mask.bool(),
        cond.text_pooled.float(),
        cond.image.float(),
        cond.image_mask.float(),
        frame_indices.float(),
    )
    feed = {name: value.detach().cpu().contiguous().numpy() for name, value in zip(INPUTS, values)}
    out = session.run([OUTPUT], feed)[0]
    return torch.from_numpy(out).to(sample.device, sample.dtype)


def _probe(session, model: KinemoDiT, device: torch.device) -> float:
    """Largest difference between the graph and torch on inputs of another shape than the export's."""
    args = example_inputs(model, batch=3, frames=4, text=9, seed=1)
    with torch.inference_mode():
        ref = _Exportable(model)(*args)
        got = run_graph(session, args[0], args[1], Conditioning(*args[2:7]), args[7])
    return float((got - ref).abs().max())


class OnnxDenoiser:
    """The onnxruntime session of one bundled model's denoiser, exported once and cached."""

    covers_long_clips = False  # the rolling temporal K/V cache hooks the torch blocks the graph replaces

    def __init__(self, session, entry: Path, exported: bool):
        self.session = session
        self.entry = entry
        self.exported = exported  # True when this prepare() exported the graph (False: reused from the cache)

    @classmethod
    def prepare(cls, model: KinemoDiT) -> OnnxDenoiser:
        """The session for model's denoiser: a sound cached graph is reused, else it is exported."""
        model = model.eval()
        key = denoiser_key(model)
        entry = cache_root() / "onnx-denoiser" / key[:16]
        expect = {**onnx_versions(FORMAT), "key": key}
        sessions, exported = cached_sessions(
            entry,
            expect,
            [model],
            lambda _: GRAPH_FILE,
            export_denoiser,
            _probe,
            torch.device("cpu"),
            "denoiser",
            SPINNING,
        )
        return cls(sessions[0], entry, bool(exported))

    @contextmanager
    def attached(self, model: KinemoDiT):
        """Within the block, model.predict (every denoiser call, after forward's checks) runs in onnxruntime."""

        def predict(sample, timestep, cond, frame_indices):
            return run_graph(self.session, sample, timestep, cond, frame_indices)

        with patched([(model, "predict", predict)]):
            yield self
