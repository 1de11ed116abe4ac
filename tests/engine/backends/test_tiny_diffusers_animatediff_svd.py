"""The tiny AnimateDiff / Stable Video Diffusion pipelines from tests/tiny_diffusers: built offline, saved, reloaded, run."""

import json

import numpy as np
import pytest
from tiny_diffusers.animatediff import (
    ANIMATEDIFF_CALL,
    save_tiny_animatediff,
    save_tiny_motion_adapter,
    save_tiny_sd_base,
)
from tiny_diffusers.direct import gradient_image
from tiny_diffusers.pipeline_checks import (
    NON_ASCII_PROMPT,
    Case,
    assert_a_clip,
    assert_safetensors_only,
    folders_fixture,
    load_pipeline,
    pipelines_fixture,
    saved_models,
)
from tiny_diffusers.pipeline_checks import run as run_pipeline
from tiny_diffusers.svd import SVD_CALL, save_tiny_svd
from tiny_diffusers.tokenizers import CLIP_BOS_ID, CLIP_EOS_ID, CLIP_VOCAB_SIZE, save_tiny_clip_tokenizer

CASES = {
    "animatediff": Case(save_tiny_animatediff, "AnimateDiffPipeline", ANIMATEDIFF_CALL),
    "svd": Case(save_tiny_svd, "StableVideoDiffusionPipeline", SVD_CALL, image_to_video=True),
}
folders = folders_fixture(CASES)
pipelines = pipelines_fixture(CASES)


def run(pipe, name: str, seed: int) -> np.ndarray:
    """The clip: AnimateDiff gets the non-ASCII prompt, Stable Video Diffusion (no prompt) a 32x32 gradient."""
    inputs = dict(prompt=None, image=gradient_image(32, 32)) if name == "svd" else dict(prompt=NON_ASCII_PROMPT)
    return run_pipeline(pipe, CASES[name], seed=seed, **inputs).frames


def test_clip_tokenizer_takes_any_text(tmp_path):
    from transformers import AutoTokenizer, CLIPTokenizer

    save_tiny_clip_tokenizer(tmp_path)
    for loader in (CLIPTokenizer, AutoTokenizer):
        tokenizer = loader.from_pretrained(tmp_path)
        assert isinstance(tokenizer, CLIPTokenizer)
        assert len(tokenizer) == CLIP_VOCAB_SIZE
        assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (
            CLIP_BOS_ID,
            CLIP_EOS_ID,
            CLIP_EOS_ID,
        )
        assert tokenizer.model_max_length == 77
        ids = tokenizer(NON_ASCII_PROMPT).input_ids
        assert ids[0] == CLIP_BOS_ID and ids[-1] == CLIP_EOS_ID
        assert CLIP_EOS_ID not in ids[1:-1]  # <|endoftext|> is also the unk token: no byte is unknown
        assert max(ids) < CLIP_VOCAB_SIZE
        decoded = tokenizer.decode(ids, skip_special_tokens=True)  # CLIP puts a space after every word, "schnee ,"
        assert decoded.replace(" ", "") == NON_ASCII_PROMPT.lower().replace(" ", "")
        # some merges apply
        assert tokenizer.tokenize("the fox") == ["the</w>", "fox</w>"]
        padded = tokenizer(NON_ASCII_PROMPT, padding="max_length", max_length=77, truncation=True).input_ids
        assert len(padded) == 77


@pytest.mark.parametrize("name", CASES)
def test_saved_in_diffusers_layout_with_safetensors(folders, name):
    models = saved_models(folders(name), CASES[name].pipeline_class)
    assert len(models) >= 3  # unet, vae, text or image encoder (+ motion_adapter)


@pytest.mark.parametrize("name", CASES)
def test_reloads_and_runs_reproducibly(pipelines, name):
    pipe = pipelines(name)
    assert type(pipe).__name__ == CASES[name].pipeline_class

    first = run(pipe, name, seed=0)
    assert_a_clip(first, CASES[name].clip_shape)
    assert np.abs(np.diff(first, axis=1)).max() > 1e-3  # the frames are not all the same picture

    np.testing.assert_array_equal(run(pipe, name, seed=0), first)
    assert np.abs(run(pipe, name, seed=1) - first).max() > 1e-3


def test_animatediff_tokenizes_non_ascii_prompt(pipelines):
    pipe = pipelines("animatediff")
    ids = pipe.tokenizer(NON_ASCII_PROMPT, padding="max_length", max_length=pipe.tokenizer.model_max_length).input_ids
    assert len(ids) == 77 and max(ids) < pipe.text_encoder.config.vocab_size
    assert pipe.text_encoder.config.vocab_size == CLIP_VOCAB_SIZE


def test_sd_base_plus_motion_adapter_is_the_animatediff_pipeline(tmp_path, pipelines):
    from diffusers import MotionAdapter, UNetMotionModel

    base = save_tiny_sd_base(tmp_path / "base")
    adapter_folder = save_tiny_motion_adapter(tmp_path / "adapter")
    index = json.loads((base / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"]
    assert index["safety_checker"] == [None, None] and index["requires_safety_checker"] is False
    assert_safetensors_only(base, "unet", "vae", "text_encoder")
    assert_safetensors_only(adapter_folder, ".")

    adapter = MotionAdapter.from_pretrained(adapter_folder, use_safetensors=True)
    pipe = load_pipeline(base, "AnimateDiffPipeline", motion_adapter=adapter)
    assert isinstance(pipe.unet, UNetMotionModel)
    # the same seeded pieces as the whole AnimateDiff pipeline, so the same frames
    np.testing.assert_allclose(run(pipe, "animatediff", seed=0), run(pipelines("animatediff"), "animatediff", 0))
