"""The LoRA list: LoRA weights the request applies to the denoiser, each with a strength, switched on or off.

A LoRA comes from a .safetensors file (a file dialog) or from the hub cache (engine.registry.loras.cached_loras,
listed on a worker thread each time the menu opens, so a large cache never stalls the window). Pickled weights
(.bin, .pt, .ckpt …) can run code when read, so they are refused with one line. The enabled rows go into the
request in order; a clip's record brings its list back, and the saved settings keep the disabled rows too.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.studio.plain_text import plain_tooltip
from app.studio.worker import FunctionWorker, start_worker
from engine.api.controls import LORA_SCALE, MAX_LORAS, LoraWeight
from engine.api.errors import InvalidRequest

LORA_FILTER = "LoRA weights (*.safetensors);;All files (*)"
EMPTY_TEXT = "No LoRAs: add a .safetensors file, or one already in the hub cache."


def list_cached_loras() -> list[str]:
    """Worker thread: the LoRA files in the hub cache ("owner/name/file.safetensors")."""
    from engine.registry.loras import cached_loras

    return cached_loras()


def refusal(source: str) -> str | None:
    """Why a LoRA file cannot be added (one line), or None: pickled or other non-safetensors files, missing ones."""
    try:
        LoraWeight(source).validate()  # the engine's own words for pickled weights
    except InvalidRequest as exc:
        return str(exc)
    path = Path(source).expanduser()
    if path.suffix.lower() != ".safetensors":
        return f"LoRA {path.name}: not a .safetensors file; Kinemo loads LoRAs from safetensors only"
    if not path.is_file():
        return f"LoRA {source}: no such file"
    return None


NAME_WIDTH = 200  # pixels a LoRA's name takes in its row at most


class LoraRow(QWidget):
    """One LoRA: on/off, its name (the full source in the tooltip), its strength, a remove button."""

    removeClicked = Signal(object)  # the row
    changed = Signal()

    def __init__(self, source: str, scale: float, enabled: bool, parent=None):
        super().__init__(parent)
        self.setObjectName("loraRow")
        self.source = source
        self.enabled_check = QCheckBox()
        self.enabled_check.setObjectName("loraEnabledCheck")
        # a long file name (lightx2v's LoRAs run to 50 characters) is shortened in its middle, so the row never
        # widens the form past its panel; the tooltip holds the whole source
        name = LoraWeight(source).name
        self.enabled_check.setText(
            self.enabled_check.fontMetrics().elidedText(name, Qt.TextElideMode.ElideMiddle, NAME_WIDTH)
        )
        self.enabled_check.setChecked(enabled)
        self.enabled_check.setToolTip(plain_tooltip(f"{source}\nUntick to leave this LoRA out of the next clip"))
        self.scale_spin = QDoubleSpinBox()
        self.scale_spin.setObjectName("loraScaleSpin")
        self.scale_spin.setRange(*LORA_SCALE)
        self.scale_spin.setSingleStep(0.05)
        self.scale_spin.setDecimals(2)
        self.scale_spin.setValue(scale)
        self.scale_spin.setToolTip("Strength: 1 applies the LoRA as trained, 0 not at all, below 0 pushes away")
        self.remove_button = QToolButton()
        self.remove_button.setObjectName("loraRemoveButton")
        self.remove_button.setText("✕")
        self.remove_button.setToolTip("Remove this LoRA from the list")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.enabled_check, 1)
        layout.addWidget(self.scale_spin)
        layout.addWidget(self.remove_button)
        self.enabled_check.toggled.connect(self.scale_spin.setEnabled)  # a disabled row looks switched off
        self.scale_spin.setEnabled(enabled)
        self.enabled_check.toggled.connect(self.changed)
        self.scale_spin.valueChanged.connect(self.changed)
        self.remove_button.clicked.connect(self._on_remove)

    @Slot()
    def _on_remove(self) -> None:
        self.removeClicked.emit(self)

    @property
    def enabled(self) -> bool:
        return self.enabled_check.isChecked()

    @property
    def weight(self) -> LoraWeight:
        return LoraWeight(self.source, round(self.scale_spin.value(), 4))

    def state(self) -> dict:
        return {"source": self.source, "scale": self.weight.scale, "enabled": self.enabled}


class LoraPanel(QWidget):
    message = Signal(str, str)  # level, text
    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("loraPanel")
        self.rows: list[LoraRow] = []
        self.last_folder = ""
        self.cached: list[str] = []  # the hub cache's LoRAs, as last listed
        self.listing = False
        self.empty_label = QLabel(EMPTY_TEXT)
        self.empty_label.setObjectName("loraEmptyLabel")
        self.empty_label.setWordWrap(True)
        self.error_label = QLabel()
        self.error_label.setObjectName("loraErrorLabel")
        self.error_label.setProperty("level", "error")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        self.add_file_button = QPushButton("Add file…")
        self.add_file_button.setObjectName("loraAddFileButton")
        self.add_file_button.setToolTip("Add a LoRA from a .safetensors file")
        self.add_file_button.clicked.connect(self.choose_file)
        self.hub_menu = QMenu(self)
        self.hub_menu.aboutToShow.connect(self.refresh_cached)
        self.hub_button = QPushButton("From hub cache")
        self.hub_button.setObjectName("loraHubButton")
        self.hub_button.setToolTip("Add a LoRA already downloaded into the Hugging Face cache")
        self.hub_button.setMenu(self.hub_menu)
        self._rows_layout = QVBoxLayout()
        self._rows_layout.setSpacing(2)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_file_button)
        buttons.addWidget(self.hub_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.empty_label)
        layout.addLayout(self._rows_layout)
        layout.addWidget(self.error_label)
        layout.addLayout(buttons)
        self._fill_menu()

    # -- the list -----------------------------------------------------------------------------------
    def loras(self) -> tuple[LoraWeight, ...]:
        """The enabled LoRAs, in the list's order, as the request carries them."""
        return tuple(row.weight for row in self.rows if row.enabled)

    def add(self, source: str, scale: float = 1.0, enabled: bool = True) -> bool:
        """Add a LoRA to the list; False (with one line in the panel and the window) when it cannot be."""
        try:
            LoraWeight(source, scale).validate()
        except InvalidRequest as exc:
            return self._refuse(str(exc))
        if any(row.source == source for row in self.rows):
            return self._refuse(f"LoRA {LoraWeight(source).name} is in the list already; change its strength there")
        if len(self.rows) >= MAX_LORAS:
            return self._refuse(f"at most {MAX_LORAS} LoRAs at once; remove one first")
        row = LoraRow(source, scale, enabled, self)
        row.removeClicked.connect(self._on_remove_clicked)
        row.changed.connect(self.changed)
        self.rows.append(row)
        self._rows_layout.addWidget(row)
        self.error_label.hide()
        self._show_empty()
        self.changed.emit()
        return True

    def add_file(self, path: str) -> bool:
        problem = refusal(path)
        return self._refuse(problem) if problem is not None else self.add(path)

    def remove(self, row: LoraRow) -> None:
        self.rows.remove(row)
        self._rows_layout.removeWidget(row)
        row.deleteLater()
        self._show_empty()
        self.changed.emit()

    def clear(self) -> None:
        for row in list(self.rows):
            self.remove(row)

    def set_loras(self, loras) -> None:
        """Show a request's LoRAs (all enabled), replacing the list."""
        self.clear()
        for lora in loras:
            self.add(lora.source, lora.scale)

    def rows_state(self) -> list[dict]:
        """Every row, disabled ones too, for the settings file."""
        return [row.state() for row in self.rows]

    def restore_rows(self, rows: list[dict]) -> None:
        """Rows from the settings file (checked there field by field by saved_data)."""
        self.clear()
        for row in rows:
            self.add(row["source"], row["scale"], row["enabled"])

    @Slot(object)
    def _on_remove_clicked(self, row: LoraRow) -> None:
        self.remove(row)

    def _refuse(self, text: str) -> bool:
        self.error_label.setText(text)
        self.error_label.show()
        self.message.emit("error", text)
        return False

    def _show_empty(self) -> None:
        self.empty_label.setVisible(not self.rows)

    # -- adding -------------------------------------------------------------------------------------
    @Slot()
    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a LoRA (.safetensors)", self.last_folder, LORA_FILTER)
        if path:
            self.last_folder = str(Path(path).parent)
            self.add_file(path)

    @Slot()
    def refresh_cached(self) -> None:
        """List the hub cache's LoRAs on a worker thread; the menu shows what was found last meanwhile."""
        if self.listing:
            return
        self.listing = True
        self._fill_menu()
        worker = FunctionWorker(list_cached_loras)
        worker.returned.connect(self._on_listed)
        worker.errored.connect(self._on_list_failed)
        start_worker(worker)

    @Slot(object)
    def _on_listed(self, found) -> None:
        self.listing, self.cached = False, list(found)
        self._fill_menu()

    @Slot(object)
    def _on_list_failed(self, exc) -> None:
        self.listing = False
        self._fill_menu()
        self.message.emit("warning", f"Cannot list the LoRAs in the hub cache: {exc}")

    def _fill_menu(self) -> None:
        self.hub_menu.clear()
        for source in self.cached:
            action = self.hub_menu.addAction(source)
            action.setData(source)
            action.triggered.connect(self._on_cached_chosen)
        if self.listing:
            self.hub_menu.addAction("Looking in the hub cache…").setEnabled(False)
        elif not self.cached:
            self.hub_menu.addAction("No LoRAs in the hub cache").setEnabled(False)

    @Slot()
    def _on_cached_chosen(self) -> None:
        action = self.sender()
        if action is not None and action.data():
            self.add(str(action.data()))
