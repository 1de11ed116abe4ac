"""The request form's words: the prompt, its hint about unknown words, the negative prompt and the camera moves.

The camera picker and the prompt follow each other: choosing a move rewrites the prompt's "the camera …"
phrase, and typing one selects it in the picker. The moves are those the bundled models make over a
first-frame picture (engine.kinemo.vocabulary.PICTURE_MOVES); cameraChosen tells the form which was chosen.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QComboBox, QLabel, QPlainTextEdit

from app.studio.prompt_tools import camera_move_in, camera_moves_for, unknown_words, with_camera_move
from engine.api.request import DEFAULT_MODEL
from engine.registry.model_options import ModelOptions

NO_CAMERA = "No camera move"
CAMERA_TIP = (
    "Moves the camera over the first-frame picture: inserts or replaces the 'the camera …' phrase in the prompt"
)
NEGATIVE_PLACEHOLDER = "Negative prompt: what to steer away from (optional)"


def takes_negative(options: ModelOptions | None) -> bool:
    """A model not yet checked may take a negative prompt; a checked one says."""
    return options is None or options.negative_prompt


class PromptPanel(QObject):
    """The prompt widgets and what keeps them consistent with each other and with the selected model."""

    cameraChosen = Signal(object)  # the move chosen in the picker ("pans left", ...), None for no move

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = DEFAULT_MODEL  # the model whose vocabulary and camera moves apply
        self.prompt_edit = QPlainTextEdit()
        self.prompt_edit.setObjectName("promptEdit")
        self.prompt_edit.setPlaceholderText("Describe the clip, e.g. a red circle moves right on a black background")
        self.prompt_edit.setTabChangesFocus(True)
        self.prompt_edit.setFixedHeight(84)
        self.prompt_hint = QLabel("")
        self.prompt_hint.setObjectName("promptHint")
        self.prompt_hint.setWordWrap(True)
        self.prompt_hint.setProperty("level", "warning")
        self.prompt_hint.hide()
        self.negative_edit = QPlainTextEdit()
        self.negative_edit.setObjectName("negativePromptEdit")
        self.negative_edit.setPlaceholderText(NEGATIVE_PLACEHOLDER)
        self.negative_edit.setTabChangesFocus(True)
        self.negative_edit.setFixedHeight(48)
        self.camera_combo = QComboBox()
        self.camera_combo.setObjectName("cameraCombo")
        self.camera_combo.setToolTip(CAMERA_TIP)

    def connect_signals(self) -> None:
        """Start following edits (once the form shows its first request)."""
        self.camera_combo.activated.connect(self._on_camera_chosen)
        self.prompt_edit.textChanged.connect(self.on_prompt_changed)

    @property
    def prompt(self) -> str:
        return self.prompt_edit.toPlainText().strip()

    def negative_prompt(self, options: ModelOptions | None) -> str:
        """The negative prompt the request carries: none for a model that takes none."""
        return self.negative_edit.toPlainText().strip() if takes_negative(options) else ""

    def set_texts(self, prompt: str, negative_prompt: str) -> None:
        self.prompt_edit.setPlainText(prompt)
        self.negative_edit.setPlainText(negative_prompt)

    def show_model(self, model: str) -> None:
        """Offer the model's camera moves and point out the words it does not know."""
        self.model = model
        moves = camera_moves_for(model)
        self.camera_combo.clear()
        self.camera_combo.addItem(NO_CAMERA, None)
        for move in moves:
            self.camera_combo.addItem(f"The camera {move}", move)
        self.camera_combo.setEnabled(bool(moves))
        self.camera_combo.setToolTip(CAMERA_TIP if moves else "This model takes no camera moves")
        self.on_prompt_changed()

    def show_inputs(self, options: ModelOptions | None) -> None:
        """Grey out the negative prompt for a model that takes none."""
        takes = takes_negative(options)
        self.negative_edit.setEnabled(takes)
        self.negative_edit.setPlaceholderText(
            NEGATIVE_PLACEHOLDER if takes else f"{options.family_label} takes no negative prompt"
        )

    @Slot(int)
    def _on_camera_chosen(self, index: int) -> None:
        move = self.camera_combo.itemData(index)
        text = with_camera_move(self.prompt_edit.toPlainText(), move)
        if text != self.prompt_edit.toPlainText().strip():
            self.prompt_edit.setPlainText(text)
        self.cameraChosen.emit(move)

    @Slot()
    def on_prompt_changed(self) -> None:
        prompt = self.prompt_edit.toPlainText()
        index = self.camera_combo.findData(camera_move_in(prompt))
        self.camera_combo.setCurrentIndex(max(index, 0))
        unknown = unknown_words(prompt, self.model)
        if unknown:
            self.prompt_hint.setText("This model does not know: " + ", ".join(unknown))
        self.prompt_hint.setVisible(bool(unknown))
