"""Clips a request starts from: the video to re-render (video-to-video, with its strength) and the clip a request
continues (extends, set by "Extend" in the history or by a restored extension).

The video is probed on a worker thread (its first frame, size and length through imageio-ffmpeg, or the PNG
frames of a Kinemo PNG export); the engine reads and fingerprints all of it when the job runs and refuses an
unusable one with one line. Strength 1 re-renders from pure noise; near 0 keeps the clip as it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.studio.drop_zone import CLIP_SUFFIXES, local_paths
from app.studio.plain_text import plain_tooltip
from app.studio.preview import to_qimage
from app.studio.worker import FunctionWorker, start_worker

VIDEO_FILTER = "Videos (" + " ".join(f"*{s}" for s in sorted(CLIP_SUFFIXES)) + ");;All files (*)"
THUMB = 64
EMPTY_CAPTION = "Video-to-video: drop a clip here (or on the window) to re-render it with the prompt."
STRENGTH_TIP = "How much to change: 1 re-renders from pure noise, near 0 keeps the clip as it is"


def probe_video(path: str, token: int) -> tuple:
    """Worker thread: ("ok", token, path, first frame, (w, h), frames, fps or None) or ("refused", token, reason)."""
    from engine.api.errors import KinemoError
    from engine.util.images import load_image

    try:
        folder = Path(path)
        if folder.is_dir():
            files = sorted(folder.glob("*.png"))
            if not files:
                return "refused", token, f"{folder.name} holds no PNG frames"
            first = load_image(files[0])
            return "ok", token, path, first, (first.shape[1], first.shape[0]), len(files), None
        import imageio_ffmpeg

        reader = imageio_ffmpeg.read_frames(path)
        try:
            meta = next(reader)
            width, height = meta["size"]
            first = np.frombuffer(next(reader), np.uint8).reshape(height, width, 3)
        finally:
            reader.close()
        count, _ = imageio_ffmpeg.count_frames_and_secs(path)
        return "ok", token, path, first, (width, height), count, meta.get("fps")
    except (KinemoError, OSError, RuntimeError, StopIteration, KeyError, ValueError) as exc:
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        return "refused", token, f"{Path(path).name} is not a video Kinemo can read ({text})"


class VideoInput(QFrame):
    """The video to re-render: a thumbnail, its name and length, Choose / Clear, and the strength."""

    videoChanged = Signal(str)  # accepted path, "" when cleared
    refused = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("videoInput")
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.video_path: str | None = None
        self.video_sha256: str | None = None  # kept from a restored record; the engine fingerprints the file
        self.last_folder = ""
        self._token = 0
        self._checking: str | None = None
        self._pending_sha: str | None = None
        self.video_size: tuple[int, int] | None = None  # the accepted video's width and height
        self.thumbnail = QLabel("No video")
        self.thumbnail.setObjectName("videoThumbnail")
        self.thumbnail.setFixedSize(THUMB, THUMB)
        self.thumbnail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption = QLabel(EMPTY_CAPTION)
        self.caption.setObjectName("videoCaption")
        self.caption.setWordWrap(True)
        self.choose_button = QPushButton("Choose…")
        self.choose_button.setObjectName("videoChooseButton")
        self.choose_button.clicked.connect(self.choose)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setObjectName("videoClearButton")
        self.clear_button.clicked.connect(self.clear)
        self.clear_button.setEnabled(False)
        self._build_strength()
        self._lay_out()

    def _build_strength(self) -> None:
        self.strength_slider = QSlider(Qt.Orientation.Horizontal)
        self.strength_slider.setObjectName("strengthSlider")
        self.strength_slider.setRange(1, 100)
        self.strength_slider.setToolTip(STRENGTH_TIP)
        self.strength_spin = QDoubleSpinBox()
        self.strength_spin.setObjectName("strengthSpin")
        self.strength_spin.setRange(0.01, 1.0)
        self.strength_spin.setSingleStep(0.05)
        self.strength_spin.setDecimals(2)
        self.strength_spin.setToolTip(STRENGTH_TIP)
        self.strength_slider.valueChanged.connect(self._on_slider)
        self.strength_spin.valueChanged.connect(self._on_spin)
        self.set_strength(0.8)

    def _lay_out(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(self.choose_button)
        buttons.addWidget(self.clear_button)
        buttons.addStretch(1)
        side = QVBoxLayout()
        side.addWidget(self.caption)
        side.addLayout(buttons)
        top = QHBoxLayout()
        top.addWidget(self.thumbnail)
        top.addLayout(side, 1)
        strength = QHBoxLayout()
        strength.addWidget(QLabel("Strength"))
        strength.addWidget(self.strength_slider, 1)
        strength.addWidget(self.strength_spin)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(strength)

    # -- strength -----------------------------------------------------------------------------------
    @property
    def strength(self) -> float:
        return round(self.strength_spin.value(), 2)

    def set_strength(self, value: float) -> None:
        self.strength_spin.setValue(float(value))
        self._on_spin(self.strength_spin.value())

    @Slot(int)
    def _on_slider(self, value: int) -> None:
        if round(self.strength_spin.value() * 100) != value:
            self.strength_spin.setValue(value / 100)

    @Slot(float)
    def _on_spin(self, value: float) -> None:
        if self.strength_slider.value() != round(value * 100):
            self.strength_slider.setValue(round(value * 100))

    # -- the video ----------------------------------------------------------------------------------
    @property
    def checking(self) -> bool:
        return self._checking is not None

    def set_video(self, path: str | None, sha256: str | None = None) -> None:
        """Probe path on a worker thread; videoChanged or refused follows."""
        if not path:
            self.clear()
            return
        self._token += 1
        self._checking, self._pending_sha = path, sha256
        self.caption.setText(f"Checking {Path(path).name}…")
        worker = FunctionWorker(probe_video, str(path), self._token)
        worker.returned.connect(self._on_probed)
        worker.errored.connect(self._on_failed)
        start_worker(worker)

    @Slot()
    def clear(self) -> None:
        self._token += 1
        self._checking = None
        changed = self.video_path is not None
        self.video_path = self.video_sha256 = self.video_size = None
        self.thumbnail.setPixmap(QPixmap())
        self.thumbnail.setText("No video")
        self.caption.setText(EMPTY_CAPTION)
        self.caption.setToolTip("")
        self.clear_button.setEnabled(False)
        if changed:
            self.videoChanged.emit("")

    @Slot(object)
    def _on_probed(self, result: tuple) -> None:
        if result[1] != self._token:
            return  # another video was chosen (or the input cleared) meanwhile
        self._checking = None
        if result[0] == "refused":
            self._refuse(result[2])
            return
        _, _, path, first, (width, height), count, fps = result
        self.video_path, self.video_sha256, self.video_size = path, self._pending_sha, (width, height)
        pixmap = QPixmap.fromImage(to_qimage(np.ascontiguousarray(first))).scaled(
            THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        self.thumbnail.setPixmap(pixmap)
        rate = f" @ {fps:g} fps" if fps else ""
        self.caption.setText(f"{Path(path).name}\n{width} × {height} · {count} frames{rate}")
        self.caption.setToolTip(plain_tooltip(path))
        self.clear_button.setEnabled(True)
        self.videoChanged.emit(path)

    @Slot(object)
    def _on_failed(self, exc) -> None:
        self._checking = None
        self._refuse(f"{type(exc).__name__}: {exc}")

    def _refuse(self, reason: str) -> None:
        self.caption.setText(f"{Path(self.video_path).name} (kept)" if self.video_path else EMPTY_CAPTION)
        self.refused.emit(reason)

    @Slot()
    def choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a video to re-render", self.last_folder, VIDEO_FILTER)
        if path:
            self.last_folder = str(Path(path).parent)
            self.set_video(path)

    def dragEnterEvent(self, event) -> None:
        if len(local_paths(event.mimeData())) == 1:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        paths = local_paths(event.mimeData())
        if len(paths) != 1:
            event.ignore()
            return
        event.acceptProposedAction()
        self.set_video(paths[0])


class ExtendsRow(QWidget):
    """Shown while the form holds a request that continues a clip: which one, and a way to stop continuing it."""

    cleared = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("extendsRow")
        self.path: str | None = None
        self.sha256: str | None = None
        self.label = QLabel()
        self.label.setObjectName("extendsLabel")
        self.label.setWordWrap(True)
        self.clear_button = QPushButton("Start fresh")
        self.clear_button.setObjectName("extendsClearButton")
        self.clear_button.setToolTip("Make a new clip instead of continuing this one")
        self.clear_button.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.clear_button)
        self.hide()

    @property
    def name(self) -> str:
        return Path(self.path).name if self.path else ""

    def set_clip(self, path: str | None, sha256: str | None = None) -> None:
        self.path, self.sha256 = (path, sha256) if path else (None, None)
        if path:
            self.label.setText(f"Continues {Path(path).name}: Frames counts the new frames only")
            self.label.setToolTip(plain_tooltip(path))
        self.setVisible(bool(path))

    @Slot()
    def clear(self) -> None:
        self.set_clip(None)
        self.cleared.emit()
