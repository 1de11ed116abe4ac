"""Export formats and their ffmpeg settings (imageio-ffmpeg runs the encoder)."""

from __future__ import annotations

from dataclasses import dataclass

FORMATS = ("mp4", "gif", "webm", "png")
EXTENSIONS = {"mp4": ".mp4", "gif": ".gif", "webm": ".webm", "png": ""}


class ExportError(Exception):
    """An export could not be written; nothing was left behind."""


@dataclass(frozen=True)
class ExportSettings:
    format: str = "mp4"
    fps: int = 8
    width: int = 256
    height: int = 256
    quality: int = 80  # 1 (smallest file) .. 100 (best picture)

    def validate(self) -> ExportSettings:
        if self.format not in FORMATS:
            raise ExportError(f"unknown format {self.format!r}; choose one of {', '.join(FORMATS)}")
        if not 1 <= self.fps <= 60:
            raise ExportError(f"fps must be between 1 and 60, got {self.fps}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if not 2 <= value <= 4096 or value % 2:
                raise ExportError(f"{name} must be an even number between 2 and 4096, got {value}")
        if not 1 <= self.quality <= 100:
            raise ExportError(f"quality must be between 1 and 100, got {self.quality}")
        return self


def carries_sound(fmt: str) -> bool:
    """MP4 (AAC), WebM (Opus) and PNG frames (a WAV beside them) keep a clip's sound; GIF cannot."""
    return fmt != "gif"


def encoder_arguments(settings: ExportSettings) -> tuple[str, str, list[str]]:
    """(codec, output pixel format, extra ffmpeg output arguments) for a format."""
    scale = f"scale={settings.width}:{settings.height}:flags=lanczos"
    q = settings.quality
    if settings.format == "mp4":
        crf = round(40 - 0.28 * q)  # quality 80 -> CRF 18
        return (
            "libx264",
            "yuv420p",
            ["-vf", scale, "-crf", str(crf), "-preset", "medium", "-movflags", "+faststart", "-f", "mp4"],
        )
    if settings.format == "webm":
        crf = round(55 - 0.3 * q)  # quality 80 -> CRF 31
        return "libvpx-vp9", "yuv420p", ["-vf", scale, "-crf", str(crf), "-b:v", "0", "-row-mt", "1", "-f", "webm"]
    if settings.format == "gif":
        graph = f"{scale},split[a][b];[a]palettegen=stats_mode=full[p];[b][p]paletteuse=dither=sierra2_4a"
        return "gif", "pal8", ["-filter_complex", graph, "-loop", "0", "-f", "gif"]
    return "png", "rgb24", ["-vf", scale, "-f", "image2", "-start_number", "0"]
