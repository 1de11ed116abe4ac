"""The generation record embedded in every exported file, and reading it back."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from export.formats import ExportError

METADATA_KEY = "comment"
SIDECAR_NAME = "kinemo.json"


def software_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kinemo")
    except PackageNotFoundError:
        return "0.1.0+source"


def make_record(request: dict, export: dict | None = None) -> dict:
    return {"kinemo": software_version(), "request": request, "export": export or {}}


def insert_gif_comment(data: bytes, comment: str) -> bytes:
    """Insert a GIF comment extension after the header, screen descriptor and global colour table."""
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        raise ExportError("the GIF encoder wrote no GIF header")
    packed = data[10]
    table = 3 * (2 ** ((packed & 0x07) + 1)) if packed & 0x80 else 0
    at = 13 + table
    payload = comment.encode("utf-8")
    blocks = b"".join(bytes([len(payload[i : i + 255])]) + payload[i : i + 255] for i in range(0, len(payload), 255))
    return b"GIF89a" + data[6:at] + b"\x21\xfe" + blocks + b"\x00" + data[at:]


def _ffmetadata_comment(path: Path) -> str | None:
    import imageio_ffmpeg

    try:
        result = subprocess.run(
            [
                imageio_ffmpeg.get_ffmpeg_exe(),
                "-hide_banner",
                "-loglevel",
                "error",
                "-i",
                str(path),
                "-f",
                "ffmetadata",
                "-",
            ],
            capture_output=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ExportError(f"cannot read {path}: ffmpeg found no clip in it within 60 s") from None
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        raise ExportError(f"cannot read {path}: {reason[-1] if reason else 'ffmpeg failed'}")
    lines = result.stdout.decode("utf-8", errors="replace").split("\n")
    # ffmetadata escapes '=', ';', '#', '\' and newlines with a backslash
    joined, pending = [], ""
    for line in lines:
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending += line[:-1] + "\n"
            continue
        joined.append(pending + line)
        pending = ""
    for line in joined:
        if line.lower().startswith(f"{METADATA_KEY}="):  # Matroska writes the key in capitals
            return re.sub(r"\\(.)", r"\1", line[len(METADATA_KEY) + 1 :], flags=re.S)
    return None


MAX_RECORD = 1 << 20  # bytes: a record is a few hundred; anything near this is not one of ours


def read_record(path: str | Path) -> dict:
    """The Kinemo record of an exported clip (file or PNG folder); ExportError, in one line, if there is none."""
    path = Path(path)
    if not path.exists():
        raise ExportError(f"no such file: {path}")
    if path.is_dir():
        text = _sidecar_text(path)
    elif not path.is_file():
        raise ExportError(f"{path} is not a regular file (a device, pipe or socket)")
    elif path.suffix.lower() == ".gif":
        text = _gif_comment(path)
    else:
        text = _ffmetadata_comment(path)
    return _parse_record(path, text)


def _sidecar_text(folder: Path) -> str:
    sidecar = folder / SIDECAR_NAME
    if not sidecar.is_file():
        raise ExportError(f"{folder} is a folder without {SIDECAR_NAME}: not a Kinemo PNG export")
    data = sidecar.read_bytes()[: MAX_RECORD + 1]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ExportError(f"{sidecar} is not UTF-8 text: not a Kinemo record") from None


def _gif_comment(path: Path) -> str:
    from PIL import Image

    try:
        with Image.open(path) as image:  # the header only: a GIF that declares a huge screen is never decoded
            raw = image.info.get("comment", b"")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ExportError(f"cannot read {path}: {reason}") from None
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)


def _parse_record(path: Path, text: str | None) -> dict:
    record = None
    if text and len(text) <= MAX_RECORD:
        try:
            record = json.loads(text)
        except (ValueError, RecursionError):  # bad JSON, or nested deeper than any record of ours
            record = None
    if not isinstance(record, dict) or "request" not in record:
        raise ExportError(f"{path} carries no Kinemo generation record")
    return record
