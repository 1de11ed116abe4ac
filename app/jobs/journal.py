"""The batch's journal of finished work: DIR/.kinemo-batch/journal.json, rewritten whole (to a temporary file,
flushed to disk, renamed into place) as each job ends.

Each job owns one file, and the journal records, by file name, the job's key (app.jobs.jobs_file.job_key: what
decides the file), its state ("done" or "failed"), the file's SHA-256 and a failure's one-line error. A later run
skips a job whose entry is done under the same key and whose file is still there with that SHA-256, and redoes
every other one (a line whose request changed is redone under its name), so a batch stopped
by Ctrl+C, kill -9 or a power cut loses at most the jobs in flight: clips are published atomically, and a clip
finished but not yet journaled is made again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

SCHEMA = "kinemo.batch-journal/1"  # {"schema", "jobs": {file name: entry}}
STATE_FOLDER = ".kinemo-batch"


def state_folder(output: Path) -> Path:
    return Path(output) / STATE_FOLDER


def output_sha256(path: Path) -> str | None:
    """The SHA-256 of a clip file, or of a folder of PNG frames (each file's name and digest, in order); None
    when there is nothing at path."""
    from engine.util.files import file_sha256

    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    if not path.is_dir():
        return None
    digest = hashlib.sha256()
    for part in sorted(p for p in path.iterdir() if p.is_file()):
        digest.update(part.name.encode("utf-8") + b"\0" + bytes.fromhex(file_sha256(part)))
    return digest.hexdigest()


def durable(path: Path) -> None:
    """Flush a finished file (or a folder's files) to the disk, so a power cut after the journal says done
    cannot leave it empty."""
    parts = [path] if path.is_file() else [p for p in path.iterdir() if p.is_file()]
    for part in parts:
        fd = os.open(part, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Journal:
    def __init__(self, output: Path):
        self.output = Path(output)
        self.path = state_folder(output) / "journal.json"
        self.entries: dict[str, dict] = self._load()

    def _load(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:  # atomic writes make this unlikely; the clips are checked anyway
            print(
                f"warning: the batch journal {self.path} is unreadable ({exc}); every job is checked again",
                file=sys.stderr,
            )
            return {}
        if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("jobs"), dict):
            return {}
        return data["jobs"]

    def is_done(self, key: str, file_name: str) -> bool:
        """Whether the job's file was finished by an earlier run and is still there, unchanged."""
        entry = self.entries.get(file_name)
        if not entry or entry.get("state") != "done" or entry.get("key") != key:
            return False
        return output_sha256(self.output / file_name) == entry.get("sha256")

    def done(self, key: str, name: str, file_name: str, stats: dict | None = None) -> None:
        path = self.output / file_name
        durable(path)
        entry = {"key": key, "state": "done", "name": name, "file": file_name, "sha256": output_sha256(path)}
        self.entries[file_name] = {**entry, "stats": stats or {}}
        self.save()

    def failed(self, key: str, name: str, file_name: str, error: str) -> None:
        self.entries[file_name] = {"key": key, "state": "failed", "name": name, "file": file_name, "error": error}
        self.save()

    def save(self) -> None:
        from engine.util.files import atomic_path

        text = json.dumps({"schema": SCHEMA, "jobs": self.entries}, indent=1, sort_keys=True, default=str) + "\n"
        with atomic_path(self.path) as tmp, open(tmp, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
