"""What a model string names: the one place that turns what the user typed into a model.

A model is one of: a bundled Kinemo model (by id), a Kinemo model folder, a diffusers folder, a catalog id,
or a hub id (org/name). resolve_model() answers from names and the folder's marker files alone: it never
downloads and never imports torch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from engine.api.errors import InvalidRequest
from engine.registry.assets import FAST_DIR, STARTER_DIR
from engine.registry.catalog import CatalogEntry, catalog, find_entry

STARTER_ID = "kinemo-starter"
STARTER_FAST_ID = "kinemo-starter-fast"  # the starter distilled to 4 steps (engine.training.distill)
BUNDLED = {STARTER_ID: STARTER_DIR, STARTER_FAST_ID: FAST_DIR}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
KINDS = ("bundled", "kinemo_folder", "diffusers_folder", "catalog", "hub")


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: what kind it is and where it lives (or would live, once downloaded)."""

    name: str  # what the user typed
    kind: str  # one of KINDS
    folder: Path | None = None  # bundled and folder models
    entry: CatalogEntry | None = None  # catalog models
    hub_id: str | None = None  # catalog and hub models

    @property
    def is_kinemo(self) -> bool:
        return self.kind in ("bundled", "kinemo_folder")


def is_hub_id(model: str) -> bool:
    return bool(HUB_ID.match(model)) and not model.startswith((".", "~"))


def kinemo_model_type(folder: Path) -> str | None:
    """The model_type a folder's config.json declares (None when it has none or cannot be read)."""
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("model_type") if isinstance(data, dict) else None


def resolve_model(model: str) -> ModelRef:
    """The model a string names; raises InvalidRequest for a name that is no model."""
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("the model name is empty")
    if model in BUNDLED:
        return ModelRef(model, "bundled", folder=BUNDLED[model])
    folder = Path(model).expanduser()
    if folder.is_dir():
        return _folder_ref(model, folder)
    entry = find_entry(model)
    if entry is not None:
        return ModelRef(entry.id, "catalog", entry=entry, hub_id=entry.hub_id)
    if is_hub_id(model):
        return ModelRef(model, "hub", hub_id=model)
    raise InvalidRequest(
        f"unknown model {model!r}: use a catalog id (`kinemo models list`), a hub id such as org/name, or a model folder"
    )


def _folder_ref(model: str, folder: Path) -> ModelRef:
    if (folder / "model_index.json").is_file():
        return ModelRef(str(folder), "diffusers_folder", folder=folder)
    if not (folder / "config.json").is_file():
        raise InvalidRequest(
            f"{folder} is neither a Kinemo model folder (config.json) nor a diffusers one (model_index.json)"
        )
    model_type = kinemo_model_type(folder)
    if model_type != "kinemo-dit":
        raise InvalidRequest(f"{folder} is not a Kinemo model folder (model_type {model_type!r})")
    return ModelRef(str(folder), "kinemo_folder", folder=folder)


def is_kinemo_folder(model: str) -> bool:
    """True for a folder holding a Kinemo DiT (config.json with model_type kinemo-dit)."""
    return kinemo_model_type(Path(model).expanduser()) == "kinemo-dit"


def available_models() -> list[str]:
    """The bundled model (and its distilled student, when shipped), then every catalog id."""
    return [STARTER_ID, *([STARTER_FAST_ID] if (FAST_DIR / "config.json").is_file() else []), *catalog()]


def fast_model(model: str) -> str:
    """The distilled few-step version of a model (--fast); raises InvalidRequest when it has none."""
    if model in BUNDLED:
        return STARTER_FAST_ID
    entry = find_entry(model)
    if entry is not None and (entry.distilled or entry.fast_lora is not None):  # the LoRA is added to the request
        return entry.id
    if entry is not None and entry.fast:
        return entry.fast
    known = ", ".join([STARTER_ID, *(e.id for e in catalog().values() if e.fast or e.fast_lora)])
    raise InvalidRequest(f"{model} has no distilled version for --fast; models that have one: {known}")


def hub_model(model: str):
    """The engine.registry.hub.HubModel behind a catalog id or a hub id; None for bundled models and folders."""
    from engine.registry.hub import HubModel

    if model in BUNDLED or Path(model).expanduser().is_dir():
        return None
    entry = find_entry(model)
    if entry is not None:
        return HubModel.from_entry(entry)
    return HubModel(model, model) if is_hub_id(model) else None
