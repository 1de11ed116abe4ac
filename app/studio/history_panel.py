"""The history panel: every generation, newest first; a click restores its settings and clip.

The entries live on disk (app.studio.history.HistoryStore); this panel lists them, restores one into the
window's form and player, and removes one from the list and the disk.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QSize, Qt, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QAbstractItemView, QGroupBox, QListWidget, QListWidgetItem, QMenu, QVBoxLayout

from app.studio.history import HistoryEntry, HistoryStore
from app.studio.messages import describe
from engine.api.errors import KinemoError
from engine.api.request import GenerationRequest

ENTRY_ROLE = Qt.ItemDataRole.UserRole


def history_item(entry: HistoryEntry) -> QListWidgetItem:
    item = QListWidgetItem(QIcon(str(entry.thumbnail_path)), f"{entry.title}\n{entry.summary}")
    item.setData(ENTRY_ROLE, entry.id)
    item.setToolTip(f"{entry.request.get('prompt', '')}\n{entry.clip_path}")
    return item


class HistoryPanel(QObject):
    """The history list (box holds it). window is the main window: its form, set_clip, show_message and
    settingsRestored receive what an entry restores."""

    def __init__(self, store: HistoryStore, window):
        super().__init__(window)
        self.store = store
        self._window = window
        self.entries: dict[str, HistoryEntry] = {}
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
        """Put an entry's settings in the form and its clip in the player."""
        window = self._window
        try:
            request = GenerationRequest.from_dict(entry.request)
        except KinemoError as exc:
            window.show_message("error", f"Cannot restore this entry: {describe(exc)}")
            return
        window.form.set_request(request)
        try:
            window.set_clip(entry.load_frames(), request)
        except (OSError, ValueError) as exc:
            window.show_message("warning", f"Settings restored, but the clip's frames are unreadable: {exc}")
        else:
            window.show_message("info", f"Settings restored from the history ({entry.summary})")
        window.settingsRestored.emit(entry.id)

    @Slot("QPoint")
    def _menu(self, point) -> None:
        item = self.list.itemAt(point)
        entry = self.entries.get(item.data(ENTRY_ROLE)) if item else None
        if entry is None:
            return
        menu = QMenu(self._window)
        restore = menu.addAction("Restore settings")
        remove = menu.addAction("Remove from history")
        chosen = menu.exec(self.list.mapToGlobal(point))
        if chosen is restore:
            self.restore(entry)
        elif chosen is remove:
            self.remove(entry)

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
