"""The memory planner: weights read from headers, the policy for the free memory, --memory, the CPU's
limits, the out-of-memory retry, and the plan printed by `kinemo generate`."""

import json

import numpy as np
import pytest
import torch
from tiny_diffusers.cases import CASES

from engine.api.errors import OutOfMemory
from engine.api.events import Frames, Loaded, MemoryNotice, Notice
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.backends.base import open_backend
from engine.backends.diffusers import placement
from engine.planning import bundled_estimate, estimate, headers, policies
from engine.planning import plan as planner
from engine.planning.estimate import GB, MB, Shape
from engine.planning.policies import BY_NAME

ANIMATEDIFF = CASES[0]
WAN = next(c for c in CASES if c.name == "wan-t2v")
SVD = next(c for c in CASES if c.name == "svd")


def request(**changes):
    fields = dict(
        prompt="a fox runs through snow", model="tiny", frames=8, width=32, height=32, steps=2, guidance=2.0, seed=1
    )
    return GenerationRequest(**{**fields, **changes})


# -- weights from headers ------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", [ANIMATEDIFF, WAN], ids=lambda c: c.name)
def test_header_sizes_match_the_loaded_tensors(case, build):
    import diffusers

    folder = build(case)
    components = headers.read_pipeline(folder)
    pipe = diffusers.DiffusionPipeline.from_pretrained(folder, dtype=torch.float32)
    modules = {n: m for n, m in pipe.components.items() if isinstance(m, torch.nn.Module)}
    assert set(components) == set(modules)
    for name, module in modules.items():
        unique = {t.data_ptr(): t for t in module.state_dict().values()}  # tied weights are stored once
        actual = sum(t.numel() * t.element_size() for t in unique.values())
        assert components[name].bytes_at(4) == actual, name
        files = headers.weight_files(folder / name)
        on_disk = sum(p.stat().st_size - 8 - int.from_bytes(p.read_bytes()[:8], "little") for p in files)
        assert components[name].stored == on_disk, name
    # run at bf16 the float weights take half
    den = estimate.denoiser(components)
    assert den.bytes_at(2) * 2 == den.floats * 4 + 2 * den.other and den.blocks and den.largest > 0


def test_weight_files_prefer_the_asked_variant(tmp_path):
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in headers.weight_files(tmp_path, "fp16")] == ["diffusion_pytorch_model.fp16.safetensors"]
    assert [p.name for p in headers.weight_files(tmp_path)] == ["diffusion_pytorch_model.safetensors"]


# -- choosing a policy ---------------------------------------------------------------------------------------
def test_auto_picks_the_lightest_policy_that_fits_the_free_vram(build, monkeypatch):
    components = headers.read_pipeline(build(ANIMATEDIFF))
    shape = Shape("animatediff", 16, 512, 512, 7.5)
    needs = {p.name: estimate.estimate_diffusers(components, shape, p, True, 0, 2) for p in policies.ladder(True)}
    vram = [needs[p.name].vram for p in policies.ladder(True)]
    # tiling and offloading save memory; group offloading holds about a model's worth when it has few blocks
    assert vram[0] > vram[1] > max(vram[2:]) and vram[-1] == min(vram)
    ram = 64 * GB

    def plan_with(free_vram):
        monkeypatch.setattr(planner, "free_vram", lambda device: free_vram)
        monkeypatch.setattr(planner, "free_ram", lambda: ram)
        return planner.plan_diffusers(components, shape, "auto", "cuda", baseline=500 * MB, dtype_bytes=2)

    def room(need):  # just enough free memory for a need, with the margin
        return int(need * (1 + planner.MARGIN) + planner.MARGIN_BYTES) + 1

    assert plan_with(80 * GB).policy.name == "none"
    for policy in policies.ladder(True)[1:]:
        chosen = plan_with(room(needs[policy.name].vram))
        assert chosen.fits and policies.POLICIES.index(BY_NAME[chosen.policy.name]) <= policies.POLICIES.index(
            BY_NAME[policy.name]
        )
        assert needs[chosen.policy.name].vram <= needs[policy.name].vram
    tight = plan_with(room(needs["vae_tiling"].vram))
    assert tight.policy.name == "vae_tiling" and "VAE slicing and tiling" in tight.text()
    nothing = plan_with(1 * MB)  # nothing fits: the heaviest, said so
    assert nothing.policy.name == "sequential_offload" and not nothing.fits and "may not fit" in nothing.text()
    assert nothing.next_policy() is None and tight.next_policy().name == "model_offload"


