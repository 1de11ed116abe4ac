"""The request's creative controls beyond the prompt and the first picture, gathered for the request form:
prompt changes along the clip, a last-frame picture, a video to re-render, the clip a request continues, LoRAs.

The form lays out the boxes (prompt_changes under the prompt, last_frame_box under the first frame, clip_box
and lora_box below) and merges request_fields() into its request; set_request() shows a request's controls,
state() and restore_state() keep them in the settings file (the LoRA list with its disabled rows).
The last-frame zone shows only while there is a first picture: a clip can end on a picture only if it starts
on one, and the engine refuses families that cannot end on a picture with one line.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.studio.drop_zone import ImageDropZone
from app.studio.lora_panel import LoraPanel
from app.studio.prompt_changes import PromptChanges
from app.studio.video_input import ExtendsRow, VideoInput
from engine.api.errors import InvalidRequest

LAST_FRAME_CAPTION = "The clip ends on this picture (optional; not every model can)."


def section(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("sectionLabel")
    return label


def boxed(*widgets: QWidget) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    return box


def last_frame_zone() -> ImageDropZone:
    """A second picture zone, its parts named apart from the first one's (automation finds them by name)."""
    zone = ImageDropZone(title="Choose a last-frame picture", empty_caption=LAST_FRAME_CAPTION)
    zone.setObjectName("lastImageDropZone")
    for part in (zone.thumbnail, zone.caption, zone.error_label, zone.choose_button, zone.clear_button):
        name = part.objectName()
        part.setObjectName("lastImage" + name.removeprefix("image"))
    return zone


class CreativeControls(QObject):
    message = Signal(str, str)  # level, text
    changed = Signal()

    def __init__(self, first_zone: ImageDropZone, frames: Callable[[], int], parent=None):
        super().__init__(parent)
        self.first_zone = first_zone
        self.last_zone = last_frame_zone()
        self.prompt_changes = PromptChanges(frames)
        self.video = VideoInput()
        self.extends = ExtendsRow()
        self.loras = LoraPanel()
        self.last_frame_box = boxed(section("Last frame"), self.last_zone)
        self.clip_box = boxed(section("Video to re-render"), self.extends, self.video)
        self.lora_box = boxed(section("LoRAs"), self.loras)
        self.last_frame_box.hide()
        first_zone.imageChanged.connect(self._on_first_image)
        first_zone.busyChanged.connect(self._on_first_busy)
        self.last_zone.refused.connect(self._on_last_refused)
        self.video.refused.connect(self._on_video_refused)
        self.loras.message.connect(self.message)
        for signal in (self.loras.changed, self.prompt_changes.changed, self.video.videoChanged):
            signal.connect(self.changed)

    @property
    def checking(self) -> str | None:
        """What is still being checked (for the form's refusal), or None."""
        if self.last_zone.checking:
            return "the last-frame picture"
        return "the video to re-render" if self.video.checking else None

    def request_fields(self, image_used: bool) -> dict:
        """The controls' fields of the request; the last picture only goes with a first one that is used.
        InvalidRequest in the studio's words when two things the clip could start from are set."""
        starts = [
            what
            for what, on in (
                ("a first-frame picture", image_used),
                ("a video to re-render", self.video.video_path),
                (f"the clip it continues ({self.extends.name})", self.extends.path),
            )
            if on
        ]
        if len(starts) > 1:
            raise InvalidRequest(
                f"{' and '.join(starts)} do not combine: each says what the clip starts from; clear one"
            )
        last = self.last_zone.image_path if image_used else None
        return {
            "last_image": last,
            "last_image_sha256": self.last_zone.image_sha256 if last else None,
            "video": self.video.video_path,
            "video_sha256": self.video.video_sha256 if self.video.video_path else None,
            "strength": self.video.strength,
            "extends": self.extends.path,
            "extends_sha256": self.extends.sha256,
            "loras": self.loras.loras(),
            "prompt_changes": self.prompt_changes.changes(),
        }

    def set_request(self, r) -> None:
        """Show a request's controls (pictures and the video are checked again)."""
        self.prompt_changes.set_changes(r.prompt_changes)
        self.loras.set_loras(r.loras)
        zone = self.last_zone
        if r.last_image and (r.last_image != zone.image_path or zone.checking):
            zone.set_image(r.last_image)
        elif not r.last_image and (zone.image_path or zone.checking):
            zone.clear()
        if r.video and (r.video != self.video.video_path or self.video.checking):
            self.video.set_video(r.video, r.video_sha256)
        elif not r.video and (self.video.video_path or self.video.checking):
            self.video.clear()
        self.video.set_strength(r.strength)
        self.extends.set_clip(r.extends, r.extends_sha256)

    def state(self) -> dict:
        """The request fields the settings file keeps (the request need not be valid)."""
        return {
            "last_image": self.last_zone.image_path,
            "video": self.video.video_path,
            "strength": self.video.strength,
            "extends": self.extends.path,
            "prompt_changes": [{"frame": c.frame, "prompt": c.prompt} for c in self.prompt_changes.changes()],
        }

    def restore_rows(self, rows) -> None:
        """The LoRA list from the settings file, disabled rows included (checked by saved_data)."""
        if isinstance(rows, list):
            self.loras.restore_rows(rows)

    @Slot(str)
    def _on_first_image(self, _path: str) -> None:
        self._show_last_zone()

    @Slot(bool)
    def _on_first_busy(self, _busy: bool) -> None:
        self._show_last_zone()

    def _show_last_zone(self) -> None:
        self.last_frame_box.setVisible(bool(self.first_zone.image_path) or self.first_zone.checking)

    @Slot(str)
    def _on_last_refused(self, reason: str) -> None:
        self.message.emit("error", f"Last-frame picture refused: {reason}")

    @Slot(str)
    def _on_video_refused(self, reason: str) -> None:
        self.message.emit("error", f"Video refused: {reason}")


def refuse_while_checking(controls: CreativeControls) -> None:
    what = controls.checking
    if what is not None:
        raise InvalidRequest(f"{what} is still being checked; try again in a moment")
