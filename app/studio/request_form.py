"""The left panel: everything that goes into a GenerationRequest.

request() builds and validates the request the widgets describe; set_request() shows one (from
the history, a dropped clip or the saved settings). Picking a model applies its options: its
defaults, its frame limits, which inputs it takes (engine.registry.model_options.ModelOptions); a request that
is restored keeps its own values.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.studio.downloads import DownloadPanel
from app.studio.drop_zone import OPTIONAL_CAPTION, ImageDropZone
from app.studio.model_picker import ModelPicker
from app.studio.prompt_tools import camera_move_in, camera_moves_for, unknown_words, with_camera_move
from app.studio.worker import FunctionWorker, start_worker, wait_for
from engine.api.errors import InvalidRequest
from engine.api.request import DEFAULT_MODEL, LIMITS, GenerationRequest
from engine.api.run_options import RunOptions
from engine.registry.model_options import ModelOptions

NO_CAMERA = "No camera move"
MEMORY_CHOICES = (
    ("auto", "Auto: the lightest that fits"),
    ("high", "High: all on the GPU (fastest)"),
    ("low", "Low: model offload + VAE tiling"),
    ("minimal", "Minimal: sequential offload (slowest)"),
)
MEMORY_PLAN_DELAY_MS = 300  # settle after a change before estimating again


def memory_plan_line(
    model: str, frames: int, width: int, height: int, steps: int, guidance: float, memory: str, image: bool
) -> str:
    """Worker thread: the memory plan's line (reads weight headers and free memory; no torch)."""
    from engine.planning.preview import preview_plan

    try:
        return preview_plan(model, frames, width, height, steps, guidance, memory, image)
    except Exception as exc:  # noqa: BLE001 - an estimate must never break the form
        from app.studio.messages import describe

        return f"memory: not estimated ({describe(exc)})"


