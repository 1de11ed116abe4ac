"""Stream frames into ffmpeg and publish the file atomically.

Frames go to a temporary file beside the destination while they arrive; only a complete,
successfully closed file is renamed into place, so a failure never leaves a half-written clip. A clip's sound
(engine.api.events.Sound) goes into MP4 as AAC, into WebM as Opus, beside PNG frames as audio.wav; GIF has none.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from engine.api.events import Sound
from engine.util.signals import signals_held
from export.audio import WAV_NAME, check_sound, fitted, mux, write_wav
from export.encoder import FfmpegEncoder, os_error
from export.formats import ExportError, ExportSettings, carries_sound, encoder_arguments
from export.metadata import METADATA_KEY, SIDECAR_NAME, insert_gif_comment

TEMP_MARK = ".kinemo"  # temporaries are named .NAME.kinemo<pid>.<random>.partial, so a later run can tell its own


def name_limit(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def temp_prefix(path: Path) -> str:
    """The temporary's prefix: the destination's name, cut short enough that the temporary's name fits too."""
    room = name_limit(path.parent) - len(f".{TEMP_MARK}{os.getpid()}.XXXXXXXX.partial") - 8
    return f".{path.name[: max(room, 8)]}{TEMP_MARK}{os.getpid()}."


def remove_stale_temporaries(path: Path) -> None:
    """Remove temporaries a killed Kinemo left for this destination (their process is gone)."""
    for leftover in path.parent.glob(f".{glob_escape(path.name[:40])}*{TEMP_MARK}*.partial"):
        pid = leftover.name.rsplit(TEMP_MARK, 1)[-1].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: alive
    return True


