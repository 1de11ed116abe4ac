"""The plan's line for the studio before a run, made in a process that has not imported torch."""

from __future__ import annotations

from pathlib import Path

from engine.planning.bundled_estimate import KINEMO_BASELINE, accel_bytes
from engine.planning.estimate import TYPICAL_BASELINE, Shape
from engine.planning.headers import Component, read_pipeline
from engine.planning.plan import plan_bundled, plan_diffusers
from engine.planning.system import gpu_without_torch


def preview_plan(
    model: str,
    frames: int,
    width: int,
    height: int,
    steps: int = 25,
    guidance: float = 1.0,
    mode: str = "auto",
    image: bool = False,
    quantize: bool = False,
    onnx: bool = False,
) -> str:
    """The plan's line for a model before a run, from this process (no torch imported): reads weight
    headers and free memory, so call it off the UI thread. The engine prints the exact plan at the start;
    both count the same parts (the bundled model's from the same measured baseline and switches)."""
    from engine.registry.model_options import model_options
    from engine.registry.resolve import resolve_model

    options = model_options(model)
    gpu = gpu_without_torch()
    device, vram = gpu if gpu else ("cpu", None)
    if options.family == "kinemo":
        shape = Shape("kinemo", frames, width, height, guidance, steps)
        libraries = accel_bytes(quantize, onnx)
        folder = resolve_model(model).folder or Path(model)  # kinemo refs carry their folder
        return plan_bundled(folder, shape, mode, "cpu", KINEMO_BASELINE, libraries=libraries).text()
    baseline = TYPICAL_BASELINE
    components = _components_on_disk(model)
    if components is None:
        if options.needs_download:
            size = f" (the download is {options.disk_gb:g} GB)" if options.disk_gb else ""
            return f"memory: not estimated until {options.name} is on disk{size}"
        return "memory: not estimated (the model's weights cannot be read)"
    shape = Shape(options.family, frames, width, height, guidance, steps, "i2v" if image else "t2v")
    return plan_diffusers(components, shape, mode, device, baseline, vram).text()


def _components_on_disk(model: str) -> dict[str, Component] | None:
    folder = Path(model).expanduser()
    variant, adapter = None, None
    if not folder.is_dir():
        from engine.registry.catalog import find_entry
        from engine.registry.hub import local_paths
        from engine.registry.resolve import hub_model

        hub = hub_model(model)
        found = local_paths(hub) if hub is not None else None
        if found is None:
            return None
        folder, adapter = found
        entry = find_entry(model)
        variant = entry.variant if entry else None
    try:
        components = read_pipeline(folder, variant, adapter)
    except (OSError, ValueError):
        return None
    return components or None
