"""Downloading a hub model from the studio: progress the window can show, and a cancel that stops it.

huggingface-hub reports a download through the tqdm class it is given. progress_tqdm(meter) makes
one that adds the bytes to a DownloadMeter (thread-safe, no Qt) and raises DownloadCancelled from
update() once the meter is cancelled. The DownloadPanel reads the meter with a QTimer on the UI
thread, so the download threads never touch a widget and no signal is sent per chunk.
A cancelled download continues the next time from the files that arrived whole (huggingface-hub keeps
them); a file cut off midway is fetched again from its start.
"""

from __future__ import annotations

import itertools
import threading

from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QWidget

from app.studio.messages import describe
from app.studio.worker import FunctionWorker, start_worker, wait_for
from engine.api.errors import InvalidRequest, ModelLoadError

POLL_MS = 100
PER_MILLE = 1000


class DownloadCancelled(ModelLoadError):
    """The download was stopped on request (a ModelLoadError, so engine.registry.hub.pull passes it on unchanged)."""


class DownloadMeter:
    """Bytes done and expected across the byte-counting bars of one download; thread-safe.

    huggingface-hub opens several bars per repository that count the same bytes (transferred and
    written), so the bars opened together form a phase measured by its largest bar; a bar opened
    after bytes have arrived starts the next phase (the motion adapter after the pipeline).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._ids = itertools.count(1)
        self._earlier = 0  # bytes of the phases already done
        self._bars: dict[int, list[int]] = {}  # bar id -> [done, total] in the current phase

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        """Raise DownloadCancelled once cancel() was called."""
        if self._cancelled.is_set():
            raise DownloadCancelled("download cancelled")

    def opened(self, done: int, total: int) -> int:
        """A byte-counting bar opened; returns its id."""
        with self._lock:
            if any(d > 0 for d, _ in self._bars.values()):
                self._earlier += max(d for d, _ in self._bars.values())
                self._bars = {}
            bar = next(self._ids)
            self._bars[bar] = [int(done), int(total)]
            return bar

    def moved(self, bar: int, n: int, total: int) -> int | None:
        """n more bytes on a bar (several threads share one); its new count, or None for a bar of an earlier phase."""
        with self._lock:
            counts = self._bars.get(bar)
            if counts is None:
                return None
            counts[0] += int(n)
            counts[1] = int(total)
            return counts[0]

    def progress(self) -> tuple[int, int]:
        """(bytes done, bytes expected so far); expected is 0 while unknown."""
        with self._lock:
            done = max((d for d, _ in self._bars.values()), default=0)
            total = max((t for _, t in self._bars.values()), default=0)
            return self._earlier + done, self._earlier + max(total, done) if total else 0


def progress_tqdm(meter: DownloadMeter) -> type:
    """A tqdm class for huggingface-hub that counts bytes into meter and draws nothing."""
    from tqdm.auto import tqdm

    class MeteredTqdm(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs.pop("name", None)  # huggingface-hub names its own bars; plain tqdm refuses the argument
            kwargs["disable"] = True
            counts_bytes = kwargs.get("unit") == "B"
            self._meter_bar = (
                meter.opened(kwargs.get("initial") or 0, kwargs.get("total") or 0) if counts_bytes else None
            )
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            meter.check()
            counted = meter.moved(self._meter_bar, n or 0, self.total or 0) if self._meter_bar is not None else None
            self.n = counted if counted is not None else self.n + (n or 0)  # a disabled tqdm keeps no count itself

    return MeteredTqdm


def download_model(model: str, meter: DownloadMeter):
    """Worker thread: download (or finish downloading) a hub model; returns its ModelOptions, now on disk."""
    from engine.registry import hub
    from engine.registry.model_options import model_options
    from engine.registry.resolve import hub_model

    target = hub_model(model)
    if target is None:
        raise InvalidRequest(f"{model} is not a hub model: there is nothing to download")
    hub.pull(target, token=None, tqdm_class=progress_tqdm(meter))
    return model_options(model)


def gigabytes(num_bytes: int) -> str:
    return f"{num_bytes / 1e9:.2f} GB" if num_bytes >= 1e8 else f"{num_bytes / 1e6:.0f} MB"


class DownloadPanel(QWidget):
    """'Download (about N GB)' for a model that is not on disk; then a progress bar and Cancel."""

    message = Signal(str, str)  # level, text
    downloaded = Signal(object)  # the model's ModelOptions, now on disk
    failed = Signal(str)  # one line
    cancelled = Signal(str)  # the model

    def __init__(self, parent=None):
        super().__init__(parent)
        self.download_button = QPushButton("Download")
        self.download_button.setObjectName("downloadButton")
        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("downloadProgress")
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("downloadCancelButton")
        self.cancel_button.setToolTip("Stop the download; the files that arrived whole are kept for the next time")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.download_button)
        layout.addWidget(self.progress_bar, 1)
        layout.addWidget(self.cancel_button)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self.download_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self._options = None  # ModelOptions of the selected model
        self._model: str | None = None  # the model being downloaded
        self._meter: DownloadMeter | None = None
        self._worker: FunctionWorker | None = None
        self._update()

    @property
    def downloading(self) -> str | None:
        """The model being downloaded, or None."""
        return self._model

    def show_model(self, options) -> None:
        """The selected model changed or was checked again (ModelOptions or None)."""
        self._options = options
        self._update()

    def _update(self) -> None:
        busy = self._model is not None
        options = self._options
        wanted = options is not None and options.needs_download
        self.download_button.setVisible(wanted and not busy)
        self.progress_bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.setVisible(busy or wanted)
        if wanted:
            size = f" (about {options.disk_gb:g} GB)" if options.disk_gb else ""
            self.download_button.setText(f"Download{size}")
            gated = (
                "; it is gated: accept its licence on the hub and log in with `hf auth login` first"
                if options.gated
                else ""
            )
            self.download_button.setToolTip(
                f"{options.name} is not on disk: download it from the Hugging Face hub{gated}"
            )

    @Slot()
    def start(self) -> None:
        options = self._options
        if self._model is not None or options is None or not options.needs_download:
            return
        self._model, self._meter = options.model, DownloadMeter()
        worker = FunctionWorker(download_model, options.model, self._meter)
        worker.returned.connect(self._on_downloaded)
        worker.errored.connect(self._on_failed)
        self._worker = worker
        self._show_progress(0, 0)
        self._timer.start()
        self._update()
        start_worker(worker)

    @Slot()
    def cancel(self) -> None:
        if self._meter is not None:
            self._meter.cancel()
            self.cancel_button.setEnabled(False)
            self.progress_bar.setFormat("Cancelling…")

    @Slot()
    def _poll(self) -> None:
        if self._meter is not None and not self._meter.cancelled:
            self._show_progress(*self._meter.progress())

    def _show_progress(self, done: int, total: int) -> None:
        name = self._model
        if total <= 0:
            self.progress_bar.setRange(0, 0)  # busy: the size is not known yet
            self.progress_bar.setFormat(f"Starting the download of {name}…")
            return
        self.progress_bar.setRange(0, PER_MILLE)
        self.progress_bar.setValue(min(PER_MILLE, done * PER_MILLE // total))
        self.progress_bar.setFormat(f"{name}: {gigabytes(done)} of {gigabytes(total)}")

    def _finish(self) -> str:
        model = self._model
        self._timer.stop()
        self._model = self._meter = self._worker = None
        self.cancel_button.setEnabled(True)
        self._update()
        return model

    @Slot(object)
    def _on_downloaded(self, options) -> None:
        self._finish()
        self.message.emit("info", f"{options.name} is on disk")
        self.downloaded.emit(options)

    @Slot(object)
    def _on_failed(self, exc) -> None:
        was_cancelled = self._meter is not None and self._meter.cancelled
        model = self._finish()
        if was_cancelled or isinstance(exc, DownloadCancelled):
            self.message.emit(
                "info", f"Download of {model} cancelled; the files that arrived whole are kept for the next time"
            )
            self.cancelled.emit(model)
            return
        text = f"Download failed: {describe(exc)}"
        self.message.emit("error", text)
        self.failed.emit(text)

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Cancel a running download and wait for its thread (closing the window)."""
        if self._meter is not None:
            self._meter.cancel()
        wait_for(self._worker, timeout_ms)
