"""The queue panel: the running job and the waiting ones, with buttons to reorder or remove them.

It shows the JobQueue (app.studio.job_queue) and edits it; the queue itself runs the jobs.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout

from app.studio.plain_text import plain_tooltip

JOB_ROLE = Qt.ItemDataRole.UserRole + 1


def small_button(text: str, name: str, tip: str) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.setToolTip(tip)
    width = button.fontMetrics().horizontalAdvance(text) + 24  # the whole label, in a narrow side panel too
    button.setMinimumWidth(width)
    if len(text) == 1:  # the arrows need no more than their glyph: the room goes to the words
        button.setMaximumWidth(width + 8)
    return button


class QueuePanel(QObject):
    """The queue's list and buttons (box holds them); queue is the window's JobQueue.

    The window refreshes its own buttons along with update_buttons when the selection changes.
    """

    def __init__(self, queue, parent=None):
        super().__init__(parent)
        self.queue = queue
        self.list = QListWidget()
        self.list.setObjectName("queueList")
        self.list.setToolTip("Jobs waiting to run; reorder or remove them before they start")
        self.list.setWordWrap(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.up_button = small_button("▲", "queueUpButton", "Move the selected job up")
        self.down_button = small_button("▼", "queueDownButton", "Move the selected job down")
        self.remove_button = small_button("Remove", "queueRemoveButton", "Remove the selected job")
        self.clear_button = small_button("Clear", "queueClearButton", "Remove every waiting job")
        self.run_button = small_button("Run", "queueRunButton", "Start the waiting jobs (kept from the last session)")
        buttons = QHBoxLayout()
        for button in (self.run_button, self.up_button, self.down_button, self.remove_button, self.clear_button):
            buttons.addWidget(button)
        self.box = QGroupBox("Queue")
        layout = QVBoxLayout(self.box)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        self.up_button.clicked.connect(self.move_selected_job_up)
        self.down_button.clicked.connect(self.move_selected_job_down)
        self.remove_button.clicked.connect(self.remove_selected_job)
        self.clear_button.clicked.connect(self.queue.clear)
        self.run_button.clicked.connect(self.queue.resume)

    @Slot()
    def refresh(self) -> None:
        """Show the queue as it is now, keeping the selected waiting job selected."""
        selected = self.selected_job_id()
        self.list.clear()
        if self.queue.current is not None:
            item = QListWidgetItem(f"▶ {self.queue.current.label}")
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            item.setToolTip("Running")
            self.list.addItem(item)
        for job in self.queue.pending:
            item = QListWidgetItem(job.label)
            item.setData(JOB_ROLE, job.id)
            item.setToolTip(plain_tooltip(job.request.prompt))
            self.list.addItem(item)
            if job.id == selected:
                item.setSelected(True)
                self.list.setCurrentItem(item)
        self.update_buttons()

    def selected_job_id(self) -> int | None:
        items = self.list.selectedItems()
        return items[0].data(JOB_ROLE) if items else None

    @Slot()
    def move_selected_job_up(self) -> None:
        self._move_selected_job(-1)

    @Slot()
    def move_selected_job_down(self) -> None:
        self._move_selected_job(1)

    def _move_selected_job(self, offset: int) -> None:
        job_id = self.selected_job_id()
        if job_id is not None:
            self.queue.move(job_id, offset)

    @Slot()
    def remove_selected_job(self) -> None:
        job_id = self.selected_job_id()
        if job_id is not None:
            self.queue.remove(job_id)

    @Slot()
    def update_buttons(self) -> None:
        has_selection = self.selected_job_id() is not None
        for button in (self.up_button, self.down_button, self.remove_button):
            button.setEnabled(has_selection)
        self.clear_button.setEnabled(bool(self.queue.pending))
        self.run_button.setEnabled(bool(self.queue.pending) and not self.queue.busy)
