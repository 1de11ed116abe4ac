"""Checks for everything the studio reads back from a file: history entries, settings, the queue, clip records.

Files in the data folder and records inside dropped clips can hold anything (hand edits, other versions,
damage, hostile files), so each field is checked for its type and range before any of it reaches a widget.
Pure Python: no Qt, no torch.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

from engine.api.controls import MAX_LORAS, MAX_PROMPT_CHANGES, LoraWeight
from engine.api.errors import InvalidRequest
from engine.api.request import LIMITS, MAX_PROMPT_CHARS, GenerationRequest
from export.formats import FORMATS

MAX_SAVED_FILE_BYTES = 1 << 20  # settings, history entries and the queue are a few kilobytes each
MAX_PATH_CHARS = 4096
LATEST_TIME = 253402300799.0  # 9999-12-31: later "created" times cannot be shown as a date
MEMORY_SETTINGS = ("auto", "high", "low", "minimal")
INPUT_PATHS = ("image", "last_image", "video", "extends")  # the files a request reads, each with its _sha256


def read_small_text(path: Path) -> str:
    """The text of a regular file of at most MAX_SAVED_FILE_BYTES; OSError or ValueError otherwise (a FIFO
    would block the UI thread, a huge file would fill memory)."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path.name} is not a regular file")
    if info.st_size > MAX_SAVED_FILE_BYTES:
        raise ValueError(f"{path.name} is {info.st_size} bytes long; the limit is {MAX_SAVED_FILE_BYTES}")
    return path.read_text(encoding="utf-8")


def is_number(value, low: float, high: float) -> bool:
    """A real number (not a bool), finite, within [low, high]."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and low <= value <= high
    )


def _optional_text(value, limit: int = MAX_PATH_CHARS) -> bool:
    return value is None or (isinstance(value, str) and len(value) <= limit)


def _is_sha256(value) -> bool:
    return value is None or (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value.lower())
    )


def checked_request(data) -> GenerationRequest:
    """A GenerationRequest from a saved dict, every field checked (from_dict leaves the picture's fields to
    the caller); InvalidRequest naming the first bad field."""
    request = GenerationRequest.from_dict(data)
    for name in INPUT_PATHS:
        if not _optional_text(getattr(request, name)):
            raise InvalidRequest(f"{name} must be a file path of at most {MAX_PATH_CHARS} characters")
        if not _is_sha256(getattr(request, f"{name}_sha256")):
            raise InvalidRequest(f"{name}_sha256 must be 64 hexadecimal digits")
    if any(len(lora.source) > MAX_PATH_CHARS for lora in request.loras):
        raise InvalidRequest(f"a LoRA's source is longer than {MAX_PATH_CHARS} characters")
    if len(request.model) > MAX_PATH_CHARS:
        raise InvalidRequest(f"the model name is longer than {MAX_PATH_CHARS} characters")
    return request


def lora_row_ok(row) -> bool:
    """One row of the form's saved LoRA list: {"source", "scale", "enabled"}, a LoRA the request would take."""
    if not isinstance(row, dict) or set(row) != {"source", "scale", "enabled"} or not isinstance(row["enabled"], bool):
        return False
    if not isinstance(row["source"], str) or len(row["source"]) > MAX_PATH_CHARS:
        return False
    try:
        LoraWeight(row["source"], row["scale"]).validate()
    except InvalidRequest:
        return False
    return True


def _loras_ok(value) -> bool:
    if not isinstance(value, list) or len(value) > MAX_LORAS:
        return False
    try:
        return all(len(LoraWeight.from_value(v).source) <= MAX_PATH_CHARS for v in value)
    except (InvalidRequest, TypeError):
        return False


def _prompt_change_ok(change) -> bool:
    """A saved prompt change as the form writes it: its prompt may still be empty (the form need not be valid)."""
    return (
        isinstance(change, dict)
        and set(change) == {"frame", "prompt"}
        and isinstance(change["frame"], int)
        and is_number(change["frame"], 1, LIMITS["frames"][1] - 1)
        and isinstance(change["prompt"], str)
        and len(change["prompt"]) <= MAX_PROMPT_CHARS
    )