def test_plan_line_names_estimate_choice_and_free_memory(build):
    components = headers.read_pipeline(build(ANIMATEDIFF))
    plan = planner.plan_diffusers(
        components,
        Shape("animatediff", 16, 512, 512, 7.5),
        "low",
        "cuda",
        baseline=400 * MB,
        vram=8 * GB,
        ram=20 * GB,
        dtype_bytes=2,
    )
    line = plan.text()
    assert line.startswith("memory: about ") and " VRAM + " in line and " RAM with model offload + VAE tiling " in line
    assert "(free: 8.0 GB VRAM, 20.0 GB RAM; --memory low)" in line
    assert plan.estimate.ram > 400 * MB + sum(c.bytes_at(2) for c in components.values())


def test_memory_modes_map_to_policies(build):
    animatediff = headers.read_pipeline(build(ANIMATEDIFF))
    svd = headers.read_pipeline(build(SVD))
    shape = Shape("animatediff", 8, 64, 64)

    def chosen(components, mode, device, family="animatediff"):
        return planner.plan_diffusers(
            components, Shape(family, 8, 64, 64), mode, device, baseline=0, vram=80 * GB, ram=64 * GB
        )

    gpu = {m: chosen(animatediff, m, "cuda").policy for m in ("high", "low", "minimal")}
    assert [gpu[m].name for m in ("high", "low", "minimal")] == ["none", "model_offload", "sequential_offload"]
    assert gpu["low"].vae_tiling and gpu["minimal"].fp8 and gpu["minimal"].vae_tiling  # UNetMotionModel: fp8 storage
    cpu = {m: chosen(animatediff, m, "cpu").policy.name for m in ("high", "low", "minimal", "auto")}
    assert cpu == {"high": "none", "low": "vae_tiling", "minimal": "vae_tiling", "auto": "none"}
    # SVD: no fp8 for its denoiser, no tiling for its temporal decoder
    svd_minimal = chosen(svd, "minimal", "cuda", "svd")
    assert svd_minimal.policy.name == "sequential_offload" and not svd_minimal.policy.fp8
    assert "cannot store its weights in fp8" in svd_minimal.text()
    assert {chosen(svd, m, "cpu", "svd").policy.name for m in ("high", "low", "minimal")} == {"none"}
    with pytest.raises(Exception, match="unknown memory setting"):
        planner.plan_diffusers(animatediff, shape, "max", "cpu", baseline=0, ram=GB)


def test_on_the_cpu_only_vae_tiling_applies_and_the_plan_says_so(build):
    components = headers.read_pipeline(build(ANIMATEDIFF))
    plan = planner.plan_diffusers(
        components, Shape("animatediff", 16, 256, 256, 2.0), "auto", "cpu", baseline=400 * MB, ram=32 * GB
    )
    assert [p.name for p in plan.policies] == ["none", "vae_tiling"] and plan.estimate.vram == 0
    assert (
        "RAM on the CPU" in plan.text()
        and "offloading needs a GPU, so on the CPU only VAE slicing/tiling applies" in plan.text()
    )
    tiled = estimate.estimate_diffusers(
        components, Shape("animatediff", 16, 256, 256, 2.0), BY_NAME["vae_tiling"], False, 0
    )
    assert tiled.parts["decode"] < plan.estimate.parts["decode"] / 4  # a frame and a tile at a time
    short = planner.plan_diffusers(
        components,
        Shape("animatediff", 16, 256, 256, 2.0),
        "auto",
        "cpu",
        baseline=400 * MB,
        ram=int(tiled.extra_ram * 1.3 + planner.MARGIN_BYTES),
    )
    assert short.policy.name == "vae_tiling" and short.fits


