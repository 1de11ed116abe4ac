"""Finding LoRA weights: a .safetensors file (or a folder holding one), or a hub repository, downloaded once into
the hub cache as models are; and the LoRAs already in that cache, for the studio's list. huggingface-hub does the
downloading and the caching; Kinemo only picks the file and refuses pickled weights, which can run code when read.
"""

from __future__ import annotations

import re
from pathlib import Path

from engine.api.controls import PICKLED_SUFFIXES, LoraWeight
from engine.api.errors import InvalidRequest, ModelLoadError

PREFERRED_FILE = "pytorch_lora_weights.safetensors"  # what diffusers' save_lora_weights writes
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+(/.+\.safetensors)?$")


class LoraError(InvalidRequest):
    """A LoRA cannot be found, is not safetensors, or does not fit the model."""


def lora_file(lora: LoraWeight, token: str | None = None) -> Path:
    """The LoRA's safetensors file on disk, downloaded from the hub when the source is a hub id not cached yet."""
    path = Path(lora.source).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".safetensors":
            raise LoraError(f"LoRA {lora.source}: not a .safetensors file; Kinemo loads LoRAs from safetensors only")
        return path
    if path.is_dir():
        return _pick_file(lora, [p.name for p in path.iterdir() if p.is_file()], path)
    if not HUB_ID.match(lora.source):
        raise LoraError(f"LoRA {lora.source}: no such file, and not a hub id (owner/name[/file.safetensors])")
    return _hub_file(lora, token)


def _pick_file(lora: LoraWeight, names: list[str], folder: Path | None = None) -> Path:
    """The one LoRA file among a folder's (or a repository's) files."""
    weights = sorted(n for n in names if n.lower().endswith(".safetensors"))
    if PREFERRED_FILE in weights:
        weights = [PREFERRED_FILE]
    if len(weights) != 1:
        pickled = [n for n in names if n.lower().endswith(PICKLED_SUFFIXES)]
        reason = (
            "holds only pickled weights, which Kinemo does not load"
            if pickled and not weights
            else f"holds {len(weights)} .safetensors files ({', '.join(weights[:4])}); name one"
            if weights
            else "holds no .safetensors file"
        )
        raise LoraError(f"LoRA {lora.source} {reason}")
    return (folder / weights[0]) if folder is not None else Path(weights[0])


def _hub_file(lora: LoraWeight, token: str | None) -> Path:
    from huggingface_hub import hf_hub_download, list_repo_files, try_to_load_from_cache

    parts = lora.source.split("/", 2)
    repo, filename = "/".join(parts[:2]), (parts[2] if len(parts) == 3 else None)
    try:
        if filename is None:
            cached = try_to_load_from_cache(repo, PREFERRED_FILE)
            if isinstance(cached, str):
                return Path(cached)
            filename = str(_pick_file(lora, list_repo_files(repo, token=token)))
        cached = try_to_load_from_cache(repo, filename)  # a LoRA read once is not asked for again
        return Path(cached) if isinstance(cached, str) else Path(hf_hub_download(repo, filename, token=token))
    except LoraError:
        raise
    except Exception as exc:  # noqa: BLE001 - huggingface-hub and its HTTP client raise many kinds; one line each
        raise ModelLoadError(
            f"LoRA {lora.source}: cannot get it from the hub ({type(exc).__name__}); download it when online, "
            "or give the path of its .safetensors file"
        ) from None


def cached_loras() -> list[str]:
    """Hub ids of the LoRA files already in the hub cache ("owner/name/file.safetensors"), for the studio's list:
    repositories whose name or files say LoRA."""
    from engine.registry.hub import _scan_cache

    try:
        repos = _scan_cache().repos
    except Exception:  # noqa: BLE001 - no cache yet, or one being written: nothing to list
        return []
    found = []
    for repo in repos:
        if repo.repo_type != "model":
            continue
        files = {f.file_name for rev in repo.revisions for f in rev.files if f.file_name.endswith(".safetensors")}
        for name in sorted(files):
            if "lora" in repo.repo_id.lower() or "lora" in name.lower():
                found.append(f"{repo.repo_id}/{name}")
    return found
