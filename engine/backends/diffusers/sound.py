"""The sound a diffusers pipeline returns beside its frames (LTX-2), as Kinemo's Sound event."""

from __future__ import annotations

import numpy as np

from engine.api.errors import KinemoError
from engine.api.events import Sound


def sample_rate(pipe) -> int:
    """The rate of the pipeline's waveform: its vocoder's output rate (LTX-2 decodes mel spectrograms with a
    vocoder; the audio VAE's own rate is the spectrogram's, not the waveform's)."""
    vocoder = getattr(pipe, "vocoder", None)
    rate = getattr(getattr(vocoder, "config", None), "output_sampling_rate", None)
    if rate is None:
        rate = getattr(pipe, "audio_sampling_rate", None)
    if not rate:
        raise KinemoError(f"{type(pipe).__name__} returned sound but names no sample rate")
    return int(rate)


def pipeline_sound(pipe, audio) -> Sound:
    """Sound from a pipeline's audio output: the first clip of (batch, channels, samples), as (samples,
    channels) float32."""
    if hasattr(audio, "detach"):
        audio = audio.detach().float().cpu().numpy()
    wave = np.asarray(audio, dtype=np.float32)[0]  # "b c n -> c n" (or "b n -> n" for mono)
    samples = wave[:, None] if wave.ndim == 1 else wave.T  # "c n -> n c"
    return Sound(np.ascontiguousarray(np.clip(samples, -1.0, 1.0)), sample_rate(pipe))
