"""Export of the current clip: the options dialog, safe file names and the export itself.

The writing goes through export.write_clip on a worker thread; a destination that exists is never
replaced silently (the window asks first).
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QSpinBox

from export.formats import EXTENSIONS, FORMATS

FORMAT_LABELS = {
    "mp4": "MP4 video (H.264)",
    "gif": "Animated GIF",
    "webm": "WebM video (VP9)",
    "png": "PNG frames (a new folder)",
}


def suggested_name(request, fmt: str) -> str:
    """A file name from the prompt and seed, e.g. a-red-circle-moves-right-s42.mp4."""
    words = re.findall(r"[^\W_]+", request.prompt.casefold())[:6]
    stem = "-".join(words) or "kinemo-clip"
    return f"{stem}-s{request.seed}{EXTENSIONS[fmt]}"


def with_extension(path: str | Path, fmt: str) -> Path:
    """The path with the format's extension (PNG frames: a folder name without one)."""
    path = Path(path)
    known = {".mp4", ".gif", ".webm", ".png"}
    if fmt == "png":
        return path.with_suffix("") if path.suffix.lower() in known else path
    if path.suffix.lower() == EXTENSIONS[fmt]:
        return path
    if path.suffix.lower() in known:
        return path.with_suffix(EXTENSIONS[fmt])
    return path.with_name(path.name + EXTENSIONS[fmt])


def is_taken(path: Path, fmt: str) -> bool:
    """Would writing here replace something? (an empty folder is fine for PNG frames)"""
    if fmt == "png":
        return path.exists() and (not path.is_dir() or any(path.iterdir()))
    return path.exists()


def next_free_path(path: Path, fmt: str) -> Path:
    """clip.mp4 -> clip-2.mp4, clip-3.mp4, … the first name not taken."""
    stem, suffix = (path.name, "") if fmt == "png" else (path.stem, path.suffix)
    match = re.fullmatch(r"(.*)-(\d+)", stem)
    base, number = (match.group(1), int(match.group(2))) if match else (stem, 1)
    while True:
        number += 1
        candidate = path.with_name(f"{base}-{number}{suffix}")
        if not is_taken(candidate, fmt):
            return candidate


def export_clip(path: Path, frames, settings, request_dict: dict, overwrite: bool, sound: Path | None = None) -> Path:
    """Worker thread: write the clip with its record (and its sound, a WAV, where the format carries sound);
    returns the path written."""
    from export import make_record, write_clip
    from export.audio import read_wav
    from export.formats import carries_sound

    keep = sound is not None and carries_sound(settings.format)
    export = {"format": settings.format, "quality": settings.quality}
    if sound is not None:  # said only of clips that have sound, as `kinemo generate` does
        export["sound"] = keep
    record = make_record(request_dict, export)
    return write_clip(path, frames, settings, record, overwrite=overwrite, sound=read_wav(sound) if keep else None)


class ExportDialog(QDialog):
    """Format, fps, size and quality for one export."""

    def __init__(self, parent, fmt: str, fps: int, width: int, height: int, quality: int):
        super().__init__(parent)
        self.setWindowTitle("Export clip")
        self.setObjectName("exportDialog")
        self.format_combo = QComboBox()
        self.format_combo.setObjectName("exportFormatCombo")
        for key in FORMATS:
            self.format_combo.addItem(FORMAT_LABELS[key], key)
        self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(fmt)))
        self.fps_spin = self._spin("exportFpsSpin", 1, 60, fps, " fps")
        self.width_spin = self._spin("exportWidthSpin", 2, 4096, width, " px", 2)
        self.height_spin = self._spin("exportHeightSpin", 2, 4096, height, " px", 2)
        self.quality_spin = self._spin("exportQualitySpin", 1, 100, quality, "")
        self.quality_spin.setToolTip("1 = smallest file, 100 = best picture (GIF and PNG ignore it)")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Choose destination…")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Format", self.format_combo)
        form.addRow("Frame rate", self.fps_spin)
        form.addRow("Width", self.width_spin)
        form.addRow("Height", self.height_spin)
        form.addRow("Quality", self.quality_spin)
        form.addRow(buttons)

    @staticmethod
    def _spin(name, low, high, value, suffix, step=1) -> QSpinBox:
        spin = QSpinBox()
        spin.setObjectName(name)
        spin.setRange(low, high)
        spin.setSingleStep(step)
        spin.setValue(value)
        spin.setSuffix(suffix)
        return spin

    def settings(self):
        from export import ExportSettings

        even = lambda v: v - v % 2  # noqa: E731
        return ExportSettings(
            self.format_combo.currentData(),
            self.fps_spin.value(),
            even(self.width_spin.value()),
            even(self.height_spin.value()),
            self.quality_spin.value(),
        ).validate()
