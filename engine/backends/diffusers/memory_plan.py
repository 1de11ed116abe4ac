"""The memory plan of a diffusers run (engine.planning.plan.MemoryPlan), made before loading: it reads the
weights' safetensors headers and what the machine has free, never loads a weight."""

from __future__ import annotations

from engine.api.request import GenerationRequest
from engine.registry.families import FAMILIES, request_task


def plan_request(backend, request: GenerationRequest, memory: str | None = None):
    """The plan for a request to a DiffusersBackend (its folder on disk; a pipeline it keeps loaded counts in)."""
    import diffusers

    from engine.backends.devices import pick_device, pick_dtype
    from engine.backends.diffusers.loading import host_bytes
    from engine.backends.diffusers.loras import with_loras
    from engine.planning.estimate import Shape
    from engine.planning.headers import read_pipeline
    from engine.planning.plan import plan_diffusers
    from engine.planning.system import free_ram, free_vram, process_rss

    folder = backend._on_disk()
    task = request_task(request)
    getattr(diffusers, FAMILIES[folder.family].pipeline_class(task))  # the run imports it anyway: count it in
    device = pick_device(backend.options.device)
    entry = backend.ref.entry
    components = read_pipeline(folder.path, entry.variant if entry else None, backend._adapter)
    components = with_loras(components, request.loras, backend.options.token)
    held = host_bytes(backend.pipe)  # a pipeline kept loaded from an earlier run is part of the plan
    baseline = max(process_rss() - held, 0)
    ram = free_ram()
    vram = free_vram(device) if device.startswith("cuda") else None
    shape = Shape.of(folder.family, request)
    mode = memory or backend.options.memory
    size = pick_dtype(device).itemsize
    ram = None if ram is None else ram + held
    return plan_diffusers(components, shape, mode, device, baseline, vram=vram, ram=ram, dtype_bytes=size)
