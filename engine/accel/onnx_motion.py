"""AnimateDiff's motion modules in onnxruntime: each temporal transformer (diffusers'
AnimateDiffTransformer3D) exported to ONNX once, then run in place of the torch module.

Each module is exported on its own (torch.onnx's dynamo exporter) as float32, with the clip's frames
as their own axis so that batch, frames, height and width are all dynamic::

    x (b, f, c, h, w) float32  ->  out (b, f, c, h, w) float32

The UNet calls a motion module with (b f) c h w and num_frames; the stand-in reshapes (a view) and
casts around the graph, so the UNet never knows. Graphs are cached like the bundled model's
(engine.accel.onnx_temporal): keyed by a hash of each module's weights and the diffusers version, checked
against the torch module on a probe input before they are trusted, exported again when stale,
damaged or different.

    motion = OnnxMotion.prepare(pipe.unet, device)   # exports or reuses, opens the sessions
    with motion.attached(pipe.unet):                 # motion modules -> OnnxMotionModule
        pipe(...)
"""

from __future__ import annotations

import hashlib
import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.accel.artifacts import cache_root
from engine.accel.onnx_temporal import cached_sessions, onnx_versions, quiet_exporter
from engine.api.errors import InvalidRequest
from engine.util.files import atomic_path
from engine.util.patching import patched

log = logging.getLogger("kinemo.engine")

FORMAT = 1
INPUT, OUTPUT = "x", "out"
PROBE_FRAMES = 5
MOTION_CLASS = "AnimateDiffTransformer3D"


def motion_modules(unet) -> list[tuple[nn.Module, str, nn.Module]]:
    """Every motion module of a UNetMotionModel as (parent list, index, module), in a fixed order."""
    found = []
    for _, parent in unet.named_modules():
        modules = getattr(parent, "motion_modules", None)
        if isinstance(modules, nn.ModuleList):
            for index, module in enumerate(modules):
                if isinstance(module, OnnxMotionModule):
                    module = module.torch_module
                if type(module).__name__ != MOTION_CLASS:
                    raise TypeError(f"a motion module is a {type(module).__name__}, not {MOTION_CLASS}")
                found.append((modules, index, module))
    return found


def check_exportable(module: nn.Module) -> None:
    """Int8 (quanto) or FreeNoise-wrapped motion modules are not exported: say so."""
    from optimum.quanto import QModuleMixin

    if any(isinstance(m, QModuleMixin) for m in module.modules()):
        raise InvalidRequest("--onnx-temporal and --quantize int8 do not combine for diffusers models yet; pick one")
    if any(type(m).__name__.startswith("FreeNoise") for m in module.modules()):
        raise InvalidRequest("--onnx-temporal covers one 16-frame context; ask for at most 16 frames, or leave it off")


def _channels(module: nn.Module) -> int:
    return module.proj_in.in_features


def motion_key(modules: list[nn.Module]) -> str:
    import diffusers

    digest = hashlib.sha256(f"kinemo-onnx-motion/{FORMAT}/{diffusers.__version__}".encode())
    for module in modules:
        digest.update(f"{type(module).__name__}/{_channels(module)}".encode())
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def module_file(index: int) -> str:
    return f"motion_module_{index}.onnx"