def check_destination(path: str | Path, settings: ExportSettings, overwrite: bool = True) -> Path:
    """Raise ExportError unless path can be written: its folder exists and is writable, its name fits the
    filesystem, and it is new or a regular file (a folder for PNG frames)."""
    path = Path(path).expanduser()
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise ExportError(f"output folder does not exist: {parent}")
    if not parent.is_dir():
        raise ExportError(f"output folder is not a folder: {parent}")
    mode = parent.stat().st_mode
    if not os.access(parent, os.W_OK) or not mode & 0o222:
        raise ExportError(f"output folder is read-only: {parent}")
    if len(os.fsencode(path.name)) > name_limit(parent):
        raise ExportError(
            f"the output's name is longer than this filesystem allows ({name_limit(parent)} bytes): {path.name[:40]}…"
        )
    if path.is_symlink() or (path.exists() and not (path.is_file() or path.is_dir())):
        raise ExportError(f"{path} is not a regular file (a device, pipe, socket or link); name a new file")
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
        sound: Sound | None = None,
    ):
        self.settings = settings.validate()
        self.path = check_destination(path, settings, overwrite)
        self.frame_size = frame_size  # (width, height) of the frames that will be written
        self.record = record
        # the clip's sound, fitted to its length when it is closed; a GIF has none
        self.sound = check_sound(sound) if sound is not None and carries_sound(settings.format) else None
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
        parent = self.path.parent
        codec, pix_fmt, params = encoder_arguments(self.settings)
        comment = json.dumps(self.record, ensure_ascii=False, sort_keys=True)
        try:
            remove_stale_temporaries(self.path)
            # the name is known to abort() before the file exists, so a signal at any moment leaves nothing behind
            self._temp = parent / f"{temp_prefix(self.path)}{secrets.token_hex(4)}.partial"
            if self.settings.format == "png":
                self._temp.mkdir(mode=0o700)
                target = str(self._temp / "frame_%04d.png")
            else:
                os.close(os.open(self._temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                target = str(self._temp)
                if self.settings.format in ("mp4", "webm"):
                    params = params + ["-metadata", f"{METADATA_KEY}={comment}"]
            with signals_held():  # the encoder is started and recorded as one step
                self._encoder = FfmpegEncoder(target, self.frame_size, self.settings.fps, codec, pix_fmt, params)
                self._encoder.start()
        except OSError as exc:
            self.abort()
            raise os_error(exc, parent) from None

    def write(self, frames: np.ndarray | Iterable[np.ndarray]) -> None:
        """frames: (n, h, w, 3) uint8, or single (h, w, 3) frames."""
        if self._encoder is None:
            raise ExportError("the writer is not open")
        batch = frames if isinstance(frames, np.ndarray) and frames.ndim == 4 else list(frames)
        for frame in batch:
            frame = np.ascontiguousarray(frame, dtype=np.uint8)
            if frame.shape != (self.frame_size[1], self.frame_size[0], 3):
                raise ExportError(f"frame of shape {frame.shape} does not fit the clip's {self.frame_size} RGB frames")
            self._encoder.send(frame)
            self.frame_count += 1

    def close(self) -> Path:
        """Finish encoding, check the file is whole, and move it into place; on any failure the previous file
        at the path stays and the temporary one goes."""
        try:
            if self.frame_count == 0:
                raise ExportError("no frames were written")
            self._encoder.finish()
            self._encoder = None
            self._publish()
        except OSError as exc:
            self.abort()
            raise os_error(exc, self.path.parent) from None
        except BaseException:
            self.abort()
            raise
        return self.path

    def _publish(self) -> None:
        comment = json.dumps(self.record, ensure_ascii=False, sort_keys=True)
        if self.settings.format == "png":
            (self._temp / SIDECAR_NAME).write_text(comment + "\n", encoding="utf-8")
            if self.sound is not None:
                write_wav(self._temp / WAV_NAME, self._fitted_sound(), self.sound.sample_rate)
            os.chmod(self._temp, 0o755)
        elif self.settings.format == "gif":
            self._temp.write_bytes(insert_gif_comment(self._temp.read_bytes(), comment))
        elif self.sound is not None:
            self._add_sound(comment)
        check_written(self._temp, self.settings.format, self.frame_count)
        with signals_held():  # published and forgotten as one step
            if self._temp.is_file():
                os.chmod(self._temp, 0o644)
                os.replace(self._temp, self.path)
            else:
                publish_folder(self._temp, self.path)
            self._temp = None

    def _fitted_sound(self) -> np.ndarray:
        return fitted(self.sound, self.frame_count, self.settings.fps)

    def _add_sound(self, comment: str) -> None:
        """Mux the sound into the finished video: a second temporary, then it replaces the first."""
        muxed = self._temp.with_name(self._temp.name[: -len(".partial")] + ".sound.partial")
        try:
            metadata = ["-metadata", f"{METADATA_KEY}={comment}"]
            mux(self._temp, self._fitted_sound(), self.sound.sample_rate, self.settings.format, muxed, metadata)
            os.replace(muxed, self._temp)
        finally:
            muxed.unlink(missing_ok=True)

    def abort(self) -> None:
        """Stop the encoder and remove the temporary output."""
        if self._encoder is not None:
            self._encoder.kill()
            self._encoder = None
        if self._temp is not None:
            if self._temp.is_dir():
                shutil.rmtree(self._temp, ignore_errors=True)
            else:
                self._temp.unlink(missing_ok=True)
            self._temp = None


def check_written(path: Path, fmt: str, frames: int) -> None:
    """ExportError unless the file decodes to the frames that were sent (a truncated file does not)."""
    if fmt == "png":
        found = len(list(path.glob("frame_*.png")))
    else:
        import imageio_ffmpeg

        try:
            found, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
        except (RuntimeError, OSError, ValueError, IndexError):
            found = 0
    if found != frames:
        raise ExportError(f"the encoded file is incomplete ({found} of {frames} frames decode); nothing was replaced")


def publish_folder(temp: Path, path: Path) -> None:
    """Rename a finished PNG folder into place: path is absent or the empty folder checked at open."""
    try:
        if path.exists():
            path.rmdir()
        os.rename(temp, path)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise ExportError(f"{path} was filled by another export while this one ran; nothing was replaced") from None
        raise


def write_clip(
    path: str | Path,
    frames: np.ndarray,
    settings: ExportSettings,
    record: dict,
    overwrite: bool = True,
    sound: Sound | None = None,
) -> Path:
    """Write a whole (n, h, w, 3) uint8 clip (and its sound) in one call."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ExportError(f"expected frames shaped (n, h, w, 3), got {frames.shape}")
    with ClipWriter(path, settings, (frames.shape[2], frames.shape[1]), record, overwrite, sound) as writer:
        writer.write(frames)
    return writer.path
