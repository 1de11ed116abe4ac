"""A request's inputs read and fingerprinted before any work: pictures, the video to re-render, the clip to
extend, and the LoRA files. The CLI and the studio's engine call fingerprinted() at the boundary, so a bad input
is one line before anything loads, and every exported file records the exact bytes that shaped it."""

from __future__ import annotations

from dataclasses import replace

from engine.api.request import GenerationRequest
from engine.util.files import file_sha256


def fingerprinted(request: GenerationRequest, token: str | None = None) -> GenerationRequest:
    """The request with the SHA-256 of every input it reads (a LoRA named by hub id is downloaded once here);
    ImageError, VideoError or LoraError with one line when an input is unusable."""
    from engine.util.images import load_image
    from engine.util.videos import load_video

    changes: dict = {}
    for name in ("image", "last_image"):
        path = getattr(request, name)
        if path:
            load_image(path)  # unusable pictures are refused here, before any work
            changes[f"{name}_sha256"] = file_sha256(path)
    for name in ("video", "extends"):
        path = getattr(request, name)
        if path:
            load_video(path)
            changes[f"{name}_sha256"] = _clip_sha256(path)
    if request.loras:
        changes["loras"] = tuple(_with_sha256(lora, token) for lora in request.loras)
    return replace(request, **changes).validate()


def _clip_sha256(path) -> str:
    """A clip file's SHA-256; a folder of PNG frames is fingerprinted frame file by frame file, in order."""
    import hashlib
    from pathlib import Path

    path = Path(path).expanduser()
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for frame in sorted(path.glob("*.png")):
        digest.update(bytes.fromhex(file_sha256(frame)))
    return digest.hexdigest()


def _with_sha256(lora, token):
    from engine.registry.loras import lora_file

    return replace(lora, sha256=file_sha256(lora_file(lora, token)))
