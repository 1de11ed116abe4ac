"""The generation queue: pending requests that can be edited, and the one job that runs.

JobQueue is the view-model the window binds to. Each job runs as a GenerationWorker on its own
QThread; the worker turns every engine event into a signal, which the queue relays.
Finished clips are saved to the history on the worker thread, so a cancelled job leaves no files.
"""

from __future__ import annotations

import itertools
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal, Slot

from app.studio.engine_host import InputsRead
from app.studio.worker import GeneratorWorker, start_worker, wait_for
from engine.api.errors import Cancelled
from engine.api.events import Finished, Frames, Loaded, Notice, Preview, Progress, Sound


@dataclass
class Saved:
    """Not an engine event: the job's clip is in the history."""

    entry: object  # HistoryEntry
    frames: np.ndarray
    request: object = None  # the GenerationRequest as the engine read it (inputs fingerprinted)


def run_generation(engine, history, request, should_stop, options=None):
    """The job (worker thread): yields the engine's events, returns the clip saved to the history.

    Saved is returned, not yielded: once saving has begun the job completes, so a late cancel can
    never report "nothing was saved" for a clip that is in the history.
    """
    chunks, seconds, sound = [], 0.0, None
    with closing(engine.generate(request, should_stop=should_stop, options=options)) as events:
        for event in events:
            if isinstance(event, Frames):
                chunks.append(event.frames)
            elif isinstance(event, Sound):
                sound = event
            elif isinstance(event, Finished):
                seconds = event.seconds
            elif isinstance(event, InputsRead):
                request = event.request  # the history and exports record what was read
            yield event
    if should_stop():
        raise Cancelled("generation cancelled")
    if not chunks:
        raise RuntimeError("the engine finished without frames")
    frames = np.concatenate(chunks)
    return Saved(history.save(request, frames, seconds, sound), frames, request)


class GenerationWorker(GeneratorWorker):
    loaded = Signal(str, float)
    notice = Signal(object)  # Notice (MemoryNotice for the run's memory plan)
    progress = Signal(int, int, float)  # step, total, elapsed seconds
    preview = Signal(int, object)  # step, (f, h, w, 3) uint8
    frames = Signal(int, object)  # start index, finished (n, h, w, 3) uint8
    generated = Signal(object)  # Finished
    saved = Signal(object)  # Saved (the generator's return value)

    abort_exceptions = (Cancelled,)

    def __init__(self, engine, history, request, options=None):
        super().__init__(run_generation, engine, history, request)
        self._kwargs["should_stop"] = self.abort_requested
        self._kwargs["options"] = options
        self.returned.connect(self.saved, Qt.ConnectionType.DirectConnection)

    def on_yield(self, event) -> None:
        if isinstance(event, Progress):
            self.progress.emit(event.step, event.total, event.elapsed)
        elif isinstance(event, Preview):
            self.preview.emit(event.step, event.frames)
        elif isinstance(event, Notice):
            self.notice.emit(event)
        elif isinstance(event, Loaded):
            self.loaded.emit(event.model, event.seconds)
        elif isinstance(event, Frames):
            self.frames.emit(event.start, event.frames)
        elif isinstance(event, Finished):
            self.generated.emit(event)


_ids = itertools.count(1)


@dataclass
class Job:
    request: object  # GenerationRequest
    id: int = field(default_factory=lambda: next(_ids))
    options: object = None  # the run's RunOptions (memory, int8, ONNX), not part of the request
    started: float | None = None

    @property
    def label(self) -> str:
        r = self.request
        prompt = " ".join(r.prompt.split())
        prompt = prompt if len(prompt) <= 48 else prompt[:47] + "…"
        extends = f" · +{r.frames} frames to {Path(r.extends).name}" if r.extends else ""
        return f"{prompt}  ·  seed {r.seed} · {r.steps} steps{extends}"


