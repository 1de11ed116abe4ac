"""Frames as the engine hands them out: (f, h, w, 3) uint8 arrays. numpy only."""

from __future__ import annotations

import numpy as np


def to_uint8(frames: np.ndarray, low: float = 0.0) -> np.ndarray:
    """Float frames in [low, 1] -> uint8, rounded half to even as diffusers' numpy_to_pil and torch do."""
    scaled = (np.clip(np.asarray(frames, dtype=np.float32), low, 1.0) - low) / (1.0 - low)
    return (scaled * 255).round().astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images or clips, in dB (inf when they are equal)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))
