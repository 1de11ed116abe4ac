"""The request form's numbers: frames and fps, size, steps and guidance, the seed.

The selected model sets their limits and snapping (engine.registry.model_options.ModelOptions) and its
defaults; a value set by hand, or by a restored request, wins over defaults that arrive later. A first-frame
picture sets the size to its aspect (take_picture_size) unless the size was set by hand since the last picture.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton, QSpinBox

from engine.api.request import LIMITS, GenerationRequest
from engine.registry.model_options import ModelOptions

SEED_MAX = LIMITS["seed"][1]
FRAMES_TIP = "Frames in the clip"
INT_FIELDS = ("frames", "fps", "width", "height", "steps")


def _spin(name: str, field: str, suffix: str = "", step: int = 1) -> QSpinBox:
    spin = QSpinBox()
    spin.setObjectName(name)
    spin.setRange(*LIMITS[field])
    spin.setSingleStep(step)
    spin.setSuffix(suffix)
    spin.setAccelerated(True)
    return spin


def frames_tip(options: ModelOptions | None) -> str:
    """The frames spin's tooltip: which counts the model makes."""
    if options is None:
        return FRAMES_TIP
    if options.frame_step > 1:
        step = options.frame_step
        return f"{FRAMES_TIP}: {options.family_label} makes {step}k+1 frames (1, {step + 1}, {2 * step + 1}, …)"
    return f"{FRAMES_TIP} (at most {options.max_frames} for this model)"


def size_tip(options: ModelOptions | None) -> str:
    if options is None or options.size_multiple <= 2:
        return "Even sizes only (video encoders need them)"
    return f"{options.family_label} needs multiples of {options.size_multiple} px"


def _row(*widgets) -> QHBoxLayout:
    row = QHBoxLayout()
    for widget, stretch in widgets:
        row.addWidget(QLabel(widget) if isinstance(widget, str) else widget, stretch)
    return row


class NumbersPanel(QObject):
    """The number widgets; options() returns what is known about the selected model (None if unchecked)."""

    def __init__(self, options: Callable[[], ModelOptions | None], parent=None):
        super().__init__(parent)
        self._options = options
        self.defaults_due: str | None = None  # the model whose defaults still wait for its options
        self.adjusting = False  # the form itself is changing the numbers
        self.size_by_hand = False  # width or height set (by hand or a restore) since the last picture
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
        self._build_seed()
        self.width_spin.editingFinished.connect(self._snap_sizes)
        self.height_spin.editingFinished.connect(self._snap_sizes)
        self.frames_spin.editingFinished.connect(self._snap_frames)
        for spin in self.spins():
            spin.valueChanged.connect(self._forget_defaults)
        for spin in (self.width_spin, self.height_spin):
            spin.valueChanged.connect(self._note_size)

    def _build_seed(self) -> None:
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
        self.keep_seed_check.setToolTip(
            "Keep this seed for the next generation (otherwise a new one is drawn after each)"
        )

    def spins(self) -> tuple:
        """The numbers a model's defaults set (the seed is not one of them)."""
        return (self.frames_spin, self.fps_spin, self.width_spin, self.height_spin, self.steps_spin, self.guidance_spin)

    def _int_spins(self) -> tuple:
        return tuple(zip(self.spins()[:5], INT_FIELDS, strict=True))

    # -- layout rows (the form lays them out) ----------------------------------------------------
    def frames_row(self) -> QHBoxLayout:
        return _row((self.frames_spin, 0), ("at", 0), (self.fps_spin, 0))

    def size_row(self) -> QHBoxLayout:
        return _row((self.width_spin, 0), ("×", 0), (self.height_spin, 0))

    def steps_row(self) -> QHBoxLayout:
        return _row((self.steps_spin, 0), ("guidance", 0), (self.guidance_spin, 0))

    def seed_row(self) -> QHBoxLayout:
        return _row((self.seed_spin, 1), (self.seed_random_button, 0), (self.keep_seed_check, 0))

    # -- values ----------------------------------------------------------------------------------
    def values(self) -> dict:
        """frames, fps, width, height, steps, guidance and seed as the request takes them."""
        found = {field: spin.value() for spin, field in self._int_spins()}
        return found | {"guidance": float(self.guidance_spin.value()), "seed": int(self.seed_spin.value())}

    def set_values(self, request: GenerationRequest) -> None:
        for spin, field in self._int_spins():
            spin.setValue(int(getattr(request, field)))
        self.guidance_spin.setValue(float(request.guidance))
        self.seed_spin.setValue(int(request.seed))

    @property
    def keep_seed(self) -> bool:
        return self.keep_seed_check.isChecked()

    @Slot()
    def randomise_seed(self) -> None:
        self.seed_spin.setValue(secrets.randbelow(SEED_MAX + 1))

    # -- the model's limits and defaults ----------------------------------------------------------
    def show_limits(self, options: ModelOptions | None) -> None:
        self.frames_spin.setMaximum(options.max_frames if options else LIMITS["frames"][1])
        self.frames_spin.setSingleStep(options.frame_step if options else 1)
        self.frames_spin.setToolTip(frames_tip(options))
        for spin in (self.width_spin, self.height_spin):
            spin.setToolTip(size_tip(options))

    def apply_defaults(self, defaults: dict) -> None:
        self.defaults_due = None
        for spin, key in self._int_spins():
            if key in defaults:
                spin.setValue(int(defaults[key]))
        if "guidance" in defaults:
            self.guidance_spin.setValue(float(defaults["guidance"]))

    @Slot()
    def _forget_defaults(self) -> None:
        if not self.adjusting:
            self.defaults_due = None  # a value set by hand (or by a restore) wins over defaults that arrive later

    @Slot()
    def _note_size(self) -> None:
        if not self.adjusting:
            self.size_by_hand = True

    def take_picture_size(self, width: int, height: int) -> bool:
        """A new picture of width x height: take its aspect (engine.util.images.size_for_picture, snapped to
        the model's sizes) unless the size was set since the last picture. True if the size was taken."""
        from engine.util.images import size_for_picture  # PIL and numpy: loaded with the first picture

        by_hand, self.size_by_hand = self.size_by_hand, False
        if by_hand:
            return False
        options = self._options()
        self.adjusting = True
        try:
            for spin, pixels in zip((self.width_spin, self.height_spin), size_for_picture(width, height), strict=True):
                spin.setValue(options.valid_size(pixels) if options else pixels)
        finally:
            self.adjusting = False
        return True

    @Slot()
    def _snap_sizes(self) -> None:
        options = self._options()
        for spin in (self.width_spin, self.height_spin):
            value = spin.value()
            spin.setValue(options.valid_size(value) if options else value - value % 2)  # video encoders need even sizes

    @Slot()
    def _snap_frames(self) -> None:
        options = self._options()
        if options is not None:
            self.frames_spin.setValue(options.valid_frames(self.frames_spin.value()))