class _Exportable(nn.Module):
    """x (b, f, c, h, w) -> the motion module's output in the same layout."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, f, c, h, w = x.shape
        out = self.inner(x.reshape(b * f, c, h, w), num_frames=f)
        return out.reshape(b, f, c, h, w)


def _float_copy(module: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(module).float().cpu().eval().requires_grad_(False)


def export_module(module: nn.Module, path: Path) -> None:
    """Export one fp32 CPU motion module to path (written whole or not at all)."""
    b, f, h, w = (torch.export.Dim(n) for n in ("b", "f", "h", "w"))
    x = torch.randn(2, PROBE_FRAMES, _channels(module), 6, 7)
    with quiet_exporter(), atomic_path(path) as partial:
        program = torch.onnx.export(
            _Exportable(module),
            (x,),
            dynamo=True,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_shapes={"x": {0: b, 1: f, 3: h, 4: w}},
            optimize=True,
            verbose=False,
        )
        program.save(str(partial))


class OnnxMotionModule(nn.Module):
    """Drop-in for a motion module: ((b f) c h w, num_frames) -> (b f) c h w through onnxruntime."""

    def __init__(self, session, torch_module: nn.Module, device: torch.device | str = "cpu"):
        super().__init__()
        self.session = session
        self.device = torch.device(device)
        self.__dict__["torch_module"] = torch_module  # kept out of the module tree
        self.on_cuda = "CUDAExecutionProvider" in session.get_providers()

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states=None,
        timestep=None,
        class_labels=None,
        num_frames: int = 1,
        cross_attention_kwargs=None,
    ) -> torch.Tensor:
        n, c, h, w = hidden_states.shape
        x = hidden_states.reshape(n // num_frames, num_frames, c, h, w)  # (b f) c h w -> b f c h w, a view
        if x.is_cuda and self.on_cuda:
            out = self._run_cuda(x)
        else:
            result = self.session.run([OUTPUT], {INPUT: x.detach().float().cpu().contiguous().numpy()})[0]
            out = torch.from_numpy(result).to(hidden_states.device)
        return out.reshape(n, c, h, w).to(hidden_states.dtype)

    def _run_cuda(self, x: torch.Tensor) -> torch.Tensor:
        """I/O binding in CUDA memory, as engine.accel.onnx_temporal does. Not exercised by the CPU test suite."""
        index = x.device.index if x.device.index is not None else torch.cuda.current_device()
        xs = x.detach().float().contiguous()
        out = torch.empty_like(xs)
        binding = self.session.io_binding()
        binding.bind_input(INPUT, "cuda", index, np.float32, tuple(xs.shape), xs.data_ptr())
        binding.bind_output(OUTPUT, "cuda", index, np.float32, tuple(out.shape), out.data_ptr())
        torch.cuda.current_stream(x.device).synchronize()
        self.session.run_with_iobinding(binding)
        return out


def _probe(session, plain: nn.Module, device: torch.device) -> float:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2 * PROBE_FRAMES, _channels(plain), 4, 3, generator=gen)
    with torch.inference_mode():
        ref = plain(x, num_frames=PROBE_FRAMES)
        got = OnnxMotionModule(session, plain, device)(x.to(device), num_frames=PROBE_FRAMES).float().cpu()
    return float((got - ref).abs().max())


class OnnxMotion:
    """The onnxruntime sessions for every motion module of one UNetMotionModel, exported once and cached."""

    def __init__(self, sessions: list, entry: Path, exported: list[int], device: torch.device):
        self.sessions, self.entry, self.exported, self.device = sessions, entry, exported, device

    @classmethod
    def prepare(cls, unet, device: str | torch.device = "cpu") -> OnnxMotion:
        device = torch.device(device)
        found = motion_modules(unet)
        if not found:
            raise InvalidRequest(f"{type(unet).__name__} has no motion modules to run in onnxruntime")
        for _, _, module in found:
            check_exportable(module)
        plains = [_float_copy(module) for _, _, module in found]
        key = motion_key(plains)
        entry = cache_root() / "onnx-motion" / key[:16]
        expect = {**onnx_versions(), "key": key, "modules": len(plains)}
        sessions, exported = cached_sessions(
            entry, expect, plains, module_file, export_module, _probe, device, "motion module"
        )
        return cls(sessions, entry, exported, device)

    @contextmanager
    def attached(self, unet):
        """Within the block, every motion module runs in onnxruntime."""
        found = motion_modules(unet)
        if len(found) != len(self.sessions):
            raise ValueError(f"{len(self.sessions)} ONNX motion modules for a UNet with {len(found)}")
        stand_ins = [
            (parent, index, OnnxMotionModule(session, module, self.device))
            for (parent, index, module), session in zip(found, self.sessions)
        ]
        with patched(stand_ins):
            yield self
