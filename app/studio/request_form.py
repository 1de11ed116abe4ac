"""The left panel: everything that goes into a GenerationRequest, laid out from its sections.

request() builds and validates the request the widgets describe; set_request() shows one (from
the history, a dropped clip or the saved settings). Picking a model applies its options: its
defaults, its frame limits, which inputs it takes (engine.registry.model_options.ModelOptions); a request that
is restored keeps its own values. The sections live in their own modules: prompt_panel (prompt, negative
prompt, camera moves), numbers_panel (frames, size, steps, seed), engine_switches (Fast, int8, ONNX, memory)
and memory_plan (the estimate under the picker); the form keeps their widgets under its own names too.
A first-frame picture sets the size to its aspect unless the size was set since the last picture, and the drop
zone shows it framed at the chosen size; a camera move chosen without a picture is pointed out.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.studio.creative_controls import CreativeControls, refuse_while_checking
from app.studio.downloads import DownloadPanel
from app.studio.drop_zone import OPTIONAL_CAPTION, ImageDropZone
from app.studio.engine_switches import EngineSwitches
from app.studio.fast_lora import FastLoraSwitch
from app.studio.memory_plan import MemoryPlan
from app.studio.model_picker import ModelPicker
from app.studio.numbers_panel import NumbersPanel
from app.studio.prompt_panel import PromptPanel
from engine.api.errors import InvalidRequest
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.registry.model_options import ModelOptions

CAMERA_NEEDS_PICTURE = (
    "A camera move needs a picture to move over: add one under First frame "
    "(without one, the model moves over a procedural picture of its own)."
)


def _section(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("sectionLabel")
    return label


class RequestForm(QWidget):
    message = Signal(str, str)  # level ("info", "warning", "error"), text
    modelChanged = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._eta = 0.0
        self.prompts = PromptPanel(self)
        self._build_model_row()
        self.switches = EngineSwitches(self.model_picker, self)
        self.memory_plan = MemoryPlan(self._memory_question, self)
        self._build_picture()
        self.numbers = NumbersPanel(lambda: self.options, self)
        defaults = lambda: self.options.defaults if self.options is not None else {}  # noqa: E731
        self.fast_lora = FastLoraSwitch(self.switches, self.loras, self.numbers, defaults, self)
        self._name_widgets()
        self.set_request(GenerationRequest(prompt="-").with_changes(prompt=""))
        self._lay_out()
        self._connect()
        self._on_model_selected(self.model)

    # -- building ---------------------------------------------------------------------------------
    def _build_model_row(self) -> None:
        self.model_picker = ModelPicker()
        # long labels ("LTX-Video · ltx-video-0.9.7-distilled · not downloaded (45 GB)") must not widen the panel
        self.model_picker.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_picker.setMinimumContentsLength(16)
        self.model_combo = self.model_picker  # the name the automation uses
        self.model_picker.message.connect(self.message)
        self.downloads = DownloadPanel()
        self.downloads.message.connect(self.message)
        self.downloads.downloaded.connect(self.model_picker.remember)

    def _build_picture(self) -> None:
        self.drop_zone = ImageDropZone()
        self.drop_zone.refused.connect(self._on_image_refused)
        self.drop_zone.imageChanged.connect(self._on_image_changed)
        self.image_hint = QLabel("")
        self.image_hint.setObjectName("imageHint")
        self.image_hint.setWordWrap(True)
        self.image_hint.hide()
        self.controls = CreativeControls(self.drop_zone, lambda: self.frames_spin.value(), self)
        self.loras = self.controls.loras

    def _name_widgets(self) -> None:
        """The sections' widgets under the form's names (automation, tests and the window use them)."""
        p, n, s = self.prompts, self.numbers, self.switches
        self.prompt_edit, self.prompt_hint, self.negative_edit = p.prompt_edit, p.prompt_hint, p.negative_edit
        self.camera_combo = p.camera_combo
        self.frames_spin, self.fps_spin, self.steps_spin = n.frames_spin, n.fps_spin, n.steps_spin
        self.width_spin, self.height_spin, self.guidance_spin = n.width_spin, n.height_spin, n.guidance_spin
        self.seed_spin, self.seed_random_button, self.keep_seed_check = (
            n.seed_spin,
            n.seed_random_button,
            n.keep_seed_check,
        )
        self.fast_check, self.int8_check, self.onnx_check = s.fast_check, s.int8_check, s.onnx_check
        self.memory_combo, self.memory_label = s.memory_combo, self.memory_plan.label

    def _lay_out(self) -> None:
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_picker, 1)
        model_row.addWidget(self.fast_check)
        form.addRow("Model", model_row)
        form.addRow(self.downloads)
        form.addRow("Engine", self.switches.speed_row())
        form.addRow("Memory", self.memory_combo)
        form.addRow(self.memory_label)
        form.addRow("Camera", self.camera_combo)
        form.addRow("Frames", self.numbers.frames_row())
        form.addRow("Size", self.numbers.size_row())
        form.addRow("Steps", self.numbers.steps_row())
        form.addRow("Seed", self.numbers.seed_row())

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(_section("Prompt"))
        layout.addWidget(self.prompt_edit)
        layout.addWidget(self.prompt_hint)
        layout.addWidget(self.negative_edit)
        layout.addWidget(self.controls.prompt_changes)
        layout.addWidget(_section("First frame"))
        layout.addWidget(self.image_hint)
        layout.addWidget(self.drop_zone)
        layout.addWidget(self.controls.last_frame_box)
        layout.addWidget(self.controls.clip_box)
        layout.addWidget(_section("Settings"))
        layout.addLayout(form)
        layout.addWidget(self.controls.lora_box)
        layout.addStretch(1)

    def _connect(self) -> None:
        self.model_picker.modelSelected.connect(self._on_model_selected)
        self.switches.connect_signals()
        self.model_picker.optionsChecked.connect(self._on_options_checked)
        self.prompts.connect_signals()
        for spin in self.numbers.spins():
            spin.valueChanged.connect(self.memory_plan.schedule)
        for spin in (self.width_spin, self.height_spin):
            spin.valueChanged.connect(self._show_framing)
        self._show_framing()
        self.prompts.cameraChosen.connect(self._on_camera_chosen)
        self.memory_combo.currentIndexChanged.connect(self.memory_plan.schedule)
        self.drop_zone.imageChanged.connect(self.memory_plan.schedule)
        self.controls.message.connect(self.message)
        self.controls.video.videoChanged.connect(self._on_video_changed)
        for switch in (self.switches.int8_check, self.switches.onnx_check):  # they change what the run imports
            switch.toggled.connect(self.memory_plan.schedule)

    # -- the request ----------------------------------------------------------------------------
    @property
    def model(self) -> str:
        return self.model_picker.model

    @property
    def options(self) -> ModelOptions | None:
        """What is known about the selected model (None for a folder not yet checked)."""
        return self.model_picker.options(self.model)

    @property
    def run_options(self) -> RunOptions:
        """How the run goes (memory, int8, ONNX): sent with the request, not part of it."""
        return self.switches.run_options

    def request(self) -> GenerationRequest:
        """The validated request the form describes; InvalidRequest if something is off."""
        if self.drop_zone.checking:
            raise InvalidRequest("the first-frame picture is still being checked; try again in a moment")
        refuse_while_checking(self.controls)
        if self.downloads.downloading == self.model:
            raise InvalidRequest(f"{self.model} is still downloading; generate once it is on disk")
        options = self.options
        image, image_sha256 = self.drop_zone.image_path, self.drop_zone.image_sha256
        if options is not None and options.text_only:
            image = image_sha256 = None  # the drop zone shows that this model does not use it
        elif options is not None and options.requires_image and not image:
            raise InvalidRequest(f"{options.name} animates a picture: add a first-frame picture, then generate")
        return GenerationRequest(
            prompt=self.prompts.prompt,
            negative_prompt=self.prompts.negative_prompt(options),
            model=self.model,
            image=image,
            image_sha256=image_sha256,
            **self.numbers.values(),
            eta=self._eta,
            **self.controls.request_fields(image_used=bool(image)),
        ).validate()

    def set_request(self, request: GenerationRequest | dict) -> None:
        """Show a request's settings (the picture is re-checked and may be refused)."""
        r = (
            request
            if isinstance(request, GenerationRequest)
            else GenerationRequest(**{k: v for k, v in request.items() if k != "schema"})
        )
        self.prompts.set_texts(r.prompt, r.negative_prompt)
        self.select_model(r.model)
        self.numbers.set_values(r)
        self._eta = float(r.eta)
        zone = self.drop_zone
        if r.image and (r.image != zone.image_path or zone.checking):
            zone.set_image(r.image)
        elif not r.image and (zone.image_path or zone.checking):
            zone.clear()
        self.controls.set_request(r)
        self.numbers.defaults_due = None  # the request's own values win over the model's defaults
        self.numbers.size_by_hand = bool(r.image)  # its size goes with its picture; a later picture sets its own

    # -- seed and memory --------------------------------------------------------------------------
    @property
    def keep_seed(self) -> bool:
        return self.numbers.keep_seed

    @Slot()
    def randomise_seed(self) -> None:
        self.numbers.randomise_seed()

    @property
    def memory(self) -> str:
        """The run's memory setting: auto, high, low or minimal (goes with the run, not the request)."""
        return self.switches.memory

    def set_memory(self, memory: str) -> None:
        self.switches.set_memory(memory)

    def _memory_question(self) -> tuple:
        numbers = self.numbers.values()
        options = self.options
        return (
            self.model,
            numbers["frames"],
            numbers["width"],
            numbers["height"],
            numbers["steps"],
            numbers["guidance"],
            self.memory,
            bool(self.drop_zone.image_path) and not (options is not None and options.text_only),
            self.run_options.quantize is not None,
            self.run_options.uses_onnx,
        )

    @Slot()
    def update_memory_plan(self) -> None:
        """Estimate the run's memory on a worker thread; the label shows it when it comes back."""
        self.memory_plan.update()

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
        self.switches.update_fast(model)
        self.switches.update_switches()
        self.numbers.defaults_due = model
        self._apply_options(self.model_picker.options(model))
        self.prompts.show_model(model)
        self.memory_plan.schedule()
        self.modelChanged.emit(model)

    @Slot(object)
    def _on_options_checked(self, options: ModelOptions) -> None:
        if options.model == self.model:
            self._apply_options(options)
            self.switches.update_switches()
            self.memory_plan.forget()  # on disk now, perhaps: estimate again
            self.memory_plan.schedule()

    def _apply_options(self, options: ModelOptions | None) -> None:
        """Show what the model takes; its defaults too, unless a value was set since it was picked."""
        self.numbers.adjusting = True
        try:
            self.numbers.show_limits(options)
            self.prompts.show_inputs(options)
            self._show_picture_input(options)
            self.downloads.show_model(options)
            if options is not None and options.defaults and self.numbers.defaults_due == options.model:
                self.numbers.apply_defaults(options.defaults)
        finally:
            self.numbers.adjusting = False

    def _show_picture_input(self, options: ModelOptions | None) -> None:
        self.drop_zone.setEnabled(options is None or not options.text_only)
        self.controls.last_zone.setEnabled(self.drop_zone.isEnabled())
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

    # -- the picture ----------------------------------------------------------------------------
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
        elif path and self.drop_zone.picture_size is not None:
            self.numbers.take_picture_size(*self.drop_zone.picture_size)

    @Slot(str)
    def _on_video_changed(self, path: str) -> None:
        if path and self.controls.video.video_size is not None:  # a re-rendered clip keeps its aspect
            self.numbers.take_picture_size(*self.controls.video.video_size)

    @Slot()
    def _show_framing(self) -> None:
        self.drop_zone.set_frame_size(self.width_spin.value(), self.height_spin.value())

    @Slot(object)
    def _on_camera_chosen(self, move: str | None) -> None:
        if move is not None and not self.drop_zone.image_path and not self.drop_zone.checking:
            self.message.emit("info", CAMERA_NEEDS_PICTURE)

    # -- persistence ----------------------------------------------------------------------------
    def state(self) -> dict:
        """What the settings file remembers (the request need not be valid)."""
        request = {
            "prompt": self.prompt_edit.toPlainText(),
            "negative_prompt": self.negative_edit.toPlainText(),
            "model": self.model,
            "image": self.drop_zone.image_path,
            **self.numbers.values(),
            "eta": self._eta,
        } | self.controls.state()
        state = {"request": request, "keep_seed": self.keep_seed, "lora_rows": self.loras.rows_state()}
        return state | self.switches.state() | {"model_folders": self.model_folders()}

    def shutdown(self) -> None:
        """Stop a download and wait for the model checks (closing the window)."""
        self.downloads.shutdown()
        self.model_picker.shutdown()
        self.memory_plan.shutdown()

    def restore_state(self, state: dict) -> None:
        for folder in state.get("model_folders", []):
            if isinstance(folder, str) and Path(folder).is_dir():
                self.add_model(folder)
        self.keep_seed_check.setChecked(bool(state.get("keep_seed", False)))
        self.switches.restore_state(state)
        saved = state.get("request")
        if isinstance(saved, dict):
            try:
                fields = {k: v for k, v in saved.items() if k in GenerationRequest.__dataclass_fields__}
                merged = GenerationRequest(prompt="-").to_dict() | fields
                merged.pop("schema", None)
                self.set_request(GenerationRequest(**merged).with_changes(prompt=str(merged["prompt"])))
            except (TypeError, ValueError):
                pass  # a damaged settings file: keep the defaults
        self.controls.restore_rows(state.get("lora_rows"))
