"""The memory plan line under the model picker: the run's estimated peak memory, worked out off the UI thread.

memory_plan_line runs on a worker thread (it reads weight headers and the free memory); MemoryPlan asks it
again a moment after the settings change and shows the answer when it still fits the form.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtWidgets import QLabel

from app.studio.worker import FunctionWorker, start_worker, wait_for

MEMORY_PLAN_DELAY_MS = 300  # settle after a change before estimating again


def memory_plan_line(
    model: str,
    frames: int,
    width: int,
    height: int,
    steps: int,
    guidance: float,
    memory: str,
    image: bool,
    quantize: bool = False,
    onnx: bool = False,
) -> str:
    """Worker thread: the memory plan's line (reads weight headers and free memory; no torch), counting what
    the int8 and ONNX switches load, as the engine's own plan does."""
    from engine.planning.preview import preview_plan

    try:
        return preview_plan(model, frames, width, height, steps, guidance, memory, image, quantize, onnx)
    except Exception as exc:  # noqa: BLE001 - an estimate must never break the form
        from app.studio.messages import describe

        return f"memory: not estimated ({describe(exc)})"


class MemoryPlan(QObject):
    """The plan's label and the one estimate at a time behind it.

    question() returns memory_plan_line's arguments for what the form shows now; the label shows an
    answer only while the form still asks that question.
    """

    def __init__(self, question: Callable[[], tuple], parent=None):
        super().__init__(parent)
        self._question = question
        self.label = QLabel("")
        self.label.setObjectName("memoryPlanLabel")
        self.label.setWordWrap(True)
        self.label.setToolTip("Estimated peak memory of the run and how it will run (before it starts)")
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(MEMORY_PLAN_DELAY_MS)
        self.timer.timeout.connect(self.update)
        self._worker: FunctionWorker | None = None
        self._asked: tuple | None = None  # what the latest estimate is for

    @Slot()
    def schedule(self) -> None:
        """Estimate again once the settings have been still for a moment."""
        self.timer.start()

    def forget(self) -> None:
        """The model is on disk now, perhaps: the next estimate runs even for the same settings."""
        self._asked = None

    @Slot()
    def update(self) -> None:
        """Estimate the run's memory on a worker thread; the label shows it when it comes back."""
        question = self._question()
        if question == self._asked:
            return
        if self._worker is not None:  # one at a time: asked again when this one returns
            self.timer.start()
            return
        self._asked = question
        worker = FunctionWorker(lambda q=question: (q, memory_plan_line(*q)))
        worker.returned.connect(self._on_plan)
        worker.finished.connect(self._on_worker_done)
        self._worker = worker
        start_worker(worker)

    @Slot(object)
    def _on_plan(self, result) -> None:
        question, line = result
        if question == self._question():
            self.label.setText(line[0].upper() + line[1:] if line else "")

    @Slot()
    def _on_worker_done(self) -> None:
        self._worker = None
        if self._question() != self._asked:
            self.timer.start()

    def shutdown(self) -> None:
        """Stop asking and wait for the estimate in flight (closing the window)."""
        self.timer.stop()
        wait_for(self._worker, 10000)
