"""The tiny Wan / LTX-Video / CogVideoX pipelines from tests/tiny_diffusers: built offline, saved, reloaded, run."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_diffusers.cogvideox import (
    COGVIDEOX_CALL,
    COGVIDEOX_I2V_CALL,
    save_tiny_cogvideox_i2v,
    save_tiny_cogvideox_t2v,
)
from tiny_diffusers.ltx import LTX_CALL, LTX_I2V_CALL, save_tiny_ltx
from tiny_diffusers.t5_tokenizers import (
    T5_EOS_ID,
    T5_PAD_ID,
    T5_UNK_ID,
    T5_VOCAB_SIZE,
    save_tiny_t5_tokenizer,
)
from tiny_diffusers.wan import (
    WAN_CALL,
    WAN_I2V_CALL,
    save_tiny_wan_i2v,
    save_tiny_wan_t2v,
)

PROMPT = "a red fox runs through the snow"
NON_ASCII_PROMPT = "ein Fuchs läuft 🦊 über den Schnee, 狐狸"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".h5", ".onnx", ".gguf")


@dataclass(frozen=True)
class Case:
    build: object  # folder -> folder
    pipeline_class: str  # what model_index.json records and DiffusionPipeline.from_pretrained gives back
    call: dict
    image_to_video: bool = False
    load_as: str | None = None  # load with this pipeline class instead of DiffusionPipeline


CASES = {
    "wan-t2v": Case(save_tiny_wan_t2v, "WanPipeline", WAN_CALL),
    "wan-i2v": Case(save_tiny_wan_i2v, "WanImageToVideoPipeline", WAN_I2V_CALL, image_to_video=True),
    "ltx-t2v": Case(save_tiny_ltx, "LTXPipeline", LTX_CALL),
    "ltx-i2v": Case(save_tiny_ltx, "LTXPipeline", LTX_I2V_CALL, True, load_as="LTXImageToVideoPipeline"),
    "cogvideox-t2v": Case(save_tiny_cogvideox_t2v, "CogVideoXPipeline", COGVIDEOX_CALL),
    "cogvideox-i2v": Case(
        save_tiny_cogvideox_i2v, "CogVideoXImageToVideoPipeline", COGVIDEOX_I2V_CALL, image_to_video=True
    ),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    built = {}

    def get(name):
        build = CASES[name].build
        if build not in built:
            built[build] = build(tmp_path_factory.mktemp(name) / "pipe")
        return built[build]

    return get


@pytest.fixture(scope="module")
def pipelines(folders):
    import diffusers

    loaded = {}

    def get(name):
        if name not in loaded:
            case = CASES[name]
            loader = getattr(diffusers, case.load_as or "DiffusionPipeline")
            pipe = loader.from_pretrained(folders(name), use_safetensors=True)
            pipe.set_progress_bar_config(disable=True)
            loaded[name] = pipe
        return loaded[name]

    return get


def _picture(color=(200, 60, 30), size=(40, 24)):
    image = Image.new("RGB", size, color)
    image.paste((20, 40, 220), (0, 0, size[0] // 2, size[1] // 2))
    return image


def _run(pipe, case, *, seed=0, prompt=PROMPT, image=None):
    kwargs = dict(case.call)
    if case.image_to_video:
        kwargs["image"] = image if image is not None else _picture()
    return pipe(prompt=prompt, generator=torch.Generator("cpu").manual_seed(seed), output_type="np", **kwargs).frames


def test_t5_tokenizer_loads_with_auto_and_fast_classes(tmp_path):
    from transformers import AutoTokenizer, T5TokenizerFast

    save_tiny_t5_tokenizer(tmp_path)
    for loader in (AutoTokenizer, T5TokenizerFast):
        tokenizer = loader.from_pretrained(tmp_path)
        assert isinstance(tokenizer, T5TokenizerFast)
        assert len(tokenizer) == T5_VOCAB_SIZE <= 1000
        assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (
            T5_PAD_ID,
            T5_EOS_ID,
            T5_UNK_ID,
        )
        ids = tokenizer(NON_ASCII_PROMPT, padding="max_length", max_length=24, truncation=True).input_ids
        assert len(ids) == 24 and T5_EOS_ID in ids and T5_UNK_ID in ids and ids[-1] == T5_PAD_ID
        assert max(ids) < T5_VOCAB_SIZE
        assert tokenizer.decode(tokenizer("a red fox").input_ids, skip_special_tokens=True) == "a red fox"


@pytest.mark.parametrize("name", sorted({name for name, case in CASES.items() if case.load_as is None}))
def test_saved_folder_holds_only_safetensors_weights(folders, name):
    folder = folders(name)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == CASES[name].pipeline_class
    weights = [p for p in Path(folder).rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)]
    assert weights and all(p.suffix == ".safetensors" for p in weights), weights
    models = [c for c, entry in index.items() if isinstance(entry, list) and (folder / c / "config.json").is_file()]
    assert {"transformer", "vae", "text_encoder"} <= set(models)
    for component in models:
        assert list((folder / component).glob("*.safetensors")), component  # every model saved its weights


@pytest.mark.parametrize("name", list(CASES))
def test_reloads_as_the_right_class_and_runs(pipelines, name):
    case = CASES[name]
    pipe = pipelines(name)
    assert type(pipe).__name__ == (case.load_as or case.pipeline_class)
    assert pipe.text_encoder.config.vocab_size == len(pipe.tokenizer) == T5_VOCAB_SIZE

    video = _run(pipe, case)
    assert isinstance(video, np.ndarray) and video.dtype == np.float32
    assert video.shape == (1, case.call["num_frames"], case.call["height"], case.call["width"], 3)
    assert np.isfinite(video).all() and video.min() >= 0.0 and video.max() <= 1.0
    assert video.std() > 1e-4  # not a flat clip

    np.testing.assert_array_equal(_run(pipe, case), video)  # same seed, same clip
    assert not np.allclose(_run(pipe, case, seed=1), video)  # another seed, another clip

    other = _run(pipe, case, prompt=NON_ASCII_PROMPT)
    assert other.shape == video.shape and np.isfinite(other).all()


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.image_to_video])
def test_image_to_video_follows_the_image(pipelines, name):
    case = CASES[name]
    pipe = pipelines(name)
    assert not np.allclose(_run(pipe, case, image=_picture((10, 200, 90))), _run(pipe, case))


def test_ltx_folder_loads_as_both_ltx_pipelines(folders, pipelines):
    from diffusers import LTXImageToVideoPipeline, LTXPipeline

    assert folders("ltx-t2v") == folders("ltx-i2v")
    t2v = pipelines("ltx-t2v")
    assert type(t2v) is LTXPipeline
    assert type(LTXImageToVideoPipeline.from_pipe(t2v)) is LTXImageToVideoPipeline
