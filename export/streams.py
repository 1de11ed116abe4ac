"""What an exported clip holds: its video and sound streams, read from ffmpeg's description of the file.

imageio-ffmpeg ships ffmpeg without ffprobe, so the stream lines ffmpeg prints for its input are read here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from export.audio import WAV_NAME
from export.formats import ExportError

_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_STREAM = re.compile(r"Stream #\d+:\d+.*?: (Video|Audio): (\w+)(.*)")
_SIZE = re.compile(r", (\d+)x(\d+)")
_FPS = re.compile(r", (\d+(?:\.\d+)?) fps")
_RATE = re.compile(r", (\d+) Hz, ([\w.() ]+?)(?:,|$)")


def describe(path: Path) -> list[str]:
    """ffmpeg's lines about the file's input (duration and streams)."""
    import imageio_ffmpeg

    try:
        result = subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
            capture_output=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ExportError(f"cannot read {path}: ffmpeg found no clip in it within 60 s") from None
    return [line.strip() for line in result.stderr.decode("utf-8", "replace").splitlines()]


def read_streams(path: str | Path) -> list[dict]:
    """One dict per stream: kind ("video"/"audio"), codec, duration (seconds), and width, height, fps for video,
    sample_rate and channels for sound. A PNG export's frames are not probed; its audio.wav is."""
    path = Path(path)
    if path.is_dir():
        wav = path / WAV_NAME
        return read_streams(wav) if wav.is_file() else []
    lines = describe(path)
    duration = next((m for m in map(_DURATION.search, lines) if m), None)
    seconds = int(duration[1]) * 3600 + int(duration[2]) * 60 + float(duration[3]) if duration else None
    streams = []
    for match in filter(None, map(_STREAM.search, lines)):
        kind, codec, rest = match[1].lower(), match[2], match[3]
        stream: dict = {"kind": kind, "codec": codec, "duration": seconds}
        if kind == "video" and (size := _SIZE.search(rest)):
            stream.update(width=int(size[1]), height=int(size[2]))
            if fps := _FPS.search(rest):
                stream["fps"] = float(fps[1])
        elif kind == "audio" and (rate := _RATE.search(rest)):
            stream.update(sample_rate=int(rate[1]), channels=rate[2].strip())
        streams.append(stream)
    return streams
