"""int8 weights for a diffusers pipeline's denoiser (optimum-quanto), cached so they are made once.

The denoiser (the pipeline's `transformer`, or its `unet`: AnimateDiff's UNetMotionModel with the
motion modules in it) gets per-output-channel int8 weights in every Linear and Conv layer (quanto's
qint8); activations, the text encoder and the VAE keep the pipeline's dtype.

The first load quantises the denoiser and writes it to Kinemo's cache folder as quanto serialises it
(its config, the quantisation map and a safetensors file of the frozen state dict). Later loads build
the denoiser empty from that config, requantize it from the file and hand it to the pipeline, so the
denoiser's float weights are never read again. Entries are keyed by the SHA-256 of the files the
denoiser comes from (its folder, and AnimateDiff's motion adapter) and the load dtype; a stale or
corrupt entry is rebuilt (engine.accel.artifacts).

    key = source_sha256(folder, "unet", adapter, dtype)
    denoiser = cached_denoiser(key)                             # the int8 denoiser, or None
    pipe = Pipeline.from_pretrained(folder, unet=denoiser)      # ... or load as usual, then:
    store_denoiser(pipe.unet, key)                              # quantise in place and cache
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

from engine.accel.artifacts import (
    cache_errors,
    cache_root,
    file_matches,
    forget_manifest,
    read_manifest,
    write_manifest,
)
from engine.util.files import file_sha256

log = logging.getLogger("kinemo.engine")

WEIGHTS_FILE = "denoiser.safetensors"
CONFIG_FILE = "config.json"
FORMAT = 1  # bump when the entry's layout changes


def denoiser_name(pipe_or_components) -> str:
    """'transformer' or 'unet': the pipeline component that runs once per step."""
    return denoiser_names(pipe_or_components)[0]


def denoiser_names(pipe_or_components) -> tuple[str, ...]:
    """The denoisers of a pipeline: ('transformer',), ('unet',), or Wan 2.2 A14B's two experts ('transformer',
    'transformer_2'), which take turns (one for high-noise steps, the other for low-noise ones)."""
    if isinstance(pipe_or_components, (list, tuple, set)):
        names = set(pipe_or_components)
    else:  # a folder's components (name -> (library, class)) or a pipeline's; a null entry is no component
        found = pipe_or_components if isinstance(pipe_or_components, dict) else pipe_or_components.components
        names = {k for k, v in found.items() if v is not None and not (isinstance(v, (list, tuple)) and not any(v))}
    if "transformer" not in names:
        return ("unet",)
    return ("transformer", "transformer_2") if "transformer_2" in names else ("transformer",)


def source_sha256(folder: Path, name: str, adapter: Path | None, dtype) -> str:
    """One hash for what the int8 denoiser is made from: its weight and config files, the adapter's, the dtype."""
    digest = hashlib.sha256(f"{name}|{dtype}".encode())
    paths = sorted(p for p in (Path(folder) / name).rglob("*") if p.is_file() and p.suffix in (".json", ".safetensors"))
    if adapter is not None:
        adapter = Path(adapter)
        paths += (
            sorted(p for p in adapter.rglob("*") if p.is_file() and p.suffix in (".json", ".safetensors"))
            if adapter.is_dir()
            else [adapter]
        )
    for path in paths:
        digest.update(path.name.encode())
        digest.update(_content_id(path).encode())
    return digest.hexdigest()


def _content_id(path: Path) -> str:
    """The hub cache names each blob by its hash: use that name rather than reading gigabytes at every load."""
    real = path.resolve()
    return real.name if real.parent.name == "blobs" else file_sha256(path)


def entry_for(key: str) -> Path:
    return cache_root() / "quantized-diffusers" / f"{key[:16]}-int8"


def _expected_fields(key: str) -> dict:
    from engine.accel.quantize import expected_fields  # the same library versions are recorded

    return {**expected_fields(key, "int8"), "format": FORMAT}


@cache_errors
def cached_denoiser(key: str, device: str = "cpu"):
    """The int8 denoiser from the cache entry for key, or None when there is no sound entry."""
    import diffusers
    import torch
    from optimum.quanto import requantize
    from safetensors.torch import load_file

    entry = entry_for(key)
    manifest = read_manifest(entry, _expected_fields(key))
    if manifest is None or not all(file_matches(entry, manifest, n) for n in (WEIGHTS_FILE, CONFIG_FILE)):
        if entry.exists():
            log.info("the int8 cache entry %s is stale or damaged; it will be rebuilt", entry)
        return None
    try:
        config = json.loads((entry / CONFIG_FILE).read_text())
        cls = getattr(diffusers, manifest["class_name"])
        state = load_file(str(entry / WEIGHTS_FILE))
        from accelerate import init_empty_weights

        with init_empty_weights(include_buffers=False):  # buffers computed at init (rotary tables) stay real
            denoiser = cls.from_config(config)
        requantize(denoiser, state, manifest["quantization_map"], device=torch.device(device))
    except Exception as exc:  # noqa: BLE001 - any failure means: rebuild
        log.warning("cached int8 denoiser %s cannot be used (%s); it will be rebuilt", entry, exc)
        return None
    if set(denoiser.state_dict()) != set(state):  # requantize loads with strict=False
        log.warning("cached int8 denoiser %s does not fit its class; it will be rebuilt", entry)
        return None
    return denoiser.eval().requires_grad_(False)


@cache_errors
def store_denoiser(denoiser, key: str) -> Path:
    """Quantise denoiser in place (unless it is already) and write it to the cache; returns the entry."""
    from optimum.quanto import quantization_map
    from safetensors.torch import save_file

    if not quantization_map(denoiser):
        from engine.accel.quantize import quantize_model

        quantize_model(denoiser, "int8")
    entry = entry_for(key)
    if entry.exists():
        forget_manifest(entry)
        shutil.rmtree(entry, ignore_errors=True)
    entry.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in denoiser.state_dict().items()}
    partial = entry / f".{WEIGHTS_FILE}.partial"
    save_file(state, str(partial))
    partial.replace(entry / WEIGHTS_FILE)
    (entry / CONFIG_FILE).write_text(json.dumps(dict(denoiser.config), default=str))
    fields = {
        **_expected_fields(key),
        "class_name": type(denoiser).__name__,
        "quantization_map": quantization_map(denoiser),
    }
    write_manifest(entry, fields, [WEIGHTS_FILE, CONFIG_FILE])
    return entry
