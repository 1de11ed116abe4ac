"""Backends: one per kind of model. resolve_backend() maps what the user typed to one.

The bundled starter model is one backend; diffusers video pipelines (catalog ids, hub ids, local
folders in diffusers layout) are another.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from engine.errors import InvalidRequest

STARTER_ID = "kinemo-starter"
STARTER_FAST_ID = "kinemo-starter-fast"  # the starter distilled to 4 steps (engine.distill)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def available_models() -> list[str]:
    """The bundled model (and its distilled student, when shipped), then every catalog id."""
    from engine.catalog import catalog
    from engine.model_files import FAST_DIR

    return [STARTER_ID, *([STARTER_FAST_ID] if (FAST_DIR / "config.json").is_file() else []), *catalog()]


def fast_model(model: str) -> str:
    """The distilled few-step version of a model (--fast); raises InvalidRequest when it has none."""
    from engine.catalog import catalog, find_entry

    if model in (STARTER_ID, STARTER_FAST_ID):
        return STARTER_FAST_ID
    entry = find_entry(model)
    if entry is not None and (entry.distilled or entry.fast):
        return entry.id if entry.distilled else entry.fast
    known = ", ".join([STARTER_ID, *(e.id for e in catalog().values() if e.fast)])
    raise InvalidRequest(f"{model} has no distilled version for --fast; models that have one: {known}")


def resolve_backend(
    model: str,
    device: str = "auto",
    token: str | None = None,
    kv_cache: bool = True,
    quantize: str | None = None,
    onnx_temporal: bool = False,
    memory: str = "auto",
):
    """A backend for a model id, a hub id or a local model folder; raises InvalidRequest for unknown names.

    kv_cache: reuse the conditioning's attention keys/values across steps and frames (exact; on by default).
    quantize: "int8" keeps the denoiser's weights in int8 (the bundled model and the diffusers families).
    onnx_temporal: run the temporal attention blocks in onnxruntime (Kinemo models; AnimateDiff's motion modules).
    memory: auto, high, low or minimal (engine.memory_plan): how a diffusers model trades speed for memory.
    """
    from engine.memory_plan import check_mode

    check_mode(memory)
    from engine.backends.bundled import BundledBackend
    from engine.backends.diffusers_backend import DiffusersBackend, Source
    from engine.catalog import find_entry

    fast = {"quantize": quantize, "onnx_temporal": onnx_temporal}
    run = dict(kv_cache=kv_cache, memory=memory, **fast)
    if model == STARTER_ID:
        return BundledBackend(device=_bundled_device(device), kv_cache=kv_cache, **fast)
    if model == STARTER_FAST_ID:
        from engine.model_files import FAST_DIR

        return BundledBackend(
            FAST_DIR, device=_bundled_device(device), model_id=STARTER_FAST_ID, kv_cache=kv_cache, **fast
        )
    folder = Path(model).expanduser()
    if folder.is_dir():
        if (folder / "model_index.json").is_file():
            from engine.devices import pick_device

            pick_device(device)
            return DiffusersBackend(Source(str(folder), folder=folder), device, token, **run)
        config = folder / "config.json"
        if config.is_file():
            try:
                model_type = json.loads(config.read_text()).get("model_type")
            except (ValueError, OSError, AttributeError):
                model_type = None
            if model_type == "kinemo-dit":
                return BundledBackend(
                    folder, device=_bundled_device(device), model_id=str(folder), kv_cache=kv_cache, **fast
                )
            raise InvalidRequest(f"{folder} is not a Kinemo model folder (model_type {model_type!r})")
        raise InvalidRequest(
            f"{folder} is neither a Kinemo model folder (config.json) nor a diffusers one (model_index.json)"
        )
    entry = find_entry(model)
    if entry is not None or HUB_ID.match(model):
        from engine.devices import pick_device

        pick_device(device)  # an unusable --device is bad input: say so before any download
    if entry is not None:
        return DiffusersBackend(Source(entry.id, entry=entry), device, token, **run)
    if HUB_ID.match(model) and not model.startswith((".", "~")):
        return DiffusersBackend(Source(model, hub_id=model), device, token, **run)
    raise InvalidRequest(
        f"unknown model {model!r}: use a catalog id (`kinemo models list`), a hub id such as org/name, or a model folder"
    )


def is_kinemo_folder(model: str) -> bool:
    """True for a folder holding a Kinemo DiT (config.json with model_type kinemo-dit)."""
    config = Path(model).expanduser() / "config.json"
    try:
        return config.is_file() and json.loads(config.read_text()).get("model_type") == "kinemo-dit"
    except (ValueError, OSError, AttributeError):
        return False


def _bundled_device(device: str) -> str:
    if device in (None, "auto"):
        return "cpu"  # the starter model is small: the CPU is fast enough and always there
    from engine.devices import pick_device

    return pick_device(device)


def generate_planned(backend, request, should_stop=None, memory: str = "auto"):
    """backend.generate(request) under a memory setting, its memory plan announced right after Loaded.

    Diffusers backends plan, apply and announce the plan themselves (engine.memory_plan.MemoryNotice);
    the bundled model has one way to run, so its plan (an estimate) is made here before it loads.
    """
    from engine.events import Loaded
    from engine.memory_plan import MemoryNotice, check_mode, plan_bundled_backend

    check_mode(memory)
    if hasattr(backend, "plan_memory"):
        backend.memory = memory
        return (yield from backend.generate(request, should_stop=should_stop))
    request.validate()
    plan = plan_bundled_backend(backend, request, memory)
    events = backend.generate(request, should_stop=should_stop)
    try:
        announced = False
        for event in events:
            yield event
            if not announced and isinstance(event, Loaded):
                announced = True
                yield MemoryNotice(plan.text(), plan)
    finally:
        events.close()
