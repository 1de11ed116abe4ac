"""One request rendered into one file: the core every caller shares (`kinemo generate`, `kinemo batch`, its Ray
workers, `kinemo serve`).

The backend's events stream into export.ClipWriter as they come, with the request embedded in the file; any
failure (or Ctrl+C, or a stop asked for through should_stop) aborts the writer, so the file at the output path is
the old one or a whole new one, never half of one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.api.events import Event, Notice


@dataclass
class SoundLeftOut(Notice):
    """The model made sound that the chosen format cannot carry (GIF): the clip is written without it."""


def render_clip(
    backend,
    request,
    output: Path,
    settings,
    *,
    quality: int = 80,
    audio: bool = True,
    on_event: Callable[[Event], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    provenance: dict | None = None,
) -> dict:
    """Generate request with backend into output (export.ExportSettings settings); returns the run's stats (the
    Finished event's, with generate_seconds and frame_count) plus export_seconds. on_event sees every event the
    backend yields, and a SoundLeftOut notice when the format drops the model's sound; audio=False leaves the
    sound out silently. provenance: the request as the file records it (default request.to_dict()), for a caller
    that renders from copies of the inputs (a Ray worker, a server) and records the paths the user gave. A request
    the backend finishes without frames raises RuntimeError, nothing written."""
    from engine.api.events import Finished, Frames, Sound
    from export import ClipWriter, make_record
    from export.formats import carries_sound

    show = on_event or (lambda event: None)
    record = make_record(provenance or request.to_dict(), {"format": settings.format, "quality": quality})
    writer, export_started, sound, stats = None, 0.0, None, {}
    try:
        for event in backend.generate(request, should_stop=should_stop):
            show(event)
            if isinstance(event, Sound):
                if audio and carries_sound(settings.format):
                    sound = event
                elif audio:
                    show(SoundLeftOut(sound_left_out(settings.format, event.seconds)))
                record["export"]["sound"] = sound is not None
            elif isinstance(event, Frames):
                if writer is None:
                    export_started = time.perf_counter()
                    h, w = event.frames.shape[1:3]  # frames: (n, h, w, 3) uint8
                    writer = ClipWriter(output, settings, (w, h), record, sound=sound)
                    writer.open()
                writer.write(event.frames)
            elif isinstance(event, Finished):
                stats = {"generate_seconds": event.seconds, "frame_count": event.frame_count, **event.stats}
        if writer is None:
            raise RuntimeError("the backend finished without frames")
        writer.close()
        return {**stats, "export_seconds": time.perf_counter() - export_started}
    except BaseException:
        if writer is not None:
            writer.abort()
        raise


def sound_left_out(fmt: str, seconds: float) -> str:
    return (
        f"{fmt.upper()} carries no sound; the model's {seconds:.1f} s of sound is left out "
        "(export MP4 or WebM to keep it)"
    )
