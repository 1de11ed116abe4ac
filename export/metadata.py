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
    )
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


def read_record(path: str | Path) -> dict:
    """The Kinemo record of an exported clip (file or PNG folder); ExportError if there is none."""
    path = Path(path)
    if not path.exists():
        raise ExportError(f"no such file: {path}")
    if path.is_dir():
        sidecar = path / SIDECAR_NAME
        if not sidecar.is_file():
            raise ExportError(f"{path} is a folder without {SIDECAR_NAME}: not a Kinemo PNG export")
        text = sidecar.read_text(encoding="utf-8")
    elif path.suffix.lower() == ".gif":
        from PIL import Image

        try:
            with Image.open(path) as image:
                raw = image.info.get("comment", b"")
        except OSError as exc:
            raise ExportError(f"cannot read {path}: {exc}") from None
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    else:
        text = _ffmetadata_comment(path)
    try:
        record = json.loads(text) if text else None
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict) or "request" not in record:
        raise ExportError(f"{path} carries no Kinemo generation record")
    return record
