"""The tiny AnimateDiff / Stable Video Diffusion pipelines from tests/tiny_diffusers: built offline, saved, reloaded, run."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_diffusers.animatediff import (
    ANIMATEDIFF_CALL,
    save_tiny_animatediff,
    save_tiny_motion_adapter,
    save_tiny_sd_base,
)
from tiny_diffusers.svd import SVD_CALL, save_tiny_svd
from tiny_diffusers.tokenizers import CLIP_BOS_ID, CLIP_EOS_ID, CLIP_VOCAB_SIZE, save_tiny_clip_tokenizer

NON_ASCII_PROMPT = "ein Fuchs läuft 🦊 über den Schnee, 狐狸"
NOT_SAFETENSORS = (".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".h5", ".onnx", ".gguf")


@dataclass(frozen=True)
class Case:
    build: object  # folder -> folder
    pipeline_class: str
    call: dict


CASES = {
    "animatediff": Case(save_tiny_animatediff, "AnimateDiffPipeline", ANIMATEDIFF_CALL),
    "svd": Case(save_tiny_svd, "StableVideoDiffusionPipeline", SVD_CALL),
}


def gradient_image(size: int = 32) -> Image.Image:
    ys, xs = np.mgrid[0:size, 0:size]
    rgb = np.stack([xs * 255 // (size - 1), ys * 255 // (size - 1), (xs + ys) * 255 // (2 * size - 2)], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))


def assert_safetensors_only(folder: Path, *models: str) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in NOT_SAFETENSORS]
    for model in models:
        assert list((folder / model).glob("*.safetensors")), f"no safetensors weights in {model}/"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    built = {}

    def get(name):
        if name not in built:
            built[name] = CASES[name].build(tmp_path_factory.mktemp(name) / "pipe")
        return built[name]

    return get


@pytest.fixture(scope="module")
def pipelines(folders):
    from diffusers import DiffusionPipeline

    loaded = {}

    def get(name):
        if name not in loaded:
            pipe = DiffusionPipeline.from_pretrained(folders(name), use_safetensors=True)
            pipe.set_progress_bar_config(disable=True)
            loaded[name] = pipe
        return loaded[name]

    return get


def run(pipe, name: str, seed: int) -> np.ndarray:
    inputs = dict(image=gradient_image()) if name == "svd" else dict(prompt=NON_ASCII_PROMPT)
    generator = torch.Generator("cpu").manual_seed(seed)
    return pipe(**inputs, **CASES[name].call, generator=generator, output_type="np").frames


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
    folder = folders(name)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == CASES[name].pipeline_class
    models = [k for k, v in index.items() if isinstance(v, list) and (folder / k / "config.json").exists()]
    assert len(models) >= 3  # unet, vae, text or image encoder (+ motion_adapter)
    assert_safetensors_only(folder, *models)


@pytest.mark.parametrize("name", CASES)
def test_reloads_and_runs_reproducibly(pipelines, name):
    pipe = pipelines(name)
    assert type(pipe).__name__ == CASES[name].pipeline_class
    call = CASES[name].call

    first = run(pipe, name, seed=0)
    assert isinstance(first, np.ndarray)
    assert first.shape == (1, call["num_frames"], call["height"], call["width"], 3)
    assert np.isfinite(first).all()
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert np.abs(np.diff(first, axis=1)).max() > 1e-3  # the frames are not all the same picture

    np.testing.assert_array_equal(run(pipe, name, seed=0), first)
    assert np.abs(run(pipe, name, seed=1) - first).max() > 1e-3


def test_animatediff_tokenizes_non_ascii_prompt(pipelines):
    pipe = pipelines("animatediff")
    ids = pipe.tokenizer(NON_ASCII_PROMPT, padding="max_length", max_length=pipe.tokenizer.model_max_length).input_ids
    assert len(ids) == 77 and max(ids) < pipe.text_encoder.config.vocab_size
    assert pipe.text_encoder.config.vocab_size == CLIP_VOCAB_SIZE


def test_sd_base_plus_motion_adapter_is_the_animatediff_pipeline(tmp_path, pipelines):
    from diffusers import AnimateDiffPipeline, MotionAdapter, UNetMotionModel

    base = save_tiny_sd_base(tmp_path / "base")
    adapter_folder = save_tiny_motion_adapter(tmp_path / "adapter")
    index = json.loads((base / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"]
    assert index["safety_checker"] == [None, None] and index["requires_safety_checker"] is False
    assert_safetensors_only(base, "unet", "vae", "text_encoder")
    assert_safetensors_only(adapter_folder, ".")

    adapter = MotionAdapter.from_pretrained(adapter_folder, use_safetensors=True)
    pipe = AnimateDiffPipeline.from_pretrained(base, motion_adapter=adapter, use_safetensors=True)
    pipe.set_progress_bar_config(disable=True)
    assert isinstance(pipe.unet, UNetMotionModel)
    # the same seeded pieces as the whole AnimateDiff pipeline, so the same frames
    np.testing.assert_allclose(run(pipe, "animatediff", seed=0), run(pipelines("animatediff"), "animatediff", 0))
