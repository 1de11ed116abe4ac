"""Building a diffusers pipeline from a folder on disk: safetensors only, the catalog's variant and scheduler,
AnimateDiff's motion adapter, and the denoiser in int8 from Kinemo's cache when asked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.registry.catalog import CatalogEntry
from engine.registry.layout import DiffusersFolder


@dataclass(frozen=True)
class PipelineSource:
    folder: DiffusersFolder
    entry: CatalogEntry | None = None  # the catalog's variant, scheduler and adapter settings
    adapter: Path | None = None  # AnimateDiff's motion adapter: a folder, or a single safetensors file


def load_pipeline(source: PipelineSource, class_name: str, dtype, quantize: str | None) -> tuple[object, bool | None]:
    """(pipeline, int8_from_cache): the pipeline, with its denoisers (both of Wan 2.2 A14B's experts) in int8
    when quantize says so (from the cache, or quantised now and cached); int8_from_cache is None without int8."""
    if not quantize:
        return from_pretrained(source, class_name, dtype), None
    from engine.accel.quantize_diffusers import cached_denoiser, denoiser_names, source_sha256, store_denoiser

    keys = {
        name: source_sha256(source.folder.path, name, source.adapter, dtype)
        for name in denoiser_names(source.folder.components)
    }
    cached = {name: cached_denoiser(key) for name, key in keys.items()}
    pipe = from_pretrained(source, class_name, dtype, **{n: d for n, d in cached.items() if d is not None})
    for name, key in keys.items():
        if cached[name] is None:
            store_denoiser(getattr(pipe, name), key)
    return pipe, all(d is not None for d in cached.values())


def from_pretrained(source: PipelineSource, class_name: str, dtype, **components):
    import diffusers

    cls = getattr(diffusers, class_name)
    entry = source.entry
    kwargs = dict(dtype=dtype, use_safetensors=True, **components)
    if entry is not None and entry.variant:
        kwargs["variant"] = entry.variant
    if source.adapter is not None:  # AnimateDiff from the catalog: base model + motion adapter
        # (none needed when the int8 UNetMotionModel, adapter included, comes from the cache)
        kwargs["motion_adapter"] = None if "unet" in components else load_adapter(source, dtype)
    stand_ins = processor_stand_ins(source.folder)
    pipe = cls.from_pretrained(source.folder.path, **kwargs, **dict.fromkeys(stand_ins))  # None: not built
    if stand_ins:
        pipe.register_modules(**stand_ins)
    if entry is not None and entry.scheduler:
        overrides = dict(entry.scheduler)
        scheduler_cls = getattr(diffusers, overrides.pop("class", type(pipe.scheduler).__name__))
        pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config, **overrides)
    return pipe


def processor_stand_ins(folder: DiffusersFolder) -> dict:
    """Text-only tokenizers for Qwen2-VL processors where torchvision is missing: transformers builds a
    Qwen2VLProcessor with its video processor, which needs torchvision, while Kandinsky 5 only ever hands it text
    (torchvision is left out of Kinemo's dependencies because its wheels pin a newer torch than Kinemo's CPU one)."""
    import importlib.util

    if importlib.util.find_spec("torchvision") is not None:
        return {}
    from transformers import AutoTokenizer

    return {
        name: AutoTokenizer.from_pretrained(folder.path / name)
        for name, (_, cls) in folder.components.items()
        if cls == "Qwen2VLProcessor"
    }


def load_adapter(source: PipelineSource, dtype):
    from diffusers import MotionAdapter

    if source.adapter.is_dir():
        return MotionAdapter.from_pretrained(source.adapter, dtype=dtype, use_safetensors=True)
    from safetensors.torch import load_file  # a single-file adapter such as AnimateDiff-Lightning

    entry = source.entry
    adapter = MotionAdapter(**(entry.adapter.config if entry and entry.adapter else {}))
    adapter.load_state_dict(load_file(str(source.adapter)))
    return adapter.to(dtype)


def host_bytes(pipe) -> int:
    """Bytes of a loaded pipeline's weights that sit in this process's RAM."""
    if pipe is None:
        return 0
    total = 0
    for component in pipe.components.values():
        if hasattr(component, "parameters"):
            for tensor in [*component.parameters(), *component.buffers()]:
                if tensor.device.type == "cpu":
                    total += tensor.numel() * tensor.element_size()
    return total
