"""Generation builds no autograd graph: no tensor made during a run requires grad or has a grad_fn.

Three witnesses, for the bundled backend in every mode (fp32, int8, ONNX temporal attention, both,
and a long clip over the rolling temporal K/V cache):
- a torch function mode sees every tensor any torch function returns during the run;
- a global forward hook sees every module's output (the ONNX blocks included);
- a pre-hook on the model records that it is only ever called in inference mode with grad off.
"""

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from engine.api.events import Frames
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.backends.bundled import BundledBackend


def _graph_tensors(value) -> list[str]:
    return [
        f"{type(t).__name__}{tuple(t.shape)} requires_grad={t.requires_grad} grad_fn={t.grad_fn}"
        for t in tree_leaves(value)
        if isinstance(t, torch.Tensor) and (t.requires_grad or t.grad_fn is not None)
    ]


class GraphWatch(TorchFunctionMode):
    """Records every torch function output that is part of an autograd graph."""

    def __init__(self):
        super().__init__()
        self.calls = 0
        self.offenders: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.calls += 1
        found = _graph_tensors(out)
        if found:
            self.offenders.append(f"{getattr(func, '__name__', func)}: {found[0]}")
        return out


CASES = {
    "fp32": ({}, 16),
    "int8": ({"quantize": "int8"}, 16),
    "onnx": ({"onnx_temporal": True}, 16),
    "int8+onnx": ({"quantize": "int8", "onnx_temporal": True}, 16),
    "long clip, rolling K/V": ({}, 20),
}


@pytest.mark.parametrize("case", CASES)
def test_generation_builds_no_autograd_graph(tiny_model_dir, case):
    options, frames = CASES[case]
    backend = BundledBackend(tiny_model_dir, options=RunOptions(**options))
    backend.load()
    model = backend.model
    assert not any(p.requires_grad for p in model.parameters())

    module_outputs, offenders, modes = [], [], []

    def every_output(module, args, output):
        module_outputs.append(type(module).__name__)
        offenders.extend(f"{type(module).__name__}: {t}" for t in _graph_tensors(output))

    def model_called(module, args):
        modes.append((torch.is_inference_mode_enabled(), torch.is_grad_enabled()))

    hooks = [
        torch.nn.modules.module.register_module_forward_hook(every_output),
        model.register_forward_pre_hook(model_called),
    ]
    watch = GraphWatch()
    try:
        with watch:
            events = list(
                backend.generate(GenerationRequest("a red circle moves right", steps=2, frames=frames, guidance=2))
            )
    finally:
        for hook in hooks:
            hook.remove()

    assert sum(e.frames.shape[0] for e in events if isinstance(e, Frames)) == frames
    assert modes and all(inference and not grad for inference, grad in modes), modes
    assert watch.calls > 100 and not watch.offenders, watch.offenders[:5]
    assert {"KinemoDiT", "FactorisedBlock", "Linear" if not options.get("quantize") else "QLinear"} <= set(
        module_outputs
    )
    if options.get("onnx_temporal") and frames <= model.config.max_frames:
        assert "OnnxTemporalAttention" in module_outputs
    assert not offenders, offenders[:5]
    assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()  # the caller's thread is left as it was


def test_the_witnesses_do_see_a_graph():
    """The checks above would fail if a run did build a graph."""
    layer = torch.nn.Linear(3, 3)
    watch = GraphWatch()
    with watch:
        layer(torch.ones(1, 3)).sum()
    assert watch.offenders
    assert _graph_tensors(layer(torch.ones(1, 3)))
