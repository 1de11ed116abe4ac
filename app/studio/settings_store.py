"""The studio's remembered settings: one JSON file in the data folder, written atomically."""

from __future__ import annotations

import json
from pathlib import Path

from app.studio.saved_data import clean_settings, read_small_text
from engine.util.files import atomic_write_text

SETTINGS_NAME = "settings.json"


class SettingsStore:
    """A dict persisted as JSON, checked field by field on load. A missing or damaged file reads as empty
    settings; path None keeps nothing (a data folder that cannot be used)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.problems: list[str] = []  # fields of the last load that were unusable and reset

    def load(self) -> dict:
        self.problems = []
        if self.path is None:
            return {}
        try:
            text = read_small_text(self.path)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            self.problems = [SETTINGS_NAME]
            return {}
        try:
            data = json.loads(text)
        except ValueError:
            self.problems = [SETTINGS_NAME]
            return {}
        clean, self.problems = clean_settings(data)
        return clean

    def save(self, data: dict) -> None:
        if self.path is not None:
            atomic_write_text(self.path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True))
