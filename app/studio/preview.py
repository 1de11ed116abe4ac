"""The preview player: shows the live estimate while generating, then loops the result.

FrameView paints one frame, stretched to the clip's aspect (the model renders square frames and
export scales them to width x height, so the preview does the same). PlayerWidget adds play/pause,
a frame scrubber, the playback rate, and the clip's sound where it has one (app.studio.sound_track).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSlider, QSpinBox, QVBoxLayout, QWidget

from app.studio.sound_track import SoundTrack


def to_qimage(frame: np.ndarray) -> QImage:
    """(h, w, 3) uint8 -> a QImage that owns its pixels."""
    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    h, w = frame.shape[:2]
    return QImage(frame.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class FrameView(QWidget):
    """Paints the current frame centred, at the clip's aspect ratio."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("previewView")
        self.setMinimumSize(256, 256)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._image: QImage | None = None
        self._aspect = 1.0
        self.placeholder = "Your clip appears here"

    def sizeHint(self) -> QSize:
        return QSize(512, 512)

    def set_image(self, image: QImage | None, aspect: float | None = None) -> None:
        self._image = image
        if aspect:
            self._aspect = aspect
        self.update()

    def image(self) -> QImage | None:
        return self._image

    def target_rect(self) -> QRectF:
        w, h = self.width() - 16, self.height() - 16
        if w / max(h, 1) > self._aspect:
            w = h * self._aspect
        else:
            h = w / self._aspect
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#15171c"))
        rect = self.target_rect()
        if self._image is None:
            painter.setPen(QColor("#3a3f4b"))
            painter.drawRect(rect)
            painter.setPen(QColor("#8a90a0"))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.drawImage(rect, self._image)


