"""Files derived from a model's weights (int8 weights, ONNX graphs), cached on disk and checked on use.

Each entry is a folder named by a hash of what it was derived from, holding its files and a
manifest.json written last: the hash it was built for, the library versions that built it and a
SHA-256 of every file. An entry whose manifest is missing, unreadable, for other weights or other
library versions, or whose files do not match their checksums, is rebuilt, never trusted.

    root = cache_root()        # platformdirs' user cache dir, or $KINEMO_CACHE_DIR (tests)
    entry = root / "quantized" / key[:16]
    manifest = read_manifest(entry, expect={"source_sha256": key, "torch": torch.__version__})
    if manifest is None or not files_match(entry, manifest): rebuild, then write_manifest(entry, ...)

No torch here: the callers hash their tensors.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

from engine.api.errors import ModelLoadError
from engine.registry.assets import CONFIG_NAME, WEIGHTS_NAME
from engine.util.files import atomic_write_bytes, file_sha256

CACHE_DIR_ENV = "KINEMO_CACHE_DIR"
MANIFEST_NAME = "manifest.json"


def cache_root() -> Path:
    """Kinemo's cache folder: $KINEMO_CACHE_DIR, else the user's cache dir (platformdirs)."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("kinemo", appauthor=False))


def cache_errors(function):
    """function, with an OSError met in the cache folder (a file in its place, read-only, a full disk) turned into
    one ModelLoadError line that says what to do."""

    @functools.wraps(function)
    def guarded(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except OSError as exc:
            reason = exc.strerror or str(exc).splitlines()[0] or type(exc).__name__
            raise ModelLoadError(
                f"Kinemo's cache folder {cache_root()} cannot be used ({reason}); point {CACHE_DIR_ENV} at a "
                "writable folder with free space, or run without --quantize and --onnx-temporal"
            ) from None

    return guarded


def model_folder_sha256(folder: Path) -> str:
    """One hash for a bundled model folder: its config and its weights."""
    digest = hashlib.sha256()
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        digest.update(name.encode())
        digest.update(file_sha256(Path(folder) / name).encode())
    return digest.hexdigest()


def read_manifest(entry: Path, expect: dict) -> dict | None:
    """The entry's manifest if it is readable and every expected field matches, else None."""
    try:
        manifest = json.loads((entry / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return None
    if any(manifest.get(key) != value for key, value in expect.items()):
        return None
    return manifest


def file_matches(entry: Path, manifest: dict, name: str) -> bool:
    """Whether entry/name exists and has the checksum the manifest recorded for it."""
    recorded = manifest.get("files", {}).get(name)
    path = entry / name
    try:
        return bool(recorded) and path.is_file() and file_sha256(path) == recorded
    except OSError:
        return False


def write_manifest(entry: Path, fields: dict, files: list[str]) -> dict:
    """Record fields and the checksums of files (names inside entry); written last, atomically."""
    manifest = {**fields, "files": {name: file_sha256(entry / name) for name in files}}
    atomic_write_bytes(entry / MANIFEST_NAME, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return manifest


def forget_manifest(entry: Path) -> None:
    """Invalidate an entry before rewriting its files, so a crash midway leaves nothing trusted."""
    (entry / MANIFEST_NAME).unlink(missing_ok=True)
