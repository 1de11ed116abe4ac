"""The studio's main window: wires the form, queue, player, history and export together.

Layout (fits 1280x800): request form on the left, player with progress and messages in the middle,
queue and history on the right. Every failure ends up in the message area; nothing here blocks the
UI thread on the engine, ffmpeg or a large picture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QSize, Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QIcon, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.studio.drop_zone import is_clip, local_paths
from app.studio.engine_client import shared_engine
from app.studio.exporter import ExportDialog, export_clip, is_taken, next_free_path, suggested_name, with_extension
from app.studio.history import HistoryEntry, HistoryStore
from app.studio.job_queue import JobQueue
from app.studio.messages import describe
from app.studio.preview import PlayerWidget
from app.studio.request_form import RequestForm
from app.studio.settings_store import SettingsStore
from app.studio.worker import FunctionWorker, start_worker, wait_for
from engine.api.errors import KinemoError
from engine.api.request import GenerationRequest

ENTRY_ROLE = Qt.ItemDataRole.UserRole
JOB_ROLE = Qt.ItemDataRole.UserRole + 1
MODEL_CHECK_DELAY_MS = 250  # after the window shows, check which models are on disk


def read_clip_record(path: str) -> tuple[str, dict]:
    """Worker thread: the Kinemo record embedded in a clip (export.read_record)."""
    from export import read_record

    return path, read_record(path)


class MainWindow(QMainWindow):
    firstShown = Signal()
    clipChanged = Signal()  # the clip in the player (and for export) changed
    exportFinished = Signal(str)
    exportFailed = Signal(str)
    settingsRestored = Signal(str)  # where from: a history entry id or a clip path
    messageShown = Signal(str, str)  # level, text

    def __init__(self, engine=None, parent=None):
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle("Kinemo Studio")
        self.setAcceptDrops(True)
        self.settings_store = SettingsStore()
        self._settings = self.settings_store.load()
        self._finished: dict[int, list] = {}  # job id -> finished windows of a long clip, shown while it grows
        self.history = HistoryStore()
        self.engine = engine if engine is not None else shared_engine()
        self.queue = JobQueue(self.engine, self.history, self)
        self.current_clip: tuple[np.ndarray, GenerationRequest] | None = None
        self._export_worker: FunctionWorker | None = None
        self._record_worker: FunctionWorker | None = None
        self._entries: dict[str, HistoryEntry] = {}
        self._shown = False
        self._model_check_timer = QTimer(self)
        self._model_check_timer.setSingleShot(True)
        self._model_check_timer.setInterval(MODEL_CHECK_DELAY_MS)

        self._build()
        self._connect()
        self._restore_settings()
        self._load_history()
        self._refresh_queue()
        self._update_actions()

    # == building ====================================================================================
    def _build(self) -> None:
        # left: the request
        self.form = RequestForm()
        self.prompt_edit = self.form.prompt_edit
        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("generateButton")
        self.generate_button.setToolTip("Generate, or add to the queue while a job runs (Ctrl+Enter)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setToolTip("Stop the running job (Esc); queued jobs still run")
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.form)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.cancel_button)
        left = QWidget()
        left.setMinimumWidth(340)
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(scroll, 1)
        left_layout.addLayout(buttons)

        # middle: player, progress, messages, export
        self.player = PlayerWidget()
        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("progressBar")
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("Ready")
        self.progress_bar.setTextVisible(True)
        self.message_label = QLabel()
        self.message_label.setObjectName("messageLabel")
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label.hide()
        self.export_button = QPushButton("Export…")
        self.export_button.setObjectName("exportButton")
        self.export_button.setToolTip("Export the clip in the player as MP4, GIF, WebM or PNG frames (Ctrl+E)")
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress_bar, 1)
        progress_row.addWidget(self.export_button)
        middle = QWidget()
        middle_layout = QVBoxLayout(middle)
        middle_layout.addWidget(self.player, 1)
        middle_layout.addLayout(progress_row)
        middle_layout.addWidget(self.message_label)

        # right: queue and history
        self.queue_list = QListWidget()
        self.queue_list.setObjectName("queueList")
        self.queue_list.setToolTip("Jobs waiting to run; reorder or remove them before they start")
        self.queue_list.setWordWrap(True)
        self.queue_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.queue_up_button = self._small_button("▲", "queueUpButton", "Move the selected job up")
        self.queue_down_button = self._small_button("▼", "queueDownButton", "Move the selected job down")
        self.queue_remove_button = self._small_button("Remove", "queueRemoveButton", "Remove the selected job")
        self.queue_clear_button = self._small_button("Clear", "queueClearButton", "Remove every waiting job")
        queue_buttons = QHBoxLayout()
        for button in (self.queue_up_button, self.queue_down_button, self.queue_remove_button, self.queue_clear_button):
            queue_buttons.addWidget(button)
        queue_box = QGroupBox("Queue")
        queue_layout = QVBoxLayout(queue_box)
        queue_layout.addWidget(self.queue_list)
        queue_layout.addLayout(queue_buttons)

        self.history_list = QListWidget()
        self.history_list.setObjectName("historyList")
        self.history_list.setIconSize(QSize(56, 56))
        self.history_list.setWordWrap(True)
        self.history_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.history_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.history_list.setToolTip("Every generation; click one to restore its settings and clip")
        self.history_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        history_box = QGroupBox("History")
        history_layout = QVBoxLayout(history_box)
        history_layout.addWidget(self.history_list)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(queue_box)
        right.addWidget(history_box)
        right.setStretchFactor(0, 1)
        right.setStretchFactor(1, 3)
        right.setMinimumWidth(260)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(middle)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([380, 600, 300])
        self.setCentralWidget(self.splitter)
        self.statusBar().showMessage("Ready")
        self.resize(1280, 800)
        self.setMinimumSize(960, 600)

        for keys, slot in (
            ("Ctrl+Return", self.generate),
            ("Ctrl+Enter", self.generate),
            ("Escape", self.cancel),
            ("Ctrl+E", self.open_export_dialog),
        ):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(slot)

    @staticmethod
    def _small_button(text: str, name: str, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setToolTip(tip)
        return button

    def _connect(self) -> None:
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button.clicked.connect(self.open_export_dialog)
        self.form.message.connect(self.show_message)
        self._model_check_timer.timeout.connect(self.form.refresh_models)
        self.firstShown.connect(self._model_check_timer.start)
        self.queue.changed.connect(self._refresh_queue)
        self.queue.jobStarted.connect(self._on_job_started)
        self.queue.jobLoaded.connect(self._on_job_loaded)
        self.queue.jobNotice.connect(self._on_job_notice)
        self.queue.jobProgress.connect(self._on_job_progress)
        self.queue.jobPreview.connect(self._on_job_preview)
        self.queue.jobFrames.connect(self._on_job_frames)
        self.queue.jobSaved.connect(self._on_job_saved)
        self.queue.jobFailed.connect(self._on_job_failed)
        self.queue.jobCancelled.connect(self._on_job_cancelled)
        self.queue_list.itemSelectionChanged.connect(self._update_actions)
        self.queue_up_button.clicked.connect(self.move_selected_job_up)
        self.queue_down_button.clicked.connect(self.move_selected_job_down)
        self.queue_remove_button.clicked.connect(self._remove_selected_job)
        self.queue_clear_button.clicked.connect(self.queue.clear)
        self.history_list.itemClicked.connect(self._on_history_clicked)
        self.history_list.itemActivated.connect(self._on_history_clicked)
        self.history_list.customContextMenuRequested.connect(self._history_menu)

    # == messages ====================================================================================
    @Slot(str, str)
    def show_message(self, level: str, text: str) -> None:
        """Show text in the message area; level is "info", "warning" or "error"."""
        self.message_label.setProperty("level", level)
        self.message_label.setText(text)
        self.message_label.style().unpolish(self.message_label)
        self.message_label.style().polish(self.message_label)
        self.message_label.show()
        self.statusBar().showMessage(text, 10000)
        self.messageShown.emit(level, text)

    @property
    def message(self) -> str:
        """The text in the message area ("" when hidden)."""
        return self.message_label.text() if not self.message_label.isHidden() else ""

    # == generation ==================================================================================
    @Slot()
    def generate(self) -> None:
        """Queue the request the form describes (it starts at once when nothing runs)."""
        try:
            request = self.form.request()
        except KinemoError as exc:
            self.show_message("error", describe(exc))
            return
        job = self.queue.add(request, options=self.form.run_options)
        if not self.form.keep_seed:
            self.form.randomise_seed()
        if self.queue.current is not job:
            self.show_message("info", f"Queued: {job.label}")

    @Slot()
    def cancel(self) -> None:
        if self.queue.cancel_current():
            self.progress_bar.setFormat("Cancelling…")
            self._update_actions()

    @Slot(object)
    def _on_job_started(self, job) -> None:
        self._finished = {job.id: []}  # finished windows of the running job
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setFormat("Loading the model…")
        self.statusBar().showMessage(f"Generating: {job.label}")
        self.message_label.hide()
        self._update_actions()

    @Slot(object, str, float)
    def _on_job_loaded(self, job, model: str, seconds: float) -> None:
        if seconds > 0:
            self.statusBar().showMessage(f"Model {Path(model).name} loaded in {seconds:.1f} s")
        self.progress_bar.setFormat("Starting…")

    @Slot(object, object)
    def _on_job_notice(self, job, notice) -> None:
        from engine.api.events import MemoryNotice

        message = notice.message
        is_plan = isinstance(notice, MemoryNotice)  # the memory plan, announced as the run starts
        self.show_message("info" if is_plan else "warning", message[0].upper() + message[1:] if is_plan else message)

    @Slot(object, int, int, float)
    def _on_job_progress(self, job, step: int, total: int, elapsed: float) -> None:
        if self.queue.cancelling:
            return
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(step)
        left = elapsed / step * (total - step) if step else 0.0
        text = f"Step {step}/{total} · {left:.0f} s left" if step < total else f"Step {step}/{total} · saving…"
        self.progress_bar.setFormat(text)

    @Slot(object, int, object)
    def _on_job_preview(self, job, step: int, frames) -> None:
        r = job.request
        finished = self._finished.get(job.id)
        if finished:  # a long clip: the windows already made, then the one being made
            frames = np.concatenate([*finished, frames])
        self.player.show_frames(frames, fps=r.fps if step == 1 else None, aspect=r.width / r.height, live=True)

    @Slot(object, int, object)
    def _on_job_frames(self, job, start: int, frames) -> None:
        """Finished frames arrive window by window for long clips; keep them on screen as the next is made."""
        if start == 0:
            self._finished[job.id] = []
        self._finished.setdefault(job.id, []).append(frames)

    @Slot(object, object)
    def _on_job_saved(self, job, saved) -> None:
        entry = saved.entry
        self._entries[entry.id] = entry
        self.history_list.insertItem(0, self._history_item(entry))
        self.set_clip(saved.frames, job.request)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1)
        self.progress_bar.setFormat(f"Done in {entry.seconds:.1f} s")
        self.show_message("info", f"Done: saved to the history as {entry.clip_path.name}")
        self._save_settings()
        self._recheck_model(job.request.model)

    @Slot(object, object)
    def _on_job_failed(self, job, exc) -> None:
        self._reset_progress("Failed")
        self.show_message("error", f"Generation failed: {describe(exc)}")
        self._show_current_clip()
        self._recheck_model(job.request.model)

    def _recheck_model(self, model: str) -> None:
        """The engine downloads a model it needs: check again whether one that was missing is on disk now."""
        options = self.form.model_picker.options(model)
        if options is not None and options.needs_download:
            self.form.model_picker.check(model)

    @Slot(object)
    def _on_job_cancelled(self, job) -> None:
        self._reset_progress("Cancelled")
        self.show_message("info", "Cancelled; nothing was saved.")
        self._show_current_clip()

    def _reset_progress(self, text: str) -> None:
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat(text)

    # == queue =======================================================================================
    @Slot()
    def _refresh_queue(self) -> None:
        selected = self._selected_job_id()
        self.queue_list.clear()
        if self.queue.current is not None:
            item = QListWidgetItem(f"▶ {self.queue.current.label}")
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            item.setToolTip("Running")
            self.queue_list.addItem(item)
        for job in self.queue.pending:
            item = QListWidgetItem(job.label)
            item.setData(JOB_ROLE, job.id)
            item.setToolTip(job.request.prompt)
            self.queue_list.addItem(item)
            if job.id == selected:
                item.setSelected(True)
                self.queue_list.setCurrentItem(item)
        self._update_actions()

    def _selected_job_id(self) -> int | None:
        items = self.queue_list.selectedItems()
        return items[0].data(JOB_ROLE) if items else None

    @Slot()
    def move_selected_job_up(self) -> None:
        self._move_selected_job(-1)

    @Slot()
    def move_selected_job_down(self) -> None:
        self._move_selected_job(1)

    def _move_selected_job(self, offset: int) -> None:
        job_id = self._selected_job_id()
        if job_id is not None:
            self.queue.move(job_id, offset)

    @Slot()
    def _remove_selected_job(self) -> None:
        job_id = self._selected_job_id()
        if job_id is not None:
            self.queue.remove(job_id)

    @Slot()
    def _update_actions(self) -> None:
        busy = self.queue.busy
        self.generate_button.setText("Add to queue" if busy else "Generate")
        self.cancel_button.setEnabled(busy and not self.queue.cancelling)
        self.export_button.setEnabled(self.current_clip is not None and self._export_worker is None)
        has_selection = self._selected_job_id() is not None
        for button in (self.queue_up_button, self.queue_down_button, self.queue_remove_button):
            button.setEnabled(has_selection)
        self.queue_clear_button.setEnabled(bool(self.queue.pending))

    # == clip in the player ==========================================================================
    def set_clip(self, frames: np.ndarray, request: GenerationRequest) -> None:
        """Put a clip ((f, h, w, 3) uint8 frames and the request that made it) in the player, ready to export."""
        self.current_clip = (np.asarray(frames), request)
        self._show_current_clip()
        self._update_actions()
        self.clipChanged.emit()

    def _show_current_clip(self) -> None:
        if self.current_clip is None:
            self.player.clear()
            return
        frames, request = self.current_clip
        self.player.show_frames(frames, fps=request.fps, aspect=request.width / request.height)

    # == history =====================================================================================
    def _load_history(self) -> None:
        try:
            entries = self.history.entries()
        except OSError as exc:
            self.show_message("error", f"Cannot read the history: {exc}")
            return
        for entry in entries:
            self._entries[entry.id] = entry
            self.history_list.addItem(self._history_item(entry))

    def _history_item(self, entry: HistoryEntry) -> QListWidgetItem:
        item = QListWidgetItem(QIcon(str(entry.thumbnail_path)), f"{entry.title}\n{entry.summary}")
        item.setData(ENTRY_ROLE, entry.id)
        item.setToolTip(f"{entry.request.get('prompt', '')}\n{entry.clip_path}")
        return item

    @Slot(QListWidgetItem)
    def _on_history_clicked(self, item: QListWidgetItem) -> None:
        entry = self._entries.get(item.data(ENTRY_ROLE))
        if entry is not None:
            self.restore_history(entry)

    def restore_history(self, entry: HistoryEntry) -> None:
        """Put an entry's settings in the form and its clip in the player."""
        try:
            request = GenerationRequest.from_dict(entry.request)
        except KinemoError as exc:
            self.show_message("error", f"Cannot restore this entry: {describe(exc)}")
            return
        self.form.set_request(request)
        try:
            self.set_clip(entry.load_frames(), request)
        except (OSError, ValueError) as exc:
            self.show_message("warning", f"Settings restored, but the clip's frames are unreadable: {exc}")
        else:
            self.show_message("info", f"Settings restored from the history ({entry.summary})")
        self.settingsRestored.emit(entry.id)

    @Slot("QPoint")
    def _history_menu(self, point) -> None:
        item = self.history_list.itemAt(point)
        entry = self._entries.get(item.data(ENTRY_ROLE)) if item else None
        if entry is None:
            return
        menu = QMenu(self)
        restore = menu.addAction("Restore settings")
        remove = menu.addAction("Remove from history")
        chosen = menu.exec(self.history_list.mapToGlobal(point))
        if chosen is restore:
            self.restore_history(entry)
        elif chosen is remove:
            self.remove_history(entry)

    def remove_history(self, entry: HistoryEntry) -> None:
        for row in range(self.history_list.count()):
            if self.history_list.item(row).data(ENTRY_ROLE) == entry.id:
                self.history_list.takeItem(row)
                break
        self._entries.pop(entry.id, None)
        try:
            self.history.remove(entry)
        except OSError as exc:
            self.show_message("error", f"Could not delete {entry.clip_path}: {exc}")

    # == dropping clips and pictures on the window ===================================================
    def dragEnterEvent(self, event) -> None:
        if len(local_paths(event.mimeData())) == 1:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        paths = local_paths(event.mimeData())
        if len(paths) != 1:
            self.show_message("error", "Drop one file at a time.")
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_path(paths[0])

    def handle_urls(self, urls: list[QUrl]) -> None:
        """Programmatic drop on the window (automation)."""
        paths = [u.toLocalFile() for u in urls if u.isLocalFile()]
        if len(paths) == 1:
            self.open_path(paths[0])
        else:
            self.show_message("error", "Drop one file at a time.")

    def open_path(self, path: str) -> None:
        """A Kinemo clip restores its settings; anything else is tried as the first-frame picture."""
        if is_clip(path):
            self.restore_from_clip(path)
        else:
            self.form.drop_zone.set_image(path)

    def restore_from_clip(self, path: str) -> None:
        """Read the record embedded in a clip (worker thread) and restore its settings."""
        self.statusBar().showMessage(f"Reading {Path(path).name}…")
        worker = FunctionWorker(read_clip_record, path)
        worker.returned.connect(self._on_record_read)
        worker.errored.connect(self._on_record_failed)
        self._record_worker = worker
        start_worker(worker)

    @Slot(object)
    def _on_record_read(self, result) -> None:
        path, record = result
        try:
            request = GenerationRequest.from_dict(record["request"])
        except (KinemoError, TypeError) as exc:
            self.show_message("error", f"{Path(path).name}: the embedded settings are unusable: {describe(exc)}")
            return
        self.form.set_request(request)
        self.show_message(
            "info", f"Settings restored from {Path(path).name} (made by Kinemo {record.get('kinemo', '?')})"
        )
        self.settingsRestored.emit(path)

    @Slot(object)
    def _on_record_failed(self, exc) -> None:
        self.show_message("error", f"Cannot restore settings: {describe(exc)}")

    # == export ======================================================================================
    @Slot()
    def open_export_dialog(self) -> None:
        """Ctrl+E: choose format and destination, then export the clip in the player."""
        if self.current_clip is None:
            self.show_message("warning", "Nothing to export yet: generate a clip or pick one from the history.")
            return
        if self._export_worker is not None:
            return
        _, request = self.current_clip
        prefs = self._settings.get("export", {})
        dialog = ExportDialog(
            self, prefs.get("format", "mp4"), request.fps, request.width, request.height, int(prefs.get("quality", 80))
        )
        if dialog.exec() != ExportDialog.DialogCode.Accepted:
            return
        try:
            settings = dialog.settings()
        except Exception as exc:  # noqa: BLE001 - ExportError: shown, never raised
            self.show_message("error", describe(exc))
            return
        start = Path(prefs.get("folder") or Path.home()) / suggested_name(request, settings.format)
        options = QFileDialog.Option.DontConfirmOverwrite  # the window asks itself, for files and folders alike
        if settings.format == "png":
            title, filters = "Name a new folder for the PNG frames", "Folder (*)"
        else:
            title, filters = "Export clip", f"{settings.format.upper()} (*.{settings.format})"
        path, _ = QFileDialog.getSaveFileName(self, title, str(start), filters, options=options)
        if path:
            self.export_clip(path, settings)

    def ask_replace(self, path: Path, fmt: str) -> str:
        """ "replace", "rename" or "cancel" for a destination that exists (tests replace this)."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Already exists")
        box.setText(f"{path.name} already exists in {path.parent}.")
        replace = None
        if fmt != "png":  # a folder of frames is never deleted for you
            replace = box.addButton("Replace", QMessageBox.ButtonRole.DestructiveRole)
        rename = box.addButton(f"Save as {next_free_path(path, fmt).name}", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(rename)
        box.exec()
        clicked = box.clickedButton()
        return "replace" if clicked is replace and replace is not None else "rename" if clicked is rename else "cancel"

    def export_clip(self, path: str | Path, settings) -> bool:
        """Export the player's clip to path with settings (ExportSettings); True if the export started."""
        from export import ExportError, check_destination

        if self.current_clip is None or self._export_worker is not None:
            self.show_message(
                "warning", "Nothing to export yet." if self.current_clip is None else "An export is already running."
            )
            return False
        path = with_extension(path, settings.format)
        overwrite = False
        if is_taken(path, settings.format):
            choice = self.ask_replace(path, settings.format)
            if choice == "cancel":
                self.show_message("info", f"Export cancelled; {path.name} was left as it was.")
                return False
            if choice == "rename":
                path = next_free_path(path, settings.format)
            else:
                overwrite = settings.format != "png"
        try:
            check_destination(path, settings.validate(), overwrite)
        except ExportError as exc:
            self.show_message("error", f"Cannot export: {describe(exc)}")
            return False
        frames, request = self.current_clip
        worker = FunctionWorker(export_clip, path, frames, settings, request.to_dict(), overwrite)
        worker.returned.connect(self._on_exported)
        worker.errored.connect(self._on_export_failed)
        self._export_worker = worker
        self._export_settings = settings
        self.statusBar().showMessage(f"Exporting {path.name}…")
        self._update_actions()
        start_worker(worker)
        return True

    @Slot(object)
    def _on_exported(self, path) -> None:
        self._export_worker = None
        settings = self._export_settings
        self._settings["export"] = {
            "folder": str(Path(path).parent),
            "format": settings.format,
            "quality": settings.quality,
        }
        self._save_settings()
        self.show_message("info", f"Exported {Path(path).name} to {Path(path).parent}")
        self._update_actions()
        self.exportFinished.emit(str(path))

    @Slot(object)
    def _on_export_failed(self, exc) -> None:
        self._export_worker = None
        self.show_message("error", f"Export failed: {describe(exc)}")
        self._update_actions()
        self.exportFailed.emit(describe(exc))

    # == settings and lifetime =======================================================================
    def _restore_settings(self) -> None:
        self.form.restore_state(self._settings.get("form", {}))
        window = self._settings.get("window", {})
        try:
            if window.get("geometry"):
                self.restoreGeometry(QByteArray.fromHex(window["geometry"].encode()))
            if window.get("splitter"):
                self.splitter.restoreState(QByteArray.fromHex(window["splitter"].encode()))
        except (AttributeError, TypeError):
            pass

    def _save_settings(self) -> None:
        self._settings["form"] = self.form.state()
        self._settings["window"] = {
            "geometry": bytes(self.saveGeometry().toHex()).decode(),
            "splitter": bytes(self.splitter.saveState().toHex()).decode(),
        }
        try:
            self.settings_store.save(self._settings)
        except OSError as exc:
            self.show_message("error", f"Could not save the settings: {exc}")

    @Slot(object)
    def _on_warm_up_failed(self, exc) -> None:
        self.statusBar().showMessage(f"The engine did not start in the background: {describe(exc)}", 10000)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._shown:
            self._shown = True
            self.firstShown.emit()

    def closeEvent(self, event) -> None:
        self._save_settings()
        self._model_check_timer.stop()
        self.queue.shutdown()
        self.form.shutdown()
        for worker in (self._export_worker, self._record_worker):
            wait_for(worker, 10000)
        super().closeEvent(event)
