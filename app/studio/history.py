"""Every finished generation, kept across restarts in the data folder.

Each entry is four files sharing one name in <data>/history/:
  <id>.mp4   the clip with its embedded Kinemo record (export/)
  <id>.png   a thumbnail
  <id>.npy   the native frames, so the player and exports need no decoding
  <id>.wav   the clip's sound, for models that make one (the player plays it; exports carry it)
  <id>.json  the entry itself (request, time, seconds); written last, so an entry exists only once complete
Pure Python (numpy, PIL, export): saving runs on a worker thread.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.studio.paths import history_dir, usable_folder
from app.studio.saved_data import LATEST_TIME, checked_request, is_number, read_small_text
from engine.api.errors import InvalidRequest
from engine.api.request import LIMITS
from engine.util.files import atomic_path, atomic_write_bytes, atomic_write_text

HISTORY_QUALITY = 80
THUMBNAIL_SIZE = 96


@dataclass(frozen=True)
class HistoryEntry:
    id: str
    request: dict  # GenerationRequest.to_dict()
    created: float  # seconds since the epoch
    seconds: float  # generation time
    folder: Path
    frame_count: int | None = None  # frames in the clip: more than request["frames"] for an extended clip

    @property
    def clip_path(self) -> Path:
        return self.folder / f"{self.id}.mp4"

    @property
    def thumbnail_path(self) -> Path:
        return self.folder / f"{self.id}.png"

    @property
    def frames_path(self) -> Path:
        return self.folder / f"{self.id}.npy"

    @property
    def sound_path(self) -> Path:
        return self.folder / f"{self.id}.wav"

    @property
    def sound(self) -> Path | None:
        """The clip's sound (a WAV) when it has one."""
        return self.sound_path if self.sound_path.is_file() else None

    @property
    def entry_path(self) -> Path:
        return self.folder / f"{self.id}.json"

    @property
    def title(self) -> str:
        prompt = " ".join(self.request.get("prompt", "").split())
        return prompt if len(prompt) <= 60 else prompt[:59] + "…"

    @property
    def summary(self) -> str:
        r = self.request
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created))
        frames = f"{self.frames} f"
        if r.get("extends"):
            frames = f"{self.frames} f, {r.get('frames')} new"
        return f"{when} · seed {r.get('seed')} · {r.get('steps')} steps · {frames} @ {r.get('fps')} fps"

    @property
    def frames(self) -> int:
        """The clip's length in frames (an entry written before lengths were kept: the request's frames)."""
        return self.frame_count if self.frame_count is not None else int(self.request.get("frames", 0))

    def load_frames(self) -> np.ndarray:
        """The native frames (slow for long clips: call off the UI thread); ValueError for a file that is not
        a clip's frames. The header is checked through a memory map before anything is read."""
        frames = np.load(self.frames_path, mmap_mode="r", allow_pickle=False)
        if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
            raise ValueError(f"{self.frames_path.name} does not hold (frames, height, width, 3) uint8 frames")
        frames_high, size_high = 2 * LIMITS["frames"][1], LIMITS["width"][1]  # an extended clip: old and new
        if not (
            0 < frames.shape[0] <= frames_high and 0 < frames.shape[1] <= size_high and 0 < frames.shape[2] <= size_high
        ):
            raise ValueError(f"{self.frames_path.name} holds frames of shape {frames.shape}, beyond what Kinemo makes")
        return np.array(frames)


def read_entry(path: Path, folder: Path) -> HistoryEntry:
    """One entry from its .json, every field checked; ValueError (or OSError) when it is unusable."""
    data = json.loads(read_small_text(path))
    if not isinstance(data, dict):
        raise ValueError("an entry must be a JSON object")
    try:
        request = checked_request(data.get("request"))
    except InvalidRequest as exc:
        raise ValueError(str(exc)) from None
    created, seconds = data.get("created"), data.get("seconds", 0.0)
    if not is_number(created, 0.0, LATEST_TIME):
        raise ValueError(f"created must be a time after 1970, got {created!r}")
    if not is_number(seconds, 0.0, 1e9):
        raise ValueError(f"seconds must be a positive number, got {seconds!r}")
    count = data.get("frame_count")
    if count is not None and not (isinstance(count, int) and is_number(count, 1, 2 * LIMITS["frames"][1])):
        raise ValueError(f"frame_count must be a whole number of frames, got {count!r}")
    return HistoryEntry(path.stem, request.to_dict(), float(created), float(seconds), folder, count)


