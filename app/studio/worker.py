"""Workers that run off the UI thread, in the style of superqt's thread_worker.

A GeneratorWorker iterates a generator in its own QThread: every yielded value becomes a signal,
an abort request is checked between yields (and offered to the generator as should_stop), and an
exception becomes the `errored` signal instead of a crash. A FunctionWorker runs one call.
start_worker() moves a worker to a fresh QThread and keeps both alive until the thread ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot


class WorkerBase(QObject):
    started = Signal()
    returned = Signal(object)  # the function's (or generator's) return value
    errored = Signal(object)  # the exception
    aborted = Signal()
    finished = Signal()  # always last, whatever happened

    # exceptions that mean "stopped on request" rather than "failed" (when an abort was asked for)
    abort_exceptions: tuple[type[BaseException], ...] = ()

    def __init__(self, func: Callable, *args, **kwargs):
        super().__init__()
        self._func, self._args, self._kwargs = func, args, kwargs
        self._abort = threading.Event()
        self.thread_handle: QThread | None = None

    def quit(self) -> None:
        """Ask the work to stop; thread-safe."""
        self._abort.set()

    def abort_requested(self) -> bool:
        return self._abort.is_set()

    @Slot()
    def run(self) -> None:
        self.started.emit()
        try:
            self.work()
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a signal
            if self._abort.is_set() and isinstance(exc, self.abort_exceptions):
                self.aborted.emit()
            else:
                self.errored.emit(exc)
        finally:
            self.finished.emit()

    def work(self) -> None:
        raise NotImplementedError


class FunctionWorker(WorkerBase):
    def work(self) -> None:
        self.returned.emit(self._func(*self._args, **self._kwargs))


class GeneratorWorker(WorkerBase):
    yielded = Signal(object)

    def work(self) -> None:
        generator = self._func(*self._args, **self._kwargs)
        try:
            while True:
                if self._abort.is_set():
                    generator.close()
                    self.aborted.emit()
                    return
                try:
                    value = next(generator)
                except StopIteration as stop:
                    self.returned.emit(stop.value)
                    return
                self.on_yield(value)
        finally:
            generator.close()

    def on_yield(self, value) -> None:
        """Called in the worker thread for each value; subclasses map values to typed signals."""
        self.yielded.emit(value)


class _Keeper(QObject):
    """Holds a running (thread, worker) pair on the UI thread and lets go once the thread has ended.

    Signals connected to plain functions run in the emitting thread in PySide6, so everything that
    must happen on the UI thread is a slot of a QObject living there, like this one.
    """

    def __init__(self, thread: QThread, worker: WorkerBase):
        super().__init__()
        self.thread, self.worker = thread, worker

    @Slot()
    def release(self) -> None:
        self.thread.wait()  # finished() comes just before the thread really ends
        _live.discard(self)


_live: set[_Keeper] = set()


def start_worker(worker: WorkerBase) -> QThread:
    """Run worker in a new QThread; the pair stays referenced until the thread has finished."""
    thread = QThread()
    thread.setObjectName(type(worker).__name__)
    worker.moveToThread(thread)
    worker.thread_handle = thread
    keeper = _Keeper(thread, worker)
    _live.add(keeper)
    thread.started.connect(worker.run)
    # direct: the thread may be waited on from the UI thread, whose event loop is then not running
    worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    thread.finished.connect(keeper.release, Qt.ConnectionType.QueuedConnection)
    thread.start()
    return thread


def wait_for(worker: WorkerBase | None, timeout_ms: int = 15000) -> bool:
    """Block until worker's thread ends (used on close only); True if it ended."""
    if worker is None or worker.thread_handle is None:
        return True
    return worker.thread_handle.wait(timeout_ms)
