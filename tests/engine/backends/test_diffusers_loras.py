"""LoRAs in the memory plan and in --fast: counted in the denoiser's weights before anything loads; a catalog
model whose fast version is a distillation LoRA gets that LoRA with the steps and guidance it was made for."""

import argparse

from tiny_diffusers.cases import CASES
from tiny_diffusers.loras import save_tiny_lora

from engine.api.controls import LoraWeight
from engine.api.request import GenerationRequest
from engine.backends.base import open_backend
from engine.planning.headers import read_component

WAN = next(case for case in CASES if case.name == "wan-t2v")


def test_the_plan_counts_the_loras_weights(build, tmp_path):
    folder = build(WAN)
    lora = save_tiny_lora(folder, "wan", tmp_path / "lora", rank=8)
    backend = open_backend(str(folder))
    request = GenerationRequest(prompt="x", model=str(folder), frames=9, width=32, height=32, steps=2)
    plain = backend.plan(request).estimate
    with_lora = backend.plan(request.with_changes(loras=(LoraWeight(str(lora)),))).estimate
    lora_bytes = read_component("lora", [lora]).floats * 4  # fp32 on the CPU
    assert lora_bytes > 0
    assert with_lora.parts["weights"] - plain.parts["weights"] == lora_bytes  # the baseline is measured: noisy


def test_fast_adds_the_catalogs_distillation_lora(capsys):
    from app.cli import build_request
    from app.cli_args import build_parser

    args = build_parser().parse_args(["generate", "a fox", "-o", "x.mp4", "--model", "wan2.1-t2v-14b", "--fast"])
    backend, request = build_request(args)
    assert isinstance(args, argparse.Namespace) and backend.model_id == "wan2.1-t2v-14b"
    assert [lora.source for lora in request.loras] == [
        "lightx2v/Wan2.1-Distill-Loras/wan2.1_t2v_14b_lora_rank64_lightx2v_4step.safetensors"
    ]
    assert (request.steps, request.guidance) == (4, 1.0)
    said = capsys.readouterr().err  # the CLI says which fast version it used
    assert "--fast: wan2.1-t2v-14b with the distillation LoRA wan2.1_t2v_14b_lora_rank64_lightx2v_4step" in said
    given = build_parser().parse_args(
        [
            "generate",
            "a fox",
            "-o",
            "x.mp4",
            "--model",
            "wan2.1-t2v-14b",
            "--fast",
            "--steps",
            "6",
            "--lora",
            "a.safetensors:0.5",
        ]
    )
    _, request = build_request(given)
    assert request.steps == 6 and [lora.source for lora in request.loras][1:] == ["a.safetensors"]
