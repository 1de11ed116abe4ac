"""The studio's remembered settings: one JSON file in the data folder, written atomically."""

from __future__ import annotations

import json
from pathlib import Path

from app.studio.paths import data_dir
from engine.util.files import atomic_write_text

SETTINGS_NAME = "settings.json"


class SettingsStore:
    """A dict persisted as JSON. A missing or damaged file reads as empty settings."""

    def __init__(self, path: Path | None = None):
        self.path = path or data_dir() / SETTINGS_NAME

    def load(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, data: dict) -> None:
        atomic_write_text(self.path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True))
