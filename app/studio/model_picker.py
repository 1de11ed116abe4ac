"""The model picker: the starter model, the catalog and the user's folders, with what is on disk.

Models are grouped by what they do (built in, with sound, text- or image-to-video, text-to-video,
image-to-video) under headers that cannot be picked. Labels come from the catalog at once
(engine.registry.model_options.catalog_options reads no disk). Whether each hub model is on disk, what a
folder holds, and what this machine has (RAM, a CUDA GPU's memory) are checked on worker threads: refresh()
after the window shows, check() for one model, and a folder picked with "Other model folder…" is inspected
before it is added. A model whose weights cannot fit this machine is greyed out, its tooltip saying why
(engine.planning.fit).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QComboBox, QFileDialog

from app.studio.messages import describe
from app.studio.worker import FunctionWorker, start_worker, wait_for
from engine.api.request import DEFAULT_MODEL
from engine.registry.model_options import ModelOptions, catalog_options

OTHER_MODEL = "__other__"
TASK_NAMES = {
    ("t2v",): "text-to-video",
    ("i2v",): "image-to-video (needs a picture)",
    ("t2v", "i2v"): "text- or image-to-video",
}


GROUPS = {  # what a model does -> its header in the picker, in the picker's order
    "bundled": "Built in: runs anywhere",
    "sound": "Video with sound",
    "both": "Text- or image-to-video",
    "t2v": "Text-to-video",
    "i2v": "Image-to-video",
}


def group_of(options: ModelOptions) -> str:
    if options.kind == "bundled":
        return "bundled"
    if options.audio:
        return "sound"
    return "both" if set(options.tasks) == {"t2v", "i2v"} else options.tasks[0]


def check_all(models: list[str]) -> tuple[dict, object]:
    """Worker thread: every model's options (check_models) and what this machine has (engine.planning.fit)."""
    from engine.planning.fit import this_machine

    return check_models(models), this_machine()


def check_models(models: list[str]) -> dict[str, ModelOptions | str]:
    """Worker thread: each model's options, or the one line that says why it cannot be used."""
    from engine.registry.model_options import model_options

    found: dict[str, ModelOptions | str] = {}
    for model in models:
        try:
            found[model] = model_options(model)
        except Exception as exc:  # noqa: BLE001 - a broken folder must not stop the others
            found[model] = describe(exc)
    return found


def picker_text(options: ModelOptions, checked: bool, machine=None) -> str:
    """The picker's line for a model: the disk state once it was checked, its size, and how it fits this machine
    once that is known (machine: an engine.planning.fit.Machine)."""
    if options.kind == "bundled":
        return f"{options.label} · built in"
    parts = [options.label]
    if options.kind != "folder" and checked:
        parts.append("not downloaded" if options.needs_download else "on disk")
    if options.disk_gb:
        parts.append(f"{options.disk_gb:g} GB")
    if machine is not None:
        from engine.planning.fit import fit

        parts.append(fit(options, machine).note)
    if options.superseded_by:
        parts.append(f"superseded by {options.superseded_by}")
    return " · ".join(part for part in parts if part)


def picker_tooltip(options: ModelOptions, machine=None) -> str:
    lines = [options.model, TASK_NAMES.get(tuple(sorted(options.tasks, reverse=True)), "")]
    if options.audio:
        lines.append("makes sound with the video")
    if options.vram_gb:
        source = "the model card's figure" if options.vram_published else "estimated from its weights"
        lines.append(f"about {options.vram_gb:g} GB of GPU memory ({source}), {options.disk_gb:g} GB on disk")
    if machine is not None:
        from engine.planning.fit import fit

        lines += [fit(options, machine).reason, machine.describe()]
    if options.superseded_by:
        lines.append(f"an older model: {options.superseded_by} is its successor")
    if options.license:
        lines.append(f"licence: {options.license}")
    return "\n".join(line for line in lines if line)


def folder_label(model: str) -> str:
    return f"{Path(model).name} (folder)" if ("/" in model or "\\" in model) else model


