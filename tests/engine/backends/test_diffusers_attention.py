"""--attention and --compile: refused in one line where they cannot apply (CLI exit 2, nothing written), admitted on
a (faked) CUDA machine with the packages present, and applied to a tiny diffusers denoiser built in code."""

from types import SimpleNamespace

import pytest

from app.cli import main
from engine.api.errors import InvalidRequest
from engine.api.run_options import RunOptions
from engine.backends import run_checks
from engine.backends.diffusers import attention

PROMPT = "a red circle moves right on a black background"
DIFFUSERS_MODEL = "wan2.1-t2v-1.3b"  # a catalog id: the checks run before anything is downloaded


@pytest.fixture
def cuda_machine(monkeypatch):
    """A machine where torch sees a CUDA GPU and flash-attn, sageattention and triton are installed."""
    import engine.backends.devices as devices

    monkeypatch.setattr(devices, "pick_device", lambda requested="auto": "cuda")
    monkeypatch.setattr(attention, "package_installed", lambda module: True)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--attention", "flash"], "--attention flash: the flash-attn package is not installed"),
        (["--attention", "sage"], "--attention sage: the sageattention package is not installed"),
        (["--compile"], "--compile needs a CUDA GPU here"),
        (["--compile", "--device", "cpu"], "--compile needs a CUDA GPU here"),
    ],
)
def test_cli_refuses_what_this_cpu_cannot_do_in_one_line(tmp_path, capsys, flags, message):
    out = tmp_path / "clip.mp4"
    assert main(["generate", PROMPT, "--model", DIFFUSERS_MODEL, "-o", str(out), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flags", [["--attention", "flash"], ["--attention", "native"], ["--compile"]])
def test_cli_refuses_the_bundled_model_in_one_line(tmp_path, capsys, flags):
    out = tmp_path / "clip.mp4"
    assert main(["generate", PROMPT, "-o", str(out), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the bundled model" in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_the_bundled_model_takes_sdpa_which_it_runs_anyway():
    run_checks.bundled_speed(RunOptions(attention="sdpa"))
    run_checks.bundled_speed(RunOptions())


def test_sdpa_and_native_are_admitted_on_any_device():
    for choice in ("auto", "sdpa", "native"):
        run_checks.diffusers_speed(RunOptions(attention=choice, device="cpu"))


def test_an_explicit_cpu_or_mps_is_refused_without_asking_torch(monkeypatch, cuda_machine):
    import engine.backends.devices as devices

    monkeypatch.setattr(devices, "pick_device", lambda requested="auto": pytest.fail("torch was asked"))
    for device in ("cpu", "mps"):
        with pytest.raises(InvalidRequest, match="--attention flash needs a CUDA GPU here"):
            run_checks.diffusers_speed(RunOptions(attention="flash", device=device))
        with pytest.raises(InvalidRequest, match="--compile needs a CUDA GPU here"):
            run_checks.diffusers_speed(RunOptions(compile=True, device=device))


def test_a_cuda_machine_with_the_packages_admits_every_choice(cuda_machine):
    for choice in ("auto", "sdpa", "flash", "sage", "native"):
        run_checks.diffusers_speed(RunOptions(attention=choice, compile=True))
        run_checks.diffusers_speed(RunOptions(attention=choice, compile=True, device="cuda:0"))


def test_compile_on_cuda_without_triton_is_refused(monkeypatch, cuda_machine):
    monkeypatch.setattr(attention, "package_installed", lambda module: module != "triton")
    with pytest.raises(InvalidRequest, match="--compile needs triton"):
        run_checks.diffusers_speed(RunOptions(compile=True))


def test_a_missing_package_is_named_even_on_cuda(monkeypatch, cuda_machine):
    monkeypatch.setattr(attention, "package_installed", lambda module: module != "sageattention")
    with pytest.raises(InvalidRequest, match=r"pip install sageattention"):
        run_checks.diffusers_speed(RunOptions(attention="sage"))


# -- applied to tiny denoisers -------------------------------------------------------------------------------
def _tiny_wan():
    import torch
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    return WanTransformer3DModel(
        num_attention_heads=2, attention_head_dim=12, ffn_dim=32, num_layers=2, text_dim=16, rope_max_seq_len=32
    ).eval()


def _wan_step(den):
    import torch

    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 16, 1, 8, 8, generator=g)
    text = torch.randn(1, 4, 16, generator=g)
    with torch.no_grad():
        return den(hidden_states=x, timestep=torch.tensor([500]), encoder_hidden_states=text, return_dict=False)[0]


def _pipe(**components):
    return SimpleNamespace(components=components, **components)


def test_native_pins_every_processor_and_matches_sdpa_leaving_the_process_default():
    from diffusers.models.attention_dispatch import AttentionBackendName, _AttentionBackendRegistry

    den = _tiny_wan()
    before = _AttentionBackendRegistry._active_backend
    reference = _wan_step(den)
    attention.apply_speed_options(_pipe(transformer=den), RunOptions(attention="native"), "cpu")
    backends = {m.processor._attention_backend for m in den.modules() if hasattr(m, "processor")}
    assert backends == {AttentionBackendName._NATIVE_MATH}
    assert _AttentionBackendRegistry._active_backend == before
    import torch

    torch.testing.assert_close(_wan_step(den), reference, rtol=1e-4, atol=1e-5)
    attention.apply_speed_options(_pipe(transformer=den), RunOptions(attention="sdpa"), "cpu")
    assert {m.processor._attention_backend for m in den.modules() if hasattr(m, "processor")} == {
        AttentionBackendName.NATIVE
    }


def test_auto_changes_nothing():
    den = _tiny_wan()
    attention.apply_speed_options(_pipe(transformer=den), RunOptions(), "cpu")
    assert {m.processor._attention_backend for m in den.modules() if hasattr(m, "processor")} == {None}


def test_a_denoiser_outside_the_dispatcher_is_refused_for_a_backend_but_runs_sdpa():
    import torch

    class Plain(torch.nn.Module):  # like CogVideoX's or a UNet's processors: they call torch's SDPA themselves
        _repeated_blocks: list = []

        def __init__(self):
            super().__init__()
            self.attn = torch.nn.Linear(2, 2)

    pipe = _pipe(transformer=Plain())
    attention.apply_speed_options(pipe, RunOptions(attention="sdpa"), "cpu")
    with pytest.raises(InvalidRequest, match="--attention native: Plain does not route its attention"):
        attention.apply_speed_options(pipe, RunOptions(attention="native"), "cpu")
    with pytest.raises(InvalidRequest, match="--compile: Plain names no repeated blocks to compile"):
        attention.apply_speed_options(pipe, RunOptions(compile=True), "cuda")


def test_apply_refuses_cuda_only_choices_on_another_device():
    den = _tiny_wan()
    with pytest.raises(InvalidRequest, match="--attention sage needs a CUDA GPU here"):
        attention.apply_speed_options(_pipe(transformer=den), RunOptions(attention="sage"), "cpu")
    with pytest.raises(InvalidRequest, match="--compile needs a CUDA GPU here"):
        attention.apply_speed_options(_pipe(transformer=den), RunOptions(compile=True), "mps")


def test_compile_marks_each_repeated_block_of_both_experts(monkeypatch):
    compiled = []
    monkeypatch.setattr(
        "diffusers.models.transformers.transformer_wan.WanTransformerBlock.compile",
        lambda self, **kwargs: compiled.append((self, kwargs)),
    )
    high, low = _tiny_wan(), _tiny_wan()
    attention.apply_speed_options(_pipe(transformer=high, transformer_2=low), RunOptions(compile=True), "cuda")
    assert len(compiled) == 4  # two blocks each
    assert {id(b) for b, _ in compiled} == {id(b) for b in [*high.blocks, *low.blocks]}


def test_a_backend_diffusers_cannot_load_is_one_line(monkeypatch):
    den = _tiny_wan()

    def broken(self, backend):
        raise RuntimeError("Flash Attention backend 'flash' is not usable because the version is too old.\nmore")

    monkeypatch.setattr(type(den), "set_attention_backend", broken)
    with pytest.raises(InvalidRequest) as caught:
        attention.apply_speed_options(_pipe(transformer=den), RunOptions(attention="flash"), "cuda")
    assert (
        str(caught.value)
        == "--attention flash: Flash Attention backend 'flash' is not usable because the version is too old."
    )


def test_a_run_applies_the_chosen_attention_to_the_loaded_model(build):
    """--attention native pins Wan's attention to torch's math kernel on the loaded pipeline, and the clip equals
    the default one (SDPA) within 1 level, through the backend's whole generate path."""
    import numpy as np
    from diffusers.models.attention_dispatch import AttentionBackendName
    from tiny_diffusers.cases import CASES

    from engine.api.events import Frames
    from engine.api.request import GenerationRequest
    from engine.backends.base import open_backend

    folder = build(next(case for case in CASES if case.name == "wan-t2v"))
    request = GenerationRequest("a fox", model=str(folder), steps=2, frames=9, width=32, height=32, guidance=2.0)
    clips = {}
    for choice in ("auto", "native"):
        backend = open_backend(str(folder), RunOptions(attention=choice))
        clips[choice] = next(e.frames for e in backend.generate(request) if isinstance(e, Frames)).astype(int)
        pinned = {m.processor._attention_backend for m in backend.pipe.transformer.modules() if hasattr(m, "processor")}
        assert pinned == ({None} if choice == "auto" else {AttentionBackendName._NATIVE_MATH}), pinned
    assert clips["auto"].std() > 1
    assert np.abs(clips["auto"] - clips["native"]).max() <= 1
