"""The tiny HunyuanVideo 1.5 / Kandinsky 5 pipelines from tests/tiny_diffusers: built offline, saved, reloaded, run."""

import numpy as np
import pytest
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
from tiny_diffusers.pipeline_checks import (
    PROMPT,
    Case,
    assert_runs_reproducibly,
    folders_fixture,
    outputs_fixture,
    pipelines_fixture,
    saved_models,
)
from tiny_diffusers.qwen_tokenizers import QWEN_EOS_ID, QWEN_PAD_ID, QWEN_VOCAB_SIZE, build_tiny_qwen_tokenizer

# Non-ASCII, emoji, CJK; the quoted text is what HunyuanVideo 1.5 feeds its glyph (ByT5) encoder.
NON_ASCII_PROMPT = 'ein Fuchs läuft 🦊 über den Schnee, 狐狸, a sign says "Hallo Welt"'
CHAT = (  # Qwen2.5-VL's chat template, as rendered for one user message
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
)

CASES = {  # shape: (frames, height, width) of the clip the call gives
    "hunyuan15-t2v": Case(save_tiny_hunyuan15_t2v, "HunyuanVideo15Pipeline", HUNYUAN15_CALL, shape=(9, 32, 32)),
    # no height / width: the size is the target-size bucket nearest the 40x24 picture's aspect ratio
    "hunyuan15-i2v": Case(
        save_tiny_hunyuan15_i2v, "HunyuanVideo15ImageToVideoPipeline", HUNYUAN15_I2V_CALL, True, shape=(9, 32, 48)
    ),
    "kandinsky5-t2v": Case(save_tiny_kandinsky5_t2v, "Kandinsky5T2VPipeline", KANDINSKY5_CALL, shape=(9, 32, 32)),
    "kandinsky5-i2v": Case(
        save_tiny_kandinsky5_i2v, "Kandinsky5I2VPipeline", KANDINSKY5_I2V_CALL, True, shape=(17, 32, 32)
    ),
}
folders = folders_fixture(CASES)
pipelines = pipelines_fixture(CASES)
outputs = outputs_fixture(CASES)


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
    models = saved_models(folders(name), CASES[name].pipeline_class)
    assert {"transformer", "vae", "text_encoder", "text_encoder_2"} <= models


@pytest.mark.parametrize("name", list(CASES))
def test_reloads_as_the_right_class_and_runs(pipelines, outputs, name):
    case = CASES[name]
    pipe = pipelines(name)
    assert type(pipe).__name__ == case.pipeline_class
    assert pipe.text_encoder.config.get_text_config().vocab_size == len(pipe.tokenizer) == QWEN_VOCAB_SIZE
    assert pipe.text_encoder_2.config.vocab_size == len(pipe.tokenizer_2)
    if hasattr(pipe, "guider"):
        assert pipe.guider.guidance_scale == GUIDANCE_SCALE

    video = assert_runs_reproducibly(outputs, name, case.clip_shape)
    if not case.image_to_video:  # the i2v pipelines encode prompts with the same code
        other = outputs(name, prompt=NON_ASCII_PROMPT).frames
        assert other.shape == video.shape and np.isfinite(other).all()
        assert not np.allclose(other, video)  # the prompt steers the clip
        negative = outputs(name, negative_prompt="blurry, static").frames
        assert not np.allclose(negative, video)  # so does the negative prompt (CFG)


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.image_to_video])
def test_image_to_video_follows_the_image(outputs, name):
    assert not np.allclose(outputs(name, color=(10, 200, 90)).frames, outputs(name).frames)


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
