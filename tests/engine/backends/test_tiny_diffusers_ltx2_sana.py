"""The tiny LTX-2 and SANA-Video pipelines from tests/tiny_diffusers: built offline, saved, reloaded, run."""

import numpy as np
import pytest
import torch
from tiny_diffusers.gemma_tokenizers import (
    GEMMA_BOS_ID,
    GEMMA_BYTE_IDS,
    GEMMA_EOS_ID,
    GEMMA_PAD_ID,
    GEMMA_UNK_ID,
    GEMMA_VOCAB_SIZE,
    build_tiny_gemma_tokenizer,
)
from tiny_diffusers.ltx2 import (
    AUDIO_CHANNELS,
    AUDIO_SAMPLE_RATE,
    LTX2_CALL,
    LTX2_I2V_CALL,
    ltx2_audio_samples,
    save_tiny_ltx2,
)
from tiny_diffusers.pipeline_checks import (
    NON_ASCII_PROMPT,
    PROMPT,
    Case,
    assert_runs_reproducibly,
    folders_fixture,
    outputs_fixture,
    pipelines_fixture,
    run,
    saved_models,
)
from tiny_diffusers.sana_video import (
    SANA_VIDEO_CALL,
    SANA_VIDEO_I2V_CALL,
    save_tiny_sana_video_i2v,
    save_tiny_sana_video_t2v,
)

CASES = {
    "ltx2-t2v": Case(save_tiny_ltx2, "LTX2Pipeline", LTX2_CALL),
    "ltx2-i2v": Case(save_tiny_ltx2, "LTX2Pipeline", LTX2_I2V_CALL, True, load_as="LTX2ImageToVideoPipeline"),
    "sana-video-t2v": Case(save_tiny_sana_video_t2v, "SanaVideoPipeline", SANA_VIDEO_CALL),
    "sana-video-i2v": Case(save_tiny_sana_video_i2v, "SanaImageToVideoPipeline", SANA_VIDEO_I2V_CALL, True),
}
folders = folders_fixture(CASES)
pipelines = pipelines_fixture(CASES)
outputs = outputs_fixture(CASES)  # the whole output: LTX-2's has the audio too


def test_gemma_tokenizer_saves_and_loads_with_auto_and_gemma_classes(tmp_path):
    from transformers import AutoTokenizer, GemmaTokenizer, GemmaTokenizerFast

    build_tiny_gemma_tokenizer().save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokenizer.json", "tokenizer_config.json"]
    for loader in (AutoTokenizer, GemmaTokenizer, GemmaTokenizerFast):
        tokenizer = loader.from_pretrained(tmp_path)
        assert isinstance(tokenizer, GemmaTokenizer) and len(tokenizer) == GEMMA_VOCAB_SIZE < 2000
        ids = (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id, tokenizer.unk_token_id)
        assert ids == (GEMMA_PAD_ID, GEMMA_EOS_ID, GEMMA_BOS_ID, GEMMA_UNK_ID)
        ids = tokenizer(NON_ASCII_PROMPT).input_ids
        assert ids[0] == GEMMA_BOS_ID and GEMMA_UNK_ID not in ids and GEMMA_EOS_ID not in ids
        assert any(i in GEMMA_BYTE_IDS for i in ids) and max(ids) < GEMMA_VOCAB_SIZE  # emoji and CJK as bytes
        assert tokenizer.decode(ids, skip_special_tokens=True) == NON_ASCII_PROMPT
        assert len(tokenizer(PROMPT).input_ids) == 1 + len(PROMPT.split())  # whole-word tokens
        for side, pad_at in (("left", 0), ("right", -1)):  # LTX-2 pads left, SANA-Video right
            tokenizer.padding_side = side
            padded = tokenizer("a red fox", padding="max_length", max_length=8).input_ids
            assert len(padded) == 8 and padded[pad_at] == GEMMA_PAD_ID


@pytest.mark.parametrize("name", sorted({name for name, case in CASES.items() if case.load_as is None}))
def test_saved_folder_holds_only_safetensors_weights(folders, name):
    models = saved_models(folders(name), CASES[name].pipeline_class)
    expected = {"transformer", "vae", "text_encoder"}
    if name.startswith("ltx2"):
        expected |= {"audio_vae", "vocoder", "connectors"}
    assert expected <= models


@pytest.mark.parametrize("name", list(CASES))
def test_reloads_as_the_right_class_and_runs(pipelines, outputs, name):
    case = CASES[name]
    pipe = pipelines(name)
    assert type(pipe).__name__ == (case.load_as or case.pipeline_class)
    assert pipe.text_encoder.config.get_text_config().vocab_size == len(pipe.tokenizer) == GEMMA_VOCAB_SIZE

    video = assert_runs_reproducibly(outputs, name, case.clip_shape)
    other = outputs(name, prompt=NON_ASCII_PROMPT).frames
    assert other.shape == video.shape and np.isfinite(other).all()


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.image_to_video])
def test_image_to_video_follows_the_image(outputs, name):
    video = outputs(name).frames
    assert not np.allclose(outputs(name, color=(10, 200, 90)).frames[:, 0], video[:, 0])
    if name.startswith("sana"):  # the first latent frame is the image's, never denoised: seed-independent
        np.testing.assert_allclose(outputs(name, seed=1).frames[:, 0], video[:, 0], atol=1e-6)


