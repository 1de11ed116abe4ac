"""The export flow for the clip in the player: the dialog, the destination, the question about a file that
exists, then export.write_clip on a worker thread.

The window keeps open_export_dialog, export_clip and ask_replace as its own methods (automation and tests
use them, and replace ask_replace); this controller does the work behind them.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.studio.exporter import ExportDialog, export_clip, is_taken, next_free_path, suggested_name, with_extension
from app.studio.messages import describe
from app.studio.worker import FunctionWorker, start_worker, wait_for


def ask_replace(parent, path: Path, fmt: str) -> str:
    """ "replace", "rename" or "cancel" for a destination that exists."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Already exists")
    box.setTextFormat(Qt.TextFormat.PlainText)  # a file name can look like HTML
    box.setText(f"{path.name} already exists in {path.parent}.")
    replace = None
    if fmt != "png":  # a folder of frames is never deleted for you
        replace = box.addButton("Replace", QMessageBox.ButtonRole.DestructiveRole)
    rename = box.addButton(f"Save as {next_free_path(path, fmt).name}", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(rename)
    box.exec()
    clicked = box.clickedButton()
    return "replace" if clicked is replace and replace is not None else "rename" if clicked is rename else "cancel"


class ExportController(QObject):
    """One export at a time. window is the main window: its current_clip, show_message, ask_replace,
    statusBar, save_settings and exportFinished / exportFailed signals; settings is the dict the window
    saves, where the last export's folder, format and quality are remembered."""

    def __init__(self, window, settings: dict):
        super().__init__(window)
        self._window = window
        self._settings = settings
        self.worker: FunctionWorker | None = None
        self._export_settings = None

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def open_dialog(self) -> None:
        """Choose format and destination, then export the clip in the player."""
        window = self._window
        if window.current_clip is None:
            window.show_message("warning", "Nothing to export yet: generate a clip or pick one from the history.")
            return
        if self.worker is not None:
            return
        _, request = window.current_clip
        prefs = self._settings.get("export", {})
        dialog = ExportDialog(
            window,
            prefs.get("format", "mp4"),
            request.fps,
            request.width,
            request.height,
            int(prefs.get("quality", 80)),
        )
        if dialog.exec() != ExportDialog.DialogCode.Accepted:
            return
        try:
            settings = dialog.settings()
        except Exception as exc:  # noqa: BLE001 - ExportError: shown, never raised
            window.show_message("error", describe(exc))
            return
        start = Path(prefs.get("folder") or Path.home()) / suggested_name(request, settings.format)
        path = self._ask_destination(start, settings.format)
        if path:
            window.export_clip(path, settings)

    def _ask_destination(self, start: Path, fmt: str) -> str:
        options = QFileDialog.Option.DontConfirmOverwrite  # the window asks itself, for files and folders alike
        if fmt == "png":
            title, filters = "Name a new folder for the PNG frames", "Folder (*)"
        else:
            title, filters = "Export clip", f"{fmt.upper()} (*.{fmt})"
        path, _ = QFileDialog.getSaveFileName(self._window, title, str(start), filters, options=options)
        return path

    def export(self, path: str | Path, settings) -> bool:
        """Export the player's clip to path with settings (ExportSettings); True if the export started."""
        from export import ExportError, check_destination

        window = self._window
        if window.current_clip is None or self.worker is not None:
            window.show_message(
                "warning", "Nothing to export yet." if window.current_clip is None else "An export is already running."
            )
            return False
        destination = self._destination(with_extension(path, settings.format), settings.format)
        if destination is None:
            return False
        path, overwrite = destination
        try:
            check_destination(path, settings.validate(), overwrite)
        except ExportError as exc:
            window.show_message("error", f"Cannot export: {describe(exc)}")
            return False
        self._start(path, settings, overwrite)
        return True

    def _destination(self, path: Path, fmt: str) -> tuple[Path, bool] | None:
        """Where to write and whether to overwrite; None when the person cancels over a file that exists."""
        if not is_taken(path, fmt):
            return path, False
        choice = self._window.ask_replace(path, fmt)
        if choice == "cancel":
            self._window.show_message("info", f"Export cancelled; {path.name} was left as it was.")
            return None
        if choice == "rename":
            return next_free_path(path, fmt), False
        return path, fmt != "png"

    def _start(self, path: Path, settings, overwrite: bool) -> None:
        frames, request = self._window.current_clip
        sound = self._window.current_sound
        worker = FunctionWorker(export_clip, path, frames, settings, request.to_dict(), overwrite, sound)
        worker.returned.connect(self._on_exported)
        worker.errored.connect(self._on_failed)
        self.worker = worker
        self._export_settings = settings
        self._window.statusBar().showMessage(f"Exporting {path.name}…")
        self._window.update_actions()
        start_worker(worker)

    @Slot(object)
    def _on_exported(self, path) -> None:
        self.worker = None
        settings = self._export_settings
        self._settings["export"] = {
            "folder": str(Path(path).parent),
            "format": settings.format,
            "quality": settings.quality,
        }
        self._window.save_settings()
        self._window.show_message("info", f"Exported {Path(path).name} to {Path(path).parent}")
        self._window.update_actions()
        self._window.exportFinished.emit(str(path))

    @Slot(object)
    def _on_failed(self, exc) -> None:
        self.worker = None
        self._window.show_message("error", f"Export failed: {describe(exc)}")
        self._window.update_actions()
        self._window.exportFailed.emit(describe(exc))

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Wait for the export in flight (closing the window)."""
        wait_for(self.worker, timeout_ms)
