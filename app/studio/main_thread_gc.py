"""Python's cyclic garbage collection on the UI thread only, while a studio window is open.

The studio's worker threads allocate (imports, numpy, pictures), so the collector would otherwise run on one of
them now and then; when it frees a Qt wrapper there, Shiboken 6.12 hands the deletion to the UI thread, which can
crash the process (a segfault in BindingManager::runDeletionInMainThread, seen in the studio tests). As
pyqtgraph's GarbageCollector does, automatic collection is switched off and a UI-thread timer collects each
generation once Python's own thresholds say it is due; closing the last window switches it back on.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer, Slot

CHECK_MS = 500
_state = {"holders": 0, "was_enabled": True}


class MainThreadCollector(QObject):
    """Held by a window from its creation to its close (stop())."""

    def __init__(self, parent=None):
        super().__init__(parent)
        if _state["holders"] == 0:
            _state["was_enabled"] = gc.isenabled()
            gc.disable()
        _state["holders"] += 1
        self.active = True
        self.timer = QTimer(self)
        self.timer.setInterval(CHECK_MS)
        self.timer.timeout.connect(self.check)
        self.timer.start()

    @Slot()
    def check(self) -> None:
        """Collect the generations that are due, the way the automatic collector would."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        if counts[0] <= thresholds[0]:
            return
        generation = 0
        if counts[1] > thresholds[1]:
            generation = 2 if counts[2] > thresholds[2] else 1
        gc.collect(generation)

    def stop(self) -> None:
        """The window closes: collect its garbage here, on the UI thread, and hand collection back to Python."""
        if not self.active:
            return
        self.active = False
        self.timer.stop()
        _state["holders"] -= 1
        gc.collect()
        if _state["holders"] == 0 and _state["was_enabled"]:
            gc.enable()
