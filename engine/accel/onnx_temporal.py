"""Temporal attention in onnxruntime: every block's TemporalAttention exported to ONNX once, then run
in place of the torch module.

Each block's module is exported on its own (torch.onnx's dynamo exporter) with two inputs and one
output, and dynamic axes for batch x tokens (n) and frames (f)::

    x (n, f, d) float32, positions (f,) float32  ->  out (n, f, d) float32

The rotary tables are computed inside the graph from `positions`, so one graph serves integer
frame indices and the fractional positions of long clips alike.

The graphs live in Kinemo's cache folder under a key hashed from what they compute: each block's
temporal weights as the model holds them (after int8 dequantisation, for a quantised model), the
model's dims and the source of engine/kinemo/temporal_attention.py. A manifest records that key,
the torch / onnx versions that exported them and each file's SHA-256; an entry for other weights or
versions, a file that fails its checksum or does not load, or a graph that does not match its torch
block on a probe input is exported again, never trusted.

    fast = OnnxTemporal.prepare(model, device="cpu")   # exports or reuses, opens the sessions
    with fast.attached(model):                         # block.temporal -> OnnxTemporalAttention
        model(...)

On CPU the sessions use the CPU execution provider. On CUDA they use the CUDA execution provider
with I/O binding: the torch tensors' device memory is bound as the graph's input and output, so
nothing is copied through the host.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import logging
import sys
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.accel.artifacts import (
    cache_errors,
    cache_root,
    file_matches,
    forget_manifest,
    read_manifest,
    write_manifest,
)
from engine.api.errors import ModelLoadError
from engine.kinemo.temporal_attention import TemporalAttention
from engine.util.files import atomic_path
from engine.util.patching import patched

log = logging.getLogger("kinemo.engine")

FORMAT = 1  # bump when the graphs' inputs, outputs or layout change
INPUTS, OUTPUT = ("x", "positions"), "out"
TOLERANCE = 1e-4  # a graph further than this from its torch block on the probe is rebuilt
PROBE_SHAPE = (6, 5)  # (n, f) of the probe input every graph is checked on


# -- what gets exported ------------------------------------------------------------------------------
def _dense(weight: torch.Tensor) -> torch.Tensor:
    """A Linear weight as a plain float32 CPU tensor (quanto's int8 weights dequantised). optimum.quanto is only
    looked up where it is loaded already: importing it costs about 200 MB (it pulls in transformers and
    diffusers), and a weight can only be quanto's if quanto made it."""
    quanto = sys.modules.get("optimum.quanto")
    if quanto is not None and isinstance(weight, quanto.QTensor):
        weight = weight.dequantize()
    return weight.detach().float().cpu()


def plain_temporal(module: nn.Module) -> TemporalAttention:
    """An fp32 CPU TemporalAttention computing what `module` (possibly int8) computes."""
    dim = module.to_out.out_features
    copy = TemporalAttention(dim, module.heads)
    state = {
        "to_qkv.weight": _dense(module.to_qkv.weight),
        "to_qkv.bias": module.to_qkv.bias.detach().float().cpu(),
        "to_out.weight": _dense(module.to_out.weight),
        "to_out.bias": module.to_out.bias.detach().float().cpu(),
    }
    copy.load_state_dict(state)
    return copy.eval().requires_grad_(False)


def temporal_modules(model) -> list[nn.Module]:
    """Every block's torch temporal attention (unwrapping an attached OnnxTemporalAttention)."""
    found = []
    for block in model.blocks:
        module = block.temporal
        if isinstance(module, OnnxTemporalAttention):
            module = module.torch_module
        if not isinstance(module, TemporalAttention):
            raise TypeError(f"block temporal attention is a {type(module).__name__}, not TemporalAttention")
        found.append(module)
    return found


def temporal_key(plains: list[TemporalAttention]) -> str:
    """Hash of what the graphs compute: the code, the dims and every block's weights."""
    digest = hashlib.sha256(f"kinemo-onnx-temporal/{FORMAT}".encode())
    source = Path(inspect.getfile(TemporalAttention))
    digest.update(source.read_bytes())
    for module in plains:
        digest.update(f"{module.to_out.out_features}/{module.heads}".encode())
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def onnx_versions(graph_format: int = FORMAT) -> dict:
    """What a cached graph was exported with: its layout's format number and the exporting libraries."""
    import onnx

    return {"format": graph_format, "torch": torch.__version__, "onnx": onnx.__version__}


def block_file(index: int) -> str:
    return f"temporal_block_{index}.onnx"


class _Exportable(nn.Module):
    def __init__(self, inner: TemporalAttention):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.inner(x, positions)


@contextmanager
def quiet_exporter():
    """The exporter chats on stdout, warns and logs progress; none of it is the user's business."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def export_block(module: TemporalAttention, path: Path) -> None:
    """Export one fp32 TemporalAttention to path (written whole or not at all)."""
    n, f = torch.export.Dim("n"), torch.export.Dim("f")
    x = torch.randn(8, 5, module.to_out.out_features)
    positions = torch.arange(5, dtype=torch.float32)
    with quiet_exporter(), atomic_path(path) as partial:
        program = torch.onnx.export(
            _Exportable(module),
            (x, positions),
            dynamo=True,
            input_names=list(INPUTS),
            output_names=[OUTPUT],
            dynamic_shapes={"x": {0: n, 1: f}, "positions": {0: f}},
            optimize=True,
            verbose=False,
        )
        program.save(str(partial))


# -- sessions ---------------------------------------------------------------------------------------
def _providers(device: torch.device) -> list:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        options = {"device_id": index}
        return [("CUDAExecutionProvider", options), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def open_session(path: Path, device: torch.device, spinning: bool = False):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    # onnxruntime's idle threads spin by default, taking the cores from torch's threads between graphs
    # (measured: 4.3x slower steps on 2 cores with the starter model); let them sleep instead
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=_providers(device))
    if device.type == "cuda" and "CUDAExecutionProvider" not in session.get_providers():
        log.warning("onnxruntime has no usable CUDA execution provider here; temporal attention runs on the CPU")
    return session


def _probe(session, plain: TemporalAttention, device: torch.device) -> float:
    """Largest difference between a graph and its torch block on a fixed probe input."""
    gen = torch.Generator().manual_seed(0)
    n, f = PROBE_SHAPE
    x = torch.randn(n, f, plain.to_out.out_features, generator=gen)
    positions = torch.linspace(0, 7.5, f)  # fractional, as long clips give
    with torch.inference_mode():
        ref = plain(x, positions)
    with torch.inference_mode():
        got = OnnxTemporalAttention(session, plain, device)(x.to(device), positions.to(device)).cpu()
    return float((got - ref).abs().max())


class OnnxTemporalAttention(nn.Module):
    """Drop-in for TemporalAttention: (x (n, f, d), positions (f,) | None) -> (n, f, d) through onnxruntime."""

    def __init__(self, session, torch_module: nn.Module, device: torch.device | str = "cpu"):
        super().__init__()
        self.session = session
        self.device = torch.device(device)
        # the module this one stands in for; kept out of the module tree, so the model's
        # parameters and hooks are not visited twice
        self.__dict__["torch_module"] = torch_module
        self.heads = torch_module.heads
        self.head_dim = getattr(torch_module, "head_dim", None)
        self.on_cuda = "CUDAExecutionProvider" in session.get_providers()  # else CUDA tensors go through the host

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        if positions is None:
            positions = torch.arange(x.shape[1], device=x.device)
        if x.is_cuda and self.on_cuda:
            return self._run_cuda(x, positions)
        feed = {
            INPUTS[0]: x.detach().float().cpu().contiguous().numpy(),
            INPUTS[1]: positions.detach().float().cpu().numpy(),
        }
        out = self.session.run([OUTPUT], feed)[0]
        return torch.from_numpy(out).to(x.device, x.dtype)

    def _run_cuda(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """I/O binding: onnxruntime reads x and writes the output in place, in CUDA memory.

        Not exercised by the test suite (it runs on machines without a GPU).
        """
        index = x.device.index if x.device.index is not None else torch.cuda.current_device()
        xs = x.detach().float().contiguous()
        ps = positions.detach().float().to(x.device).contiguous()
        out = torch.empty_like(xs)
        binding = self.session.io_binding()
        binding.bind_input(INPUTS[0], "cuda", index, np.float32, tuple(xs.shape), xs.data_ptr())
        binding.bind_input(INPUTS[1], "cuda", index, np.float32, tuple(ps.shape), ps.data_ptr())
        binding.bind_output(OUTPUT, "cuda", index, np.float32, tuple(out.shape), out.data_ptr())
        torch.cuda.current_stream(x.device).synchronize()  # onnxruntime runs on its own stream: inputs first
        self.session.run_with_iobinding(binding)  # returns once the outputs are written
        return out.to(x.dtype)


# -- the cache (shared with engine.accel.onnx_motion) -------------------------------------------------------
def checked_session(path: Path, plain: nn.Module, device: torch.device, probe: Callable, spinning: bool = False):
    """A session for the graph at path, or None when it does not load or probe(session, plain, device)
    finds it further than TOLERANCE from its torch module."""
    try:
        session = open_session(path, device, spinning)
        error = probe(session, plain, device)
    except Exception as exc:  # onnxruntime raises its own exception types for damaged graphs
        log.warning("unusable ONNX graph %s: %s", path, exc)
        return None
    if not error <= TOLERANCE:
        log.warning("ONNX graph %s differs from torch by %.2e", path, error)
        return None
    return session


@cache_errors
def cached_sessions(
    entry: Path,
    expect: dict,
    plains: list,
    file_name: Callable[[int], str],
    export: Callable,
    probe: Callable,
    device: torch.device,
    what: str,
    spinning: bool = False,
) -> tuple[list, list[int]]:
    """One checked session per torch module in plains: sound cached graphs are reused, the rest exported
    (export(plain, path)) and checked again; the manifest is rewritten last. Returns (sessions, exported)."""
    manifest = read_manifest(entry, expect)
    if manifest is None and entry.exists():
        log.info("rebuilding the ONNX cache entry %s (stale or unreadable manifest)", entry)
    sessions, exported = [], []
    for index, plain in enumerate(plains):
        path = entry / file_name(index)
        session = None
        if manifest is not None and file_matches(entry, manifest, path.name):
            session = checked_session(path, plain, device, probe, spinning)
        if session is None:  # export this one again; the sound ones stay
            if not exported:
                forget_manifest(entry)  # nothing in the entry is trusted until the new manifest is written
            entry.mkdir(parents=True, exist_ok=True)
            export(plain, path)
            exported.append(index)
            session = checked_session(path, plain, device, probe, spinning)
            if session is None:
                raise ModelLoadError(f"the ONNX export of {what} {index} does not match torch within {TOLERANCE}")
        sessions.append(session)
    if exported:
        write_manifest(entry, expect, [file_name(i) for i in range(len(plains))])
    return sessions, exported


# -- the swap -----------------------------------------------------------------------------------------
class OnnxTemporal:
    """The onnxruntime sessions for every temporal block of one model, exported once and cached."""

    def __init__(self, sessions: list, entry: Path, exported: list[int], device: torch.device):
        self.sessions = sessions
        self.entry = entry
        self.exported = exported  # block indices exported by this prepare() (empty: all reused)
        self.device = device

    @classmethod
    def prepare(cls, model, device: str | torch.device = "cpu") -> OnnxTemporal:
        """Sessions for model's temporal blocks: reuse sound cached graphs, export the rest."""
        device = torch.device(device)
        plains = [plain_temporal(m) for m in temporal_modules(model)]
        key = temporal_key(plains)
        entry = cache_root() / "onnx-temporal" / key[:16]
        expect = {**onnx_versions(), "key": key, "blocks": len(plains)}
        sessions, exported = cached_sessions(
            entry, expect, plains, block_file, export_block, _probe, device, "temporal block"
        )
        return cls(sessions, entry, exported, device)

    @contextmanager
    def attached(self, model):
        """Within the block, every block's temporal attention runs in onnxruntime."""
        blocks = list(model.blocks)
        if len(blocks) != len(self.sessions):
            raise ValueError(f"{len(self.sessions)} ONNX temporal blocks for a model with {len(blocks)} blocks")
        stand_ins = [
            (block, "temporal", OnnxTemporalAttention(session, block.temporal, self.device))
            for block, session in zip(blocks, self.sessions)
        ]
        with patched(stand_ins):
            yield self
