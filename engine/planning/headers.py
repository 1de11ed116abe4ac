"""Reading a model's weights without loading them: tensor names, dtypes and shapes from safetensors headers."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

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


def read_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (dtype, shape) of every tensor in a safetensors file, from its JSON header alone."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if length > 100 * MB:
            raise ValueError(f"{path} has an implausible safetensors header ({length} bytes)")
        header = json.loads(handle.read(length))
    return {k: (v["dtype"], tuple(v["shape"])) for k, v in header.items() if k != "__metadata__"}


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
            except (OSError, ValueError, KeyError, TypeError, struct.error):
                continue  # unreadable: left out of the estimate; loading it says what is wrong
    if adapter is not None:
        adapter = Path(adapter)
        paths = weight_files(adapter) if adapter.is_dir() else [adapter]
        config = read_json(adapter / "config.json") if adapter.is_dir() else {}
        try:
            found["motion_adapter"] = read_component("motion_adapter", paths, "MotionAdapter", config)
        except (OSError, ValueError, KeyError, TypeError, struct.error):
            pass
    return found
