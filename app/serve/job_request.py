"""A job's JSON body turned into a checked request and its export settings, or InvalidRequest naming the field.

The body holds GenerationRequest's fields (as GenerationRequest.from_dict takes them) plus how the result is
written (format, quality, audio) and the pictures themselves: image_data, last_image_data, video_data and
extends_data carry the files in base64. A path on the server (image, last_image, video, extends, a LoRA file) is
refused: a client names only what it sends, so the server never reads a file it was pointed at. Omitted fields
take the model's defaults, as `kinemo generate` does.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, fields
from pathlib import Path

from engine.api.errors import InvalidRequest

INPUT_FIELDS = ("image", "last_image", "video", "extends")  # each travels as <name>_data, base64
SERVED_FORMATS = ("mp4", "webm", "gif")  # one file each (png makes a folder of frames)


@dataclass(frozen=True)
class JobSpec:
    """What a job makes and how it is written: everything checked before the job is queued."""

    request: object  # engine.api.request.GenerationRequest, validated and fingerprinted
    settings: object  # export.ExportSettings
    quality: int
    audio: bool
    provenance: dict  # the request as the file records it: a file sent in the body is named by its field


def parse_job(body: bytes, folder: Path, options) -> JobSpec:
    """The job in body (JSON bytes); the pictures it carries are written into folder (the job's own).
    InvalidRequest (a 400) names the first bad field."""
    from app.jobs.request_defaults import check_inputs
    from engine.api.request import GenerationRequest
    from engine.backends.base import open_backend

    # 1. a JSON object, with the server-side paths refused before anything is read
    data = _json_object(body)
    refuse_server_paths(data)
    fmt, quality, audio = _export_fields(data)
    inputs = {name: data.pop(f"{name}_data") for name in INPUT_FIELDS if data.get(f"{name}_data") is not None}

    # 2. the pictures into the job's folder, named by their fields
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in inputs.items():
        data[name] = str(_write_input(folder / name, name, text))

    # 3. the model's defaults for what the body leaves out, then the request's own rules
    backend = open_backend(data.get("model") or GenerationRequest(prompt="-").model, options)
    request = GenerationRequest.from_dict({**_model_defaults(backend, data, folder), **data})

    # 4. the export settings; the inputs read and fingerprinted, checked by the model as for `kinemo generate`
    settings = _settings(fmt, quality, request)
    request = _named(folder, check_inputs, backend, request)
    provenance = {**request.to_dict(), **{name: f"{name}_data" for name in inputs}}  # not the server's paths
    return JobSpec(request, settings, quality, audio, provenance)


def _json_object(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object holding a request (prompt, model, frames, ...)")
    return data


def refuse_server_paths(data: dict) -> None:
    """InvalidRequest when the body names a file on the server: pictures and clips travel in the body, LoRAs are
    hub ids."""
    from engine.registry.loras import HUB_ID

    for name in INPUT_FIELDS:
        if data.get(name) is not None:
            raise InvalidRequest(
                f"{name} names a file on the server; send the file itself in {name}_data (base64) instead"
            )
    loras = data.get("loras")
    for lora in loras if isinstance(loras, list) else ():
        source = lora.get("source") if isinstance(lora, dict) else None
        if isinstance(source, str) and (Path(source).expanduser().exists() or not HUB_ID.match(source)):
            raise InvalidRequest(
                f"loras: {source!r} is not a hub id; the server takes LoRAs by hub id (owner/name[/file.safetensors])"
            )


def _export_fields(data: dict) -> tuple[str, int, bool]:
    """(format, quality, audio), taken out of data."""
    fmt, quality, audio = data.pop("format", "mp4"), data.pop("quality", 80), data.pop("audio", True)
    if fmt not in SERVED_FORMATS:
        raise InvalidRequest(f"format must be one of {', '.join(SERVED_FORMATS)}, got {fmt!r}")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise InvalidRequest(f"quality must be a whole number from 1 to 100, got {quality!r}")
    if not isinstance(audio, bool):
        raise InvalidRequest(f"audio must be true or false, got {audio!r}")
    return fmt, quality, audio


def _write_input(path: Path, name: str, text) -> Path:
    """The base64 file of field <name>_data written at path (a data: URL's header is skipped)."""
    if not isinstance(text, str):
        raise InvalidRequest(f"{name}_data must be the file in base64 text, got {type(text).__name__}")
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        content = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{name}_data is not base64") from None
    if not content:
        raise InvalidRequest(f"{name}_data is empty")
    path.write_bytes(content)
    return path


def _model_defaults(backend, data: dict, folder: Path) -> dict:
    """The fields the body leaves out, from the model (sizes, steps, guidance, frames, fps); a picture sets the
    aspect and a clip to re-render its aspect and length, as for `kinemo generate` (app.jobs.request_defaults)."""
    from app.jobs.request_defaults import picture_size, video_defaults
    from engine.api.request import GenerationRequest

    known = {f.name for f in fields(GenerationRequest)}
    defaults = {k: v for k, v in backend.defaults().items() if k in known}
    sized = "width" in data or "height" in data
    if data.get("image") and not sized:
        defaults.update(_named(folder, picture_size, data["image"]))
    elif data.get("video") and not data.get("image"):
        defaults.update(_named(folder, video_defaults, data["video"], backend, defaults, sized))
    return defaults


def _named(folder: Path, call, *args):
    """call(*args), an InvalidRequest about an input naming the body's field (image_data, ...) instead of the
    server's file in folder."""
    try:
        return call(*args)
    except InvalidRequest as exc:
        message = str(exc)
        for name in INPUT_FIELDS:
            message = message.replace(str(folder / name), f"{name}_data")
        raise InvalidRequest(message) from None


def _settings(fmt: str, quality: int, request):
    from export import ExportSettings
    from export.formats import ExportError

    try:
        return ExportSettings(fmt, request.fps, request.width, request.height, quality).validate()
    except ExportError as exc:
        raise InvalidRequest(str(exc)) from None


def request_schema() -> dict:
    """The JSON schema of a job's body, from GenerationRequest's fields (for the OpenAPI description)."""
    from engine.api.request import GenerationRequest

    types = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
    properties: dict = {}
    for f in fields(GenerationRequest):
        if f.name in INPUT_FIELDS:
            continue  # refused: the file travels in <name>_data
        kind = str(f.type).split(" | ")[0]
        properties[f.name] = {"type": types.get(kind, "array")}
    for name in INPUT_FIELDS:
        properties[f"{name}_data"] = {"type": "string", "format": "byte", "description": f"the {name} file, base64"}
    properties["format"] = {"type": "string", "enum": list(SERVED_FORMATS), "default": "mp4"}
    properties["quality"] = {"type": "integer", "minimum": 1, "maximum": 100, "default": 80}
    properties["audio"] = {"type": "boolean", "default": True}
    return {"type": "object", "required": ["prompt"], "properties": properties}
