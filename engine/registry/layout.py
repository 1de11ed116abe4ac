"""Checks on a model folder in diffusers layout before anything is loaded from it.

A diffusers folder has model_index.json naming a pipeline class and its components, one subfolder
per component. Kinemo loads weights from safetensors only: pickled weights (.bin, .pt, .ckpt) can
run code when they are read, so a folder that has only those is refused with a clear message.
Pure Python: no torch, no diffusers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engine.api.errors import ModelLoadError
from engine.registry.families import PIPELINE_FAMILIES

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
WEIGHT_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES)
# components whose folders hold configs and vocabularies, not weights
WEIGHTLESS_KINDS = ("Scheduler", "Tokenizer", "Processor", "FeatureExtractor", "Guidance")  # Guidance: guiders

SD_BASE = "StableDiffusionPipeline"


@dataclass(frozen=True)
class DiffusersFolder:
    path: Path
    pipeline_class: str
    family: str
    tasks: tuple[str, ...]
    components: dict[str, tuple[str | None, str | None]]  # name -> (library, class)
    pixels_per_token: int | None = None  # the VAE's spatial compression x the transformer's patch, where they say


def read_model_index(folder: Path) -> dict:
    index = folder / "model_index.json"
    if not index.is_file():
        raise ModelLoadError(f"{folder} is not a diffusers model folder: it has no model_index.json")
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{index} is unreadable: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("_class_name"), str):
        raise ModelLoadError(f"{index} does not name a pipeline class (_class_name)")
    return data


def _needs_weights(library_class: str | None) -> bool:
    return library_class is not None and not any(kind in library_class for kind in WEIGHTLESS_KINDS)


def check_weights(component: Path) -> None:
    """A component folder must hold safetensors weights; pickles alone are refused."""
    files = [p for p in component.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)]
    if any(p.name.endswith(".safetensors") for p in files):
        return
    pickles = [p for p in files if p.name.endswith(PICKLE_SUFFIXES)]
    if pickles:
        raise ModelLoadError(
            f"refusing pickled weights {pickles[0]}: Kinemo loads safetensors only, because pickle files can run code "
            "when read; use a safetensors copy of this model"
        )
    raise ModelLoadError(f"{component} has no weights (no .safetensors file)")


def inspect_folder(folder: str | Path, motion_base: bool = False) -> DiffusersFolder:
    """Check the layout and weights of a diffusers folder; raise ModelLoadError naming what is wrong.

    motion_base: the folder is a Stable Diffusion 1.5 model that a motion adapter turns into
    AnimateDiff (how the catalog's AnimateDiff models are made up).
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ModelLoadError(f"model folder {folder} does not exist")
    data = read_model_index(folder)
    pipeline_class = data["_class_name"]
    families = {**PIPELINE_FAMILIES, **({SD_BASE: PIPELINE_FAMILIES["AnimateDiffPipeline"]} if motion_base else {})}
    if pipeline_class not in families:
        known = ", ".join(sorted(PIPELINE_FAMILIES))
        raise ModelLoadError(f"{folder} holds a {pipeline_class}, which Kinemo does not run; it runs {known}")
    components = {}
    for name, spec in data.items():
        if name.startswith("_") or not isinstance(spec, list) or len(spec) != 2:
            continue
        library, cls = spec
        components[name] = (library, cls)
        if library is None or cls is None:  # an optional component left out
            continue
        sub = folder / name
        if not sub.is_dir():
            raise ModelLoadError(
                f"{folder} is incomplete: model_index.json lists {name!r} but there is no {name}/ folder"
            )
        if _needs_weights(cls):
            check_weights(sub)
    family, tasks = families[pipeline_class]
    if data.get("expand_timesteps"):  # Wan 2.2 TI2V: one model for text and for a first frame
        tasks = ("t2v", "i2v")
    return DiffusersFolder(folder, pipeline_class, family, tasks, components, pixels_per_token(folder))


def pixels_per_token(folder: Path) -> int | None:
    """Pixels one latent token spans along each side (Wan 2.2 TI2V's VAE compresses 16x where Wan 2.1's does 8x, so
    its sizes go in steps of 32, not 16); None where the configs do not say."""
    configs = {}
    for name in ("vae", "transformer"):
        try:
            configs[name] = json.loads((folder / name / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    vae, transformer = configs["vae"], configs["transformer"]
    spatial = vae.get("scale_factor_spatial") or vae.get("spatial_compression_ratio")
    patch = transformer.get("patch_size", 1)
    patch = patch[-1] if isinstance(patch, list) and patch else patch
    if not isinstance(spatial, int) or not isinstance(patch, int) or spatial < 1 or patch < 1:
        return None
    return spatial * patch
