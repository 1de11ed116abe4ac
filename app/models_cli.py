"""`kinemo models list | pull | info | remove`: hub models on this machine."""

from __future__ import annotations

import argparse
import json


def hub_model_for(name: str):
    """(catalog entry or None, HubModel) behind a catalog id or a hub id."""
    from engine.api.errors import InvalidRequest
    from engine.registry.catalog import find_entry
    from engine.registry.resolve import BUNDLED, hub_model

    if name in BUNDLED:
        raise InvalidRequest(f"{name} ships with Kinemo: there is nothing to download or remove")
    model = hub_model(name)
    if model is None:
        raise InvalidRequest(
            f"unknown model {name!r}: use a catalog id (`kinemo models list`) or a hub id such as org/name"
        )
    return find_entry(name), model


def size_text(num_bytes: int) -> str:
    return f"{num_bytes / 1e9:.2f} GB" if num_bytes >= 1e8 else f"{num_bytes / 1e6:.1f} MB"


def run_list() -> int:
    from engine.registry.catalog import catalog
    from engine.registry.families import FAMILIES
    from engine.registry.hub import HubModel, local_paths
    from engine.registry.resolve import BUNDLED, available_models

    rows = [(m, "kinemo", "t2v+i2v", "bundled", "-", "-", "") for m in available_models() if m in BUNDLED]
    for e in catalog().values():
        on_disk = "yes" if local_paths(HubModel.from_entry(e)) else "no"
        vram = f"{e.vram_gb:g} GB" + ("" if e.vram_published else "*")
        notes = ["sound"] if FAMILIES[e.family].audio else []
        notes += [f"superseded by {e.superseded_by}"] if e.superseded_by else []
        rows.append((e.id, e.family, "+".join(e.tasks), on_disk, vram, f"{e.disk_gb:g} GB", ", ".join(notes)))
    header = ("id", "family", "tasks", "on disk", "vram", "download", "notes")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    print("vram: the model card's figure; * Kinemo's estimate from the weights. Licences: kinemo models info ID")
    return 0


def run_pull(name: str, token: str | None) -> int:
    from engine.registry.hub import pull, token_from

    _, model = hub_model_for(name)
    pipeline, adapter = pull(model, token_from(token))
    print(pipeline)
    if adapter is not None:
        print(adapter)
    return 0


def bundled_info(name: str) -> dict:
    """What a bundled model is: its folder, size, the steps it takes and its measured scores."""
    from engine.registry.assets import WEIGHTS_NAME, read_config, read_sampling
    from engine.registry.model_options import catalog_options
    from engine.registry.resolve import BUNDLED

    folder = BUNDLED[name]
    options = catalog_options(name)
    info = {"id": name, "family": "kinemo", "tasks": list(options.tasks), "license": options.license}
    info.update(bundled=True, path=str(folder), defaults=options.defaults)
    info["size_on_disk"] = size_text((folder / WEIGHTS_NAME).stat().st_size)
    info["native"] = {k: read_config(folder).get(k) for k in ("size", "max_frames")}
    if read_sampling(folder):
        info["distilled_timesteps"] = read_sampling(folder)
    evaluation = folder / "evaluation.json"
    if evaluation.is_file():
        info["evaluation"] = json.loads(evaluation.read_text(encoding="utf-8"))
        info["evaluation_of"] = (
            "the pixel model, on held-out prompts and procedural pictures (python -m engine.training.evaluate); "
            "a picture moved by a camera caption is the camera model's work, measured by "
            "bench/bench_photo_animation.py (assets/kinemo-camera/MODEL_CARD.md)"
        )
    info["model_card"] = str(folder / "MODEL_CARD.md")
    return info


def run_info(name: str) -> int:
    from dataclasses import asdict

    from engine.api.errors import ModelLoadError
    from engine.registry.hub import disk_bytes, local_paths
    from engine.registry.resolve import BUNDLED

    if name in BUNDLED:
        try:
            info = bundled_info(name)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{name} is not installed whole: {exc}") from None
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    entry, model = hub_model_for(name)
    found = local_paths(model)
    info = asdict(entry) if entry is not None else {"hub_id": model.hub_id}
    info["on_disk"] = found is not None
    if found is not None:
        info["path"] = str(found[0])
        if found[1] is not None:
            info["adapter_path"] = str(found[1])
        info["size_on_disk"] = size_text(disk_bytes(model))
    print(json.dumps(info, indent=2, ensure_ascii=False))
    return 0


def run_remove(name: str) -> int:
    from engine.registry.catalog import catalog
    from engine.registry.hub import HubModel, local_paths, remove

    entry, model = hub_model_for(name)
    # a repository another downloaded model needs too (a shared base model) stays
    keep = {
        repo
        for other in catalog().values()
        if other is not entry and set(other.repos) & set(model.repos) and local_paths(HubModel.from_entry(other))
        for repo in other.repos
    }
    freed, removed = remove(model, keep)
    if not removed:
        print(f"{name} is not on disk; nothing removed")
        return 0
    kept = sorted(set(model.repos) & keep)
    print(
        f"removed {', '.join(removed)} ({size_text(freed)})"
        + (f"; kept {', '.join(kept)}, which other models use" if kept else "")
    )
    return 0


def run_models(args: argparse.Namespace) -> int:
    command = args.models_command
    if command == "list":
        return run_list()
    if command == "pull":
        return run_pull(args.model, args.token)
    if command == "info":
        return run_info(args.model)
    return run_remove(args.model)
