"""The history panel: every generation, newest first; a click restores its settings and clip.

The entries live on disk (app.studio.history.HistoryStore); this panel lists them, restores one into the
window's form and player, queues the continuation of one (Extend, app.studio.extend), and removes one from the
list and the disk.
"""

from __future__ import annotations

import stat

from PySide6.QtCore import QObject, QSize, Qt, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QAbstractItemView, QGroupBox, QListWidget, QListWidgetItem, QMenu, QVBoxLayout

from app.studio.extend import Extender
from app.studio.history import HistoryEntry, HistoryStore
from app.studio.messages import describe
from app.studio.plain_text import plain_tooltip
from app.studio.worker import FunctionWorker, start_worker, wait_for
from engine.api.errors import KinemoError
from engine.api.request import GenerationRequest

ENTRY_ROLE = Qt.ItemDataRole.UserRole
MAX_THUMBNAIL_BYTES = 1 << 20  # thumbnails are 96 px PNGs of a few kilobytes


def load_entry_frames(entry: HistoryEntry, request) -> tuple:
    """Worker thread: an entry's frames, with the entry and request they belong to."""
    return entry, request, entry.load_frames()


def thumbnail_icon(entry: HistoryEntry) -> QIcon:
    """The entry's thumbnail, unless its file is something other than a small picture (QIcon decodes it on the
    UI thread)."""
    try:
        info = entry.thumbnail_path.stat()
    except OSError:
        return QIcon()
    return (
        QIcon(str(entry.thumbnail_path))
        if stat.S_ISREG(info.st_mode) and info.st_size <= MAX_THUMBNAIL_BYTES
        else QIcon()
    )


def history_item(entry: HistoryEntry) -> QListWidgetItem:
    item = QListWidgetItem(thumbnail_icon(entry), f"{entry.title}\n{entry.summary}")
    item.setData(ENTRY_ROLE, entry.id)
    item.setToolTip(plain_tooltip(f"{entry.request.get('prompt', '')}\n{entry.clip_path}"))
    return item


class HistoryPanel(QObject):
    """The history list (box holds it). window is the main window: its form, set_clip, show_message and
    settingsRestored receive what an entry restores."""

    def __init__(self, store: HistoryStore, window):
        super().__init__(window)
        self.store = store
        self._window = window
        self.entries: dict[str, HistoryEntry] = {}
        self.loading: str | None = None  # the entry whose frames are being read
        self.worker: FunctionWorker | None = None
        self.extender = Extender(window)
        self.list = QListWidget()
        self.list.setObjectName("historyList")
        self.list.setIconSize(QSize(56, 56))
        self.list.setWordWrap(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setToolTip("Every generation; click one to restore its settings and clip")
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.box = QGroupBox("History")
        layout = QVBoxLayout(self.box)
        layout.addWidget(self.list)
        self.list.itemClicked.connect(self._on_clicked)
        self.list.itemActivated.connect(self._on_clicked)
        self.list.customContextMenuRequested.connect(self._menu)

    def load(self) -> None:
        """List the entries on disk (when the window opens)."""
        try:
            entries = self.store.entries()
        except OSError as exc:
            self._window.show_message("error", f"Cannot read the history: {exc}")
            return
        for entry in entries:
            self.entries[entry.id] = entry
            self.list.addItem(history_item(entry))

    def add(self, entry: HistoryEntry) -> None:
        """A new entry goes on top."""
        self.entries[entry.id] = entry
        self.list.insertItem(0, history_item(entry))

    @Slot(QListWidgetItem)
    def _on_clicked(self, item: QListWidgetItem) -> None:
        entry = self.entries.get(item.data(ENTRY_ROLE))
        if entry is not None:
            self.restore(entry)

    def restore(self, entry: HistoryEntry) -> None:
        """Put an entry's settings in the form at once and its clip in the player once its frames are read on
        a worker thread (a long clip's frames run to gigabytes); settingsRestored follows the frames."""
        window = self._window
        try:
            request = GenerationRequest.from_dict(entry.request)
        except KinemoError as exc:
            window.show_message("error", f"Cannot restore this entry: {describe(exc)}")
            return
        window.form.set_request(request)
        window.statusBar().showMessage(f"Loading the clip {entry.clip_path.name}…")
        worker = FunctionWorker(load_entry_frames, entry, request)
        worker.returned.connect(self._on_frames_loaded)
        worker.errored.connect(self._on_frames_failed)
        self.loading, self.worker = entry.id, worker
        start_worker(worker)

    @Slot(object)
    def _on_frames_loaded(self, result) -> None:
        entry, request, frames = result
        if entry.id != self.loading:
            return  # another entry was clicked since
        self.loading = None
        self._window.set_clip(frames, request, entry.sound)
        self._window.show_message("info", f"Settings restored from the history ({entry.summary})")
        self._window.settingsRestored.emit(entry.id)

    @Slot(object)
    def _on_frames_failed(self, exc) -> None:
        entry_id, self.loading = self.loading, None
        if entry_id is None:
            return
        self._window.show_message(
            "warning", f"Settings restored, but the clip's frames are unreadable: {describe(exc)}"
        )
        self._window.settingsRestored.emit(entry_id)

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Wait for frames being read (closing the window)."""
        self.loading = None
        wait_for(self.worker, timeout_ms)

    @Slot("QPoint")
    def _menu(self, point) -> None:
        item = self.list.itemAt(point)
        entry = self.entries.get(item.data(ENTRY_ROLE)) if item else None
        if entry is None:
            return
        menu = QMenu(self._window)
        restore = menu.addAction("Restore settings")
        extend = menu.addAction("Extend…")
        extend.setToolTip("Continue this clip with more frames (same prompt, model and seed)")
        remove = menu.addAction("Remove from history")
        chosen = menu.exec(self.list.mapToGlobal(point))
        if chosen is restore:
            self.restore(entry)
        elif chosen is extend:
            self.extend(entry)
        elif chosen is remove:
            self.remove(entry)

    def extend(self, entry: HistoryEntry, frames: int | None = None):
        """Queue the continuation of entry's clip (asks for the number of new frames unless given)."""
        return self.extender.extend(entry, frames)

    def remove(self, entry: HistoryEntry) -> None:
        """Take an entry off the list and delete its files."""
        for row in range(self.list.count()):
            if self.list.item(row).data(ENTRY_ROLE) == entry.id:
                self.list.takeItem(row)
                break
        self.entries.pop(entry.id, None)
        try:
            self.store.remove(entry)
        except OSError as exc:
            self._window.show_message("error", f"Could not delete {entry.clip_path}: {exc}")
