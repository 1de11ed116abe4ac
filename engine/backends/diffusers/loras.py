"""LoRA weights on a loaded diffusers pipeline, through diffusers' own loaders: load_lora_weights puts each file
into the denoiser as a peft adapter (Wan 2.2 A14B: into both experts), set_adapters gives each its scale.

Adapters stay loaded between runs and are named by their file's SHA-256, so the same LoRA is read once however
it is named; a run asks for exactly its LoRAs, and the others are deleted. A LoRA that fits no layer of the
denoiser, or whose shapes differ from the layers it names, is a LoraError naming it, with nothing left loaded.
"""

from __future__ import annotations

import logging
from pathlib import Path

from engine.api.controls import LoraWeight
from engine.registry.loras import LoraError, lora_file

log = logging.getLogger("kinemo.engine")


def adapter_name(lora: LoraWeight) -> str:
    return f"kinemo_{lora.sha256[:16]}" if lora.sha256 else f"kinemo_{abs(hash(lora.source)):x}"


def takes_loras(pipeline_class: str) -> bool:
    """Whether a diffusers pipeline class has LoRA loaders (SVD, for one, has none)."""
    import diffusers

    return hasattr(getattr(diffusers, pipeline_class), "load_lora_weights")


def check_loras(request, pipeline_class: str, model_id: str, quantize: str | None) -> None:
    """A request's LoRAs against the model, before anything loads: InvalidRequest in one line."""
    from engine.api.errors import InvalidRequest

    if not request.loras:
        return
    if quantize:
        raise InvalidRequest("LoRAs and --quantize int8 do not combine yet: the LoRA layers need the float weights")
    if not takes_loras(pipeline_class):
        raise InvalidRequest(f"{model_id} takes no LoRA: its diffusers pipeline ({pipeline_class}) has no LoRA loader")


def with_loras(components: dict, loras: tuple[LoraWeight, ...], token: str | None = None) -> dict:
    """The pipeline's components (engine.planning.headers) with each LoRA's weights counted in its denoiser:
    peft keeps them beside the layers they adapt, in the denoiser's precision."""
    from dataclasses import replace

    from engine.accel.quantize_diffusers import denoiser_names
    from engine.planning.headers import read_component

    name = denoiser_names(list(components))[0]
    if not loras or name not in components:
        return components
    added = [read_component("lora", [lora_file(lora, token)]) for lora in loras]
    denoiser = components[name]
    grown = replace(
        denoiser,
        stored=denoiser.stored + sum(c.stored for c in added),
        floats=denoiser.floats + sum(c.floats for c in added),
    )
    return {**components, name: grown}


def loaded_adapters(pipe) -> set[str]:
    if not hasattr(pipe, "get_list_adapters"):
        return set()
    return {name for names in pipe.get_list_adapters().values() for name in names}


def apply_loras(pipe, loras: tuple[LoraWeight, ...], model_id: str, token: str | None = None) -> None:
    """Make the pipeline's adapters exactly loras, at their scales (no LoRA: none left loaded)."""
    wanted = {adapter_name(lora): lora for lora in loras}
    stale = sorted(loaded_adapters(pipe) - set(wanted))
    if stale:
        pipe.delete_adapters(stale)
    for name, lora in wanted.items():
        if name not in loaded_adapters(pipe):
            _load(pipe, lora, name, model_id, token)
    if wanted:
        pipe.set_adapters(list(wanted), adapter_weights=[lora.scale for lora in wanted.values()])


def _load(pipe, lora: LoraWeight, name: str, model_id: str, token: str | None) -> None:
    path = lora_file(lora, token)
    kwargs = {"load_into_transformer_2": True} if getattr(pipe, "transformer_2", None) is not None else {}
    try:
        pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=name, **kwargs)
    except Exception as exc:  # noqa: BLE001 - peft and diffusers raise many kinds for a LoRA that does not fit
        _forget(pipe, name)
        raise LoraError(f"LoRA {lora.name} does not fit {model_id}: {_first_line(exc)}") from None
    if name not in loaded_adapters(pipe):  # diffusers only warns when no key names a layer of this model
        raise LoraError(
            f"LoRA {lora.name} does not fit {model_id}: none of its weights name a layer of this model "
            "(a LoRA for another model family?)"
        )
    log.info("loaded LoRA %s (%s) into %s", lora.name, Path(path).name, model_id)


def _forget(pipe, name: str) -> None:
    """Remove what a failed load left behind, so the next run starts clean."""
    try:
        if name in loaded_adapters(pipe):
            pipe.delete_adapters([name])
    except Exception:  # noqa: BLE001 - cleaning up after a failure must not hide it
        log.warning("could not remove the partly loaded LoRA %s", name)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
