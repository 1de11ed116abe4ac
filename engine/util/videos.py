"""Reading clips as frames for video-to-video and for extending a clip: any file ffmpeg decodes (through
imageio-ffmpeg), or a folder of PNG frames as Kinemo exports them. numpy, PIL and imageio-ffmpeg only.

Every failure is a VideoError with one line that names the file and what is wrong with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.api.errors import InvalidRequest

MAX_VIDEO_FRAMES = 1024  # the longest clip a request makes; a longer input is refused, not cut
MAX_VIDEO_PIXELS = 4096 * 4096


class VideoError(InvalidRequest):
    """A video input is missing, empty, too long or not a video."""


def load_video(path: str | Path, max_frames: int = MAX_VIDEO_FRAMES) -> tuple[np.ndarray, float | None]:
    """(frames (f, h, w, 3) uint8, frames per second or None) of a clip file or a folder of PNG frames."""
    path = Path(path).expanduser()
    if not path.exists():
        raise VideoError(f"video not found: {path}")
    frames, fps = (_png_folder(path, max_frames), None) if path.is_dir() else _video_file(path, max_frames)
    if len(frames) == 0:
        raise VideoError(f"{path} holds no frames")
    return frames, fps


def _video_file(path: Path, max_frames: int) -> tuple[np.ndarray, float | None]:
    import imageio_ffmpeg

    if path.stat().st_size == 0:
        raise VideoError(f"{path} is empty")
    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
    except (RuntimeError, OSError, StopIteration) as exc:
        raise VideoError(f"{path} is not a video ffmpeg can read ({_first_line(exc)})") from None
    try:
        width, height = meta["size"]
        if width * height > MAX_VIDEO_PIXELS:
            raise VideoError(f"{path} is {width}x{height}; Kinemo reads videos up to 4096x4096")
        frames: list[np.ndarray] = []
        for data in reader:
            if len(frames) == max_frames:
                raise VideoError(f"{path} is longer than {max_frames} frames; cut it shorter first")
            frames.append(np.frombuffer(data, np.uint8).reshape(height, width, 3))
    except RuntimeError as exc:
        raise VideoError(f"{path} cannot be decoded ({_first_line(exc)})") from None
    finally:
        reader.close()
    fps = meta.get("fps")
    return np.stack(frames) if frames else np.zeros((0, height, width, 3), np.uint8), fps or None


def _png_folder(path: Path, max_frames: int) -> np.ndarray:
    from engine.util.images import load_image

    files = sorted(path.glob("*.png"))
    if len(files) > max_frames:
        raise VideoError(f"{path} holds more than {max_frames} frames; use fewer")
    frames = [load_image(f) for f in files]
    if len({f.shape for f in frames}) > 1:
        raise VideoError(f"the frames in {path} are not all the same size")
    return np.stack(frames) if frames else np.zeros((0, 1, 1, 3), np.uint8)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
