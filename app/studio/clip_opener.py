"""Opening a file dropped on the window: a Kinemo clip restores its settings, a clip without a Kinemo record
becomes the video to re-render (video-to-video), anything else is tried as the first-frame picture. The clip's
embedded record is read on a worker thread (export.read_record).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Slot

from app.studio.drop_zone import is_clip
from app.studio.messages import describe
from app.studio.saved_data import checked_request
from app.studio.worker import FunctionWorker, start_worker, wait_for
from engine.api.errors import InvalidRequest


def read_clip_record(path: str) -> tuple[str, dict]:
    """Worker thread: the Kinemo record embedded in a clip (export.read_record); ExportError when it has none."""
    from export import read_record

    return path, read_record(path)


def read_clip_or_video(path: str) -> tuple:
    """Worker thread: ("record", path, record), or ("video", path, why) for a clip that carries no record."""
    from export import ExportError

    try:
        return ("record", *read_clip_record(path))
    except ExportError as exc:
        if Path(path).is_file() or Path(path).is_dir():
            return "video", path, str(exc)
        raise


class ClipOpener(QObject):
    """window is the main window: its form, statusBar, show_message and settingsRestored signal."""

    def __init__(self, window):
        super().__init__(window)
        self._window = window
        self.worker: FunctionWorker | None = None

    def open_path(self, path: str) -> None:
        if is_clip(path):
            self.restore_from_clip(path)
        else:
            self._window.form.drop_zone.set_image(path)

    def restore_from_clip(self, path: str) -> None:
        """Read the record embedded in a clip (worker thread) and restore its settings."""
        self._window.statusBar().showMessage(f"Reading {Path(path).name}…")
        worker = FunctionWorker(read_clip_or_video, path)
        worker.returned.connect(self._on_record_read)
        worker.errored.connect(self._on_record_failed)
        self.worker = worker
        start_worker(worker)

    @Slot(object)
    def _on_record_read(self, result) -> None:
        """Check the whole record first, then apply all of it or none of it, with one message."""
        kind, path, record = result
        window, name = self._window, Path(path).name
        if kind == "video":
            window.form.controls.video.set_video(path)
            window.show_message("info", f"{name} has no Kinemo settings: it is the video to re-render now")
            return
        try:
            if not isinstance(record, dict):
                raise InvalidRequest("the record is not a JSON object")
            request = checked_request(record.get("request"))
        except InvalidRequest as exc:
            window.show_message("error", f"{name}: the embedded settings are unusable: {describe(exc)}")
            return
        made_by = record.get("kinemo")
        version = made_by if isinstance(made_by, str) and len(made_by) <= 40 else "?"
        before = window.form.state()
        try:
            window.form.set_request(request)
        except Exception as exc:  # noqa: BLE001 - the form goes back to what it showed
            window.form.restore_state(before)
            window.show_message("error", f"{name}: the embedded settings could not be applied: {describe(exc)}")
            return
        window.show_message("info", f"Settings restored from {name} (made by Kinemo {version})")
        window.settingsRestored.emit(path)

    @Slot(object)
    def _on_record_failed(self, exc) -> None:
        self._window.show_message("error", f"Cannot restore settings: {describe(exc)}")

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Wait for a record being read (closing the window)."""
        wait_for(self.worker, timeout_ms)
