"""The catalog of known hub models (engine/registry/catalog.json): what each is, where it lives, its defaults.

Pure Python: reading the catalog imports neither torch nor diffusers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from engine.api.errors import ModelLoadError
from engine.registry.families import FAMILIES

CATALOG_PATH = Path(__file__).with_name("catalog.json")
TASKS = ("t2v", "i2v")


@dataclass(frozen=True)
class Adapter:
    """A second repository a model needs (AnimateDiff's motion adapter), or one file of it."""

    hub_id: str
    filename: str | None = None
    config: dict = field(default_factory=dict)  # MotionAdapter settings for a single file; {} = the defaults


@dataclass(frozen=True)
class FastLora:
    """A distillation LoRA that makes a model a few-step one (--fast), with the steps and guidance it was made for."""

    source: str  # hub id and file: "owner/name/file.safetensors"
    steps: int
    guidance: float = 1.0  # distilled with guidance folded in: one pass per step
    scale: float = 1.0

    def settings(self) -> dict:
        return {"steps": self.steps, "guidance": self.guidance}

    def weight(self):
        from engine.api.controls import LoraWeight

        return LoraWeight(self.source, self.scale)


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    family: str
    tasks: tuple[str, ...]
    hub_id: str
    license: str
    steps: int
    guidance: float
    width: int
    height: int
    frames: int
    fps: int
    vram_gb: float
    disk_gb: float
    adapter: Adapter | None = None
    scheduler: dict = field(default_factory=dict)  # overrides: {"class": name, **config}
    call: dict = field(default_factory=dict)  # extra pipeline arguments the model's card asks for
    variant: str | None = None  # weight variant to download and load, e.g. "fp16"
    allow_patterns: tuple[str, ...] | None = None
    gated: bool = False
    distilled: bool = False
    fast: str | None = None  # id of the distilled entry --fast switches to
    vram_published: bool = False  # vram_gb is the model card's figure (else Kinemo's estimate from the weights)
    superseded_by: str | None = None  # id of the newer model of the same line
    size_multiple: int | None = None  # where this model's sizes go in larger steps than its family's
    fast_lora: FastLora | None = None  # --fast applies this distillation LoRA to the model itself

    @property
    def repos(self) -> list[str]:
        """Every hub repository this model needs."""
        return [self.hub_id] + ([self.adapter.hub_id] if self.adapter else [])

    def defaults(self) -> dict:
        return {k: getattr(self, k) for k in ("steps", "guidance", "width", "height", "frames", "fps")}


def _entry(data: dict) -> CatalogEntry:
    data = dict(data)
    name = data.get("id", "?")
    if data.get("family") not in FAMILIES:
        raise ModelLoadError(f"catalog entry {name!r}: unknown family {data.get('family')!r}")
    tasks = tuple(data.pop("tasks", ()))
    if not tasks or set(tasks) - set(TASKS):
        raise ModelLoadError(f"catalog entry {name!r}: tasks must be among {TASKS}, got {tasks}")
    adapter = data.pop("adapter", None)
    patterns = data.pop("allow_patterns", None)
    fast_lora = data.pop("fast_lora", None)
    try:
        entry = CatalogEntry(
            tasks=tasks,
            fast_lora=FastLora(**fast_lora) if fast_lora else None,
            adapter=Adapter(**adapter) if adapter else None,
            allow_patterns=tuple(patterns) if patterns else None,
            **data,
        )
    except TypeError as exc:
        raise ModelLoadError(f"catalog entry {name!r}: {exc}") from exc
    for key in ("steps", "width", "height", "frames", "fps"):
        if not isinstance(getattr(entry, key), int) or getattr(entry, key) < 1:
            raise ModelLoadError(f"catalog entry {name!r}: {key} must be a positive whole number")
    return entry


def read_catalog(path: Path = CATALOG_PATH) -> dict[str, CatalogEntry]:
    """Catalog entries by id; raises ModelLoadError naming the first bad entry."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read the model catalog {path}: {exc}") from exc
    entries = [_entry(item) for item in data.get("models", [])]
    by_id = {e.id: e for e in entries}
    if len(by_id) != len(entries):
        raise ModelLoadError(f"the model catalog {path} repeats an id")
    for e in entries:
        for kind, other in (("fast variant", e.fast), ("successor", e.superseded_by)):
            if other and other not in by_id:
                raise ModelLoadError(f"catalog entry {e.id!r}: its {kind} {other!r} is not in the catalog")
    return by_id


@lru_cache(maxsize=1)
def catalog() -> dict[str, CatalogEntry]:
    return read_catalog()


def find_entry(model: str) -> CatalogEntry | None:
    """The catalog entry for a catalog id, or for a hub id the catalog lists (first match)."""
    entries = catalog()
    if model in entries:
        return entries[model]
    return next((e for e in entries.values() if e.hub_id == model and e.adapter is None), None)


def family_defaults(family: str) -> dict:
    """Defaults for a folder that carries none: those of the family's first catalog entry."""
    entry = next((e for e in catalog().values() if e.family == family), None)
    return entry.defaults() if entry else {}
