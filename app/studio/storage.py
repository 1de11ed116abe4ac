"""The studio's files, opened once when the window is built: settings, history and the waiting queue.

A data folder that cannot be used (a file in its place, no permission) never stops the studio: it runs
with a temporary history and keeps nothing, and says so in the window. Pure Python: no Qt, no torch.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from app.studio.history import HistoryStore
from app.studio.paths import DataFolderError, data_dir, history_dir
from app.studio.saved_data import checked_request, read_small_text
from app.studio.settings_store import SETTINGS_NAME, SettingsStore
from engine.api.errors import InvalidRequest
from engine.api.run_options import RunOptions
from engine.util.files import atomic_write_text

QUEUE_NAME = "queue.json"
MAX_SAVED_JOBS = 1000


class QueueStore:
    """The waiting jobs (request and run options; never the hub token), rewritten whole on every change."""

    def __init__(self, path: Path):
        self.path = path
        self.skipped = 0  # jobs the last load could not read

    def save(self, jobs) -> None:
        saved = []
        for job in jobs:
            options = job.options.to_dict() if job.options is not None else None
            if options is not None:
                options.pop("token", None)
            saved.append({"request": job.request.to_dict(), "options": options})
        atomic_write_text(self.path, json.dumps({"jobs": saved}, indent=1, ensure_ascii=False))

    def load(self) -> list[tuple]:
        """[(GenerationRequest, RunOptions | None)], every field checked; unusable jobs counted in skipped."""
        self.skipped = 0
        try:
            data = json.loads(read_small_text(self.path))
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            self.skipped = 1
            return []
        jobs = data.get("jobs") if isinstance(data, dict) else None
        if not isinstance(jobs, list):
            self.skipped = 1
            return []
        restored = []
        for saved in jobs[:MAX_SAVED_JOBS]:
            try:
                restored.append(_read_job(saved))
            except (InvalidRequest, TypeError, ValueError):
                self.skipped += 1
        self.skipped += max(0, len(jobs) - MAX_SAVED_JOBS)
        return restored


def _read_job(saved) -> tuple:
    if not isinstance(saved, dict):
        raise ValueError("a job must be a JSON object")
    request = checked_request(saved.get("request"))
    options = saved.get("options")
    return request, (RunOptions.from_dict(options) if options is not None else None)


@dataclass
class Storage:
    settings: SettingsStore
    history: HistoryStore
    queue: QueueStore | None  # None: the queue is not kept
    problems: list[str] = field(default_factory=list)  # what could not be used, one sentence each
    scratch: Path | None = None  # a temporary history folder, removed by close()

    def close(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None


def _scratch_history() -> tuple[HistoryStore, Path]:
    scratch = Path(tempfile.mkdtemp(prefix="kinemo-history-"))
    return HistoryStore(scratch), scratch


def open_storage() -> Storage:
    """The stores in the data folder, or session-only stand-ins for the parts that cannot be used."""
    try:
        folder = data_dir()
    except DataFolderError as exc:
        history, scratch = _scratch_history()
        problem = f"The data folder cannot be used ({exc}): history, settings and the queue are not kept."
        return Storage(SettingsStore(None), history, None, [problem], scratch)
    storage = Storage(SettingsStore(folder / SETTINGS_NAME), None, QueueStore(folder / QUEUE_NAME))  # type: ignore[arg-type]
    try:
        storage.history = HistoryStore(history_dir())
    except DataFolderError as exc:
        storage.history, storage.scratch = _scratch_history()
        storage.problems.append(f"The history folder cannot be used ({exc}): this session's clips are not kept.")
    return storage


def count_sentence(count: int, one: str, many: str) -> str:
    """ "1 history entry" / "2 history entries"."""
    return f"{count} {one if count == 1 else many}"


def startup_notice(storage: Storage, history_skipped: int, restored_jobs: int) -> tuple[str, str] | None:
    """One (level, line) for everything the studio found wrong or brought back when it opened, or None."""
    parts = list(storage.problems)
    if storage.settings.problems:
        names = storage.settings.problems
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        parts.append(f"Settings that could not be read were reset: {shown}")
    if history_skipped:
        parts.append(
            count_sentence(history_skipped, "history entry", "history entries")
            + (" could not be read and was skipped" if history_skipped == 1 else " could not be read and were skipped")
        )
    if storage.queue is not None and storage.queue.skipped:
        parts.append(count_sentence(storage.queue.skipped, "waiting job", "waiting jobs") + " could not be read")
    level = "warning" if parts else "info"
    if restored_jobs:
        parts.append(
            count_sentence(restored_jobs, "waiting job", "waiting jobs")
            + " restored from the last session: Run in the queue starts them"
        )
    return (level, "; ".join(parts) + ".") if parts else None
