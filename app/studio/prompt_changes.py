"""Prompt changes: from a frame on, the clip follows another prompt (request.prompt_changes).

Under the prompt box, one row per change: the frame it starts at and its prompt. The rows are handed to the
request as they are, sorted by frame; the request's own validation names a frame outside the clip or an empty
prompt in one line, so nothing is dropped or moved without the artist seeing why.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLineEdit, QPushButton, QSpinBox, QToolButton, QVBoxLayout, QWidget

from engine.api.controls import MAX_PROMPT_CHANGES, PromptChange
from engine.api.request import LIMITS

FRAME_TIP = "The first frame that follows this prompt (frame 0 follows the main prompt)"


class PromptChangeRow(QWidget):
    removeClicked = Signal(object)  # the row
    changed = Signal()

    def __init__(self, frame: int, prompt: str, parent=None):
        super().__init__(parent)
        self.setObjectName("promptChangeRow")
        self.frame_spin = QSpinBox()
        self.frame_spin.setObjectName("promptChangeFrameSpin")
        self.frame_spin.setRange(1, LIMITS["frames"][1] - 1)
        self.frame_spin.setPrefix("frame ")
        self.frame_spin.setValue(frame)
        self.frame_spin.setToolTip(FRAME_TIP)
        self.prompt_edit = QLineEdit(prompt)
        self.prompt_edit.setObjectName("promptChangeEdit")
        self.prompt_edit.setPlaceholderText("the prompt from this frame on")
        self.prompt_edit.setCursorPosition(0)  # a long prompt shows its beginning, not its end
        self.remove_button = QToolButton()
        self.remove_button.setObjectName("promptChangeRemoveButton")
        self.remove_button.setText("✕")
        self.remove_button.setToolTip("Remove this prompt change")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.frame_spin)
        layout.addWidget(self.prompt_edit, 1)
        layout.addWidget(self.remove_button)
        self.frame_spin.valueChanged.connect(self.changed)
        self.prompt_edit.textChanged.connect(self.changed)
        self.remove_button.clicked.connect(self._on_remove)

    @Slot()
    def _on_remove(self) -> None:
        self.removeClicked.emit(self)

    @property
    def change(self) -> PromptChange:
        return PromptChange(self.frame_spin.value(), self.prompt_edit.text().strip())


class PromptChanges(QWidget):
    """The rows and an "add" button; frames() tells how long the clip is (for where a new change starts)."""

    changed = Signal()

    def __init__(self, frames: Callable[[], int], parent=None):
        super().__init__(parent)
        self.setObjectName("promptChanges")
        self._frames = frames
        self.rows: list[PromptChangeRow] = []
        self.add_button = QPushButton("+ Prompt change at a frame")
        self.add_button.setObjectName("promptChangeAddButton")
        self.add_button.setToolTip("From a frame on, the clip follows another prompt (e.g. 'the sun sets')")
        self.add_button.clicked.connect(self._on_add_clicked)
        self._rows_layout = QVBoxLayout()
        self._rows_layout.setSpacing(2)
        button_row = QHBoxLayout()
        button_row.addWidget(self.add_button)
        button_row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._rows_layout)
        layout.addLayout(button_row)

    def changes(self) -> tuple[PromptChange, ...]:
        return tuple(sorted((row.change for row in self.rows), key=lambda c: c.frame))

    def next_frame(self) -> int:
        """Where a new change starts: halfway between the last change (or the start) and the clip's end."""
        last = max((row.frame_spin.value() for row in self.rows), default=0)
        return max(last + 1, (last + self._frames()) // 2)

    def add(self, frame: int | None = None, prompt: str = "") -> PromptChangeRow:
        row = PromptChangeRow(self.next_frame() if frame is None else frame, prompt, self)
        row.removeClicked.connect(self._on_remove_clicked)
        row.changed.connect(self.changed)
        self.rows.append(row)
        self._rows_layout.addWidget(row)
        self.add_button.setEnabled(len(self.rows) < MAX_PROMPT_CHANGES)
        self.changed.emit()
        return row

    def remove(self, row: PromptChangeRow) -> None:
        self.rows.remove(row)
        self._rows_layout.removeWidget(row)
        row.deleteLater()
        self.add_button.setEnabled(len(self.rows) < MAX_PROMPT_CHANGES)
        self.changed.emit()

    def set_changes(self, changes) -> None:
        for row in list(self.rows):
            self.remove(row)
        for change in changes:
            self.add(change.frame, change.prompt)

    @Slot()
    def _on_add_clicked(self) -> None:
        self.add().prompt_edit.setFocus()

    @Slot(object)
    def _on_remove_clicked(self, row: PromptChangeRow) -> None:
        self.remove(row)
