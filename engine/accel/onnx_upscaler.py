"""The upscaler's U-Net in onnxruntime, for runs with --onnx: the part of a text-to-video clip after the denoiser.

KinemoUpscaler.fields (a convolutional U-Net at the model's own resolution) is most of the upscaler's work;
onnxruntime ran it 1.6x faster than torch's oneDNN on 2 cores (8 frames of 72x72, least of 20). The rest of
the upscaler (resampling to the output's size and compositing) stays in torch. Exported by torch.onnx's dynamo
exporter with dynamic frames, height and width::

    frames (n, 3, h, w) float32, h and w multiples of 4  ->  fields (n, 8, h, w) float32

Cached and checked as the denoiser's graph is (engine.accel.artifacts): keyed by the upscaler's weights, config
and code, probed against torch before use.

    fast = OnnxUpscaler.prepare(upscaler)
    fast.attach(upscaler)            # upscaler.fields runs in onnxruntime from now on
"""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

import torch
from torch import nn

from engine.accel.artifacts import cache_root
from engine.accel.onnx_temporal import cached_sessions, onnx_versions, quiet_exporter
from engine.kinemo import upscaler as upscaler_code
from engine.kinemo.upscaler import KinemoUpscaler
from engine.util.files import atomic_path

FORMAT = 1  # bump when the graph's inputs, outputs or layout change
INPUT, OUTPUT = "frames", "fields"
GRAPH_FILE = "upscaler_fields.onnx"


class _Fields(nn.Module):
    def __init__(self, model: KinemoUpscaler):
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.model.fields(frames)


def upscaler_key(model: KinemoUpscaler) -> str:
    """Hash of what the graph computes: the code, the config and every weight."""
    digest = hashlib.sha256(f"kinemo-onnx-upscaler/{FORMAT}".encode())
    digest.update(Path(inspect.getfile(upscaler_code)).read_bytes())
    digest.update(repr(sorted(model.config.to_dict().items())).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def export_fields(model: KinemoUpscaler, path: Path) -> None:
    """Export model.fields to path (written whole or not at all), dynamic in frames, height and width."""
    n = torch.export.Dim("n")
    h, w = 4 * torch.export.Dim("h4", min=2, max=1024), 4 * torch.export.Dim("w4", min=2, max=1024)
    frames = torch.randn(3, 3, 40, 56)
    with quiet_exporter(), torch.no_grad(), atomic_path(path) as partial:
        program = torch.onnx.export(
            _Fields(model).eval(),
            (frames,),
            dynamo=True,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_shapes={"frames": {0: n, 2: h, 3: w}},
            optimize=True,
            verbose=False,
        )
        program.save(str(partial))


def run_fields(session, frames: torch.Tensor) -> torch.Tensor:
    """KinemoUpscaler.fields in onnxruntime: (n, 3, h, w) -> (n, 8, h, w) on frames' device."""
    out = session.run([OUTPUT], {INPUT: frames.detach().float().cpu().contiguous().numpy()})[0]
    return torch.from_numpy(out).to(frames.device, frames.dtype)


def _probe(session, model: KinemoUpscaler, device: torch.device) -> float:
    """Largest difference between the graph and torch on frames of another shape than the export's."""
    frames = torch.rand(2, 3, 72, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        return float((run_fields(session, frames) - model.fields(frames)).abs().max())


class OnnxUpscaler:
    """The onnxruntime session of one upscaler's U-Net, exported once and cached."""

    def __init__(self, session, entry: Path, exported: bool):
        self.session = session
        self.entry = entry
        self.exported = exported

    @classmethod
    def prepare(cls, model: KinemoUpscaler) -> OnnxUpscaler:
        key = upscaler_key(model)
        entry = cache_root() / "onnx-upscaler" / key[:16]
        expect = {**onnx_versions(FORMAT), "key": key}
        sessions, exported = cached_sessions(
            entry, expect, [model], lambda _: GRAPH_FILE, export_fields, _probe, torch.device("cpu"), "upscaler"
        )
        return cls(sessions[0], entry, bool(exported))

    def attach(self, model: KinemoUpscaler) -> None:
        """From now on model.fields runs in onnxruntime (the backend that owns model asked for --onnx)."""
        model.fields = lambda frames: run_fields(self.session, frames)  # type: ignore[method-assign]
