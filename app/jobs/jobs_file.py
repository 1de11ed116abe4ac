"""A batch's JOBS file read and validated whole before any work: JSON Lines, one request a line.

Each line holds the fields GenerationRequest.from_dict takes (engine/api/request.py) plus an optional `name` (the
output's name; default: the line number) and `format`. Omitted fields take the model's defaults as
`kinemo generate` gives them; relative input paths resolve against the JOBS file's folder. The first bad line
raises UsageError naming its number and the field, so a batch never starts on a file it would stumble on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli_args import UsageError

if TYPE_CHECKING:
    from engine.api.request import GenerationRequest
    from engine.api.run_options import RunOptions

INPUT_FIELDS = ("image", "last_image", "video", "extends")  # paths a request reads, each fingerprinted
SIZE_FIELDS = ("frames", "fps", "width", "height", "steps", "guidance")  # the model's defaults where omitted
MAX_NAME_CHARS = 120


@dataclass(frozen=True)
class Job:
    line: int  # 1-based line of the JOBS file
    name: str  # the output's name without extension: `name`, or the line number
    format: str  # mp4, gif, webm or png (a folder of frames)
    request: GenerationRequest  # the validated, fingerprinted GenerationRequest
    key: str  # hex SHA-256 of what decides the output (journal.job_key)

    @property
    def file_name(self) -> str:
        from export.formats import EXTENSIONS

        return self.name + EXTENSIONS[self.format]

    @property
    def needs_gpu(self) -> bool:
        """A diffusers model needs a GPU; the bundled model runs on a CPU."""
        from engine.registry.resolve import resolve_model

        return not resolve_model(self.request.model).is_kinemo


@dataclass(frozen=True)
class BatchSettings:
    """What every job of a batch shares: the run flags and the export's."""

    options: RunOptions
    format: str = "mp4"
    quality: int = 80
    audio: bool = True
    fast: bool = False


def read_jobs(path: Path, settings: BatchSettings, backends: dict | None = None) -> list[Job]:
    """Every job of the JOBS file at path, validated; backends (model, backend_key) -> Backend is filled with
    the backends opened on the way (nothing loaded), for the runner to reuse."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the JOBS file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    backends = {} if backends is None else backends
    jobs: list[Job] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            jobs.append(_read_line(number, line, path.parent.resolve(), settings, backends))
    if not jobs:
        raise UsageError(f"the JOBS file {path} holds no jobs (one JSON request a line)")
    seen: dict[str, int] = {}
    for job in jobs:
        if job.file_name in seen:
            raise UsageError(f"JOBS line {job.line}: name {job.name!r} is taken by line {seen[job.file_name]}")
        seen[job.file_name] = job.line
    return jobs


def _read_line(number: int, line: str, folder: Path, settings: BatchSettings, backends: dict) -> Job:
    from engine.api.errors import KinemoError
    from export.formats import ExportError

    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UsageError(f"JOBS line {number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise UsageError(f"JOBS line {number}: expected a JSON object (a request), got {type(data).__name__}")
    try:
        name = _name(data.pop("name", None), number)
        fmt = _format(data.pop("format", settings.format))
        request = _request(data, folder, settings, backends)
    except (KinemoError, ExportError, UsageError) as exc:
        raise UsageError(f"JOBS line {number}: {exc}") from None
    except TypeError as exc:  # a field of the wrong kind that the dataclass itself trips over
        raise UsageError(f"JOBS line {number}: {exc}") from None
    return Job(number, name, fmt, request, job_key(request, fmt, settings))


def _name(value, number: int) -> str:
    if value is None:
        return str(number)
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"name must be non-empty text, got {value!r}")
    if "/" in value or "\\" in value or value.startswith(".") or "\0" in value:
        raise UsageError(f"name must be a plain file name (no folders, not hidden), got {value!r}")
    if len(value) > MAX_NAME_CHARS:
        raise UsageError(f"name is {len(value)} characters long; the limit is {MAX_NAME_CHARS}")
    return value


def _format(value) -> str:
    from export.formats import FORMATS

    if value not in FORMATS:
        raise UsageError(f"format must be one of {', '.join(FORMATS)}, got {value!r}")
    return value


def _request(data: dict, folder: Path, settings: BatchSettings, backends: dict):
    """The GenerationRequest of a line's fields with generate's defaults, checked and fingerprinted."""
    from app.jobs.request_defaults import check_inputs, fast_loras, fast_settings, picture_size, video_defaults
    from engine.api.errors import InvalidRequest
    from engine.api.request import DEFAULT_MODEL, GenerationRequest
    from engine.registry.resolve import fast_model

    model = data.get("model", DEFAULT_MODEL)
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest(f"model must be a model name, got {model!r}")
    data["model"] = fast_model(model) if settings.fast else model
    for name in INPUT_FIELDS:  # relative to the JOBS file, as a user writing it next to the pictures means
        if isinstance(data.get(name), str) and data[name].strip():
            data[name] = str(folder / Path(data[name]).expanduser())
    backend = opened(backends, data["model"], settings.options)
    defaults = backend.defaults()
    if data.get("image") and "width" not in data and "height" not in data:
        defaults.update(picture_size(data["image"]))
    if data.get("video") and not data.get("image"):
        defaults.update(video_defaults(data["video"], backend, defaults, sized="width" in data or "height" in data))
    defaults.update(fast_settings(backend, settings.fast))
    request = GenerationRequest.from_dict({**{k: v for k, v in defaults.items() if k in SIZE_FIELDS}, **data})
    if settings.fast:
        request = request.with_changes(loras=fast_loras(backend) + request.loras).validate()
    return check_inputs(backend, request)


def opened(backends: dict, model: str, options):
    """The backend for model with options, opened once (nothing loads until it generates)."""
    from engine.backends.base import open_backend

    key = (model, options.backend_key)
    if key not in backends:
        backends[key] = open_backend(model, options)
    return backends[key]


def job_key(request, fmt: str, settings: BatchSettings) -> str:
    """A hex SHA-256 of what decides a job's file: the request (inputs by their fingerprints, not their paths, so
    a moved folder keeps its finished work) and the export settings."""
    fingerprinted = {name: None for name in INPUT_FIELDS if getattr(request, f"{name}_sha256")}
    normalised = replace(request, **fingerprinted).to_dict()
    export = {"format": fmt, "quality": settings.quality, "audio": settings.audio}
    text = json.dumps({"request": normalised, "export": export}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
