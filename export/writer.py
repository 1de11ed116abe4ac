"""Stream frames into ffmpeg and publish the file atomically.

Frames go to a temporary file beside the destination while they arrive; only a complete,
successfully closed file is renamed into place, so a failure never leaves a half-written clip.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from export.formats import ExportError, ExportSettings, encoder_arguments
from export.metadata import METADATA_KEY, SIDECAR_NAME, insert_gif_comment


def check_destination(path: str | Path, settings: ExportSettings, overwrite: bool = True) -> Path:
    """Raise ExportError unless path can be written: its folder exists and is writable."""
    path = Path(path).expanduser()
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise ExportError(f"output folder does not exist: {parent}")
    if not parent.is_dir():
        raise ExportError(f"output folder is not a folder: {parent}")
    mode = parent.stat().st_mode
    if not os.access(parent, os.W_OK) or not mode & 0o222:
        raise ExportError(f"output folder is read-only: {parent}")
    if settings.format == "png":
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise ExportError(f"{path} already exists and is not an empty folder; PNG frames need a new folder")
    elif path.is_dir():
        raise ExportError(f"output is a folder, expected a file name: {path}")
    elif path.exists() and not overwrite:
        raise ExportError(f"{path} already exists")
    return path


class ClipWriter:
    """Write one clip: ``with ClipWriter(path, settings, (w, h), record) as w: w.write(frames)``."""

    def __init__(
        self,
        path: str | Path,
        settings: ExportSettings,
        frame_size: tuple[int, int],
        record: dict,
        overwrite: bool = True,
    ):
        self.settings = settings.validate()
        self.path = check_destination(path, settings, overwrite)
        self.frame_size = frame_size  # (width, height) of the frames that will be written
        self.record = record
        self.frame_count = 0
        self._temp: Path | None = None
        self._encoder = None

    def __enter__(self) -> ClipWriter:
        self.open()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def open(self) -> None:
        import imageio_ffmpeg

        parent = self.path.parent
        codec, pix_fmt, params = encoder_arguments(self.settings)
        comment = json.dumps(self.record, ensure_ascii=False, sort_keys=True)
        if self.settings.format == "png":
            self._temp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{self.path.name}.", suffix=".partial"))
            target = str(self._temp / "frame_%04d.png")
        else:
            fd, name = tempfile.mkstemp(dir=parent, prefix=f".{self.path.name}.", suffix=".partial")
            os.close(fd)
            self._temp, target = Path(name), name
            if self.settings.format in ("mp4", "webm"):
                params = params + ["-metadata", f"{METADATA_KEY}={comment}"]
        self._encoder = imageio_ffmpeg.write_frames(
            target,
            self.frame_size,
            fps=self.settings.fps,
            codec=codec,
            pix_fmt_out=pix_fmt,
            quality=None,
            macro_block_size=1,
            ffmpeg_log_level="error",
            output_params=params,
        )
        self._encoder.send(None)  # start ffmpeg

    def write(self, frames: np.ndarray | Iterable[np.ndarray]) -> None:
        """frames: (n, h, w, 3) uint8, or single (h, w, 3) frames."""
        if self._encoder is None:
            raise ExportError("the writer is not open")
        batch = frames if isinstance(frames, np.ndarray) and frames.ndim == 4 else list(frames)
        for frame in batch:
            frame = np.ascontiguousarray(frame, dtype=np.uint8)
            if frame.shape != (self.frame_size[1], self.frame_size[0], 3):
                raise ExportError(f"frame of shape {frame.shape} does not fit the clip's {self.frame_size} RGB frames")
            try:
                self._encoder.send(frame)
            except (OSError, RuntimeError) as exc:
                raise ExportError(f"the encoder stopped: {str(exc).strip().splitlines()[-1]}") from None
            self.frame_count += 1

    def close(self) -> Path:
        """Finish encoding and move the file into place."""
        try:
            if self.frame_count == 0:
                raise ExportError("no frames were written")
            try:
                self._encoder.close()
            except (OSError, RuntimeError) as exc:
                raise ExportError(f"the encoder failed: {str(exc).strip().splitlines()[-1]}") from None
            self._encoder = None
            self._publish()
        except BaseException:
            self.abort()
            raise
        return self.path

    def _publish(self) -> None:
        comment = json.dumps(self.record, ensure_ascii=False, sort_keys=True)
        if self.settings.format == "png":
            (self._temp / SIDECAR_NAME).write_text(comment + "\n", encoding="utf-8")
            os.chmod(self._temp, 0o755)
            if self.path.exists():  # an empty folder, checked at open
                self.path.rmdir()
        elif self.settings.format == "gif":
            self._temp.write_bytes(insert_gif_comment(self._temp.read_bytes(), comment))
        if self._temp.is_file():
            os.chmod(self._temp, 0o644)
        os.replace(self._temp, self.path)
        self._temp = None

    def abort(self) -> None:
        """Stop the encoder and remove the temporary output."""
        if self._encoder is not None:
            try:
                self._encoder.close()
            except Exception:  # noqa: BLE001 - the encoder is being discarded anyway
                pass
            self._encoder = None
        if self._temp is not None:
            if self._temp.is_dir():
                shutil.rmtree(self._temp, ignore_errors=True)
            else:
                self._temp.unlink(missing_ok=True)
            self._temp = None


def write_clip(
    path: str | Path, frames: np.ndarray, settings: ExportSettings, record: dict, overwrite: bool = True
) -> Path:
    """Write a whole (n, h, w, 3) uint8 clip in one call."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ExportError(f"expected frames shaped (n, h, w, 3), got {frames.shape}")
    with ClipWriter(path, settings, (frames.shape[2], frames.shape[1]), record, overwrite) as writer:
        writer.write(frames)
    return writer.path
