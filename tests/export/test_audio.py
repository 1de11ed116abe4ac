"""A clip's sound: checked at the boundary, fitted to the video, muxed, and nothing left behind when it fails."""

import numpy as np
import pytest

from engine.api.events import Sound
from export import ExportError, ExportSettings, write_clip
from export import audio as audio_module
from export.audio import check_sound, fitted, read_wav, write_wav
from export.streams import read_streams

RATE = 16000
FRAMES = (np.arange(12 * 32 * 32 * 3) % 251).astype(np.uint8).reshape(12, 32, 32, 3)


def tone(seconds: float, channels: int = 1) -> Sound:
    t = np.arange(int(seconds * RATE)) / RATE
    return Sound(np.repeat((0.5 * np.sin(2 * np.pi * 440 * t))[:, None], channels, 1).astype(np.float32), RATE)


@pytest.mark.parametrize(
    ("sound", "message"),
    [
        (Sound(np.zeros((0, 1), np.float32), RATE), "shaped"),
        (Sound(np.zeros((10, 2, 2), np.float32), RATE), "shaped"),
        (Sound(np.zeros((10, 1), np.float32), 100), "sample rate"),
        (Sound(np.full((10, 1), np.nan, np.float32), RATE), "NaN"),
    ],
)
def test_bad_sound_is_refused_in_one_line(sound, message):
    with pytest.raises(ExportError, match=message) as caught:
        check_sound(sound)
    assert "\n" not in str(caught.value)


def test_sound_is_fitted_to_the_video():
    long, short = tone(2.0), tone(0.1, channels=2)
    assert fitted(long, 12, 8).shape == (24000, 1)  # 1.5 s of video: trimmed
    padded = fitted(check_sound(short), 12, 8)
    assert padded.shape == (24000, 2) and not padded[len(short.samples) :].any()  # padded with silence
    assert check_sound(Sound(np.zeros(10, np.float32), RATE)).samples.shape == (10, 1)  # mono as one channel


def test_wav_round_trip(tmp_path):
    sound = check_sound(tone(0.25, channels=2))
    write_wav(tmp_path / "a.wav", sound.samples, sound.sample_rate)
    back = read_wav(tmp_path / "a.wav")
    assert back.sample_rate == RATE and np.abs(back.samples - sound.samples).max() <= 1 / 32767


def test_a_failed_mux_keeps_the_old_file_and_leaves_nothing(tmp_path, monkeypatch):
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"the previous clip")
    monkeypatch.setitem(audio_module.AUDIO_CODECS, "mp4", ["-c:a", "no-such-codec"])
    with pytest.raises(ExportError, match="adding the sound failed"):
        write_clip(out, FRAMES, ExportSettings("mp4", 8, 32, 32), {"request": {}}, sound=tone(1.5))
    assert out.read_bytes() == b"the previous clip" and [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_bad_sound_fails_before_anything_is_written(tmp_path):
    out = tmp_path / "clip.webm"
    with pytest.raises(ExportError, match="NaN"):
        write_clip(
            out, FRAMES, ExportSettings("webm", 8, 32, 32), {"request": {}}, sound=Sound(np.full((5, 1), np.inf), RATE)
        )
    assert list(tmp_path.iterdir()) == []


def test_a_clip_without_sound_lists_only_its_video(tmp_path):
    out = write_clip(tmp_path / "clip.mp4", FRAMES, ExportSettings("mp4", 8, 32, 32), {"request": {}})
    (video,) = read_streams(out)
    assert video["kind"] == "video" and (video["width"], video["height"], video["fps"]) == (32, 32, 8.0)
    gif = write_clip(tmp_path / "clip.gif", FRAMES, ExportSettings("gif", 8, 32, 32), {"request": {}}, sound=tone(1.5))
    assert all(s["kind"] != "audio" for s in read_streams(gif))  # a GIF carries no sound
    frames = write_clip(tmp_path / "frames", FRAMES, ExportSettings("png", 8, 32, 32), {"request": {}})
    assert read_streams(frames) == []  # PNG frames without sound: no audio.wav to list
