"""int8 weights for the bundled model's denoiser (optimum-quanto), cached so they are made once.

What is quantised: every nn.Linear and nn.Conv2d of the denoiser (patch embedding, timestep and text
projections, each block's spatial, temporal and cross attention, MLP and modulation, the output
layers, the pixel refiner's convolutions) gets per-output-channel symmetric int8 weights (quanto's
qint8, absmax scales). Activations stay float.
The text encoder stays fp32: it runs once per request, not once per step, and its attention keeps
its projection as a bare parameter that quanto does not quantise.

The quantised weights are saved as quanto serialises them (the quantisation map beside a
safetensors file of the frozen model's state dict) into Kinemo's cache folder, keyed by the hash of
the model folder's config and weights; a later load requantizes from that file instead of
quantising again. A stale or corrupt entry is rebuilt (see engine.accel.artifacts).

    loaded = load_quantized(folder, "int8")     # -> QuantizedLoad(model, from_cache, entry)
    weight_bytes(loaded.model, denoiser_only=True)
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from engine.accel.artifacts import (
    cache_errors,
    cache_root,
    file_matches,
    forget_manifest,
    model_folder_sha256,
    read_manifest,
    write_manifest,
)
from engine.api.errors import InvalidRequest
from engine.api.run_options import QUANTIZE_CHOICES
from engine.registry.assets import read_config

log = logging.getLogger("kinemo.engine")

TEXT_ENCODER = "text_encoder"
EXCLUDE = [TEXT_ENCODER, f"{TEXT_ENCODER}.*"]  # quanto's fnmatch patterns: the text encoder stays fp32
WEIGHTS_FILE = "model.safetensors"
FORMAT = 1  # bump when the entry's layout changes


@dataclass
class QuantizedLoad:
    model: object  # the KinemoDiT with int8 denoiser weights, eval mode, no parameter requiring grad
    from_cache: bool  # True when the weights were requantized from the cache, not quantised now
    entry: Path  # the cache folder


def check_choice(quantize: str | None) -> None:
    if quantize is not None and quantize not in QUANTIZE_CHOICES:
        raise InvalidRequest(f"unknown quantisation {quantize!r}; choose {', '.join(QUANTIZE_CHOICES)}")


def _qtype(name: str):
    from optimum.quanto import qint8

    return {"int8": qint8}[name]


def quantize_model(model, quantize: str = "int8"):
    """Quantise the denoiser's Linear weights in place and freeze them; returns the model."""
    from optimum.quanto import freeze
    from optimum.quanto import quantize as quanto_quantize

    check_choice(quantize)
    quanto_quantize(model, weights=_qtype(quantize), exclude=EXCLUDE)
    freeze(model)
    return model.eval().requires_grad_(False)  # quanto's frozen weights are new Parameters that want grad


def weight_bytes(model, denoiser_only: bool = False) -> int:
    """Bytes of the model's weights as held in memory: every state-dict tensor (int8 data and scales
    count as what they are). denoiser_only leaves out the text encoder."""
    total = 0
    for name, tensor in model.state_dict().items():
        if denoiser_only and name.startswith(TEXT_ENCODER + "."):
            continue
        total += tensor.numel() * tensor.element_size()
    return total


def quantized_entry(folder: Path, quantize: str = "int8", source_sha256: str | None = None) -> Path:
    key = source_sha256 or model_folder_sha256(folder)
    return cache_root() / "quantized" / f"{key[:16]}-{quantize}"


def expected_fields(source_sha256: str, quantize: str) -> dict:
    import optimum.quanto
    import torch

    return {
        "format": FORMAT,
        "source_sha256": source_sha256,
        "quantize": quantize,
        "torch": torch.__version__,
        "optimum_quanto": getattr(optimum.quanto, "__version__", "unknown"),
    }


def _requantize(folder: Path, entry: Path, manifest: dict, device: str):
    """Build the model from its config and load the cached int8 state; None if it does not fit."""
    from optimum.quanto import requantize
    from safetensors.torch import load_file

    from engine.kinemo.model import KinemoConfig, KinemoDiT

    qmap = manifest.get("quantization_map")
    if not isinstance(qmap, dict) or not qmap:
        return None
    try:
        state = load_file(entry / WEIGHTS_FILE)
    except Exception as exc:  # safetensors raises its own error type for a damaged file
        log.warning("unreadable cached int8 weights %s: %s", entry, exc)
        return None
    model = KinemoDiT(KinemoConfig.from_dict(read_config(folder)))
    try:
        requantize(model, state, qmap, device=device)
    except Exception as exc:
        log.warning("cached int8 weights %s do not fit the model: %s", entry, exc)
        return None
    # requantize loads with strict=False: make sure every tensor came from the file
    if set(model.state_dict()) != set(state):
        log.warning("cached int8 weights %s do not fit the model's layout", entry)
        return None
    return model.eval().requires_grad_(False)


@cache_errors
def load_quantized(folder: str | Path, quantize: str = "int8", device: str = "cpu") -> QuantizedLoad:
    """The bundled model at folder with int8 denoiser weights, from the cache when a sound entry is there."""
    from optimum.quanto import quantization_map
    from safetensors.torch import save_file

    from engine.kinemo.files import load_model

    check_choice(quantize)
    folder = Path(folder)
    source = model_folder_sha256(folder)
    entry = quantized_entry(folder, quantize, source)
    expect = expected_fields(source, quantize)

    manifest = read_manifest(entry, expect)
    if manifest is not None and file_matches(entry, manifest, WEIGHTS_FILE):
        model = _requantize(folder, entry, manifest, device)
        if model is not None:
            return QuantizedLoad(model, True, entry)
    if entry.exists():
        log.info("rebuilding the int8 weights cache entry %s", entry)

    # quantise now and keep the result: files first, the manifest last
    model = quantize_model(load_model(folder), quantize)
    qmap = quantization_map(model)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if entry.exists():
        forget_manifest(entry)
        shutil.rmtree(entry, ignore_errors=True)
    entry.mkdir(parents=True, exist_ok=True)
    partial = entry / f".{WEIGHTS_FILE}.partial"
    save_file(state, str(partial))
    partial.replace(entry / WEIGHTS_FILE)
    write_manifest(entry, {**expect, "quantization_map": qmap}, [WEIGHTS_FILE])
    return QuantizedLoad(model.to(device), False, entry)
