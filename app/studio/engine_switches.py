"""The request form's engine switches: Fast (the distilled model), int8 weights, ONNX, the step
cache, memory.

They shape how the run goes (engine.api.run_options.RunOptions), not what it makes; Fast is the exception,
it swaps the selected model for its distilled version and back.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout

from engine.api.errors import InvalidRequest
from engine.api.run_options import CACHE_CHOICES, RunOptions

MEMORY_CHOICES = (
    ("auto", "Auto: the lightest that fits"),
    ("high", "High: all on the GPU (fastest)"),
    ("low", "Low: model offload + VAE tiling"),
    ("minimal", "Minimal: sequential offload (slowest)"),
)
CACHE_LABELS = {  # kinemo generate --cache (engine.api.run_options.CACHE_CHOICES)
    "off": "No step cache",
    "auto": "Step cache: auto",
    "first-block": "First block cache",
    "mag": "MagCache",
    "taylorseer": "TaylorSeer",
    "faster": "FasterCache",
    "pab": "Pyramid attention broadcast",
}


def fast_lora_of(model: str):
    """The catalog's distillation LoRA that makes model a few-step one (engine.registry.catalog.FastLora), or None."""
    from engine.registry.catalog import find_entry

    entry = find_entry(model)
    return entry.fast_lora if entry is not None else None


