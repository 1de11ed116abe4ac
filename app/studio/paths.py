"""Where the studio keeps its files: history clips, thumbnails and settings."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "KINEMO_DATA_DIR"


def data_dir() -> Path:
    """The user's Kinemo data folder; KINEMO_DATA_DIR overrides it (tests point it at tmp_path)."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        folder = Path(override).expanduser()
    else:
        from platformdirs import user_data_dir

        folder = Path(user_data_dir("kinemo", appauthor=False))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def history_dir() -> Path:
    folder = data_dir() / "history"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
