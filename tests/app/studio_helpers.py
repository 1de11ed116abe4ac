"""Helpers shared by the studio tests."""

import numpy as np

PROMPT = "a red circle moves right on a black background"
JOB_TIMEOUT_MS = int(
    __import__("os").environ.get("KINEMO_TEST_JOB_TIMEOUT_MS", 90_000)
)  # generous: the engine process starts (and imports torch) on the first job


def fill_request(window, model, prompt=PROMPT, steps=2, seed=7, frames=16):
    form = window.form
    form.select_model(model)
    form.prompt_edit.setPlainText(prompt)
    form.steps_spin.setValue(steps)
    form.frames_spin.setValue(frames)
    form.seed_spin.setValue(seed)
    form.width_spin.setValue(64)
    form.height_spin.setValue(64)
    form.keep_seed_check.setChecked(True)


def clip_frames(n=8, size=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)


def drop(widget, paths):
    """Deliver a real QDropEvent carrying file URLs to widget (as a file manager would)."""
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    point = QPointF(10, 10)
    enter = QDragEnterEvent(
        point, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    widget.dragEnterEvent(enter)
    event = QDropEvent(point, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(event)
    return enter.isAccepted(), event.isAccepted()


def files_under(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
