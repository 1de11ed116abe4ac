"""Backends: one per kind of model. resolve_backend() maps what the user typed to one.

The bundled starter model is one backend; diffusers video pipelines (catalog ids, hub ids, local
folders in diffusers layout) are another.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from engine.errors import InvalidRequest

STARTER_ID = "kinemo-starter"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def available_models() -> list[str]:
    """The bundled model, then every catalog id."""
    from engine.catalog import catalog

    return [STARTER_ID, *catalog()]


def resolve_backend(model: str, device: str = "auto", token: str | None = None, kv_cache: bool = True):
    """A backend for a model id, a hub id or a local model folder; raises InvalidRequest for unknown names.

    kv_cache: reuse the conditioning's attention keys/values across steps and frames (exact; on by default).
    """
    from engine.backends.bundled import BundledBackend
    from engine.backends.diffusers_backend import DiffusersBackend, Source
    from engine.catalog import find_entry

    if model == STARTER_ID:
        return BundledBackend(device=_bundled_device(device), kv_cache=kv_cache)
    folder = Path(model).expanduser()
    if folder.is_dir():
        if (folder / "model_index.json").is_file():
            from engine.devices import pick_device

            pick_device(device)
            return DiffusersBackend(Source(str(folder), folder=folder), device, token, kv_cache=kv_cache)
        config = folder / "config.json"
        if config.is_file():
            try:
                model_type = json.loads(config.read_text()).get("model_type")
            except (ValueError, OSError, AttributeError):
                model_type = None
            if model_type == "kinemo-dit":
                return BundledBackend(folder, device=_bundled_device(device), model_id=str(folder), kv_cache=kv_cache)
            raise InvalidRequest(f"{folder} is not a Kinemo model folder (model_type {model_type!r})")
        raise InvalidRequest(f"{folder} is neither a Kinemo model folder (config.json) nor a diffusers one (model_index.json)")
    entry = find_entry(model)
    if entry is not None or HUB_ID.match(model):
        from engine.devices import pick_device

        pick_device(device)  # an unusable --device is bad input: say so before any download
    if entry is not None:
        return DiffusersBackend(Source(entry.id, entry=entry), device, token, kv_cache=kv_cache)
    if HUB_ID.match(model) and not model.startswith((".", "~")):
        return DiffusersBackend(Source(model, hub_id=model), device, token, kv_cache=kv_cache)
    raise InvalidRequest(
        f"unknown model {model!r}: use a catalog id (`kinemo models list`), a hub id such as org/name, or a model folder"
    )


def _bundled_device(device: str) -> str:
    if device in (None, "auto"):
        return "cpu"  # the starter model is small: the CPU is fast enough and always there
    from engine.devices import pick_device

    return pick_device(device)
