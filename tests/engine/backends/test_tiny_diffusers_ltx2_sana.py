"""The tiny LTX-2 and SANA-Video pipelines from tests/tiny_diffusers: built offline, saved, reloaded, run."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
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
from tiny_diffusers.sana_video import (
    SANA_VIDEO_CALL,
    SANA_VIDEO_I2V_CALL,
    save_tiny_sana_video_i2v,
    save_tiny_sana_video_t2v,
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

    @property
    def num_frames(self) -> int:
        return self.call.get("num_frames", self.call.get("frames"))


CASES = {
    "ltx2-t2v": Case(save_tiny_ltx2, "LTX2Pipeline", LTX2_CALL),
    "ltx2-i2v": Case(save_tiny_ltx2, "LTX2Pipeline", LTX2_I2V_CALL, True, load_as="LTX2ImageToVideoPipeline"),
    "sana-video-t2v": Case(save_tiny_sana_video_t2v, "SanaVideoPipeline", SANA_VIDEO_CALL),
    "sana-video-i2v": Case(save_tiny_sana_video_i2v, "SanaImageToVideoPipeline", SANA_VIDEO_I2V_CALL, True),
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


@pytest.fixture(scope="module")
def run(pipelines):
    """pipe(...) output for (case name, seed, prompt, picture colour, repeat, call overrides), each computed once."""
    done = {}

    def get(name, *, seed=0, prompt=PROMPT, color=(200, 60, 30), repeat=0, **overrides):
        key = (name, seed, prompt, color, repeat, tuple(sorted(overrides.items())))
        if key not in done:
            case = CASES[name]
            kwargs = dict(case.call, **overrides)
            if case.image_to_video:
                kwargs["image"] = _picture(color)
            generator = torch.Generator("cpu").manual_seed(seed)
            done[key] = pipelines(name)(prompt=prompt, generator=generator, output_type="np", **kwargs)
        return done[key]

    return get


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
    folder = folders(name)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == CASES[name].pipeline_class
    weights = [p for p in Path(folder).rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)]
    assert weights and all(p.suffix == ".safetensors" for p in weights), weights
    models = [c for c, entry in index.items() if isinstance(entry, list) and (folder / c / "config.json").is_file()]
    expected = {"transformer", "vae", "text_encoder"}
    if name.startswith("ltx2"):
        expected |= {"audio_vae", "vocoder", "connectors"}
    assert expected <= set(models)
    for component in models:
        assert list((folder / component).glob("*.safetensors")), component  # every model saved its weights


@pytest.mark.parametrize("name", list(CASES))
def test_reloads_as_the_right_class_and_runs(pipelines, run, name):
    case = CASES[name]
    pipe = pipelines(name)
    assert type(pipe).__name__ == (case.load_as or case.pipeline_class)
    assert pipe.text_encoder.config.get_text_config().vocab_size == len(pipe.tokenizer) == GEMMA_VOCAB_SIZE

    video = run(name).frames
    assert isinstance(video, np.ndarray) and video.dtype == np.float32
    assert video.shape == (1, case.num_frames, case.call["height"], case.call["width"], 3)
    assert np.isfinite(video).all() and video.min() >= 0.0 and video.max() <= 1.0
    assert video.std() > 1e-4  # not a flat clip

    np.testing.assert_array_equal(run(name, repeat=1).frames, video)  # same seed, same clip
    assert not np.allclose(run(name, seed=1).frames, video)  # another seed, another clip

    other = run(name, prompt=NON_ASCII_PROMPT).frames
    assert other.shape == video.shape and np.isfinite(other).all()


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.image_to_video])
def test_image_to_video_follows_the_image(run, name):
    video = run(name).frames
    assert not np.allclose(run(name, color=(10, 200, 90)).frames[:, 0], video[:, 0])
    if name.startswith("sana"):  # the first latent frame is the image's, never denoised: seed-independent
        np.testing.assert_allclose(run(name, seed=1).frames[:, 0], video[:, 0], atol=1e-6)


@pytest.mark.parametrize("name", ["ltx2-t2v", "ltx2-i2v"])
def test_ltx2_returns_audio_as_long_as_the_clip(pipelines, run, name):
    pipe, call = pipelines(name), CASES[name].call
    audio = run(name).audio  # a torch tensor even with output_type="np"
    assert isinstance(audio, torch.Tensor) and audio.dtype == torch.float32
    assert audio.shape == (1, AUDIO_CHANNELS, ltx2_audio_samples(call["num_frames"], call["frame_rate"]))
    assert torch.isfinite(audio).all() and audio.abs().max() <= 1.0 and audio.std() > 1e-4  # vocoder ends in tanh
    assert pipe.vocoder.config.output_sampling_rate == AUDIO_SAMPLE_RATE == 24000
    seconds = audio.shape[-1] / pipe.vocoder.config.output_sampling_rate
    assert abs(seconds - call["num_frames"] / call["frame_rate"]) < 0.05  # (4L - 3) mel frames for L = 25 / s
    assert torch.equal(run(name, repeat=1).audio, audio)
    assert not torch.allclose(run(name, seed=1).audio, audio)


def test_ltx2_frame_count_and_size_rules(run, pipelines):
    out = run("ltx2-t2v", num_frames=13, frame_rate=12.0)  # not 8k + 1: 9 frames, the audio still 13 / 12 s
    assert out.frames.shape[1] == 9 and out.audio.shape[-1] == ltx2_audio_samples(13, 12.0) == 25200
    with pytest.raises(ValueError, match="divisible by 32"):
        pipelines("ltx2-t2v")(prompt=PROMPT, **dict(LTX2_CALL, height=48))
    with pytest.raises(RuntimeError, match="[Pp]adding"):  # a 1-pixel latent grid: LTX-2.0's reflect padding fails
        pipelines("ltx2-t2v")(prompt=PROMPT, **dict(LTX2_CALL, height=32))


def test_sana_video_frame_count_and_size_rules(run, pipelines):
    assert run("sana-video-t2v", frames=8).frames.shape[1] == 5  # not 4k + 1: (8 - 1) // 4 * 4 + 1
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

    generator = torch.Generator("cpu").manual_seed(0)
    kwargs = dict(CASES[name].call, callback_on_step_end=callback, callback_on_step_end_tensor_inputs=["latents"])
    pipe(prompt=PROMPT, generator=generator, output_type="latent", **kwargs)
    assert seen == [(0, latent_shape), (1, latent_shape)]


def test_ltx2_folder_loads_as_both_pipelines_and_holds_a_latent_upsampler(folders, pipelines):
    from diffusers import LTX2ImageToVideoPipeline, LTX2LatentUpsamplePipeline, LTX2Pipeline
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    assert folders("ltx2-t2v") == folders("ltx2-i2v")
    t2v = pipelines("ltx2-t2v")
    assert type(t2v) is LTX2Pipeline and type(LTX2ImageToVideoPipeline.from_pipe(t2v)) is LTX2ImageToVideoPipeline

    generator = torch.Generator("cpu").manual_seed(0)
    latents = t2v(prompt=PROMPT, generator=generator, output_type="latent", **LTX2_CALL)
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