class EngineSwitches(QObject):
    """The switches and their rules; picker is the form's ModelPicker (the selected model and its options)."""

    fastLoraToggled = Signal(object, bool)  # (FastLora, on): Fast on a model whose fast version is a LoRA

    def __init__(self, picker, parent=None):
        super().__init__(parent)
        self._picker = picker
        self.has_lora = lambda source: False  # whether the form's LoRA list holds source (set by the form)
        self._slow_model: str | None = None  # the model to go back to when Fast is switched off
        self.fast_check = QCheckBox("Fast")
        self.fast_check.setObjectName("fastCheck")
        self.int8_check = QCheckBox("int8 weights")
        self.int8_check.setObjectName("int8Check")
        self.onnx_check = QCheckBox("ONNX")
        self.onnx_check.setObjectName("onnxCheck")
        self.cache_combo = QComboBox()
        self.cache_combo.setObjectName("cacheCombo")
        self.cache_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.cache_combo.setMinimumContentsLength(10)
        for value in CACHE_CHOICES:
            self.cache_combo.addItem(CACHE_LABELS[value], value)
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

    def connect_signals(self) -> None:
        self.fast_check.toggled.connect(self._on_fast_toggled)
        self.int8_check.toggled.connect(self.update_switches)
        self.onnx_check.toggled.connect(self.update_switches)

    def speed_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(self.int8_check)
        row.addWidget(self.onnx_check)
        row.addWidget(self.cache_combo)
        row.addStretch(1)
        return row

    # -- fast (distilled) models ----------------------------------------------------------------
    def update_fast(self, model: str) -> None:
        """Fast is on for a distilled model, available where one exists, greyed out elsewhere."""
        from engine.registry.resolve import fast_model

        lora = fast_lora_of(model)
        if lora is not None:  # Fast adds the LoRA to the list, and the list says whether it is on
            self.fast_check.blockSignals(True)
            self.fast_check.setChecked(self.has_lora(lora.source))
            self.fast_check.blockSignals(False)
            self.fast_check.setEnabled(True)
            self.fast_check.setToolTip(
                f"Add the distillation LoRA {lora.weight().name}: {lora.steps} steps, guidance {lora.guidance:g}"
            )
            return
        try:
            fast = fast_model(model)
        except InvalidRequest:
            fast = None
        self.fast_check.blockSignals(True)
        self.fast_check.setChecked(fast == model)
        self.fast_check.blockSignals(False)
        self.fast_check.setEnabled(fast is not None and (fast == model or fast in self._picker.models()))
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

        lora = fast_lora_of(self._picker.model)
        if lora is not None:
            self.fastLoraToggled.emit(lora, on)
            return
        if on:
            self._slow_model = self._picker.model
            self._picker.select_model(fast_model(self._picker.model))
        elif self._slow_model:
            self._picker.select_model(self._slow_model)

    # -- int8 weights and ONNX -------------------------------------------------------------------
    def update_switches(self, *_) -> None:
        """int8 works with every model; ONNX where the registry says it applies: the whole denoiser step for Kinemo
        models (ModelOptions.onnx_denoiser), the motion modules for AnimateDiff (ModelOptions.onnx_temporal). Where
        the two do not combine (ModelOptions.int8_with_onnx), one switched on greys the other out."""
        options = self._picker.options(self._picker.model)
        family = options.family if options is not None else None
        both = options is not None and options.int8_with_onnx
        takes_onnx = options is not None and (options.onnx_denoiser or options.onnx_temporal)
        onnx_ok = takes_onnx and (both or not self.int8_check.isChecked())
        int8_ok = family is not None and (both or not (onnx_ok and self.onnx_check.isChecked()))  # int8 wins a tie
        self.int8_check.setEnabled(int8_ok)
        self.int8_check.setToolTip(
            "Keep the denoiser's weights in int8 (made once, then cached)"
            if int8_ok
            else "Not with ONNX for this model"
            if family
            else "Wait until the model is checked"
        )
        self.onnx_check.setEnabled(onnx_ok)
        self.onnx_check.setToolTip(
            "Run each step as one onnxruntime graph on the CPU (kinemo generate --onnx; exported once, then cached)"
            if onnx_ok and options.onnx_denoiser
            else "Run the motion modules in onnxruntime (exported once, then cached)"
            if onnx_ok
            else "Not with int8 weights for this model"
            if takes_onnx
            else "Works with Kinemo models and AnimateDiff only"
        )
        self._update_cache(options)

    @property
    def _whole_step_onnx(self) -> bool:
        """Whether the run goes through the whole-step ONNX graph (Kinemo models with ONNX switched on)."""
        options = self._picker.options(self._picker.model)
        return (
            options is not None
            and options.onnx_denoiser
            and self.onnx_check.isEnabled()
            and self.onnx_check.isChecked()
        )

    def _update_cache(self, options) -> None:
        """The step caches the model takes (ModelOptions.step_caches) are offered, the others greyed out; the
        whole combo is greyed out for a model that takes none."""
        # one ONNX graph per step leaves nothing inside it for a step cache to skip
        takes = set(options.step_caches) if options is not None and not self._whole_step_onnx else set()
        items = self.cache_combo.model()
        for row, value in enumerate(CACHE_CHOICES):
            items.item(row).setEnabled(value in ("off", "auto") or value in takes)  # type: ignore[attr-defined]
        self.cache_combo.setEnabled(bool(takes))
        self.cache_combo.setToolTip(
            f"Skip denoiser work that barely changes between steps (kinemo generate --cache): faster, slightly "
            f"different frames; this model takes {', '.join(sorted(takes))}; auto is its measured default"
            if takes
            else "Not with ONNX: each step runs whole in one graph"
            if self._whole_step_onnx
            else "This model takes no step cache"
            if options is not None
            else "Wait until the model is checked"
        )

    @property
    def cache(self) -> str:
        """The run's step cache: the chosen one where the model takes it, else off."""
        row = self.cache_combo.currentIndex()
        usable = self.cache_combo.isEnabled() and self.cache_combo.model().item(row).isEnabled()  # type: ignore[attr-defined]
        return self.cache_combo.currentData() if usable else "off"

    # -- memory and the run's options ------------------------------------------------------------
    @property
    def memory(self) -> str:
        """The run's memory setting: auto, high, low or minimal (goes with the run, not the request)."""
        return self.memory_combo.currentData()

    def set_memory(self, memory: str) -> None:
        index = self.memory_combo.findData(memory)
        self.memory_combo.setCurrentIndex(max(index, 0))

    @property
    def run_options(self) -> RunOptions:
        """How the run goes (memory, int8, ONNX, step cache): sent with the request, not part of it."""
        return RunOptions(
            memory=self.memory,
            quantize="int8" if self.int8_check.isEnabled() and self.int8_check.isChecked() else None,
            onnx_temporal=self.onnx_check.isEnabled() and self.onnx_check.isChecked() and not self._whole_step_onnx,
            onnx_denoiser=self._whole_step_onnx,
            cache=self.cache,
        )

    def state(self) -> dict:
        return {
            "memory": self.memory,
            "int8": self.int8_check.isChecked(),
            "onnx_temporal": self.onnx_check.isChecked(),
            "cache": self.cache_combo.currentData(),
        }

    def restore_state(self, state: dict) -> None:
        self.set_memory(state.get("memory", "auto"))
        self.int8_check.setChecked(state.get("int8") is True)
        self.onnx_check.setChecked(state.get("onnx_temporal") is True)
        self.cache_combo.setCurrentIndex(max(self.cache_combo.findData(state.get("cache", "off")), 0))