class PlayerWidget(QWidget):
    frameChanged = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.view = FrameView(self)
        self._images: list[QImage] = []
        self.frames: np.ndarray | None = None  # the finished clip, native resolution
        self.live = False  # showing a generation's running estimate
        self.clip_fps = 8  # the finished clip's own rate: its sound plays only while the preview runs at it
        self.sound = SoundTrack(self)
        self._index = 0
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._advance)

        self.play_button = QPushButton("Pause")
        self.play_button.setObjectName("playButton")
        self.play_button.setCheckable(True)
        self.play_button.setChecked(True)
        self.play_button.setToolTip("Play / pause the preview")
        self.play_button.toggled.connect(self._on_play_toggled)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("frameSlider")
        self.slider.setRange(0, 0)
        self.slider.valueChanged.connect(self._on_slider)
        self.slider.sliderPressed.connect(self._on_slider_pressed)
        self.frame_label = QLabel("–")
        self.frame_label.setObjectName("frameLabel")
        self.frame_label.setMinimumWidth(56)
        self.fps_spin = QSpinBox()
        self.fps_spin.setObjectName("playerFpsSpin")
        self.fps_spin.setRange(1, 60)
        self.fps_spin.setValue(8)
        self.fps_spin.setSuffix(" fps")
        self.fps_spin.setToolTip("Playback rate of the preview (export has its own)")
        self.fps_spin.valueChanged.connect(self._apply_rate)
        self.sound_label = QLabel("")
        self.sound_label.setObjectName("soundLabel")

        bar = QHBoxLayout()
        bar.addWidget(self.play_button)
        bar.addWidget(self.slider, 1)
        bar.addWidget(self.frame_label)
        bar.addWidget(self.sound_label)
        bar.addWidget(self.fps_spin)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addLayout(bar)
        self._apply_rate()
        self._update_controls()

    # -- content --------------------------------------------------------------------------------
    def show_frames(
        self,
        frames: np.ndarray,
        fps: int | None = None,
        aspect: float | None = None,
        live: bool = False,
        sound: Path | None = None,
    ) -> None:
        """Loop these (f, h, w, 3) uint8 frames (with the clip's sound, a WAV, when it has one); live=True marks
        a generation's running estimate, which plays silent."""
        self._images = [to_qimage(f) for f in frames]
        self.live = live
        if not live:
            self.frames = np.asarray(frames)
            self.clip_fps = int(fps or self.clip_fps)
        wanted = None if live else sound  # a running estimate plays silent
        new_sound = wanted != self.sound.path
        if new_sound:  # another clip's sound: it starts with frame 0
            self.sound.set(wanted)
            self._index = 0 if wanted is not None else self._index
            self._show_sound_state()
        if fps:
            self.fps_spin.setValue(int(fps))
        if aspect:
            self.view.set_image(self.view.image(), aspect)
        self._index = min(self._index, len(self._images) - 1)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(self._images) - 1))
        self.slider.blockSignals(False)
        self._show(self._index)
        self._update_controls()
        if new_sound:
            self._sync_sound()

    def clear(self) -> None:
        self._images, self.frames, self.live, self._index = [], None, False, 0
        self.sound.set(None)
        self._show_sound_state()
        self.view.set_image(None)
        self.slider.setRange(0, 0)
        self._update_controls()

    @property
    def frame_count(self) -> int:
        return len(self._images)

    @property
    def index(self) -> int:
        return self._index

    @property
    def playing(self) -> bool:
        return self.play_button.isChecked()

    # -- playback -------------------------------------------------------------------------------
    def set_playing(self, playing: bool) -> None:
        self.play_button.setChecked(playing)

    def toggle_playing(self) -> None:
        self.play_button.setChecked(not self.play_button.isChecked())

    def seek(self, index: int) -> None:
        if self._images:
            self._show(max(0, min(index, len(self._images) - 1)))
            self._sync_sound()

    def _show(self, index: int) -> None:
        if not self._images:
            return
        self._index = index
        self.view.set_image(self._images[index])
        self.slider.blockSignals(True)
        self.slider.setValue(index)
        self.slider.blockSignals(False)
        self.frame_label.setText(f"{index + 1} / {len(self._images)}")
        self.frameChanged.emit(index)

    def _advance(self) -> None:
        if len(self._images) > 1:
            self._show((self._index + 1) % len(self._images))
            if self._index == 0:
                self._sync_sound()  # the loop starts again: so does its sound

    def _on_slider(self, value: int) -> None:
        self._show(value)
        self._sync_sound()

    def _on_slider_pressed(self) -> None:
        self.play_button.setChecked(False)  # scrubbing pauses

    def _on_play_toggled(self, playing: bool) -> None:
        self.play_button.setText("Pause" if playing else "Play")
        self._update_controls()
        self._sync_sound()

    def _apply_rate(self) -> None:
        self._timer.setInterval(max(1, round(1000 / self.fps_spin.value())))
        self._sync_sound()
        self._show_sound_state()

    # -- sound ----------------------------------------------------------------------------------
    @property
    def sound_in_step(self) -> bool:
        """Whether the clip's sound plays with the frames now: a finished clip with sound, playing at its rate."""
        return (
            self.sound.path is not None
            and not self.live
            and self.playing
            and bool(self._images)
            and self.fps_spin.value() == self.clip_fps
        )

    def _sync_sound(self) -> None:
        if self.sound_in_step:
            self.sound.play_from(self._index / self.clip_fps)
        else:
            self.sound.pause()

    def _show_sound_state(self) -> None:
        if self.sound.path is None:
            self.sound_label.setText("")
            self.sound_label.setToolTip("")
        elif self.sound.unavailable:
            self.sound_label.setText("sound: silent here")
            self.sound_label.setToolTip(self.sound.unavailable)
        elif self.fps_spin.value() != self.clip_fps:
            self.sound_label.setText("sound: muted")
            self.sound_label.setToolTip(f"The sound plays only at the clip's own {self.clip_fps} fps")
        else:
            self.sound_label.setText("sound")
            self.sound_label.setToolTip("This clip has sound; it plays with the frames")

    def _update_controls(self) -> None:
        has = bool(self._images)
        self.slider.setEnabled(has)
        if has and self.play_button.isChecked():
            if not self._timer.isActive():
                self._timer.start()
        else:
            self._timer.stop()
        if not has:
            self.frame_label.setText("–")
