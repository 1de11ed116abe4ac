"""Text from files (prompts, paths, records, error messages that quote them) shown exactly as written.

QLabel, QMessageBox and tooltips render anything that looks like HTML as rich text, so a prompt such as
"<img src=…>" would load a picture or show a link; every label showing such text is set to plain text and
every tooltip carrying it is escaped.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import Qt as GuiQt
from PySide6.QtWidgets import QLabel, QWidget


def plain_tooltip(text: str) -> str:
    """A tooltip that shows text as it is (escaped, line breaks kept)."""
    return GuiQt.convertFromPlainText(text, Qt.WhiteSpaceMode.WhiteSpaceNormal)


def plain_labels(root: QWidget) -> None:
    """Every QLabel under root shows its text as plain text."""
    for label in root.findChildren(QLabel):
        label.setTextFormat(Qt.TextFormat.PlainText)
