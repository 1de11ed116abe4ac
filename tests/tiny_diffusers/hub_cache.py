"""Put a local model folder into a huggingface-hub cache, laid out exactly as a download leaves it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def put_in_hub_cache(cache: Path, repo_id: str, source: Path, commit: str = "0" * 40) -> Path:
    """blobs/<sha256> + snapshots/<commit>/<path> symlinks + refs/main; returns the snapshot folder."""
    repo = Path(cache) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    source = Path(source)
    files = [source] if source.is_file() else [p for p in sorted(source.rglob("*")) if p.is_file()]
    for path in files:
        data = path.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / (path.name if source.is_file() else path.relative_to(source))
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot
