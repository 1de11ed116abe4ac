"""What the window shows of the running job: progress, live previews, the finished clip, one message at the end.

JobView listens to the JobQueue's signals (app.studio.job_queue) and updates the window's progress bar,
player, history and message area. A failure says so once: the model picker's check of the same model,
still running or started by the failure, keeps what it finds in the picker instead of replacing the
failure's message.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Slot

from app.studio.messages import describe


class JobView(QObject):
    """window is the main window: its progress_bar, player, history_panel, form, queue and messages."""

    def __init__(self, window):
        super().__init__(window)
        self._window = window
        self._finished: dict[int, list] = {}  # job id -> finished windows of a long clip, shown while it grows

    def connect_to(self, queue) -> None:
        queue.jobStarted.connect(self.on_started)
        queue.jobLoaded.connect(self.on_loaded)
        queue.jobNotice.connect(self.on_notice)
        queue.jobProgress.connect(self.on_progress)
        queue.jobPreview.connect(self.on_preview)
        queue.jobFrames.connect(self.on_frames)
        queue.jobSaved.connect(self.on_saved)
        queue.jobFailed.connect(self.on_failed)
        queue.jobCancelled.connect(self.on_cancelled)

    @Slot(object)
    def on_started(self, job) -> None:
        self._finished = {job.id: []}  # finished windows of the running job
        bar = self._window.progress_bar
        bar.setRange(0, 0)
        bar.setFormat("Loading the model…")
        self._window.statusBar().showMessage(f"Generating: {job.label}")
        self._window.message_label.hide()
        self._window.update_actions()

    @Slot(object, str, float)
    def on_loaded(self, job, model: str, seconds: float) -> None:
        if seconds > 0:
            self._window.statusBar().showMessage(f"Model {Path(model).name} loaded in {seconds:.1f} s")
        self._window.progress_bar.setFormat("Starting…")

    @Slot(object, object)
    def on_notice(self, job, notice) -> None:
        from engine.api.events import MemoryNotice

        message = notice.message
        is_plan = isinstance(notice, MemoryNotice)  # the memory plan, announced as the run starts
        self._window.show_message(
            "info" if is_plan else "warning", message[0].upper() + message[1:] if is_plan else message
        )

    @Slot(object, int, int, float)
    def on_progress(self, job, step: int, total: int, elapsed: float) -> None:
        if self._window.queue.cancelling:
            return
        bar = self._window.progress_bar
        bar.setRange(0, total)
        bar.setValue(step)
        left = elapsed / step * (total - step) if step else 0.0
        bar.setFormat(f"Step {step}/{total} · {left:.0f} s left" if step < total else f"Step {step}/{total} · saving…")

    @Slot(object, int, object)
    def on_preview(self, job, step: int, frames) -> None:
        r = job.request
        finished = self._finished.get(job.id)
        if finished:  # a long clip: the windows already made, then the one being made
            frames = np.concatenate([*finished, frames])
        self._window.player.show_frames(frames, fps=r.fps if step == 1 else None, aspect=r.width / r.height, live=True)

    @Slot(object, int, object)
    def on_frames(self, job, start: int, frames) -> None:
        """Finished frames arrive window by window for long clips; keep them on screen as the next is made."""
        if start == 0:
            self._finished[job.id] = []
        self._finished.setdefault(job.id, []).append(frames)

    @Slot(object, object)
    def on_saved(self, job, saved) -> None:
        window, entry = self._window, saved.entry
        window.history_panel.add(entry)
        window.set_clip(saved.frames, saved.request or job.request, entry.sound)
        window.progress_bar.setRange(0, 1)
        window.progress_bar.setValue(1)
        window.progress_bar.setFormat(f"Done in {entry.seconds:.1f} s")
        window.show_message("info", f"Done: saved to the history as {entry.clip_path.name}")
        window.save_settings()
        self._recheck_model(job.request.model)

    @Slot(object, object)
    def on_failed(self, job, exc) -> None:
        self._reset_progress("Failed")
        self._window.show_message("error", f"Generation failed: {describe(exc)}")
        self._window.show_current_clip()
        self._window.form.model_picker.failure_shown(job.request.model)
        self._recheck_model(job.request.model)

    def _recheck_model(self, model: str) -> None:
        """The engine downloads a model it needs: check again whether one that was missing is on disk now."""
        picker = self._window.form.model_picker
        options = picker.options(model)
        if options is not None and options.needs_download:
            picker.check(model)

    @Slot(object)
    def on_cancelled(self, job) -> None:
        self._reset_progress("Cancelled")
        self._window.show_message("info", "Cancelled; nothing was saved.")
        self._window.show_current_clip()

    def _reset_progress(self, text: str) -> None:
        bar = self._window.progress_bar
        bar.setRange(0, 1)
        bar.setValue(0)
        bar.setFormat(text)
