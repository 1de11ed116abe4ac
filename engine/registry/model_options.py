"""What the studio needs to know about a model before it generates: tasks, defaults, limits, disk state.

model_options() answers for the bundled starter id, a catalog id, a hub id or a model folder
(a Kinemo folder or one in diffusers layout). It reads folders and asks huggingface-hub's cache
whether a hub model is on disk, so call it off the UI thread; catalog_options() answers for the
starter and catalog ids without touching the disk.
Pure Python: no torch, no diffusers, no Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.api.request import LIMITS, GenerationRequest
from engine.registry.catalog import CatalogEntry, catalog
from engine.registry.families import FAMILIES
from engine.registry.resolve import STARTER_FAST_ID, STARTER_ID, ModelRef, hub_model, resolve_model

STARTER_MAX_FRAMES = int(LIMITS["frames"][1])  # beyond its 16-frame window, the bundled model works window by window
STARTER_LABEL = "Kinemo"
DEFAULT_KEYS = ("steps", "guidance", "width", "height", "frames", "fps")


@dataclass(frozen=True)
class ModelOptions:
    model: str  # what the user picked: an id, a hub id or a folder
    label: str  # e.g. "Wan · wan2.1-t2v-1.3b"
    kind: str  # "bundled", "catalog", "hub" or "folder"
    family: str  # "kinemo" for Kinemo's own models; "" for a hub model whose family is not known yet
    tasks: tuple[str, ...]  # among "t2v", "i2v"
    defaults: dict = field(default_factory=dict)  # steps, guidance, width, height, frames, fps ({} = none known)
    max_frames: int = int(LIMITS["frames"][1])
    frame_step: int = 1  # frame counts are frame_step * k + 1
    size_multiple: int = 2
    negative_prompt: bool = True
    camera_moves: bool = False
    needs_download: bool = False  # a hub model that is not (completely) on disk
    hub_id: str | None = None
    disk_gb: float | None = None
    vram_gb: float | None = None
    license: str | None = None
    gated: bool = False  # the hub asks for an accepted licence and a token
    onnx_temporal: bool = False  # --onnx-temporal applies (Kinemo models; families whose Family.onnx_motion)
    onnx_denoiser: bool = False  # --onnx applies: the whole denoiser step in onnxruntime (Kinemo models)
    int8_with_onnx: bool = False  # int8 and the studio's ONNX switch combine (none today: Kinemo's graph is fp32)
    audio: bool = False  # it makes sound with the frames
    vram_published: bool = False  # vram_gb is the model card's figure, not Kinemo's estimate
    superseded_by: str | None = None  # the catalog id of the newer model of the same line
    # the step caches (--cache) it takes besides off and auto: Family.step_caches; the bundled model its own
    step_caches: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """A short name for messages: the id, or a folder's name."""
        return Path(self.model).name if self.kind == "folder" else self.model

    @property
    def requires_image(self) -> bool:
        """Image-to-video only: a first-frame picture is required."""
        return "t2v" not in self.tasks

    @property
    def text_only(self) -> bool:
        """Text-to-video only: a first-frame picture cannot be used."""
        return "i2v" not in self.tasks

    @property
    def family_label(self) -> str:
        if self.family == "kinemo":
            return STARTER_LABEL
        return FAMILIES[self.family].label if self.family in FAMILIES else "Hub model"

    def valid_frames(self, frames: int) -> int:
        """The frame count this model can make that is nearest to frames."""
        step = self.frame_step
        k = min(max(0, (frames - 1 + step // 2) // step), (self.max_frames - 1) // step)  # ties round up
        return k * step + 1

    def valid_size(self, pixels: int) -> int:
        """The width or height this model can make that is nearest to pixels."""
        multiple = self.size_multiple
        low, high = (int(v) for v in LIMITS["width"])
        lowest, highest = -(-low // multiple) * multiple, high // multiple * multiple
        return min(max((pixels + multiple // 2) // multiple * multiple, lowest), highest)


def _starter_defaults() -> dict:
    request = GenerationRequest(prompt="-")
    return {key: getattr(request, key) for key in DEFAULT_KEYS}


def _kinemo_options(model: str, label: str, kind: str, max_frames: int) -> ModelOptions:
    return ModelOptions(
        model=model,
        label=label,
        kind=kind,
        family="kinemo",
        tasks=("t2v", "i2v"),
        defaults=_starter_defaults(),
        max_frames=max_frames,
        camera_moves=True,
        license="Apache-2.0",
        onnx_temporal=True,
        onnx_denoiser=True,
        step_caches=("first-block",),  # engine.caches.bundled_step_cache (run_checks.BUNDLED_CACHES)
    )


def _family_options(model: str, label: str, kind: str, family: str, tasks, defaults: dict) -> ModelOptions:
    traits = FAMILIES[family]
    return ModelOptions(
        model=model,
        label=label,
        kind=kind,
        family=family,
        tasks=tuple(tasks),
        defaults=dict(defaults),
        frame_step=traits.frame_step,
        size_multiple=traits.size_multiple,
        negative_prompt=traits.negative_prompt,
        onnx_temporal=traits.onnx_motion,
        audio=traits.audio,
        step_caches=traits.step_caches,
    )


def _entry_options(model: str, entry: CatalogEntry) -> ModelOptions:
    options = _family_options(
        model, f"{FAMILIES[entry.family].label} · {entry.id}", "catalog", entry.family, entry.tasks, entry.defaults()
    )
    return replace(
        options,
        hub_id=entry.hub_id,
        disk_gb=entry.disk_gb,
        vram_gb=entry.vram_gb,
        license=entry.license,
        gated=entry.gated,
        size_multiple=max(options.size_multiple, entry.size_multiple or 1),
        vram_published=entry.vram_published,
        superseded_by=entry.superseded_by,
    )


def catalog_options(model: str) -> ModelOptions | None:
    """Options of the starter or a catalog id, known without touching the disk (needs_download left False);
    None for anything else (folders and hub ids need model_options)."""
    if model == STARTER_ID:
        return _kinemo_options(model, f"{STARTER_LABEL} · {STARTER_ID}", "bundled", STARTER_MAX_FRAMES)
    if model == STARTER_FAST_ID:
        options = _kinemo_options(model, f"{STARTER_LABEL} fast · {STARTER_FAST_ID}", "bundled", STARTER_MAX_FRAMES)
        from engine.registry.assets import FAST_DIR, read_sampling

        timesteps = read_sampling(FAST_DIR)  # a few bytes of JSON: the steps it was distilled for
        return replace(options, defaults={**options.defaults, "steps": len(timesteps) if timesteps else 4})
    entry = catalog().get(model)
    return _entry_options(model, entry) if entry is not None else None


def _needs_download(model: str) -> bool:
    from engine.registry.hub import local_paths

    return local_paths(hub_model(model)) is None


def _folder_options(ref: ModelRef) -> ModelOptions:
    folder = ref.folder
    assert folder is not None  # folder refs always carry their folder
    name = f"{folder.name} (folder)"
    if ref.kind == "diffusers_folder":
        from engine.registry.catalog import family_defaults
        from engine.registry.layout import inspect_folder

        found = inspect_folder(folder)  # ModelLoadError names what is wrong with it
        label = f"{FAMILIES[found.family].label} · {name}"
        options = _family_options(ref.name, label, "folder", found.family, found.tasks, family_defaults(found.family))
        return replace(options, size_multiple=max(options.size_multiple, found.pixels_per_token or 1))
    return _kinemo_options(ref.name, f"{STARTER_LABEL} · {name}", "folder", STARTER_MAX_FRAMES)


def _unknown_hub_model(model: str, needs_download: bool) -> ModelOptions:
    return ModelOptions(
        model=model,
        label=f"Hub model · {model}",
        kind="hub",
        family="",
        tasks=("t2v", "i2v"),
        hub_id=model,
        needs_download=needs_download,
    )


def _hub_options(model: str) -> ModelOptions:
    """A hub id the catalog does not list: its family is known once it is on disk."""
    from engine.api.errors import ModelLoadError
    from engine.registry.hub import local_paths
    from engine.registry.layout import inspect_folder

    found = local_paths(hub_model(model))
    if found is None:
        return _unknown_hub_model(model, needs_download=True)
    try:
        layout = inspect_folder(found[0])
    except ModelLoadError:
        return _unknown_hub_model(model, needs_download=False)  # the engine names what is wrong when it loads
    from engine.registry.catalog import family_defaults

    options = _family_options(
        model,
        f"{FAMILIES[layout.family].label} · {model}",
        "hub",
        layout.family,
        layout.tasks,
        family_defaults(layout.family),
    )
    return replace(options, hub_id=model)


def model_options(model: str) -> ModelOptions:
    """Everything the studio shows for a model; reads the disk (call it off the UI thread).

    Raises InvalidRequest for a name that is no model, ModelLoadError for a broken diffusers folder.
    """
    ref = resolve_model(model)
    if ref.kind == "bundled":
        options = catalog_options(ref.name)
        assert options is not None  # every bundled id has catalog options
        return options
    if ref.kind in ("kinemo_folder", "diffusers_folder"):
        return _folder_options(replace(ref, name=model))
    if ref.kind == "catalog" and ref.entry is not None:
        return replace(_entry_options(model, ref.entry), needs_download=_needs_download(model))
    return _hub_options(model)