def _atomic_save_npy(path: Path, frames: np.ndarray) -> None:
    """Stream the frames into a temporary file renamed into place: a long clip's frames run to hundreds of
    megabytes, which atomic_write_bytes would first copy into one bytes object."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # a file object: np.save would add ".npy" to a name
        np.save(handle, np.ascontiguousarray(frames, dtype=np.uint8))


class HistoryStore:
    def __init__(self, folder: Path | None = None):
        self.folder = usable_folder(folder) if folder is not None else history_dir()
        self.skipped = 0  # entries the last entries() could not read

    def entries(self) -> list[HistoryEntry]:
        """All complete entries, newest first; unreadable ones are skipped and counted in self.skipped."""
        found, self.skipped = [], 0
        for path in self.folder.glob("*.json"):
            try:
                entry = read_entry(path, self.folder)
            except (OSError, ValueError):
                self.skipped += 1
                continue
            if entry.clip_path.is_file():  # an entry whose clip was deleted by hand is gone, not damaged
                found.append(entry)
        return sorted(found, key=lambda e: e.created, reverse=True)

    def save(self, request, frames: np.ndarray, seconds: float, sound=None) -> HistoryEntry:
        """Write clip, thumbnail, frames, sound (an engine.api.events.Sound, when the model made one) and entry
        for a finished generation (slow: call off the UI thread)."""
        from PIL import Image

        from export import ExportSettings, make_record, write_clip
        from export.audio import check_sound, write_wav

        created = time.time()
        entry_id = time.strftime("%Y%m%d-%H%M%S", time.localtime(created)) + "-" + uuid.uuid4().hex[:6]
        entry = HistoryEntry(entry_id, request.to_dict(), created, seconds, self.folder, len(frames))
        settings = ExportSettings("mp4", request.fps, request.width, request.height, HISTORY_QUALITY)
        record = make_record(request.to_dict(), {"format": "mp4", "quality": HISTORY_QUALITY})
        written: list[Path] = []
        try:
            write_clip(entry.clip_path, frames, settings, record, sound=sound)
            written.append(entry.clip_path)
            if sound is not None:
                sound = check_sound(sound)
                with atomic_path(entry.sound_path) as tmp:
                    write_wav(tmp, sound.samples, sound.sample_rate)
                written.append(entry.sound_path)
            _atomic_save_npy(entry.frames_path, frames)
            written.append(entry.frames_path)
            thumb = Image.fromarray(frames[len(frames) // 2])
            aspect = request.width / request.height
            size = (
                (THUMBNAIL_SIZE, max(1, round(THUMBNAIL_SIZE / aspect)))
                if aspect >= 1
                else (max(1, round(THUMBNAIL_SIZE * aspect)), THUMBNAIL_SIZE)
            )
            png = io.BytesIO()
            thumb.resize(size, Image.Resampling.BICUBIC).save(png, format="PNG")
            atomic_write_bytes(entry.thumbnail_path, png.getvalue())
            written.append(entry.thumbnail_path)
            data = {"request": entry.request, "created": created, "seconds": seconds, "frame_count": len(frames)}
            atomic_write_text(entry.entry_path, json.dumps(data, indent=2, ensure_ascii=False))
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        return entry

    def remove(self, entry: HistoryEntry) -> None:
        for path in (entry.entry_path, entry.clip_path, entry.thumbnail_path, entry.frames_path, entry.sound_path):
            path.unlink(missing_ok=True)