@pytest.mark.parametrize("name", ["ltx2-t2v", "ltx2-i2v"])
def test_ltx2_returns_audio_as_long_as_the_clip(pipelines, outputs, name):
    pipe, call = pipelines(name), CASES[name].call
    audio = outputs(name).audio  # a torch tensor even with output_type="np"
    assert isinstance(audio, torch.Tensor) and audio.dtype == torch.float32
    assert audio.shape == (1, AUDIO_CHANNELS, ltx2_audio_samples(call["num_frames"], call["frame_rate"]))
    assert torch.isfinite(audio).all() and audio.abs().max() <= 1.0 and audio.std() > 1e-4  # vocoder ends in tanh
    assert pipe.vocoder.config.output_sampling_rate == AUDIO_SAMPLE_RATE == 24000
    seconds = audio.shape[-1] / pipe.vocoder.config.output_sampling_rate
    assert abs(seconds - call["num_frames"] / call["frame_rate"]) < 0.05  # (4L - 3) mel frames for L = 25 / s
    assert torch.equal(outputs(name, repeat=1).audio, audio)
    assert not torch.allclose(outputs(name, seed=1).audio, audio)


def test_ltx2_frame_count_and_size_rules(outputs, pipelines):
    out = outputs("ltx2-t2v", num_frames=13, frame_rate=12.0)  # not 8k + 1: 9 frames, the audio still 13 / 12 s
    assert out.frames.shape[1] == 9 and out.audio.shape[-1] == ltx2_audio_samples(13, 12.0) == 25200
    with pytest.raises(ValueError, match="divisible by 32"):
        pipelines("ltx2-t2v")(prompt=PROMPT, **dict(LTX2_CALL, height=48))
    with pytest.raises(RuntimeError, match="[Pp]adding"):  # a 1-pixel latent grid: LTX-2.0's reflect padding fails
        pipelines("ltx2-t2v")(prompt=PROMPT, **dict(LTX2_CALL, height=32))


def test_sana_video_frame_count_and_size_rules(outputs, pipelines):
    assert outputs("sana-video-t2v", frames=8).frames.shape[1] == 5  # not 4k + 1: (8 - 1) // 4 * 4 + 1
    with pytest.raises(ValueError, match="divisible by 32"):
        pipelines("sana-video-t2v")(prompt=PROMPT, **dict(SANA_VIDEO_CALL, height=48))


@pytest.mark.parametrize(
    "name, latent_shape",
    [("ltx2-t2v", (1, 2 * 2 * 2, 4)), ("sana-video-t2v", (1, 16, 3, 4, 4))],  # LTX-2: packed (b, f*h*w, c)
)
def test_callback_on_step_end_sees_the_latents(pipelines, name, latent_shape):
    pipe, seen = pipelines(name), []

    def callback(pipeline, step, timestep, tensors):
        seen.append((step, tuple(tensors["latents"].shape)))
        return tensors

    kwargs = dict(callback_on_step_end=callback, callback_on_step_end_tensor_inputs=["latents"])
    run(pipe, CASES[name], output_type="latent", **kwargs)
    assert seen == [(0, latent_shape), (1, latent_shape)]


def test_ltx2_folder_loads_as_both_pipelines_and_holds_a_latent_upsampler(folders, pipelines):
    from diffusers import LTX2ImageToVideoPipeline, LTX2LatentUpsamplePipeline, LTX2Pipeline
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    assert folders("ltx2-t2v") == folders("ltx2-i2v")
    t2v = pipelines("ltx2-t2v")
    assert type(t2v) is LTX2Pipeline and type(LTX2ImageToVideoPipeline.from_pipe(t2v)) is LTX2ImageToVideoPipeline

    latents = run(t2v, CASES["ltx2-t2v"], output_type="latent")
    assert latents.frames.shape == (1, 4, 2, 2, 2) and latents.audio.shape == (1, 2, 9, 2)  # unpacked
    upsampler = LTX2LatentUpsamplerModel.from_pretrained(folders("ltx2-t2v"), subfolder="latent_upsampler")
    upsample = LTX2LatentUpsamplePipeline(vae=t2v.vae, latent_upsampler=upsampler)
    upsample.set_progress_bar_config(disable=True)
    assert upsample(latents=latents.frames, output_type="latent").frames.shape == (1, 4, 2, 4, 4)


def test_sana_video_folders_load_as_either_pipeline(folders):
    from diffusers import SanaImageToVideoPipeline, SanaVideoPipeline

    t2v = SanaImageToVideoPipeline.from_pretrained(folders("sana-video-t2v"), use_safetensors=True)
    i2v = SanaVideoPipeline.from_pretrained(folders("sana-video-i2v"), use_safetensors=True)
    assert type(t2v.scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert type(i2v.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"
