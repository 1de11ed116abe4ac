"""Extend: a history clip continued by more frames, queued straight from the history's context menu.

The continuation keeps the clip's model, seed, size, fps, negative prompt and LoRAs, and follows the prompt in
effect at the clip's end (its last prompt change, if it has any). It starts from the clip alone, so pictures
and a video to re-render are left out. The backend yields the clip's own frames first, then the new ones, so
the history entry it makes holds the whole extended clip.
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QInputDialog

from app.studio.messages import describe
from engine.api.errors import KinemoError
from engine.api.request import LIMITS, GenerationRequest


def extension_request(entry, frames: int) -> GenerationRequest:
    """The request that continues entry's clip by frames new frames; InvalidRequest when it cannot."""
    return GenerationRequest.from_dict(entry.request).continuation(str(entry.clip_path), frames).validate()


def ask_frames(parent, entry) -> int | None:
    """How many new frames (the clip's own last generation's count to start with); None when cancelled."""
    default = int(entry.request.get("frames", 16))
    frames, ok = QInputDialog.getInt(
        parent,
        "Extend the clip",
        f"New frames after the {entry.frames} of this clip (same prompt, model and seed):",
        default,
        LIMITS["frames"][0],
        LIMITS["frames"][1],
    )
    return frames if ok else None


class Extender(QObject):
    """window is the main window: its queue, form (run options) and show_message."""

    def __init__(self, window):
        super().__init__(window)
        self._window = window

    def extend(self, entry, frames: int | None = None):
        """Queue the continuation of entry's clip (asking for the number of new frames unless given); the job,
        or None when cancelled or refused (with one line in the window)."""
        window = self._window
        if frames is None:
            frames = ask_frames(window, entry)
            if frames is None:
                return None
        try:
            request = extension_request(entry, frames)
        except KinemoError as exc:
            window.show_message("error", f"Cannot extend this clip: {describe(exc)}")
            return None
        job = window.queue.add(request, options=window.form.run_options)
        window.show_message("info", f"Queued: {entry.clip_path.name} extended by {frames} frames")
        return job
