"""The first-frame picture for image-to-video: drop a file or pick one, see it, clear it.

A picture is checked with engine.util.images.load_image on a worker thread (a large photo can take a
while to decode); an unusable file is refused with the engine's one-line reason. The thumbnail shows the
picture as the clip frames it: centre-cropped to the chosen width / height (set_frame_size), as the engine's
engine.util.images.fit_to_size does at full resolution; it is cut from the thumbnail already made, so a size change costs nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QFileDialog, QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from app.studio.plain_text import plain_tooltip
from app.studio.preview import to_qimage
from app.studio.worker import FunctionWorker, start_worker

IMAGE_FILTER = "Pictures (*.png *.jpg *.jpeg *.webp *.bmp *.gif *.tif *.tiff);;All files (*)"
CLIP_SUFFIXES = {".mp4", ".webm", ".gif", ".mov", ".mkv"}
THUMB = 120
OPTIONAL_CAPTION = "Image-to-video: the picture becomes the first frame (optional)."


def check_picture(path: str, token: int) -> tuple:
    """Worker thread: validate the picture. ("ok", token, path, sha256, thumbnail, (w, h)) or ("refused", token, reason)."""
    from PIL import Image

    from engine.api.errors import KinemoError
    from engine.util.files import file_sha256
    from engine.util.images import load_image

    try:
        rgb = load_image(path)
        sha = file_sha256(path)
    except (KinemoError, OSError) as exc:
        return "refused", token, str(exc)
    thumb = Image.fromarray(rgb)
    thumb.thumbnail((THUMB * 2, THUMB * 2))
    return "ok", token, path, sha, np.asarray(thumb), (rgb.shape[1], rgb.shape[0])


def framed(thumb: np.ndarray, width: int, height: int) -> np.ndarray:
    """The centre of thumb cropped to width / height's aspect, as the engine frames the picture."""
    from engine.util.images import crop_to_aspect

    return crop_to_aspect(thumb, width / height)


def local_paths(mime) -> list[str]:
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []


def is_clip(path: str) -> bool:
    return Path(path).suffix.lower() in CLIP_SUFFIXES or Path(path).is_dir()