def _request_field_ok(name: str, value) -> bool:
    if name in ("prompt", "negative_prompt"):
        return isinstance(value, str) and len(value) <= MAX_PROMPT_CHARS
    if name == "model":
        return isinstance(value, str) and bool(value.strip()) and len(value) <= MAX_PATH_CHARS
    if name in INPUT_PATHS:
        return _optional_text(value)
    if name.endswith("_sha256"):
        return _is_sha256(value)
    if name == "strength":
        return is_number(value, 0.0, 1.0) and value > 0
    if name == "loras":
        return _loras_ok(value)
    if name == "prompt_changes":
        return isinstance(value, list) and len(value) <= MAX_PROMPT_CHANGES and all(map(_prompt_change_ok, value))
    if name in LIMITS:
        try:  # the request's own rules: whole numbers, ranges, even sizes
            GenerationRequest(prompt="-", width=64, height=64).with_changes(**{name: value}).validate()
        except InvalidRequest:
            return False
        return True
    return False


def clean_request_fields(data: dict, where: str) -> tuple[dict, list[str]]:
    """The form's saved request, field by field: good fields kept, bad ones named (unknown names dropped)."""
    known = GenerationRequest.__dataclass_fields__
    kept, bad = {}, []
    for name, value in data.items():
        if name not in known:
            continue
        if _request_field_ok(name, value):
            kept[name] = value
        else:
            bad.append(f"{where}.{name}")
    return kept, bad


def _clean_fields(data, checks: dict, where: str) -> tuple[dict, list[str]]:
    """A dict checked against {name: predicate}; a non-dict is one bad field."""
    if not isinstance(data, dict):
        return {}, [where]
    kept, bad = {}, []
    for name, value in data.items():
        check = checks.get(name)
        if check is None:
            continue
        if check(value):
            kept[name] = value
        else:
            bad.append(f"{where}.{name}")
    return kept, bad


def _is_bool(value) -> bool:
    return isinstance(value, bool)


def _is_hex(value) -> bool:
    return isinstance(value, str) and len(value) <= 65536 and all(c in "0123456789abcdefABCDEF" for c in value)


def _is_folder_list(value) -> bool:
    return isinstance(value, list) and len(value) <= 1000 and all(_optional_text(v) and v for v in value)


FORM_CHECKS = {
    "request": lambda v: isinstance(v, dict),
    "keep_seed": _is_bool,
    "memory": lambda v: v in MEMORY_SETTINGS,
    "int8": _is_bool,
    "onnx_temporal": _is_bool,
    "model_folders": _is_folder_list,
    "lora_rows": lambda v: isinstance(v, list),  # then row by row (clean_lora_rows)
}
EXPORT_CHECKS = {
    "folder": lambda v: isinstance(v, str) and 0 < len(v) <= MAX_PATH_CHARS,
    "format": lambda v: v in FORMATS,
    "quality": lambda v: isinstance(v, int) and is_number(v, 1, 100),
}
WINDOW_CHECKS = {"geometry": _is_hex, "splitter": _is_hex}


def clean_settings(data) -> tuple[dict, list[str]]:
    """settings.json checked field by field: what is usable, and the names of the fields that were not. Names
    the studio does not use are kept as they are, for the version that wrote them."""
    if not isinstance(data, dict):
        return {}, ["settings"]
    clean, bad = {k: v for k, v in data.items() if k not in ("form", "export", "window")}, []
    for name, checks in (("form", FORM_CHECKS), ("export", EXPORT_CHECKS), ("window", WINDOW_CHECKS)):
        if name not in data:
            continue
        kept, wrong = _clean_fields(data[name], checks, name)
        clean[name], bad = kept, bad + wrong
    request = clean.get("form", {}).get("request")
    if request is not None:
        clean["form"]["request"], wrong = clean_request_fields(request, "form.request")
        bad += wrong
    rows = clean.get("form", {}).get("lora_rows")
    if rows is not None:
        clean["form"]["lora_rows"], wrong = clean_lora_rows(rows, "form.lora_rows")
        bad += wrong
    return clean, bad


def clean_lora_rows(rows: list, where: str) -> tuple[list, list[str]]:
    """The form's saved LoRA list: good rows kept in order (at most MAX_LORAS, each source once), bad ones named."""
    kept: list[dict] = []
    bad = []
    for index, row in enumerate(rows):
        if lora_row_ok(row) and len(kept) < MAX_LORAS and row["source"] not in {r["source"] for r in kept}:
            kept.append(row)
        else:
            bad.append(f"{where}[{index}]")
    return kept, bad
