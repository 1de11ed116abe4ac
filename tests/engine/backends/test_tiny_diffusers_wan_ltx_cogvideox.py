"""The tiny Wan / LTX-Video / CogVideoX pipelines from tests/tiny_diffusers: built offline, saved, reloaded, run."""

import numpy as np
import pytest
from tiny_diffusers.cogvideox import (
    COGVIDEOX_CALL,
    COGVIDEOX_I2V_CALL,
    save_tiny_cogvideox_i2v,
    save_tiny_cogvideox_t2v,
)
from tiny_diffusers.ltx import LTX_CALL, LTX_I2V_CALL, save_tiny_ltx
from tiny_diffusers.pipeline_checks import (
    NON_ASCII_PROMPT,
    Case,
    assert_runs_reproducibly,
    folders_fixture,
    outputs_fixture,
    pipelines_fixture,
    saved_models,
)
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
folders = folders_fixture(CASES)
pipelines = pipelines_fixture(CASES)
outputs = outputs_fixture(CASES)


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
    assert {"transformer", "vae", "text_encoder"} <= saved_models(folders(name), CASES[name].pipeline_class)


@pytest.mark.parametrize("name", list(CASES))
def test_reloads_as_the_right_class_and_runs(pipelines, outputs, name):
    case = CASES[name]
    pipe = pipelines(name)
    assert type(pipe).__name__ == (case.load_as or case.pipeline_class)
    assert pipe.text_encoder.config.vocab_size == len(pipe.tokenizer) == T5_VOCAB_SIZE

    video = assert_runs_reproducibly(outputs, name, case.clip_shape)
    other = outputs(name, prompt=NON_ASCII_PROMPT).frames
    assert other.shape == video.shape and np.isfinite(other).all()


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.image_to_video])
def test_image_to_video_follows_the_image(outputs, name):
    assert not np.allclose(outputs(name, color=(10, 200, 90)).frames, outputs(name).frames)


def test_ltx_folder_loads_as_both_ltx_pipelines(folders, pipelines):
    from diffusers import LTXImageToVideoPipeline, LTXPipeline

    assert folders("ltx-t2v") == folders("ltx-i2v")
    t2v = pipelines("ltx-t2v")
    assert type(t2v) is LTXPipeline
    assert type(LTXImageToVideoPipeline.from_pipe(t2v)) is LTXImageToVideoPipeline
