"""The studio's main window: lays out the panels and wires them to the queue, the player and each other.

Layout (fits 1280x800): request form on the left, player with progress and messages in the middle,
queue and history on the right. Every failure ends up in the message area, once; nothing here blocks the
UI thread on the engine, ffmpeg or a large picture. The work behind each part lives in its own module:
request_form (the request), job_view (the running job), queue_panel, history_panel, export_controller
and clip_opener (files dropped on the window).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.studio.clip_opener import ClipOpener
from app.studio.cluster_engine import chosen_engine
from app.studio.drop_zone import local_paths
from app.studio.export_controller import ExportController, ask_replace
from app.studio.history import HistoryEntry
from app.studio.history_panel import HistoryPanel
from app.studio.job_queue import JobQueue
from app.studio.job_view import JobView
from app.studio.main_thread_gc import MainThreadCollector
from app.studio.messages import describe
from app.studio.plain_text import plain_labels
from app.studio.preview import PlayerWidget
from app.studio.queue_panel import QueuePanel, small_button
from app.studio.request_form import RequestForm
from app.studio.storage import open_storage, startup_notice
from engine.api.errors import KinemoError
from engine.api.request import GenerationRequest

MODEL_CHECK_DELAY_MS = 250  # after the window shows, check which models are on disk


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
        self.collector = MainThreadCollector(self)  # worker threads never free Qt wrappers
        self.storage = open_storage()
        self.settings_store = self.storage.settings
        self._settings = self.settings_store.load()
        self.history = self.storage.history
        self.engine = engine if engine is not None else chosen_engine(self._settings)  # local, remote or cluster
        self.queue = JobQueue(self.engine, self.history, self, store=self.storage.queue)
        self.current_clip: tuple[np.ndarray, GenerationRequest] | None = None
        self.current_sound: Path | None = None  # the current clip's sound (a WAV in the history) if it has one
        self._shown = False
        self._model_check_timer = QTimer(self)
        self._model_check_timer.setSingleShot(True)
        self._model_check_timer.setInterval(MODEL_CHECK_DELAY_MS)
        self.job_view = JobView(self)
        self.exports = ExportController(self, self._settings)
        self.clip_opener = ClipOpener(self)

        self._build()
        self._connect()
        self._restore_settings()
        self.history_panel.load()
        restored = self.queue.restore(self.storage.queue.load()) if self.storage.queue is not None else []
        self._refresh_queue()
        self.update_actions()
        notice = startup_notice(self.storage, self.history.skipped, len(restored))
        if notice is not None:
            self.show_message(*notice)

    # == building ====================================================================================
    def _build(self) -> None:
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.addWidget(self._build_left())
        self.splitter.addWidget(self._build_middle())
        self.splitter.addWidget(self._build_right())
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([400, 580, 300])
        self.setCentralWidget(self.splitter)
        plain_labels(self)  # labels show prompts, paths and messages quoting them: never as HTML
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

    def _build_left(self) -> QWidget:
        """The request form, scrolled, over Generate and Cancel."""
        self.form = RequestForm()
        self.prompt_edit = self.form.prompt_edit
        self.generate_button = small_button(
            "Generate", "generateButton", "Generate, or add to the queue while a job runs (Ctrl+Enter)"
        )
        self.cancel_button = small_button("Cancel", "cancelButton", "Stop the running job (Esc); queued jobs still run")
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.form)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # no horizontal bar: the viewport fits the form's narrowest layout beside the vertical bar
        scroll.setMinimumWidth(self.form.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.cancel_button)
        left = QWidget()
        left.setMinimumWidth(340)
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(scroll, 1)
        left_layout.addLayout(buttons)
        return left

    def _build_middle(self) -> QWidget:
        """The player, the progress bar with Export beside it, the message area."""
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
        self.export_button = small_button(
            "Export…", "exportButton", "Export the clip in the player as MP4, GIF, WebM or PNG frames (Ctrl+E)"
        )
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress_bar, 1)
        progress_row.addWidget(self.export_button)
        middle = QWidget()
        middle_layout = QVBoxLayout(middle)
        middle_layout.addWidget(self.player, 1)
        middle_layout.addLayout(progress_row)
        middle_layout.addWidget(self.message_label)
        return middle

    def _build_right(self) -> QWidget:
        """The queue over the history."""
        self.queue_panel = QueuePanel(self.queue, self)
        self.queue_list = self.queue_panel.list
        self.queue_up_button, self.queue_down_button = self.queue_panel.up_button, self.queue_panel.down_button
        self.queue_remove_button, self.queue_clear_button = (
            self.queue_panel.remove_button,
            self.queue_panel.clear_button,
        )
        self.history_panel = HistoryPanel(self.history, self)
        self.history_list = self.history_panel.list
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.queue_panel.box)
        right.addWidget(self.history_panel.box)
        right.setStretchFactor(0, 1)
        right.setStretchFactor(1, 3)
        right.setMinimumWidth(260)
        return right

    def _connect(self) -> None:
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button.clicked.connect(self.open_export_dialog)
        self.form.message.connect(self.show_message)
        self._model_check_timer.timeout.connect(self.form.refresh_models)
        self.firstShown.connect(self._model_check_timer.start)
        self.queue.changed.connect(self._refresh_queue)
        self.queue.saveFailed.connect(self._on_queue_not_saved)
        self.job_view.connect_to(self.queue)
        self.queue_list.itemSelectionChanged.connect(self.update_actions)

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

    # == generation and the queue ====================================================================
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
            self.update_actions()

    @Slot(str)
    def _on_queue_not_saved(self, text: str) -> None:
        self.show_message("warning", text)

    @Slot()
    def _refresh_queue(self) -> None:
        self.queue_panel.refresh()
        self.update_actions()

    @Slot()
    def move_selected_job_up(self) -> None:
        self.queue_panel.move_selected_job_up()

    @Slot()
    def move_selected_job_down(self) -> None:
        self.queue_panel.move_selected_job_down()

    @Slot()
    def update_actions(self) -> None:
        """Enable what can be done now: cancel while a job runs, export while a clip is shown and none runs."""
        busy = self.queue.busy
        self.generate_button.setText("Add to queue" if busy else "Generate")
        self.cancel_button.setEnabled(busy and not self.queue.cancelling)
        self.export_button.setEnabled(self.current_clip is not None and not self.exports.busy)
        self.queue_panel.update_buttons()

    # == clip in the player ==========================================================================
    def set_clip(self, frames: np.ndarray, request: GenerationRequest, sound: Path | None = None) -> None:
        """Put a clip ((f, h, w, 3) uint8 frames, the request that made it, and its sound as a WAV where it has
        one) in the player, ready to export."""
        self.current_clip = (np.asarray(frames), request)
        self.current_sound = sound
        self.show_current_clip()
        self.update_actions()
        self.clipChanged.emit()

    def show_current_clip(self) -> None:
        """Show the clip again after a run's live previews (or an empty player when there is none)."""
        if self.current_clip is None:
            self.player.clear()
            return
        frames, request = self.current_clip
        self.player.show_frames(frames, request.fps, request.width / request.height, sound=self.current_sound)

    # == history =====================================================================================
    def restore_history(self, entry: HistoryEntry) -> None:
        """Put an entry's settings in the form and its clip in the player."""
        self.history_panel.restore(entry)

    def remove_history(self, entry: HistoryEntry) -> None:
        self.history_panel.remove(entry)

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
        self.clip_opener.open_path(path)

    def restore_from_clip(self, path: str) -> None:
        """Read the record embedded in a clip (worker thread) and restore its settings."""
        self.clip_opener.restore_from_clip(path)

    # == export ======================================================================================
    @Slot()
    def open_export_dialog(self) -> None:
        """Ctrl+E: choose format and destination, then export the clip in the player."""
        self.exports.open_dialog()

    def ask_replace(self, path: Path, fmt: str) -> str:
        """ "replace", "rename" or "cancel" for a destination that exists (tests replace this)."""
        return ask_replace(self, path, fmt)

    def export_clip(self, path: str | Path, settings) -> bool:
        """Export the player's clip to path with settings (ExportSettings); True if the export started."""
        return self.exports.export(path, settings)

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

    def save_settings(self) -> None:
        """Write the form, the window's geometry and the export preferences to the settings file."""
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
        """A dead or silent engine is an error in the window at once; the next Generate tries a fresh one."""
        self.show_message("error", f"{describe(exc)}; Generate tries again")

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._shown:
            self._shown = True
            self.firstShown.emit()

    def closeEvent(self, event) -> None:
        self.save_settings()
        self._model_check_timer.stop()
        self.queue.shutdown()
        self.form.shutdown()
        self.exports.shutdown()
        self.clip_opener.shutdown()
        self.history_panel.shutdown()
        self.storage.close()
        self.collector.stop()
        super().closeEvent(event)
