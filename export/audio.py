"""A clip's sound: fitted to the video's length, written as WAV, and muxed into MP4 (AAC) or WebM (Opus).

The sound is muxed in a second ffmpeg pass once the video is whole (the video stream is copied, not encoded
again), so frames still stream into the encoder as they arrive and the frame count, which fixes the video's
length, is known when the sound is fitted to it.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from engine.api.events import Sound
from export.formats import ExportError

AUDIO_CODECS = {"mp4": ["-c:a", "aac", "-b:a", "192k"], "webm": ["-c:a", "libopus", "-b:a", "128k"]}
WAV_NAME = "audio.wav"  # beside the frames of a PNG export


def check_sound(sound: Sound) -> Sound:
    """ExportError unless sound is (n, channels) or (n,) finite samples at a usable rate."""
    samples = np.asarray(sound.samples)
    if samples.ndim == 1:
        samples = samples[:, None]
    if samples.ndim != 2 or not 1 <= samples.shape[1] <= 8 or len(samples) == 0:
        raise ExportError(f"sound must be shaped (samples, channels), got {np.shape(sound.samples)}")
    if not 8000 <= int(sound.sample_rate) <= 192000:
        raise ExportError(f"sound's sample rate must be 8000-192000 Hz, got {sound.sample_rate}")
    if not np.isfinite(samples).all():
        raise ExportError("sound holds NaN or infinite samples")
    return Sound(samples.astype(np.float32), int(sound.sample_rate))


def fitted(sound: Sound, frames: int, fps: float) -> np.ndarray:
    """The samples for exactly frames / fps seconds: trimmed, or padded with silence (models make sound of
    about the clip's length; a player that meets a shorter track cuts the last frames' sound short)."""
    want = round(frames * sound.sample_rate / fps)
    samples = sound.samples[:want]
    if len(samples) < want:
        samples = np.concatenate([samples, np.zeros((want - len(samples), samples.shape[1]), np.float32)])
    return samples


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """16-bit PCM WAV (what every player and ffmpeg read)."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).round().astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())


def mux(video: Path, samples: np.ndarray, rate: int, fmt: str, target: Path, metadata: list[str]) -> None:
    """Write target: video's stream copied, samples encoded with the format's audio codec."""
    import imageio_ffmpeg

    with tempfile.TemporaryDirectory(prefix="kinemo-sound-") as folder:
        wav = Path(folder) / WAV_NAME
        write_wav(wav, samples, rate)
        command = [
            imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-i", str(video), "-i", str(wav),
            "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", *AUDIO_CODECS[fmt], *metadata,
            *(["-movflags", "+faststart"] if fmt == "mp4" else []), "-f", fmt, str(target),
        ]  # fmt: skip
        try:
            result = subprocess.run(command, capture_output=True, stdin=subprocess.DEVNULL, timeout=600)
        except subprocess.TimeoutExpired:
            raise ExportError("adding the sound took longer than 10 minutes; nothing was replaced") from None
    if result.returncode != 0:
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ExportError(f"adding the sound failed: {lines[-1] if lines else 'ffmpeg failed'}")


def read_wav(path: Path) -> Sound:
    """The samples of a 16-bit PCM WAV written by write_wav."""
    with wave.open(str(path), "rb") as source:
        if source.getsampwidth() != 2:
            raise ExportError(f"{path.name} is not 16-bit PCM")
        pcm = np.frombuffer(source.readframes(source.getnframes()), "<i2")
        samples = pcm.reshape(-1, source.getnchannels()).astype(np.float32) / 32767
        return Sound(samples, source.getframerate())
