"""Sound from a model that makes it (a tiny LTX-2): into MP4 as AAC, WebM as Opus, beside PNG frames as a WAV;
listed by `kinemo info`; left out by --no-audio and by GIF; as long as the video within one frame."""

import json
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest
from tiny_diffusers.cases import CASES

from app.cli import main
from export.audio import read_wav

LTX2 = next(c for c in CASES if c.name == "ltx2-t2v")
PROMPT = "waves roll onto a beach"
FRAMES, FPS = 17, 24  # 0.708 s of video: longer than one LTX-2 latent frame, not a whole number of AAC frames


def generate(folder, out, *extra):
    argv = ["generate", PROMPT, "-o", str(out), "--model", str(folder), "--steps", "2", "--frames", str(FRAMES)]
    argv += ["--width", "64", "--height", "64", "--fps", str(FPS), "--seed", "3", "--guidance", "3", *extra]
    return main(argv)


def decoded_samples(path, rate: int) -> np.ndarray:
    """The file's sound decoded by ffmpeg: (n,) int16 mono at rate."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a:0"]
    command += ["-f", "s16le", "-ac", "1", "-ar", str(rate), "-"]
    result = subprocess.run(command, capture_output=True, check=True)
    return np.frombuffer(result.stdout, np.int16)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return LTX2.build(tmp_path_factory.mktemp("ltx2") / "pipe")


@pytest.mark.parametrize(("fmt", "codec"), [("mp4", "aac"), ("webm", "opus")])
def test_the_clip_carries_its_sound(folder, tmp_path, capsys, fmt, codec):
    out = tmp_path / f"clip.{fmt}"
    assert generate(folder, out) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    streams = {s["kind"]: s for s in info["streams"]}
    assert streams["audio"]["codec"] == codec and streams["video"]["codec"] in ("h264", "vp9")
    assert info["export"]["sound"] is True
    rate = 24000
    samples = decoded_samples(out, rate)
    assert abs(len(samples) / rate - FRAMES / FPS) < 1 / FPS, "the sound lasts as long as the video, within a frame"
    assert np.abs(samples).max() > 0, "not silence"


def test_png_frames_get_a_wav_equal_to_the_pipelines_sound(folder, tmp_path, capsys):
    import diffusers
    import torch

    out = tmp_path / "frames"
    assert generate(folder, out, "--format", "png") == 0, capsys.readouterr().err
    sound = read_wav(out / "audio.wav")
    pipe = diffusers.LTX2Pipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    direct = pipe(
        prompt=PROMPT,
        height=64,
        width=64,
        num_frames=FRAMES,
        frame_rate=FPS,
        num_inference_steps=2,
        guidance_scale=3.0,
        generator=torch.Generator("cpu").manual_seed(3),
        output_type="np",
    )
    expected = direct.audio[0].float().numpy().T  # "c n -> n c"
    rate = pipe.vocoder.config.output_sampling_rate
    assert sound.sample_rate == rate and sound.samples.shape[1] == expected.shape[1]
    assert len(sound.samples) == round(FRAMES * rate / FPS)  # fitted to the video: trimmed or padded with silence
    common = min(len(expected), len(sound.samples))
    assert np.abs(sound.samples[:common] - expected[:common]).max() <= 1.5 / 32767  # 16-bit PCM of the same wave
    assert not sound.samples[common:].any()


def test_no_audio_and_gif_leave_the_sound_out(folder, tmp_path, capsys):
    quiet = tmp_path / "quiet.mp4"
    assert generate(folder, quiet, "--no-audio") == 0
    capsys.readouterr()
    assert main(["info", str(quiet)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [s["kind"] for s in info["streams"]] == ["video"] and info["export"]["sound"] is False
    assert generate(folder, tmp_path / "clip.gif") == 0
    assert "GIF carries no sound" in capsys.readouterr().err
    frames = tmp_path / "silent-frames"
    assert generate(folder, frames, "--format", "png", "--no-audio") == 0
    assert not (frames / "audio.wav").exists()
