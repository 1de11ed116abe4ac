"""Engine events as a job's stream events: JSON-ready dicts, with previews as small PNG strips in base64.

Kinds: queued, running, loaded, notice, progress, preview (at most every N steps), frames, and one final state
(done, failed or cancelled) carrying the job's summary. A preview is its frames side by side in one PNG
(preview_strip / strip_frames), each frame at most PREVIEW_SIDE pixels on its longer side, at most
PREVIEW_FRAMES of them picked evenly along the clip.
"""

from __future__ import annotations

import base64
import io

import numpy as np

PREVIEW_SIDE = 128
PREVIEW_FRAMES = 8


def event_data(event, job, preview_every: int) -> list[tuple[str, dict]]:
    """[(kind, data)] for one engine event (none for the events a client does not need); a Progress event also
    moves the job's step and total."""
    from engine.api.events import Finished, Frames, Loaded, Notice, Preview, Progress, Sound

    if isinstance(event, Progress):
        job.step, job.total = event.step, event.total
        return [("progress", {"step": event.step, "total": event.total, "elapsed": round(event.elapsed, 3)})]
    if isinstance(event, Preview):
        if job.last_preview and event.step - job.last_preview < preview_every and event.step != job.total:
            return []
        job.last_preview = event.step
        return [("preview", {"step": event.step, **preview_strip(event.frames)})]
    if isinstance(event, Notice):  # MemoryNotice and render_clip's SoundLeftOut included
        return [("notice", {"message": event.message})]
    if isinstance(event, Loaded):
        return [("loaded", {"model": event.model, "seconds": round(event.seconds, 3)})]
    if isinstance(event, Frames):
        return [("frames", {"start": event.start, "count": len(event.frames)})]
    if isinstance(event, (Finished, Sound)):
        return []  # the final state carries the stats; the sound is in the result
    return []


def preview_strip(frames: np.ndarray) -> dict:
    """{"frames", "width", "height", "png"}: frames (f, h, w, 3) uint8, a few of them scaled down, side by side
    in one PNG (base64)."""
    from PIL import Image

    picked = frames[np.linspace(0, len(frames) - 1, min(len(frames), PREVIEW_FRAMES)).round().astype(int)]
    h, w = picked.shape[1:3]
    scale = min(1.0, PREVIEW_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    strip = np.concatenate([np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in picked], axis=1)
    buffer = io.BytesIO()
    Image.fromarray(strip).save(buffer, format="PNG")
    return {
        "frames": len(picked),
        "width": size[0],
        "height": size[1],
        "png": base64.b64encode(buffer.getvalue()).decode("ascii"),
    }


def strip_frames(data: dict) -> np.ndarray:
    """A preview event's frames back as (f, h, w, 3) uint8 (for clients such as the studio's remote engine)."""
    from PIL import Image

    strip = np.asarray(Image.open(io.BytesIO(base64.b64decode(data["png"]))).convert("RGB"))
    return np.stack(np.split(strip, data["frames"], axis=1))
