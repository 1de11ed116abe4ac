"""Text-to-video as an artist gets it: held-out prompts generated at a size, exported to MP4, read back.

    python -m engine.training.evaluate --size 512

Each clip goes through the exporter an artist's clip goes through (export.writer, H.264 at the default
quality) and is decoded again by ffmpeg; the checker reads its shape (engine.training.checker, its pixel
thresholds scaled to the size) and the outline's softness is measured (engine.training.outline).
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine.api.events import Frames
from engine.api.request import GenerationRequest
from engine.training.checker import check_clip
from engine.training.outline import clip_band
from engine.training.synthetic import sample_object_clip


def exported(frames: np.ndarray, path: Path, width: int, height: int) -> np.ndarray:
    """frames (n, h, w, 3) uint8 exported as an MP4 of width x height (the exporter scales them, as it does for
    `kinemo generate`) and decoded again: (n, height, width, 3) uint8."""
    import imageio_ffmpeg

    from export.formats import ExportSettings
    from export.writer import write_clip

    write_clip(path, frames, ExportSettings(format="mp4", width=width, height=height), {"evaluation": True})
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    size = next(reader)["size"]  # (w, h)
    decoded = [np.frombuffer(chunk, np.uint8).reshape(size[1], size[0], 3) for chunk in reader]
    return np.stack(decoded)


def generated(backend, request: GenerationRequest) -> np.ndarray:
    return np.concatenate([e.frames for e in backend.generate(request) if isinstance(e, Frames)])


def shape_recall(per_shape: dict) -> dict:
    """Recall per shape class and its mean over the classes: a set with more circles cannot flatter it."""
    recall = {shape: 100.0 * right / clips for shape, (right, clips) in sorted(per_shape.items())}
    return {"per_class": recall, "mean": float(np.mean(list(recall.values()))) if recall else None}


def exported_text_to_video(
    backend, combos: list, size: int, steps: int, guidance: float, seeds: int = 1, progress: bool = False
) -> dict:
    """Shape recall per class (and its mean), and the outline band's median and 90th percentile, over clips
    generated at size x size and exported."""
    per_shape: dict[str, list[int]] = {}
    bands, seconds = [], []
    jobs = [(c, s) for s in range(seeds) for c in combos]
    with tempfile.TemporaryDirectory() as tmp:
        for index, (combo, seed) in enumerate(tqdm(jobs, desc=f"exported at {size}", disable=not progress)):
            prompt = sample_object_clip(random.Random(seed), combo).caption
            request = GenerationRequest(prompt, steps=steps, guidance=guidance, seed=seed, width=size, height=size)
            started = time.perf_counter()
            frames = exported(generated(backend, request), Path(tmp) / f"clip{index}.mp4", size, size)
            seconds.append(time.perf_counter() - started)
            counts = per_shape.setdefault(combo[1], [0, 0])
            counts[0] += int(check_clip(frames).shape == combo[1])
            counts[1] += 1
            band = clip_band(frames)
            if band is not None:
                bands.append(band)
    return {
        "size": size,
        "clips": len(jobs),
        "shape_recall": shape_recall(per_shape),
        "outline_band_px": {
            "median": float(np.median(bands)) if bands else None,
            "p90": float(np.percentile(bands, 90)) if bands else None,
        },
        "seconds_per_clip": float(np.mean(seconds)) if seconds else None,
    }


def exported_line(scores: dict) -> str:
    recall, band = scores["shape_recall"], scores["outline_band_px"]
    classes = "  ".join(f"{shape} {value:.1f} %" for shape, value in recall["per_class"].items())
    softness = (
        f"outline band median {band['median']:.1f} px, 90th percentile {band['p90']:.1f} px"
        if band["median"] is not None
        else "no outline to measure"
    )
    return (
        f"exported at {scores['size']}x{scores['size']} ({scores['clips']} clips, MP4 read back): shape recall "
        f"{classes}  (mean {recall['mean']:.1f} %); {softness}  ({scores['seconds_per_clip']:.2f} s per clip)"
    )
