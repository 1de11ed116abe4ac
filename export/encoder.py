"""One ffmpeg process that turns raw RGB frames into a file, and says exactly why when it cannot.

imageio-ffmpeg finds (or ships) the ffmpeg binary; its write_frames() generator is not used because it lets
ffmpeg's messages go to the terminal and never looks at ffmpeg's exit status, so a disk that fills while
ffmpeg finishes the file would go unnoticed. Here ffmpeg's messages go to a temporary file, and a failed
write or a non-zero exit becomes one ExportError line with ffmpeg's own reason.
"""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from export.formats import ExportError


def no_space(folder: Path, written: int | None = None) -> ExportError:
    where = f"no space left on the disk of {folder}"
    if written:
        where += f" (the file had reached {written / 1e6:.1f} MB)"
    return ExportError(f"{where}; free some space and try again (the previous file, if any, is kept)")


def os_error(exc: OSError, folder: Path) -> ExportError:
    """One line for an OSError met while writing into folder."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return no_space(folder)
    if exc.errno == errno.EFBIG:
        return ExportError(f"the file grew larger than this system allows in {folder}")
    return ExportError(f"cannot write in {folder}: {exc.strerror or exc}")


class FfmpegEncoder:
    """ffmpeg reading (h, w, 3) uint8 frames on stdin: start(), send() each frame, finish() or kill()."""

    def __init__(self, target: str, size: tuple[int, int], fps: int, codec: str, pix_fmt: str, params: list[str]):
        import imageio_ffmpeg

        width, height = size
        self.target = target
        self.folder = Path(target).parent
        self.command = [
            imageio_ffmpeg.get_ffmpeg_exe(), "-y",
            "-f", "rawvideo", "-vcodec", "rawvideo", "-s", f"{width}x{height}", "-pix_fmt", "rgb24",
            "-r", str(Fraction(fps).limit_denominator()), "-i", "-", "-an",
            "-vcodec", codec, "-pix_fmt", pix_fmt, "-v", "error", *params, target,
        ]  # fmt: skip
        self._process: subprocess.Popen | None = None
        self._log = None

    def start(self) -> None:
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log, **_quiet_child()
        )

    def send(self, frame: np.ndarray) -> None:
        try:
            self._process.stdin.write(frame.tobytes())
        except (BrokenPipeError, OSError):
            self._process.wait()
            raise self._failure() from None

    def finish(self) -> None:
        """Let ffmpeg write the end of the file; ExportError unless it exits cleanly."""
        try:
            self._process.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        if self._process.wait() != 0:
            raise self._failure()
        self._close_log()

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._close_log()

    def _failure(self) -> ExportError:
        reason = self._reason()
        self._close_log()
        if "no space left" in reason.lower():
            return no_space(self.folder, _size(self.target))
        if "file too large" in reason.lower() or self._process.returncode == -25:  # SIGXFSZ
            return ExportError(f"the file grew larger than this system allows in {self.folder}")
        return ExportError(f"the encoder failed (exit status {self._process.returncode}): {reason}")

    def _reason(self) -> str:
        if self._log is None:
            return "no message"
        self._log.seek(0)
        lines = [line.strip() for line in self._log.read().decode("utf-8", "replace").splitlines() if line.strip()]
        return lines[-1] if lines else "no message"

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _quiet_child() -> dict:
    """Ctrl+C in the terminal stops Kinemo, which then stops ffmpeg itself: ffmpeg must not get the signal
    first and leave a file that looks finished."""
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}