class JobQueue(QObject):
    changed = Signal()  # pending list or running job changed
    jobStarted = Signal(object)  # Job
    jobLoaded = Signal(object, str, float)  # Job, model, seconds
    jobNotice = Signal(object, object)  # Job, Notice (MemoryNotice for the run's memory plan)
    jobProgress = Signal(object, int, int, float)  # Job, step, total, elapsed
    jobPreview = Signal(object, int, object)  # Job, step, frames
    jobFrames = Signal(object, int, object)  # Job, start index, finished frames (long clips: window by window)
    jobSaved = Signal(object, object)  # Job, Saved
    jobFailed = Signal(object, object)  # Job, exception
    jobCancelled = Signal(object)
    idle = Signal()  # nothing running and nothing pending
    saveFailed = Signal(str)  # the queue could not be written to its file (said once)

    def __init__(self, engine, history, parent=None, store=None):
        """store: a QueueStore that keeps the running and waiting jobs across restarts (None: not kept)."""
        super().__init__(parent)
        self.engine, self.history, self.store = engine, history, store
        self.pending: list[Job] = []
        self.current: Job | None = None
        self._worker: GenerationWorker | None = None
        self._relay: _JobRelay | None = None
        self._closing = False
        self._save_failed = False
        self.changed.connect(self._persist)

    # -- keeping the queue across restarts -----------------------------------------------------------
    @Slot()
    def _persist(self) -> None:
        """Write the running job and the waiting ones; closing the window keeps what was there, so an
        interrupted job waits again after a restart."""
        if self.store is None or self._closing:
            return
        try:
            self.store.save(([self.current] if self.current is not None else []) + self.pending)
        except OSError as exc:
            if not self._save_failed:
                self._save_failed = True
                self.saveFailed.emit(f"Could not save the queue: {exc}")

    def restore(self, saved: list[tuple]) -> list[Job]:
        """Jobs kept by the last session ([(request, options)]) wait; resume() or the next Generate starts them."""
        jobs = [Job(request, options=options) for request, options in saved]
        if jobs:
            self.pending.extend(jobs)
            self.changed.emit()
        return jobs

    def resume(self) -> None:
        """Start the first waiting job when nothing runs."""
        self._start_next()

    # -- editing ------------------------------------------------------------------------------------
    def add(self, request, options=None) -> Job:
        job = Job(request, options=options)
        self.pending.append(job)
        self.changed.emit()
        self._start_next()
        return job

    def remove(self, job_id: int) -> bool:
        before = len(self.pending)
        self.pending = [j for j in self.pending if j.id != job_id]
        if len(self.pending) != before:
            self.changed.emit()
            return True
        return False

    def move(self, job_id: int, offset: int) -> bool:
        """Move a pending job up (offset < 0) or down the queue."""
        index = next((i for i, j in enumerate(self.pending) if j.id == job_id), None)
        if index is None:
            return False
        target = max(0, min(len(self.pending) - 1, index + offset))
        if target == index:
            return False
        self.pending.insert(target, self.pending.pop(index))
        self.changed.emit()
        return True

    def clear(self) -> None:
        if self.pending:
            self.pending.clear()
            self.changed.emit()

    @property
    def busy(self) -> bool:
        return self.current is not None

    # -- running ------------------------------------------------------------------------------------
    def cancel_current(self) -> bool:
        if self._worker is None:
            return False
        self._worker.quit()
        return True

    @property
    def cancelling(self) -> bool:
        return self._worker is not None and self._worker.abort_requested()

    def _start_next(self) -> None:
        if self.current is not None or not self.pending or self._closing:
            return
        job = self.pending.pop(0)
        job.started = time.monotonic()
        worker = GenerationWorker(self.engine, self.history, job.request, job.options)
        relay = _JobRelay(self, job, worker)  # UI-thread slots: lambdas would run on the worker thread
        worker.loaded.connect(relay.loaded)
        worker.notice.connect(relay.notice)
        worker.progress.connect(relay.progress)
        worker.preview.connect(relay.preview)
        worker.frames.connect(relay.frames)
        worker.saved.connect(relay.saved)
        worker.errored.connect(relay.errored)
        worker.aborted.connect(relay.aborted)
        worker.finished.connect(relay.finished)
        self.current, self._worker, self._relay = job, worker, relay
        self.changed.emit()
        self.jobStarted.emit(job)
        start_worker(worker)

    def _job_ended(self, worker) -> None:
        if worker is not self._worker:
            return
        self.current = self._worker = self._relay = None
        self.changed.emit()
        self._start_next()
        if self.current is None and not self.pending:
            self.idle.emit()

    def shutdown(self, timeout_ms: int = 15000) -> None:
        """Stop everything (window closing): drop the queue, cancel the job, wait for its thread."""
        self._closing = True
        self.pending.clear()
        worker = self._worker
        if worker is not None:
            worker.quit()
            wait_for(worker, timeout_ms)


class _JobRelay(QObject):
    """Lives on the UI thread; forwards one job's worker signals as the queue's signals."""

    def __init__(self, queue: JobQueue, job: Job, worker: GenerationWorker):
        super().__init__(queue)
        self.queue, self.job, self.worker = queue, job, worker

    @Slot(str, float)
    def loaded(self, model: str, seconds: float) -> None:
        self.queue.jobLoaded.emit(self.job, model, seconds)

    @Slot(object)
    def notice(self, event) -> None:
        self.queue.jobNotice.emit(self.job, event)

    @Slot(int, int, float)
    def progress(self, step: int, total: int, elapsed: float) -> None:
        self.queue.jobProgress.emit(self.job, step, total, elapsed)

    @Slot(int, object)
    def preview(self, step: int, frames) -> None:
        self.queue.jobPreview.emit(self.job, step, frames)

    @Slot(int, object)
    def frames(self, start: int, frames) -> None:
        self.queue.jobFrames.emit(self.job, start, frames)

    @Slot(object)
    def saved(self, saved) -> None:
        self.queue.jobSaved.emit(self.job, saved)

    @Slot(object)
    def errored(self, exc) -> None:
        self.queue.jobFailed.emit(self.job, exc)

    @Slot()
    def aborted(self) -> None:
        self.queue.jobCancelled.emit(self.job)

    @Slot()
    def finished(self) -> None:
        self.queue._job_ended(self.worker)
        self.deleteLater()
