"""Models on disk: download, find, measure and remove hub models with huggingface-hub.

Everything goes through huggingface-hub, so its cache (HF_HOME, HF_HUB_CACHE), its offline switch
(HF_HUB_OFFLINE), its token (HF_TOKEN or `hf auth login`) and its retries apply as they do for every
other tool. Pickled weights are never downloaded. A dropped connection is resumed within the same pull
(a Range request from the last whole 10 MB chunk written); a pull that stops (cancelled, or out of
retries) keeps the files it finished, and the next pull fetches only the rest, each unfinished file
from its start (huggingface-hub 2.x deletes the partial file of a download that failed).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from engine.api.errors import ModelLoadError
from engine.registry.catalog import CatalogEntry
from engine.registry.layout import PICKLE_SUFFIXES, inspect_folder

log = logging.getLogger("kinemo.hub")

IGNORE_PATTERNS = [f"*{suffix}" for suffix in PICKLE_SUFFIXES] + ["*.onnx", "*.msgpack", "*.h5", "*.gguf"]
METADATA_PATTERNS = ["*.json", "*.txt", "*.model", "*.tiktoken", "tokenizer*", "spiece*"]


@dataclass(frozen=True)
class HubModel:
    """What to fetch for one model: a pipeline repository, and an adapter repository or file."""

    name: str  # what the user typed: catalog id or hub id
    hub_id: str
    allow_patterns: tuple[str, ...] | None = None
    adapter_id: str | None = None
    adapter_file: str | None = None

    @property
    def motion_base(self) -> bool:
        """The pipeline repository is a Stable Diffusion base that the adapter animates."""
        return self.adapter_id is not None

    @classmethod
    def from_entry(cls, entry: CatalogEntry) -> HubModel:
        patterns = entry.allow_patterns
        if entry.variant and not patterns:
            patterns = (*METADATA_PATTERNS, f"*.{entry.variant}.safetensors")
        adapter = entry.adapter
        return cls(
            entry.id, entry.hub_id, patterns, adapter.hub_id if adapter else None, adapter.filename if adapter else None
        )

    @property
    def repos(self) -> list[str]:
        return [self.hub_id] + ([self.adapter_id] if self.adapter_id else [])


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def explain(model: HubModel, exc: Exception, action: str) -> ModelLoadError:
    """Turn a huggingface-hub failure into one line that says what to do."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    repo = getattr(exc, "repo_id", None) or model.hub_id
    if isinstance(exc, GatedRepoError):
        return ModelLoadError(
            f"{repo} is gated: accept its licence at https://huggingface.co/{repo} while logged in, then "
            f"run `kinemo models pull {model.name} --token YOUR_TOKEN` (or set HF_TOKEN)"
        )
    if isinstance(exc, (RepositoryNotFoundError, RevisionNotFoundError)):
        return ModelLoadError(f"{repo} was not found on the hub (a typo, or a private model that needs --token)")
    if offline():
        return ModelLoadError(
            f"{model.name} is not on disk and HF_HUB_OFFLINE is set; run `HF_HUB_OFFLINE=0 kinemo models pull {model.name}` "
            "on a machine that can reach huggingface.co"
        )
    return ModelLoadError(
        f"cannot {action} {model.name}: the hub cannot be reached ({type(exc).__name__}); run "
        f"`kinemo models pull {model.name}` when online, or pass --model a local folder"
    )


def local_snapshot(repo_id: str, allow_patterns=None) -> Path | None:
    """The cached snapshot folder of a repository, or None when it was never downloaded.

    The patterns are pull's: huggingface-hub checks the snapshot against the file list it cached at
    download time, so a repository that also holds pickled weights (never pulled) is complete here too.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(
            snapshot_download(
                repo_id, allow_patterns=allow_patterns, ignore_patterns=IGNORE_PATTERNS, local_files_only=True
            )
        )
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        return None


def local_paths(model: HubModel) -> tuple[Path, Path | None] | None:
    """(pipeline folder, adapter folder or file) when the whole model is on disk and complete, else None."""
    from huggingface_hub import try_to_load_from_cache

    pipeline = local_snapshot(model.hub_id, model.allow_patterns)
    if pipeline is None:
        return None
    try:
        inspect_folder(pipeline, model.motion_base)
    except ModelLoadError:
        return None  # an interrupted download (pull again to resume) or not a model we run
    adapter = None
    if model.adapter_id and model.adapter_file:
        found = try_to_load_from_cache(model.adapter_id, model.adapter_file)
        if not isinstance(found, str):
            return None
        adapter = Path(found)
    elif model.adapter_id:
        adapter = local_snapshot(model.adapter_id)
        if adapter is None or not any(adapter.glob("*.safetensors")):
            return None
    return pipeline, adapter


def pull(model: HubModel, token: str | None = None, tqdm_class=None) -> tuple[Path, Path | None]:
    """Download (or finish downloading) a model; returns what local_paths returns."""
    from huggingface_hub import hf_hub_download, snapshot_download

    try:
        pipeline = Path(
            snapshot_download(
                model.hub_id,
                allow_patterns=list(model.allow_patterns) if model.allow_patterns else None,
                ignore_patterns=IGNORE_PATTERNS,
                token=token,
                tqdm_class=tqdm_class,
            )
        )
        adapter = None
        if model.adapter_id and model.adapter_file:
            adapter = Path(hf_hub_download(model.adapter_id, model.adapter_file, token=token, tqdm_class=tqdm_class))
        elif model.adapter_id:
            adapter = Path(
                snapshot_download(model.adapter_id, ignore_patterns=IGNORE_PATTERNS, token=token, tqdm_class=tqdm_class)
            )
    except Exception as exc:  # huggingface-hub raises many kinds; each becomes one actionable line
        if isinstance(exc, ModelLoadError):
            raise
        raise explain(model, exc, "download") from exc
    inspect_folder(pipeline, model.motion_base)
    return pipeline, adapter


def _scan_cache():
    """scan_cache_dir of the cache downloads go to: named, as huggingface-hub's scanner keeps the
    HF_HUB_CACHE it saw when it was first imported (a cache set later, as tests do, would be missed)."""
    from huggingface_hub import constants, scan_cache_dir

    return scan_cache_dir(constants.HF_HUB_CACHE)


def disk_bytes(model: HubModel) -> int:
    """Bytes the model's repositories take in the hub cache (0 when absent)."""
    try:
        cache = _scan_cache()
    except Exception:  # no cache folder yet
        return 0
    return sum(r.size_on_disk for r in cache.repos if r.repo_type == "model" and r.repo_id in model.repos)


def remove(model: HubModel, keep: Collection[str] = frozenset()) -> tuple[int, list[str]]:
    """Delete the model's repositories from the hub cache, except those in keep; (bytes freed, repos removed)."""
    try:
        cache = _scan_cache()
    except Exception:
        return 0, []
    targets = [r for r in cache.repos if r.repo_type == "model" and r.repo_id in model.repos and r.repo_id not in keep]
    if not targets:
        return 0, []
    strategy = cache.delete_revisions(*[rev.commit_hash for r in targets for rev in r.revisions])
    freed = strategy.expected_freed_size
    strategy.execute()
    return freed, [r.repo_id for r in targets]


def token_from(value: str | None) -> str | None:
    """--token wins; else huggingface-hub finds HF_TOKEN or a saved login itself."""
    return value or os.environ.get("HF_TOKEN") or None
