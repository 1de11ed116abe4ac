"""The tiny HunyuanVideo 1.5 / Kandinsky 5 pipelines from tests/tiny_diffusers: built offline, saved, reloaded, run."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_diffusers.hunyuan15 import (
    GUIDANCE_SCALE,
    HUNYUAN15_CALL,
    HUNYUAN15_I2V_CALL,
    save_tiny_hunyuan15_i2v,
    save_tiny_hunyuan15_t2v,
)
from tiny_diffusers.kandinsky5 import (
    KANDINSKY5_CALL,
    KANDINSKY5_I2V_CALL,
    save_tiny_kandinsky5_i2v,
    save_tiny_kandinsky5_t2v,
)
from tiny_diffusers.qwen_tokenizers import QWEN_EOS_ID, QWEN_PAD_ID, QWEN_VOCAB_SIZE, build_tiny_qwen_tokenizer

PROMPT = "a red fox runs through the snow"
# Non-ASCII, emoji, CJK; the quoted text is what HunyuanVideo 1.5 feeds its glyph (ByT5) encoder.
NON_ASCII_PROMPT = 'ein Fuchs läuft 🦊 über den Schnee, 狐狸, a sign says "Hallo Welt"'
CHAT = (  # Qwen2.5-VL's chat template, as rendered for one user message
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".h5", ".onnx", ".gguf")


@dataclass(frozen=True)
class Case:
    build: object  # folder -> folder
    pipeline_class: str  # what model_index.json records and DiffusionPipeline.from_pretrained gives back
    call: dict
    shape: tuple  # (frames, height, width) of the clip the call gives
    image_to_video: bool = False


CASES = {
    "hunyuan15-t2v": Case(save_tiny_hunyuan15_t2v, "HunyuanVideo15Pipeline", HUNYUAN15_CALL, (9, 32, 32)),
    # no height / width: the size is the target-size bucket nearest the 40x24 picture's aspect ratio
    "hunyuan15-i2v": Case(
        save_tiny_hunyuan15_i2v, "HunyuanVideo15ImageToVideoPipeline", HUNYUAN15_I2V_CALL, (9, 32, 48), True
    ),
    "kandinsky5-t2v": Case(save_tiny_kandinsky5_t2v, "Kandinsky5T2VPipeline", KANDINSKY5_CALL, (9, 32, 32)),
    "kandinsky5-i2v": Case(save_tiny_kandinsky5_i2v, "Kandinsky5I2VPipeline", KANDINSKY5_I2V_CALL, (17, 32, 32), True),
}


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


def _picture(color=(200, 60, 30), size=(40, 24)):
    image = Image.new("RGB", size, color)
    image.paste((20, 40, 220), (0, 0, size[0] // 2, size[1] // 2))
    return image


@pytest.fixture(scope="module")
def clips(pipelines):
    """clips(name, seed=0, prompt=PROMPT, color=None, negative=None) -> the (1, f, h, w, 3) np clip, made once."""
    made = {}

    def get(name, *, seed=0, prompt=PROMPT, color=None, negative=None):
        key = (name, seed, prompt, color, negative)
        if key not in made:
            case = CASES[name]
            kwargs = dict(case.call, negative_prompt=negative)
            if case.image_to_video:
                kwargs["image"] = _picture(color) if color else _picture()
            generator = torch.Generator("cpu").manual_seed(seed)
            made[key] = pipelines(name)(prompt=prompt, generator=generator, output_type="np", **kwargs).frames
        return made[key]

    return get


def test_qwen_tokenizer_saves_and_loads_with_auto_and_qwen2_classes(tmp_path):
    from transformers import AutoTokenizer, Qwen2Tokenizer

    build_tiny_qwen_tokenizer().save_pretrained(tmp_path)
    for loader in (AutoTokenizer, Qwen2Tokenizer):
        tokenizer = loader.from_pretrained(tmp_path)
        assert isinstance(tokenizer, Qwen2Tokenizer)
        assert len(tokenizer) == QWEN_VOCAB_SIZE <= 2000
        assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.padding_side) == (
            QWEN_PAD_ID,
            QWEN_EOS_ID,
            "right",
        )
        ids = tokenizer(NON_ASCII_PROMPT).input_ids
        assert max(ids) < QWEN_VOCAB_SIZE and tokenizer.decode(ids) == NON_ASCII_PROMPT  # bytes: nothing is unknown
        assert len(tokenizer(PROMPT).input_ids) == len(PROMPT.split())  # common words are whole tokens
        chat = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True)
        assert tokenizer.decode(chat) == CHAT


@pytest.mark.parametrize("name", ["hunyuan15-t2v", "kandinsky5-t2v"])
def test_the_template_is_cropped_exactly_where_the_prompt_starts(pipelines, name):
    pipe = pipelines(name)
    start = pipe.prompt_template_encode_start_idx  # 108 / 128 tokens, as with the real Qwen2.5-VL tokenizer
    if name.startswith("hunyuan15"):
        conversation = [{"role": "system", "content": pipe.system_message}, {"role": "user", "content": PROMPT}]
        ids = pipe.tokenizer.apply_chat_template(
            conversation, add_generation_prompt=True, tokenize=True, return_dict=True
        )
        ids = ids["input_ids"]
    else:
        ids = pipe.tokenizer(pipe.prompt_template.format(PROMPT)).input_ids
    assert pipe.tokenizer.decode(ids[:start]).endswith("<|im_start|>user\n")
    assert pipe.tokenizer.decode(ids[start:]).startswith(PROMPT + "<|im_end|>")


@pytest.mark.parametrize("name", list(CASES))
def test_saved_folder_holds_only_safetensors_weights(folders, name):
    folder = folders(name)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == CASES[name].pipeline_class
    weights = [p for p in Path(folder).rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)]
    assert weights and all(p.suffix == ".safetensors" for p in weights), weights
    models = [c for c, entry in index.items() if isinstance(entry, list) and (folder / c / "config.json").is_file()]
    assert {"transformer", "vae", "text_encoder", "text_encoder_2"} <= set(models)
    for component in models:
        assert list((folder / component).glob("*.safetensors")), component  # every model saved its weights


@pytest.mark.parametrize("name", list(CASES))
def test_reloads_as_the_right_class_and_runs(pipelines, clips, name):
    case = CASES[name]
    pipe = pipelines(name)
    assert type(pipe).__name__ == case.pipeline_class
    assert pipe.text_encoder.config.get_text_config().vocab_size == len(pipe.tokenizer) == QWEN_VOCAB_SIZE
    assert pipe.text_encoder_2.config.vocab_size == len(pipe.tokenizer_2)
    if hasattr(pipe, "guider"):
        assert pipe.guider.guidance_scale == GUIDANCE_SCALE

    video = clips(name)
    assert isinstance(video, np.ndarray) and video.dtype == np.float32
    assert video.shape == (1, *case.shape, 3)
    assert np.isfinite(video).all() and video.min() >= 0.0 and video.max() <= 1.0
    assert video.std() > 1e-4  # not a flat clip

    generator = torch.Generator("cpu").manual_seed(0)
    kwargs = dict(case.call, image=_picture()) if case.image_to_video else dict(case.call)
    again = pipe(prompt=PROMPT, generator=generator, output_type="np", **kwargs).frames
    np.testing.assert_array_equal(again, video)  # same seed, same clip
    assert not np.allclose(clips(name, seed=1), video)  # another seed, another clip

    if not case.image_to_video:  # the i2v pipelines encode prompts with the same code
        other = clips(name, prompt=NON_ASCII_PROMPT)
        assert other.shape == video.shape and np.isfinite(other).all()
        assert not np.allclose(other, video)  # the prompt steers the clip
        assert not np.allclose(clips(name, negative="blurry, static"), video)  # so does the negative prompt (CFG)


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.image_to_video])
def test_image_to_video_follows_the_image(clips, name):
    assert not np.allclose(clips(name, color=(10, 200, 90)), clips(name))


def test_kandinsky5_callback_sees_channels_last_latents_each_step(pipelines):
    seen = []

    def callback(pipe, step, timestep, tensors):
        seen.append((step, tuple(tensors["latents"].shape)))
        return tensors

    pipe = pipelines("kandinsky5-t2v")
    pipe(prompt=PROMPT, output_type="latent", callback_on_step_end=callback, **KANDINSKY5_CALL)
    # b f h w c: 3 latent frames of 4x4, 16 latent channels + 16 condition channels + 1 condition mask
    assert seen == [(0, (1, 3, 4, 4, 33)), (1, (1, 3, 4, 4, 33))]


def test_hunyuan15_takes_no_step_callback(pipelines):
    with pytest.raises(TypeError, match="callback_on_step_end"):
        pipelines("hunyuan15-t2v")(prompt=PROMPT, callback_on_step_end=lambda *args: {}, **HUNYUAN15_CALL)


def test_kandinsky5_folders_load_as_either_kandinsky5_pipeline(folders):
    from diffusers import Kandinsky5I2VPipeline, Kandinsky5T2VPipeline

    for name, other in (("kandinsky5-t2v", Kandinsky5I2VPipeline), ("kandinsky5-i2v", Kandinsky5T2VPipeline)):
        assert type(other.from_pretrained(folders(name), use_safetensors=True)) is other
