"""Where the studio keeps its files: history clips, thumbnails, settings and the queue."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "KINEMO_DATA_DIR"


class DataFolderError(OSError):
    """A data folder that cannot be used (a file in its place, no permission); the message is one line."""


def usable_folder(folder: Path) -> Path:
    """folder, created if needed and writable; DataFolderError saying why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise DataFolderError(f"{folder} is a file, not a folder") from None
    except OSError as exc:
        raise DataFolderError(f"{folder} cannot be created ({exc.strerror or exc})") from None
    if not folder.is_dir():
        raise DataFolderError(f"{folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataFolderError(f"{folder} is not writable")
    return folder


def data_dir() -> Path:
    """The user's Kinemo data folder; KINEMO_DATA_DIR overrides it (tests point it at tmp_path)."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        folder = Path(override).expanduser()
    else:
        from platformdirs import user_data_dir

        folder = Path(user_data_dir("kinemo", appauthor=False))
    return usable_folder(folder)


def history_dir() -> Path:
    return usable_folder(data_dir() / "history")
