"""Opening a file dropped on the window: a Kinemo clip restores its settings, anything else is tried as the
first-frame picture. The clip's embedded record is read on a worker thread (export.read_record).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Slot

from app.studio.drop_zone import is_clip
from app.studio.messages import describe
from app.studio.worker import FunctionWorker, start_worker, wait_for
from engine.api.errors import KinemoError
from engine.api.request import GenerationRequest


def read_clip_record(path: str) -> tuple[str, dict]:
    """Worker thread: the Kinemo record embedded in a clip (export.read_record)."""
    from export import read_record

    return path, read_record(path)


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
        worker = FunctionWorker(read_clip_record, path)
        worker.returned.connect(self._on_record_read)
        worker.errored.connect(self._on_record_failed)
        self.worker = worker
        start_worker(worker)

    @Slot(object)
    def _on_record_read(self, result) -> None:
        path, record = result
        window = self._window
        try:
            request = GenerationRequest.from_dict(record["request"])
        except (KinemoError, TypeError) as exc:
            window.show_message("error", f"{Path(path).name}: the embedded settings are unusable: {describe(exc)}")
            return
        window.form.set_request(request)
        window.show_message(
            "info", f"Settings restored from {Path(path).name} (made by Kinemo {record.get('kinemo', '?')})"
        )
        window.settingsRestored.emit(path)

    @Slot(object)
    def _on_record_failed(self, exc) -> None:
        self._window.show_message("error", f"Cannot restore settings: {describe(exc)}")

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Wait for a record being read (closing the window)."""
        wait_for(self.worker, timeout_ms)