class ImageDropZone(QFrame):
    imageChanged = Signal(str)  # accepted picture path, "" when cleared
    refused = Signal(str)  # one-line reason
    busyChanged = Signal(bool)

    def __init__(self, parent=None, title: str = "Choose a first-frame picture", empty_caption: str = OPTIONAL_CAPTION):
        super().__init__(parent)
        self.setObjectName("imageDropZone")
        self.title = title
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumHeight(THUMB + 16)
        self.image_path: str | None = None
        self.image_sha256: str | None = None
        self.last_folder = ""
        self.empty_caption = empty_caption
        self._token = 0
        self._checking: str | None = None
        self.picture_size: tuple[int, int] | None = None  # the accepted picture's width and height
        self.frame_size: tuple[int, int] = (256, 256)  # the clip's width and height: how the picture is framed
        self._thumb: np.ndarray | None = None

        self.thumbnail = QLabel()
        self.thumbnail.setObjectName("imageThumbnail")
        self.thumbnail.setFixedSize(THUMB, THUMB)
        self.thumbnail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption = QLabel()
        self.caption.setObjectName("imageCaption")
        self.caption.setWordWrap(True)
        self.error_label = QLabel()
        self.error_label.setObjectName("imageErrorLabel")
        self.error_label.setWordWrap(True)
        self.error_label.setProperty("level", "error")
        self.error_label.hide()
        self.choose_button = QPushButton("Choose…")
        self.choose_button.setObjectName("imageChooseButton")
        self.choose_button.clicked.connect(self.choose)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setObjectName("imageClearButton")
        self.clear_button.clicked.connect(self.clear)

        buttons = QHBoxLayout()
        buttons.addWidget(self.choose_button)
        buttons.addWidget(self.clear_button)
        buttons.addStretch(1)
        side = QVBoxLayout()
        side.addWidget(self.caption)
        side.addWidget(self.error_label)
        side.addStretch(1)
        side.addLayout(buttons)
        layout = QHBoxLayout(self)
        layout.addWidget(self.thumbnail)
        layout.addLayout(side, 1)
        self._show_empty()

    # -- state --------------------------------------------------------------------------------------
    @property
    def checking(self) -> bool:
        return self._checking is not None

    def _show_empty(self) -> None:
        self.thumbnail.setPixmap(QPixmap())
        self.thumbnail.setText("Drop a picture\nhere")
        self.thumbnail.setToolTip("")
        self.caption.setText(self.empty_caption)
        self.clear_button.setEnabled(False)

    def set_empty_caption(self, text: str) -> None:
        """What the zone says while it holds no picture (whether the model needs one)."""
        self.empty_caption = text
        if self.image_path is None and self._checking is None:
            self.caption.setText(text)

    def set_frame_size(self, width: int, height: int) -> None:
        """The clip's size: the thumbnail shows the picture centre-cropped to its aspect."""
        self.frame_size = (max(1, int(width)), max(1, int(height)))
        self._show_thumbnail()

    def _show_thumbnail(self) -> None:
        if self._thumb is None or self.image_path is None:
            return
        width, height = self.frame_size
        pixmap = QPixmap.fromImage(to_qimage(framed(self._thumb, width, height))).scaled(
            THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        self.thumbnail.setPixmap(pixmap)
        self.thumbnail.setToolTip(f"framed at {width} x {height}")

    def set_image(self, path: str | None) -> None:
        """Check path on a worker thread; the result arrives as imageChanged or refused."""
        if not path:
            self.clear()
            return
        self._token += 1
        self._checking = path
        self.caption.setText(f"Checking {Path(path).name}…")
        self.busyChanged.emit(True)
        worker = FunctionWorker(check_picture, str(path), self._token)
        worker.returned.connect(self._on_checked)
        worker.errored.connect(self._on_failed)
        start_worker(worker)

    @Slot()
    def clear(self) -> None:
        self._token += 1
        self._checking = None
        changed = self.image_path is not None
        self.image_path = self.image_sha256 = None
        self.picture_size = self._thumb = None
        self.error_label.hide()
        self.thumbnail.clear()
        self._show_empty()
        if changed:
            self.imageChanged.emit("")

    def show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()

    @Slot(object)
    def _on_checked(self, result: tuple) -> None:
        if result[1] != self._token:
            return  # a newer picture was dropped (or the zone cleared) meanwhile
        if result[0] == "refused":
            self._refuse(result[2])
            return
        _, _, path, sha, thumb, (w, h) = result
        self._checking = None
        self.busyChanged.emit(False)
        self.image_path, self.image_sha256 = path, sha
        self.picture_size, self._thumb = (w, h), thumb
        self.error_label.hide()
        self._show_thumbnail()
        self.caption.setText(f"{Path(path).name}\n{w} × {h}")
        self.caption.setToolTip(plain_tooltip(path))
        self.clear_button.setEnabled(True)
        self.imageChanged.emit(path)

    @Slot(object)
    def _on_failed(self, exc) -> None:
        self._refuse(f"{type(exc).__name__}: {exc}")

    def _refuse(self, message: str) -> None:
        self._checking = None
        self.busyChanged.emit(False)
        if self.image_path is None:
            self._show_empty()
        else:
            self.caption.setText(f"{Path(self.image_path).name} (kept)")
        self.show_error(f"Picture refused: {message}")
        self.refused.emit(message)

    # -- picking and dropping -----------------------------------------------------------------------
    @Slot()
    def choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.title, self.last_folder, IMAGE_FILTER)
        if path:
            self.last_folder = str(Path(path).parent)
            self.set_image(path)

    def _set_dragging(self, dragging: bool) -> None:
        self.setProperty("dragging", dragging)
        self.style().unpolish(self)
        self.style().polish(self)

    def dragEnterEvent(self, event) -> None:
        paths = local_paths(event.mimeData())
        if len(paths) == 1 and not is_clip(paths[0]):
            event.acceptProposedAction()
            self._set_dragging(True)
        else:
            event.ignore()  # clips go to the window, which restores their settings

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dragLeaveEvent(self, event) -> None:
        self._set_dragging(False)

    def dropEvent(self, event) -> None:
        self._set_dragging(False)
        paths = local_paths(event.mimeData())
        if len(paths) != 1 or is_clip(paths[0]):
            event.ignore()
            return
        event.acceptProposedAction()
        self.set_image(paths[0])

    def handle_urls(self, urls: list[QUrl]) -> None:
        """Programmatic drop (automation): the same as dropping these URLs."""
        paths = [u.toLocalFile() for u in urls if u.isLocalFile()]
        if len(paths) == 1:
            self.set_image(paths[0])
        else:
            self.show_error("Drop one picture at a time.")