class ModelPicker(QComboBox):
    message = Signal(str, str)  # level, text
    modelSelected = Signal(str)  # another model became the current one
    optionsChecked = Signal(object)  # a model's ModelOptions, fresh from the disk
    modelsChecked = Signal()  # refresh() has checked every listed model

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("modelCombo")
        self.setToolTip("The model that renders the clip; add a local model folder with 'Other model folder…'")
        self._checked: dict[str, ModelOptions] = {}
        self._problems: dict[str, str] = {}
        self._pending: set[str] = set()
        self._failure_shown: set[str] = set()  # models whose failure the window reported since they were picked
        self._workers: list[FunctionWorker] = []
        self.machine = None  # what this machine has (engine.planning.fit.Machine), once refresh() has looked
        self._fill()
        self.setCurrentIndex(self.findData(DEFAULT_MODEL))  # not the first group's header
        self._model = self.currentData()
        self.currentIndexChanged.connect(self._on_index_changed)
        self.activated.connect(self._on_activated)

    # -- contents -------------------------------------------------------------------------------
    def _fill(self) -> None:
        from engine.registry.resolve import STARTER_ID, available_models

        self._checked[STARTER_ID] = catalog_options(STARTER_ID)  # nothing of it to check on disk
        listed = [catalog_options(model) for model in available_models()]
        for group, header in GROUPS.items():
            members = [options for options in listed if group_of(options) == group]
            if members:
                self._add_header(header)
            for options in members:
                self.addItem(picker_text(options, options.model in self._checked), options.model)
                self.setItemData(self.count() - 1, picker_tooltip(options), Qt.ItemDataRole.ToolTipRole)
        self.insertSeparator(self.count())
        self.addItem("Other model folder…", OTHER_MODEL)
        self.setItemData(
            self.count() - 1,
            "A Kinemo model folder (config.json) or a diffusers one (model_index.json)",
            Qt.ItemDataRole.ToolTipRole,
        )

    def _add_header(self, text: str) -> None:
        """A group's title: a line that cannot be picked."""
        self.addItem(text, None)
        item = QComboBox.model(self).item(self.count() - 1)
        item.setEnabled(False)
        font = QFont(item.font())
        font.setBold(True)
        item.setFont(font)

    def set_runnable(self, index: int, runs: bool) -> None:
        """Grey a model's line out (it cannot be picked) or let it be picked again."""
        QComboBox.model(self).item(index).setEnabled(runs)

    def is_runnable(self, model: str) -> bool:
        index = self.findData(model)
        return index >= 0 and QComboBox.model(self).item(index).isEnabled()

    @property
    def model(self) -> str:
        data = self.currentData()
        return data if data not in (None, OTHER_MODEL) else self._model or DEFAULT_MODEL

    def models(self) -> list[str]:
        """Every model listed."""
        return [self.itemData(i) for i in range(self.count()) if self.itemData(i) not in (None, OTHER_MODEL)]

    def model_folders(self) -> list[str]:
        """Model folders added by the user (persisted with the settings)."""
        from engine.registry.resolve import available_models

        known = set(available_models())
        return [m for m in self.models() if m not in known]

    def add_model(self, model: str) -> int:
        """Add a model id or folder to the picker (once); return its index."""
        index = self.findData(model)
        if index < 0:
            index = self.count() - 2  # before the separator and "Other…"
            options = self._checked.get(model)
            self.insertItem(index, picker_text(options, True) if options else folder_label(model), model)
            self.setItemData(index, picker_tooltip(options) if options else model, Qt.ItemDataRole.ToolTipRole)
        return index

    def select_model(self, model: str) -> None:
        self.setCurrentIndex(self.add_model(model))

    def options(self, model: str | None = None) -> ModelOptions | None:
        """What is known about a model now: checked on disk, else from the catalog; None for an unchecked folder."""
        model = model or self.model
        return self._checked.get(model) or catalog_options(model)

    def is_checked(self, model: str) -> bool:
        return model in self._checked

    def problem(self, model: str) -> str | None:
        """Why a model cannot be used, when its check said so."""
        return self._problems.get(model)

    # -- checking on worker threads -------------------------------------------------------------
    def refresh(self) -> None:
        """Check every listed model (what is on disk) and this machine on a worker thread."""
        self._pending.update(self.models())
        worker = FunctionWorker(check_all, self.models())
        worker.returned.connect(self._on_all_checked)
        worker.errored.connect(self._on_check_failed)
        self._keep(worker)
        start_worker(worker)

    def check(self, model: str) -> None:
        """Check one model again on a worker thread (after a download or a generation)."""
        self._start_check([model], self._on_checked)

    def _start_check(self, models: list[str], slot) -> None:
        self._pending.update(models)
        worker = FunctionWorker(check_models, models)
        worker.returned.connect(slot)
        worker.errored.connect(self._on_check_failed)
        self._keep(worker)
        start_worker(worker)

    def _keep(self, worker: FunctionWorker) -> None:
        self._workers = [w for w in self._workers if w.thread_handle is not None and not w.thread_handle.isFinished()]
        self._workers.append(worker)

    @Slot(object)
    def _on_all_checked(self, result: tuple) -> None:
        found, self.machine = result
        self._on_checked(found)
        self.modelsChecked.emit()

    @Slot(object)
    def _on_checked(self, found: dict) -> None:
        for model, result in found.items():
            self._pending.discard(model)
            if isinstance(result, ModelOptions):
                self.remember(result)
            else:
                self._remember_problem(model, result)

    @Slot(object)
    def _on_check_failed(self, exc) -> None:
        self.message.emit("warning", f"Could not check the models on disk: {describe(exc)}")

    def remember(self, options: ModelOptions) -> None:
        """Keep a model's checked options, show them in its line and tell the form."""
        self._checked[options.model] = options
        self._problems.pop(options.model, None)
        index = self.findData(options.model)
        if index >= 0:
            self.setItemText(index, picker_text(options, True, self.machine))
            self.setItemData(index, picker_tooltip(options, self.machine), Qt.ItemDataRole.ToolTipRole)
            if self.machine is not None:
                from engine.planning.fit import fit

                self.set_runnable(index, fit(options, self.machine).runs)
        self.optionsChecked.emit(options)

    def _remember_problem(self, model: str, reason: str) -> None:
        self._problems[model] = reason
        index = self.findData(model)
        if index >= 0:
            self.setItemText(index, f"{folder_label(model)} · unusable")
            self.setItemData(index, reason, Qt.ItemDataRole.ToolTipRole)
        if model == self.model and model not in self._failure_shown:
            self.message.emit("error", reason)

    def failure_shown(self, model: str) -> None:
        """A job on model failed and the window showed why. A check of it, running now or started by the
        failure, finishes after that message: what it finds goes into the model's line, and the message area
        keeps the one message the failure earned. Picking another model ends this."""
        self._failure_shown.add(model)

    # -- selection ------------------------------------------------------------------------------
    @Slot(int)
    def _on_index_changed(self, index: int) -> None:
        model = self.itemData(index)
        if model in (None, OTHER_MODEL) or model == self._model:
            return
        self._model = model
        self._failure_shown.clear()
        self.modelSelected.emit(model)
        if model not in self._checked and model not in self._pending:
            self.check(model)

    @Slot(int)
    def _on_activated(self, index: int) -> None:
        if self.itemData(index) != OTHER_MODEL:
            return
        self.select_model(self._model)  # stay on the current model while the folder is looked at
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder (Kinemo or diffusers)")
        if folder:
            self.add_folder(folder)

    def add_folder(self, folder: str) -> None:
        """Inspect a folder on a worker thread; add and select it when it holds a usable model."""
        worker = FunctionWorker(check_models, [folder])
        worker.returned.connect(self._on_folder_checked)
        worker.errored.connect(self._on_check_failed)
        self._keep(worker)
        start_worker(worker)

    @Slot(object)
    def _on_folder_checked(self, found: dict) -> None:
        ((folder, result),) = found.items()
        if not isinstance(result, ModelOptions):
            self.message.emit("error", f"Model folder not added: {result}")
            return
        self._checked[folder] = result
        self.select_model(folder)
        self.remember(result)
        self.message.emit("info", f"Added {result.label}")

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Wait for running checks (closing the window)."""
        for worker in self._workers:
            wait_for(worker, timeout_ms)