def test_bundled_model_estimate_covers_long_clips():
    from engine.registry.assets import STARTER_DIR, read_config

    config = read_config(STARTER_DIR)
    short = planner.plan_bundled(STARTER_DIR, Shape("kinemo", 16, 256, 256, 1.0, 25), baseline=200 * MB, ram=8 * GB)
    long = planner.plan_bundled(STARTER_DIR, Shape("kinemo", 128, 256, 256, 1.0, 25), baseline=200 * MB, ram=8 * GB)
    guided = bundled_estimate.estimate_bundled(STARTER_DIR, Shape("kinemo", 128, 256, 256, 4.0, 25), 0)
    tokens = (config["size"] // config["patch"]) ** 2
    per_frame = 25 * config["depth"] * tokens * config["dim"] * 2 * 2  # float16 keys and values, every step and block
    assert short.estimate.parts["cache"] == 0
    assert long.estimate.parts["cache"] == (2 + 6) * per_frame  # anchors + recent, in preallocated slots
    assert guided.parts["cache"] == 2 * long.estimate.parts["cache"]
    assert long.estimate.ram > short.estimate.ram and short.text().startswith("memory: about ")
    assert "with" not in short.text().split("(")[0]  # one way to run: no policy named
    weights = (STARTER_DIR / "model.safetensors").stat().st_size
    assert abs(short.estimate.parts["weights"] - weights) < 0.01 * weights


# -- applying policies (the CPU standing in for the GPU) -------------------------------------------------------
def test_placements_run_the_pipeline(build, monkeypatch):
    from dataclasses import replace

    import diffusers

    folder = build(ANIMATEDIFF)
    kwargs = dict(
        prompt="a fox", height=32, width=32, num_frames=4, num_inference_steps=2, guidance_scale=2.0, output_type="np"
    )

    def run(policy, device="cpu"):
        pipe = diffusers.AnimateDiffPipeline.from_pretrained(folder, dtype=torch.float32)
        pipe.set_progress_bar_config(disable=True)
        placement.apply_policy(pipe, policy, device, torch.float32)
        return pipe, pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(0)).frames[0]

    _, plain = run(BY_NAME["none"])
    for name in ("model_offload", "group_offload"):  # the same diffusers calls as on a GPU, the CPU standing in
        _, clip = run(BY_NAME[name])
        assert np.abs(clip - plain).max() < 1e-4, name
    # fp8 storage of the denoiser (its norms kept), the VAE sliced and tiled
    pipe, clip = run(replace(BY_NAME["vae_tiling"], fp8=True))
    assert any(p.dtype == torch.float8_e4m3fn for p in pipe.unet.parameters())
    assert all(p.dtype == torch.float32 for n, p in pipe.unet.named_parameters() if ".norm" in n)
    assert pipe.vae.use_tiling and pipe.vae.use_slicing and np.isfinite(clip).all() and np.abs(clip - plain).max() < 0.2
    # sequential offloading needs an accelerator as its execution device (accelerate refuses the CPU): the call only
    pipe = diffusers.AnimateDiffPipeline.from_pretrained(folder, dtype=torch.float32)
    called = {}
    monkeypatch.setattr(
        type(pipe), "enable_sequential_cpu_offload", lambda self, device=None: called.setdefault("device", device)
    )
    placement.apply_policy(pipe, BY_NAME["sequential_offload"], "cuda:1", torch.bfloat16)
    assert called == {"device": "cuda:1"} and any(p.dtype == torch.float8_e4m3fn for p in pipe.unet.parameters())


def test_out_of_memory_is_recognised():
    assert placement.is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert placement.is_out_of_memory(
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
    )
    assert placement.is_out_of_memory(MemoryError())
    assert not placement.is_out_of_memory(RuntimeError("shapes cannot be multiplied"))


# -- the out-of-memory retry ---------------------------------------------------------------------------------
def fail_calls(monkeypatch, times):
    """Make the pipeline call raise torch.OutOfMemoryError the first `times` times; returns the calls' policies."""
    import diffusers

    original = diffusers.AnimateDiffPipeline.__call__
    calls = []

    def call(self, *args, **kwargs):
        calls.append(bool(getattr(self.vae, "use_tiling", False)))
        if len(calls) <= times:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(diffusers.AnimateDiffPipeline, "__call__", call)
    return calls


def test_out_of_memory_retries_once_with_the_next_policy(build, monkeypatch):
    calls = fail_calls(monkeypatch, 1)
    backend = open_backend(str(build(ANIMATEDIFF)), RunOptions(device="cpu"))
    events = list(backend.generate(request()))
    assert isinstance(events[0], Loaded) and isinstance(events[1], MemoryNotice)
    assert events[1].plan.policy.name == "none"
    retry = [e for e in events if isinstance(e, Notice) and "out of memory" in e.message]
    assert len(retry) == 1
    assert (
        retry[0].message.startswith("out of memory with no offloading")
        and "retrying once with VAE slicing and tiling" in retry[0].message
    )
    assert calls == [False, True]  # the second call ran with the VAE tiled
    assert next(e for e in events if isinstance(e, Frames)).frames.shape == (8, 32, 32, 3)
    assert events[-1].stats["memory_policy"] == "vae_tiling" and backend.pipe_policy.name == "vae_tiling"


