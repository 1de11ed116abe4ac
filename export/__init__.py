"""Frames -> files through ffmpeg. Never imports Qt or torch."""

from export.formats import FORMATS, ExportError, ExportSettings
from export.metadata import make_record, read_record
from export.writer import ClipWriter, check_destination, write_clip

__all__ = [
    "FORMATS",
    "ClipWriter",
    "ExportError",
    "ExportSettings",
    "check_destination",
    "make_record",
    "read_record",
    "write_clip",
]
