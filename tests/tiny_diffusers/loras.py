"""Tiny random LoRAs made with peft for the tiny pipelines, saved as diffusers saves them
(pipeline_class.save_lora_weights -> pytorch_lora_weights.safetensors), the way a trained LoRA is published.

init_lora_weights=False gives the B matrices random values too, so a LoRA visibly changes the output
(peft's default leaves B at zero: a freshly made LoRA is then a no-op, and no test could tell it was applied).
"""

from __future__ import annotations

from pathlib import Path

# the denoiser a family's LoRA adapts, the attention projections it targets and the pipeline that saves it
DENOISER = {"wan": "transformer", "ltx": "transformer", "cogvideox": "transformer", "animatediff": "unet"}
TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
SAVER = {
    "wan": ("WanPipeline", "transformer_lora_layers"),
    "ltx": ("LTXPipeline", "transformer_lora_layers"),
    "cogvideox": ("CogVideoXPipeline", "transformer_lora_layers"),
    "animatediff": ("AnimateDiffPipeline", "unet_lora_layers"),
}


def save_tiny_lora(
    pipeline_folder: Path, family: str, out: Path, *, seed: int = 0, rank: int = 4, motion_only: bool = False
) -> Path:
    """A random LoRA for the tiny pipeline in pipeline_folder; returns the .safetensors file.

    motion_only: for AnimateDiff, a motion LoRA (only the motion modules' attention), as the published
    guoyww/animatediff-motion-lora-* are."""
    import diffusers
    import torch
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    denoiser = _load_denoiser(pipeline_folder, family)
    targets = TARGETS
    if motion_only:
        targets = [n for n, _ in denoiser.named_modules() if "motion_modules" in n and n.endswith(tuple(TARGETS))]
    torch.manual_seed(seed)
    config = LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, init_lora_weights=False)
    denoiser.add_adapter(config)
    with torch.no_grad():  # large enough that two scales give frames more than one 8-bit level apart
        for name, param in denoiser.named_parameters():
            if "lora_" in name:
                param.mul_(4.0)
    pipeline_class, keyword = SAVER[family]
    out.mkdir(parents=True, exist_ok=True)
    getattr(diffusers, pipeline_class).save_lora_weights(
        out, **{keyword: get_peft_model_state_dict(denoiser)}, safe_serialization=True
    )
    return out / "pytorch_lora_weights.safetensors"


def _load_denoiser(folder: Path, family: str):
    import diffusers

    if family == "animatediff":  # the saved pipeline holds the base UNet and the motion adapter apart
        pipe = diffusers.AnimateDiffPipeline.from_pretrained(folder)
        return pipe.unet
    cls = {
        "wan": "WanTransformer3DModel",
        "ltx": "LTXVideoTransformer3DModel",
        "cogvideox": "CogVideoXTransformer3DModel",
    }
    return getattr(diffusers, cls[family]).from_pretrained(folder, subfolder=DENOISER[family])