SEED_MAX = LIMITS["seed"][1]
FRAMES_TIP = "Frames in the clip"


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
        self.model_picker = ModelPicker()
        # long labels ("LTX-Video · ltx-video-0.9.7-distilled · not downloaded (45 GB)") must not widen the panel
        self.model_picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_picker.setMinimumContentsLength(16)
        self.model_combo = self.model_picker  # the name the automation and older code use
        self.model_picker.message.connect(self.message)
        self.downloads = DownloadPanel()
        self.downloads.message.connect(self.message)
        self.downloads.downloaded.connect(self.model_picker.remember)
        self.memory_combo = QComboBox()
        self.memory_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.memory_combo.setMinimumContentsLength(12)
        self.memory_combo.setObjectName("memoryCombo")
        for value, text in MEMORY_CHOICES:
            self.memory_combo.addItem(text, value)
        self.memory_combo.setToolTip(
            "How a diffusers model trades speed for memory (kinemo generate --memory); the engine "
            "checks the free memory again when the run starts, and retries once with less if it runs out"
        )
        self.memory_label = _label("", "memoryPlanLabel")
        self.memory_label.setWordWrap(True)
        self.memory_label.setToolTip("Estimated peak memory of the run and how it will run (before it starts)")
        self._memory_timer = QTimer(self)
        self._memory_timer.setSingleShot(True)
        self._memory_timer.setInterval(MEMORY_PLAN_DELAY_MS)
        self._memory_timer.timeout.connect(self.update_memory_plan)
        self._memory_worker: FunctionWorker | None = None
        self._memory_asked: tuple | None = None  # what the latest estimate is for
        self.camera_combo = QComboBox()
        self.camera_combo.setObjectName("cameraCombo")
        self.camera_combo.setToolTip("Inserts or replaces the 'the camera …' phrase in the prompt")

        # picture --------------------------------------------------------------------------------
        self.drop_zone = ImageDropZone()
        self.drop_zone.refused.connect(self._on_image_refused)
        self.drop_zone.imageChanged.connect(self._on_image_changed)
        self.image_hint = _label("", "imageHint")
        self.image_hint.setWordWrap(True)
        self.image_hint.hide()

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
        self.fast_check = QCheckBox("Fast")
        self.fast_check.setObjectName("fastCheck")
        self._slow_model: str | None = None  # the model to go back to when Fast is switched off
        self.int8_check = QCheckBox("int8 weights")
        self.int8_check.setObjectName("int8Check")
        self.onnx_check = QCheckBox("ONNX temporal attention")
        self.onnx_check.setObjectName("onnxCheck")
        self.keep_seed_check = QCheckBox("Keep seed")
        self.keep_seed_check.setObjectName("keepSeedCheck")
        self.keep_seed_check.setToolTip(
            "Keep this seed for the next generation (otherwise a new one is drawn after each)"
        )
        self.width_spin.editingFinished.connect(self._snap_sizes)
        self.height_spin.editingFinished.connect(self._snap_sizes)
        self.frames_spin.editingFinished.connect(self._snap_frames)
        self._defaults_due: str | None = None  # the model whose defaults still wait for its options
        self._adjusting = False  # the form itself is changing the numbers
        for spin in self._number_spins():
            spin.valueChanged.connect(self._forget_defaults)

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
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_picker, 1)
        model_row.addWidget(self.fast_check)
        form.addRow("Model", model_row)
        form.addRow(self.downloads)
        speed_row = QHBoxLayout()
        speed_row.addWidget(self.int8_check)
        speed_row.addWidget(self.onnx_check)
        speed_row.addStretch(1)
        form.addRow("Engine", speed_row)
        form.addRow("Memory", self.memory_combo)
        form.addRow(self.memory_label)
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
        layout.addWidget(self.image_hint)
        layout.addWidget(self.drop_zone)
        layout.addWidget(_label("Settings", "sectionLabel"))
        layout.addLayout(form)
        layout.addStretch(1)

        self.model_picker.modelSelected.connect(self._on_model_selected)
        self.fast_check.toggled.connect(self._on_fast_toggled)
        self.int8_check.toggled.connect(self._update_engine_switches)
        self.onnx_check.toggled.connect(self._update_engine_switches)
        self.model_picker.optionsChecked.connect(self._on_options_checked)
        self.camera_combo.activated.connect(self._on_camera_chosen)
        self.prompt_edit.textChanged.connect(self._on_prompt_changed)
        for spin in self._number_spins():
            spin.valueChanged.connect(self._memory_timer.start)
        self.memory_combo.currentIndexChanged.connect(self._memory_timer.start)
        self.drop_zone.imageChanged.connect(self._memory_timer.start)
        self._on_model_selected(self.model)

    # -- fast (distilled) models ----------------------------------------------------------------
    def _update_fast(self, model: str) -> None:
        """Fast is on for a distilled model, available where one exists, greyed out elsewhere."""
        from engine.registry.resolve import fast_model

        try:
            fast = fast_model(model)
        except InvalidRequest:
            fast = None
        self.fast_check.blockSignals(True)
        self.fast_check.setChecked(fast == model)
        self.fast_check.blockSignals(False)
        self.fast_check.setEnabled(fast is not None and (fast == model or fast in self.model_picker.models()))
        self.fast_check.setToolTip(
            f"Use {fast}, distilled to run in a few steps"
            if fast and fast != model
            else "This is a distilled few-step model"
            if fast == model
            else "This model has no distilled version"
        )

    @Slot(bool)
    def _on_fast_toggled(self, on: bool) -> None:
        from engine.registry.resolve import fast_model

        if on:
            self._slow_model = self.model
            self.model_picker.select_model(fast_model(self.model))
        elif self._slow_model:
            self.model_picker.select_model(self._slow_model)

    # -- int8 weights and ONNX temporal attention -----------------------------------------------
    def _update_engine_switches(self, *_) -> None:
        """int8 works with every model; ONNX with Kinemo models and AnimateDiff (its motion modules). For a
        diffusers model the two do not combine yet, so one switched on greys the other out."""
        options = self.options
        family = options.family if options is not None else None
        kinemo = family == "kinemo"
        onnx_ok = family in ("kinemo", "animatediff") and (kinemo or not self.int8_check.isChecked())
        int8_ok = family is not None and (kinemo or not (onnx_ok and self.onnx_check.isChecked()))  # int8 wins a tie
        self.int8_check.setEnabled(int8_ok)
        self.int8_check.setToolTip(
            "Keep the denoiser's weights in int8 (made once, then cached)"
            if int8_ok
            else "Not with ONNX temporal attention for this model"
            if family
            else "Wait until the model is checked"
        )
        self.onnx_check.setEnabled(onnx_ok)
        self.onnx_check.setToolTip(
            "Run the temporal attention in onnxruntime (exported once, then cached)"
            if onnx_ok
            else "Not with int8 weights for this model"
            if family == "animatediff"
            else "Works with Kinemo models and AnimateDiff only"
        )

    @property
    def run_options(self) -> RunOptions:
        """How the run goes (memory, int8, ONNX): sent with the request, not part of it."""
        return RunOptions(
            memory=self.memory,
            quantize="int8" if self.int8_check.isEnabled() and self.int8_check.isChecked() else None,
            onnx_temporal=self.onnx_check.isEnabled() and self.onnx_check.isChecked(),
        )

    # -- the request ----------------------------------------------------------------------------
    @property
    def model(self) -> str:
        return self.model_picker.model

    @property
    def options(self) -> ModelOptions | None:
        """What is known about the selected model (None for a folder not yet checked)."""
        return self.model_picker.options(self.model)

    def request(self) -> GenerationRequest:
        """The validated request the form describes; InvalidRequest if something is off."""
        if self.drop_zone.checking:
            raise InvalidRequest("the first-frame picture is still being checked; try again in a moment")
        if self.downloads.downloading == self.model:
            raise InvalidRequest(f"{self.model} is still downloading; generate once it is on disk")
        options = self.options
        image, image_sha256 = self.drop_zone.image_path, self.drop_zone.image_sha256
        if options is not None and options.text_only:
            image = image_sha256 = None  # the drop zone shows that this model does not use it
        elif options is not None and options.requires_image and not image:
            raise InvalidRequest(f"{options.name} animates a picture: add a first-frame picture, then generate")
        takes_negative = options is None or options.negative_prompt
        return GenerationRequest(
            prompt=self.prompt_edit.toPlainText().strip(),
            negative_prompt=self.negative_edit.toPlainText().strip() if takes_negative else "",
            model=self.model,
            image=image,
            image_sha256=image_sha256,
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
        r = (
            request
            if isinstance(request, GenerationRequest)
            else GenerationRequest(**{k: v for k, v in request.items() if k != "schema"})
        )
        self.prompt_edit.setPlainText(r.prompt)
        self.negative_edit.setPlainText(r.negative_prompt)
        self.select_model(r.model)
        for spin, value in (
            (self.frames_spin, r.frames),
            (self.fps_spin, r.fps),
            (self.width_spin, r.width),
            (self.height_spin, r.height),
            (self.steps_spin, r.steps),
        ):
            spin.setValue(int(value))
        self.guidance_spin.setValue(float(r.guidance))
        self.seed_spin.setValue(int(r.seed))
        self._eta = float(r.eta)
        zone = self.drop_zone
        if r.image and (r.image != zone.image_path or zone.checking):
            zone.set_image(r.image)
        elif not r.image and (zone.image_path or zone.checking):
            zone.clear()
        self._defaults_due = None  # the request's own values win over the model's defaults

    def _number_spins(self) -> tuple:
        return (self.frames_spin, self.fps_spin, self.width_spin, self.height_spin, self.steps_spin, self.guidance_spin)

    @Slot()
    def _snap_sizes(self) -> None:
        options = self.options
        for spin in (self.width_spin, self.height_spin):
            value = spin.value()
            spin.setValue(options.valid_size(value) if options else value - value % 2)  # video encoders need even sizes

    @Slot()
    def _snap_frames(self) -> None:
        options = self.options
        if options is not None:
            self.frames_spin.setValue(options.valid_frames(self.frames_spin.value()))

    # -- seed -----------------------------------------------------------------------------------
    # -- memory -----------------------------------------------------------------------------------
    @property
    def memory(self) -> str:
        """The run's memory setting: auto, high, low or minimal (goes with the run, not the request)."""
        return self.memory_combo.currentData()

    def set_memory(self, memory: str) -> None:
        index = self.memory_combo.findData(memory)
        self.memory_combo.setCurrentIndex(max(index, 0))

    def _memory_question(self) -> tuple:
        return (
            self.model,
            self.frames_spin.value(),
            self.width_spin.value(),
            self.height_spin.value(),
            self.steps_spin.value(),
            float(self.guidance_spin.value()),
            self.memory,
            bool(self.drop_zone.image_path) and not (self.options is not None and self.options.text_only),
        )

    @Slot()
    def update_memory_plan(self) -> None:
        """Estimate the run's memory on a worker thread; the label shows it when it comes back."""
        question = self._memory_question()
        if question == self._memory_asked:
            return
        if self._memory_worker is not None:  # one at a time: asked again when this one returns
            self._memory_timer.start()
            return
        self._memory_asked = question
        worker = FunctionWorker(lambda q=question: (q, memory_plan_line(*q)))
        worker.returned.connect(self._on_memory_plan)
        worker.finished.connect(self._on_memory_worker_done)
        self._memory_worker = worker
        start_worker(worker)

    @Slot(object)
    def _on_memory_plan(self, result) -> None:
        question, line = result
        if question == self._memory_question():
            self.memory_label.setText(line[0].upper() + line[1:] if line else "")

    @Slot()
    def _on_memory_worker_done(self) -> None:
        self._memory_worker = None
        if self._memory_question() != self._memory_asked:
            self._memory_timer.start()

    @property
    def keep_seed(self) -> bool:
        return self.keep_seed_check.isChecked()

    @Slot()
    def randomise_seed(self) -> None:
        self.seed_spin.setValue(secrets.randbelow(SEED_MAX + 1))

    # -- models ---------------------------------------------------------------------------------
    def model_folders(self) -> list[str]:
        """Model folders added by the user (persisted with the settings)."""
        return self.model_picker.model_folders()

    def add_model(self, model: str) -> int:
        """Add a model id or folder to the picker (once); return its index."""
        return self.model_picker.add_model(model)

    def select_model(self, model: str) -> None:
        self.model_picker.select_model(model)

    def refresh_models(self) -> None:
        """Check on a worker thread which models are on disk (after the window shows)."""
        self.model_picker.refresh()

    @Slot(str)
    def _on_model_selected(self, model: str) -> None:
        self._model = model
        self._update_fast(model)
        self._update_engine_switches()
        self._defaults_due = model
        self._apply_options(self.model_picker.options(model))
        moves = camera_moves_for(model)
        self.camera_combo.clear()
        self.camera_combo.addItem(NO_CAMERA, None)
        for move in moves:
            self.camera_combo.addItem(f"The camera {move}", move)
        self.camera_combo.setEnabled(bool(moves))
        self.camera_combo.setToolTip(
            "Inserts or replaces the 'the camera …' phrase in the prompt"
            if moves
            else "This model takes no camera moves"
        )
        self._on_prompt_changed()
        self._memory_timer.start()
        self.modelChanged.emit(model)

    @Slot(object)
    def _on_options_checked(self, options: ModelOptions) -> None:
        if options.model == self.model:
            self._apply_options(options)
            self._update_engine_switches()
            self._memory_asked = None  # on disk now, perhaps: estimate again
            self._memory_timer.start()

    def _apply_options(self, options: ModelOptions | None) -> None:
        """Show what the model takes; its defaults too, unless a value was set since it was picked."""
        self._adjusting = True
        try:
            self._show_limits(options)
            self._show_inputs(options)
            self.downloads.show_model(options)
            if options is not None and options.defaults and self._defaults_due == options.model:
                self._apply_defaults(options.defaults)
        finally:
            self._adjusting = False

    def _show_limits(self, options: ModelOptions | None) -> None:
        self.frames_spin.setMaximum(options.max_frames if options else LIMITS["frames"][1])
        self.frames_spin.setSingleStep(options.frame_step if options else 1)
        self.frames_spin.setToolTip(frames_tip(options))
        for spin in (self.width_spin, self.height_spin):
            spin.setToolTip(size_tip(options))

    def _show_inputs(self, options: ModelOptions | None) -> None:
        takes_negative = options is None or options.negative_prompt
        self.negative_edit.setEnabled(takes_negative)
        self.negative_edit.setPlaceholderText(
            "Negative prompt: what to steer away from (optional)"
            if takes_negative
            else f"{options.family_label} takes no negative prompt"
        )
        self.drop_zone.setEnabled(options is None or not options.text_only)
        if options is not None and options.requires_image:
            self._show_image_hint("warning", f"{options.name} animates a picture: add one below (required).")
            self.drop_zone.set_empty_caption("Image-to-video: the picture becomes the first frame (required).")
        elif options is not None and options.text_only:
            self._show_image_hint("info", f"{options.name} is text-to-video only: a picture is not used.")
            self.drop_zone.set_empty_caption("Not used by this model.")
        else:
            self.image_hint.hide()
            self.drop_zone.set_empty_caption(OPTIONAL_CAPTION)

    def _show_image_hint(self, level: str, text: str) -> None:
        self.image_hint.setText(text)
        self.image_hint.setProperty("level", level)
        self.image_hint.style().unpolish(self.image_hint)
        self.image_hint.style().polish(self.image_hint)
        self.image_hint.show()

    def _apply_defaults(self, defaults: dict) -> None:
        self._defaults_due = None
        for spin, key in (
            (self.frames_spin, "frames"),
            (self.fps_spin, "fps"),
            (self.width_spin, "width"),
            (self.height_spin, "height"),
            (self.steps_spin, "steps"),
        ):
            if key in defaults:
                spin.setValue(int(defaults[key]))
        if "guidance" in defaults:
            self.guidance_spin.setValue(float(defaults["guidance"]))

    @Slot()
    def _forget_defaults(self) -> None:
        if not self._adjusting:
            self._defaults_due = None  # a value set by hand (or by a restore) wins over defaults that arrive later

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

    @Slot(str)
    def _on_image_changed(self, path: str) -> None:
        options = self.options
        if path and options is not None and options.text_only:
            self.message.emit(
                "warning",
                f"{options.name} is text-to-video only: the picture is kept but not used; "
                "pick an image-to-video model to animate it",
            )

    # -- persistence ----------------------------------------------------------------------------
    def state(self) -> dict:
        """What the settings file remembers (the request need not be valid)."""
        return {
            "request": {
                "prompt": self.prompt_edit.toPlainText(),
                "negative_prompt": self.negative_edit.toPlainText(),
                "model": self.model,
                "image": self.drop_zone.image_path,
                "frames": self.frames_spin.value(),
                "fps": self.fps_spin.value(),
                "width": self.width_spin.value(),
                "height": self.height_spin.value(),
                "steps": self.steps_spin.value(),
                "guidance": float(self.guidance_spin.value()),
                "seed": int(self.seed_spin.value()),
                "eta": self._eta,
            },
            "keep_seed": self.keep_seed,
            "memory": self.memory,
            "int8": self.int8_check.isChecked(),
            "onnx_temporal": self.onnx_check.isChecked(),
            "model_folders": self.model_folders(),
        }

    def shutdown(self) -> None:
        """Stop a download and wait for the model checks (closing the window)."""
        self.downloads.shutdown()
        self.model_picker.shutdown()
        self._memory_timer.stop()
        wait_for(self._memory_worker, 10000)

    def restore_state(self, state: dict) -> None:
        for folder in state.get("model_folders", []):
            if isinstance(folder, str) and Path(folder).is_dir():
                self.add_model(folder)
        self.keep_seed_check.setChecked(bool(state.get("keep_seed", False)))
        self.set_memory(state.get("memory", "auto"))
        self.int8_check.setChecked(state.get("int8") is True)
        self.onnx_check.setChecked(state.get("onnx_temporal") is True)
        saved = state.get("request")
        if isinstance(saved, dict):
            try:
                fields = {k: v for k, v in saved.items() if k in GenerationRequest.__dataclass_fields__}
                merged = GenerationRequest(prompt="-").to_dict() | fields
                merged.pop("schema", None)
                self.set_request(GenerationRequest(**merged).with_changes(prompt=str(merged["prompt"])))
            except (TypeError, ValueError):
                pass  # a damaged settings file: keep the defaults
