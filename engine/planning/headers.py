"""Reading a model's weights without loading them: tensor names, dtypes and shapes from safetensors headers."""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from engine.api.errors import ModelLoadError

MB = 2**20

DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
    "I64": 8,
    "U64": 8,
    "I32": 4,
    "U32": 4,
    "I16": 2,
    "U16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
FLOATS = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0"}


MAX_HEADER = 100 * MB  # safetensors' own limit on the JSON header


def read_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (dtype, shape) of every tensor in a safetensors file, from its JSON header alone; ModelLoadError
    naming the file and what is wrong with it for anything that is not a well-formed header."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            start = handle.read(8)
            if len(start) < 8:
                raise ValueError(f"{size} bytes is too short for a safetensors file")
            (length,) = struct.unpack("<Q", start)
            if length > min(MAX_HEADER, size - 8):
                raise ValueError(f"its header claims {length} bytes; the file has {size}")
            header = json.loads(handle.read(length))
        return _tensors(header)
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelLoadError(f"{path} is not a readable safetensors file: {reason}") from None


def _tensors(header) -> dict[str, tuple[str, tuple[int, ...]]]:
    if not isinstance(header, dict):
        raise ValueError(f"its header is a JSON {type(header).__name__}, not an object")
    found = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        if (
            not isinstance(spec, dict)
            or not isinstance(spec.get("dtype"), str)
            or not isinstance(spec.get("shape"), list)
        ):
            raise ValueError(f"tensor {str(name)[:60]!r} has no dtype and shape")
        shape = spec["shape"]
        if not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**40 for n in shape):
            raise ValueError(f"tensor {str(name)[:60]!r} has the shape {str(shape)[:60]}")
        found[name] = (spec["dtype"], tuple(shape))
    return found


@dataclass(frozen=True)
class Component:
    """One model of a pipeline (text encoder, denoiser, VAE...) as its weight files describe it."""

    name: str
    class_name: str
    stored: int  # bytes on disk (tensor data only)
    floats: int  # number of floating-point weights
    other: int  # bytes of non-float tensors (kept as they are)
    blocks: tuple[int, ...] = ()  # floats of each block of its top-level ModuleLists (group offloading's unit)
    largest: int = 0  # floats of its largest tensor (sequential offloading's unit, about)
    config: dict = field(default_factory=dict)

    def bytes_at(self, size: int) -> int:
        return self.floats * size + self.other


def weight_files(folder: Path, variant: str | None = None) -> list[Path]:
    """The safetensors files diffusers reads for a component folder (the variant's when asked and present)."""
    files = sorted(p for p in folder.glob("*.safetensors") if p.is_file())
    if variant:
        chosen = [p for p in files if f".{variant}." in p.name]
        if chosen:
            return chosen
    return [p for p in files if not any(f".{v}." in p.name for v in ("fp16", "bf16", "fp32", "fp8"))] or files


def read_component(name: str, paths: list[Path], class_name: str = "", config: dict | None = None) -> Component:
    stored = floats = other = largest = 0
    blocks: dict[tuple[str, str], int] = {}
    for path in paths:
        for key, (dtype, shape) in read_header(path).items():
            count = 1
            for n in shape:
                count *= n
            stored += count * DTYPE_BYTES.get(dtype, 4)
            if dtype in FLOATS:
                floats += count
                largest = max(largest, count)
                parts = key.split(".")
                if len(parts) > 2 and parts[1].isdigit():
                    blocks[(parts[0], parts[1])] = blocks.get((parts[0], parts[1]), 0) + count
            else:
                other += count * DTYPE_BYTES.get(dtype, 4)
    return Component(name, class_name, stored, floats, other, tuple(blocks.values()), largest, dict(config or {}))


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_pipeline(
    folder: str | Path, variant: str | None = None, adapter: str | Path | None = None
) -> dict[str, Component]:
    """Every weighted component of a diffusers folder (plus a motion adapter folder or file), from headers."""
    folder = Path(folder)
    index = read_json(folder / "model_index.json")
    found: dict[str, Component] = {}
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or spec[1] is None:
            continue
        sub = folder / name
        paths = weight_files(sub, variant) if sub.is_dir() else []
        if paths:
            config = read_json(sub / "config.json")
            try:
                found[name] = read_component(name, paths, spec[1], config)
            except (OSError, ModelLoadError):
                continue  # unreadable: left out of the estimate; loading it says what is wrong
    if adapter is not None:
        adapter = Path(adapter)
        paths = weight_files(adapter) if adapter.is_dir() else [adapter]
        config = read_json(adapter / "config.json") if adapter.is_dir() else {}
        try:
            found["motion_adapter"] = read_component("motion_adapter", paths, "MotionAdapter", config)
        except (OSError, ModelLoadError):
            pass
    return found