def test_out_of_memory_twice_is_one_line_and_leaves_nothing_loaded(build, monkeypatch):
    calls = fail_calls(monkeypatch, 2)
    backend = open_backend(str(build(ANIMATEDIFF)), RunOptions(device="cpu"))
    events = []
    with pytest.raises(OutOfMemory) as failure:
        for event in backend.generate(request()):
            events.append(event)
    message = str(failure.value)
    assert (
        "\n" not in message
        and "ran out of memory (RAM) with VAE slicing and tiling after retrying from no offloading" in message
    )
    assert len(calls) == 2 and sum("retrying once" in getattr(e, "message", "") for e in events) == 1
    assert backend.pipe is None  # released: nothing left on the device
    # the heaviest policy here (--memory low on the CPU is VAE tiling) has nothing to retry with
    calls.clear()
    with pytest.raises(OutOfMemory, match="with VAE slicing and tiling;"):
        list(backend.generate(request(), memory="low"))
    assert len(calls) == 1 and backend.pipe is None


# -- the CLI ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("memory, policy", [("low", "vae_tiling"), ("high", "none")])
def test_cli_memory_flag_prints_the_plan_and_runs_it(memory, policy, build, tmp_path, capsys):
    from app.cli import main

    folder = build(ANIMATEDIFF)
    stats = tmp_path / "stats.json"
    argv = [
        "generate",
        "a fox",
        "-o",
        str(tmp_path / "frames"),
        "--format",
        "png",
        "--model",
        str(folder),
        "--steps",
        "2",
        "--frames",
        "8",
        "--width",
        "32",
        "--height",
        "32",
        "--memory",
        memory,
        "--stats",
        str(stats),
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("memory: ")]
    assert len(lines) == 1 and f"--memory {memory}" in lines[0] and "RAM on the CPU" in lines[0]
    assert ("with VAE slicing and tiling" in lines[0]) == (policy == "vae_tiling")
    record = json.loads(stats.read_text())
    assert record["memory_policy"] == policy and record["memory_estimate_ram_mb"] > record["memory_baseline_mb"] > 0
    assert len(list((tmp_path / "frames").glob("*.png"))) == 8


def test_cli_refuses_an_unknown_memory_setting(tmp_path, capsys):
    from app.cli import main

    assert main(["generate", "a fox", "-o", str(tmp_path / "a.mp4"), "--memory", "max"]) == 2
    assert "--memory" in capsys.readouterr().err


def test_cli_prints_the_bundled_models_plan(tiny_model_dir, tmp_path, capsys):
    from app.cli import main

    out = tmp_path / "frames"
    assert (
        main(
            [
                "generate",
                "a red circle",
                "-o",
                str(out),
                "--format",
                "png",
                "--model",
                str(tiny_model_dir),
                "--steps",
                "2",
                "--frames",
                "4",
                "--width",
                "64",
                "--height",
                "64",
            ]
        )
        == 0
    )
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("memory: ")]
    assert len(lines) == 1 and "RAM on the CPU" in lines[0] and "--memory auto" in lines[0]


def test_wan22_a14b_holds_two_experts_and_runs_one_at_a_time(build):
    """Both experts are read into RAM and sit on the GPU when everything does; with model offload only the expert
    that runs is on the GPU (diffusers' offload sequence moves transformer off before transformer_2 runs)."""
    case = next(c for c in CASES if c.name == "wan22-a14b-t2v")
    components = headers.read_pipeline(build(case))
    assert {"transformer", "transformer_2"} <= set(components)
    expert = components["transformer"].bytes_at(2)
    assert components["transformer_2"].bytes_at(2) == expert
    shape = Shape("wan", 9, 32, 32, 4.0)
    device = estimate.estimate_diffusers(components, shape, BY_NAME["none"], True, 0, 2)
    offload = estimate.estimate_diffusers(components, shape, BY_NAME["model_offload"], True, 0, 2)
    weights = sum(c.bytes_at(2) for c in components.values())
    assert device.parts["vram_weights"] == weights  # both experts resident
    assert offload.parts["vram_weights"] < weights - expert  # one expert at a time
    assert device.parts["weights"] == offload.parts["weights"] == weights  # RAM holds both either way
