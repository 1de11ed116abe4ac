"""The left panel: everything that goes into a GenerationRequest.

request() builds and validates the request the widgets describe; set_request() shows one (from
the history, a dropped clip or the saved settings).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.studio.drop_zone import ImageDropZone
from app.studio.prompt_tools import camera_move_in, camera_moves_for, unknown_words, with_camera_move
from engine.errors import InvalidRequest
from engine.request import DEFAULT_MODEL, LIMITS, GenerationRequest

OTHER_MODEL = "__other__"
NO_CAMERA = "No camera move"
SEED_MAX = LIMITS["seed"][1]


def _spin(name: str, field: str, suffix: str = "", step: int = 1) -> QSpinBox:
    spin = QSpinBox()
    spin.setObjectName(name)
    spin.setRange(*LIMITS[field])
    spin.setSingleStep(step)
    spin.setSuffix(suffix)
    spin.setAccelerated(True)
    return spin


def _label(text: str, name: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    return label


def is_model_folder(path: str) -> bool:
    try:
        return json.loads((Path(path) / "config.json").read_text()).get("model_type") == "kinemo-dit"
    except (OSError, ValueError, AttributeError):
        return False


class RequestForm(QWidget):
    message = Signal(str, str)  # level ("info", "warning", "error"), text
    modelChanged = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        defaults = GenerationRequest(prompt="-")

        # prompt ---------------------------------------------------------------------------------
        self.prompt_edit = QPlainTextEdit()
        self.prompt_edit.setObjectName("promptEdit")
        self.prompt_edit.setPlaceholderText("Describe the clip, e.g. a red circle moves right on a black background")
        self.prompt_edit.setTabChangesFocus(True)
        self.prompt_edit.setFixedHeight(84)
        self.prompt_hint = _label("", "promptHint")
        self.prompt_hint.setWordWrap(True)
        self.prompt_hint.setProperty("level", "warning")
        self.prompt_hint.hide()
        self.negative_edit = QPlainTextEdit()
        self.negative_edit.setObjectName("negativePromptEdit")
        self.negative_edit.setPlaceholderText("Negative prompt: what to steer away from (optional)")
        self.negative_edit.setTabChangesFocus(True)
        self.negative_edit.setFixedHeight(48)

        # model and camera ------------------------------------------------------------------------
        self.model_combo = QComboBox()
        self.model_combo.setObjectName("modelCombo")
        self.model_combo.setToolTip("The model that renders the clip; add a local model folder with 'Other model folder…'")
        self._fill_models()
        self.camera_combo = QComboBox()
        self.camera_combo.setObjectName("cameraCombo")
        self.camera_combo.setToolTip("Inserts or replaces the 'the camera …' phrase in the prompt")

        # picture --------------------------------------------------------------------------------
        self.drop_zone = ImageDropZone()
        self.drop_zone.refused.connect(self._on_image_refused)

        # numbers --------------------------------------------------------------------------------
        self.frames_spin = _spin("framesSpin", "frames")
        self.fps_spin = _spin("fpsSpin", "fps", " fps")
        self.width_spin = _spin("widthSpin", "width", " px", 32)
        self.height_spin = _spin("heightSpin", "height", " px", 32)
        self.steps_spin = _spin("stepsSpin", "steps")
        self.guidance_spin = QDoubleSpinBox()
        self.guidance_spin.setObjectName("guidanceSpin")
        self.guidance_spin.setRange(*LIMITS["guidance"])
        self.guidance_spin.setSingleStep(0.5)
        self.guidance_spin.setDecimals(2)
        self.guidance_spin.setToolTip("How closely to follow the prompt (1 = no guidance)")
        self.seed_spin = QDoubleSpinBox()  # a QSpinBox stops at 2**31 - 1; seeds go to 2**32 - 1
        self.seed_spin.setObjectName("seedSpin")
        self.seed_spin.setDecimals(0)
        self.seed_spin.setRange(0, SEED_MAX)
        self.seed_random_button = QPushButton("Random")
        self.seed_random_button.setObjectName("seedRandomButton")
        self.seed_random_button.setToolTip("New random seed")
        self.seed_random_button.clicked.connect(self.randomise_seed)
        self.keep_seed_check = QCheckBox("Keep seed")
        self.keep_seed_check.setObjectName("keepSeedCheck")
        self.keep_seed_check.setToolTip("Keep this seed for the next generation (otherwise a new one is drawn after each)")
        self.width_spin.editingFinished.connect(self._make_sizes_even)
        self.height_spin.editingFinished.connect(self._make_sizes_even)

        self.set_request(defaults.with_changes(prompt=""))

        # layout ---------------------------------------------------------------------------------
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed_spin, 1)
        seed_row.addWidget(self.seed_random_button)
        seed_row.addWidget(self.keep_seed_check)
        size_row = QHBoxLayout()
        size_row.addWidget(self.width_spin)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_spin)
        timing_row = QHBoxLayout()
        timing_row.addWidget(self.frames_spin)
        timing_row.addWidget(QLabel("at"))
        timing_row.addWidget(self.fps_spin)
        sampling_row = QHBoxLayout()
        sampling_row.addWidget(self.steps_spin)
        sampling_row.addWidget(QLabel("guidance"))
        sampling_row.addWidget(self.guidance_spin)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Model", self.model_combo)
        form.addRow("Camera", self.camera_combo)
        form.addRow("Frames", timing_row)
        form.addRow("Size", size_row)
        form.addRow("Steps", sampling_row)
        form.addRow("Seed", seed_row)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(_label("Prompt", "sectionLabel"))
        layout.addWidget(self.prompt_edit)
        layout.addWidget(self.prompt_hint)
        layout.addWidget(self.negative_edit)
        layout.addWidget(_label("First frame", "sectionLabel"))
        layout.addWidget(self.drop_zone)
        layout.addWidget(_label("Settings", "sectionLabel"))
        layout.addLayout(form)
        layout.addStretch(1)

        self.model_combo.activated.connect(self._on_model_activated)
        self.model_combo.currentIndexChanged.connect(self._on_model_changed)
        self.camera_combo.activated.connect(self._on_camera_chosen)
        self.prompt_edit.textChanged.connect(self._on_prompt_changed)
        self._on_model_changed()

    # -- the request ----------------------------------------------------------------------------
    @property
    def model(self) -> str:
        return self.model_combo.currentData() or DEFAULT_MODEL

    def request(self) -> GenerationRequest:
        """The validated request the form describes; InvalidRequest if something is off."""
        if self.drop_zone.checking:
            raise InvalidRequest("the first-frame picture is still being checked; try again in a moment")
        return GenerationRequest(
            prompt=self.prompt_edit.toPlainText().strip(),
            negative_prompt=self.negative_edit.toPlainText().strip(),
            model=self.model,
            image=self.drop_zone.image_path,
            image_sha256=self.drop_zone.image_sha256,
            frames=self.frames_spin.value(),
            fps=self.fps_spin.value(),
            width=self.width_spin.value(),
            height=self.height_spin.value(),
            steps=self.steps_spin.value(),
            guidance=float(self.guidance_spin.value()),
            seed=int(self.seed_spin.value()),
            eta=self._eta,
        ).validate()

    def set_request(self, request: GenerationRequest | dict) -> None:
        """Show a request's settings (the picture is re-checked and may be refused)."""
        r = request if isinstance(request, GenerationRequest) else GenerationRequest(**{k: v for k, v in request.items() if k != "schema"})
        self.prompt_edit.setPlainText(r.prompt)
        self.negative_edit.setPlainText(r.negative_prompt)
        self.select_model(r.model)
        for spin, value in ((self.frames_spin, r.frames), (self.fps_spin, r.fps), (self.width_spin, r.width),
                            (self.height_spin, r.height), (self.steps_spin, r.steps)):
            spin.setValue(int(value))
        self.guidance_spin.setValue(float(r.guidance))
        self.seed_spin.setValue(int(r.seed))
        self._eta = float(r.eta)
        zone = self.drop_zone
        if r.image and (r.image != zone.image_path or zone.checking):
            zone.set_image(r.image)
        elif not r.image and (zone.image_path or zone.checking):
            zone.clear()

    @Slot()
    def _make_sizes_even(self) -> None:
        for spin in (self.width_spin, self.height_spin):
            spin.setValue(spin.value() - spin.value() % 2)  # video encoders need even sizes

    # -- seed -----------------------------------------------------------------------------------
    @property
    def keep_seed(self) -> bool:
        return self.keep_seed_check.isChecked()

    @Slot()
    def randomise_seed(self) -> None:
        self.seed_spin.setValue(secrets.randbelow(SEED_MAX + 1))

    # -- models ---------------------------------------------------------------------------------
    def _fill_models(self) -> None:
        from engine.backends import available_models

        for model in available_models():
            self.model_combo.addItem(model, model)
        self.model_combo.insertSeparator(self.model_combo.count())
        self.model_combo.addItem("Other model folder…", OTHER_MODEL)

    def model_folders(self) -> list[str]:
        """Model folders added by the user (persisted with the settings)."""
        from engine.backends import available_models

        known = set(available_models()) | {OTHER_MODEL, None}
        return [self.model_combo.itemData(i) for i in range(self.model_combo.count()) if self.model_combo.itemData(i) not in known]

    def add_model(self, model: str) -> int:
        """Add a model id or folder to the picker (once); return its index."""
        index = self.model_combo.findData(model)
        if index < 0:
            label = f"{Path(model).name} (folder)" if ("/" in model or "\\" in model) else model
            index = self.model_combo.count() - 2  # before the separator and "Other…"
            self.model_combo.insertItem(index, label, model)
            self.model_combo.setItemData(index, model, Qt.ItemDataRole.ToolTipRole)
        return index

    def select_model(self, model: str) -> None:
        self.model_combo.setCurrentIndex(self.add_model(model))

    @Slot(int)
    def _on_model_activated(self, index: int) -> None:
        if self.model_combo.itemData(index) != OTHER_MODEL:
            return
        previous = self._model
        self.select_model(previous)
        folder = QFileDialog.getExistingDirectory(self, "Choose a Kinemo model folder")
        if not folder:
            return
        if not is_model_folder(folder):
            self.message.emit("error", f"{folder} is not a Kinemo model folder (it needs a config.json of a kinemo-dit model)")
            return
        self.select_model(folder)

    @Slot()
    def _on_model_changed(self) -> None:
        model = self.model_combo.currentData()
        if model in (None, OTHER_MODEL):
            return
        self._model = model
        moves = camera_moves_for(model)
        self.camera_combo.clear()
        self.camera_combo.addItem(NO_CAMERA, None)
        for move in moves:
            self.camera_combo.addItem(f"The camera {move}", move)
        self.camera_combo.setEnabled(bool(moves))
        if not moves:
            self.camera_combo.setToolTip("This model takes no camera moves")
        self._on_prompt_changed()
        self.modelChanged.emit(model)

    # -- prompt helpers -------------------------------------------------------------------------
    @Slot(int)
    def _on_camera_chosen(self, index: int) -> None:
        move = self.camera_combo.itemData(index)
        text = with_camera_move(self.prompt_edit.toPlainText(), move)
        if text != self.prompt_edit.toPlainText().strip():
            self.prompt_edit.setPlainText(text)

    @Slot()
    def _on_prompt_changed(self) -> None:
        prompt = self.prompt_edit.toPlainText()
        index = self.camera_combo.findData(camera_move_in(prompt))
        self.camera_combo.setCurrentIndex(max(index, 0))
        unknown = unknown_words(prompt, getattr(self, "_model", DEFAULT_MODEL))
        if unknown:
            self.prompt_hint.setText("This model does not know: " + ", ".join(unknown))
        self.prompt_hint.setVisible(bool(unknown))

    @Slot(str)
    def _on_image_refused(self, reason: str) -> None:
        self.message.emit("error", f"Picture refused: {reason}")

    # -- persistence ----------------------------------------------------------------------------
    def state(self) -> dict:
        """What the settings file remembers (the request need not be valid)."""
        return {
            "request": {
                "prompt": self.prompt_edit.toPlainText(), "negative_prompt": self.negative_edit.toPlainText(),
                "model": self.model, "image": self.drop_zone.image_path, "frames": self.frames_spin.value(),
                "fps": self.fps_spin.value(), "width": self.width_spin.value(), "height": self.height_spin.value(),
                "steps": self.steps_spin.value(), "guidance": float(self.guidance_spin.value()),
                "seed": int(self.seed_spin.value()), "eta": self._eta,
            },
            "keep_seed": self.keep_seed,
            "model_folders": self.model_folders(),
        }

    def restore_state(self, state: dict) -> None:
        for folder in state.get("model_folders", []):
            if isinstance(folder, str) and Path(folder).is_dir():
                self.add_model(folder)
        self.keep_seed_check.setChecked(bool(state.get("keep_seed", False)))
        saved = state.get("request")
        if isinstance(saved, dict):
            try:
                fields = {k: v for k, v in saved.items() if k in GenerationRequest.__dataclass_fields__}
                merged = GenerationRequest(prompt="-").to_dict() | fields
                merged.pop("schema", None)
                self.set_request(GenerationRequest(**merged).with_changes(prompt=str(merged["prompt"])))
            except (TypeError, ValueError):
                pass  # a damaged settings file: keep the defaults
