"""The one serialisable object that crosses from the studio or the CLI into the engine.

It holds everything that decides the output and nothing else; the same JSON is embedded in
every exported file so a clip can be re-created. Pure Python: no torch, no Qt.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, fields, replace

from engine.api.errors import InvalidRequest

DEFAULT_MODEL = "kinemo-starter"
SCHEMA = "kinemo.request/1"

LIMITS = {
    "frames": (1, 1024),  # each backend narrows this to what its model can make
    "fps": (1, 60),
    "width": (32, 2048),
    "height": (32, 2048),
    "steps": (1, 200),
    "guidance": (0.0, 30.0),
    "seed": (0, 2**32 - 1),
    "eta": (0.0, 1.0),
}
MAX_PROMPT_CHARS = 2000


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    negative_prompt: str = ""
    model: str = DEFAULT_MODEL
    image: str | None = None  # path of the first-frame picture (image-to-video)
    image_sha256: str | None = None  # fingerprint of that picture, filled in when it is read
    frames: int = 16
    fps: int = 8
    width: int = 256
    height: int = 256
    steps: int = 25
    guidance: float = 1.0  # classifier-free guidance scale; 1 = none (measured best for the starter model)
    seed: int = 0
    eta: float = 0.0

    def validate(self) -> GenerationRequest:
        """Raise InvalidRequest naming the first bad field; return self when all is well."""
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise InvalidRequest(
                "the prompt is empty: describe the clip, e.g. 'a red circle moves right on a black background'"
            )
        for name in ("prompt", "negative_prompt"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise InvalidRequest(f"{name} must be text, got {type(value).__name__}")
            if len(value) > MAX_PROMPT_CHARS:
                raise InvalidRequest(f"{name} is {len(value)} characters long; the limit is {MAX_PROMPT_CHARS}")
        if not isinstance(self.model, str) or not self.model.strip():
            raise InvalidRequest("the model name is empty")
        if self.image is not None and (not isinstance(self.image, str) or not self.image.strip()):
            raise InvalidRequest(f"image must be the path of a picture, got {str(self.image)[:60]!r}")
        if self.image_sha256 is not None and not (
            isinstance(self.image_sha256, str) and re.fullmatch(r"[0-9a-f]{64}", self.image_sha256)
        ):
            raise InvalidRequest("image_sha256 must be 64 hexadecimal digits (the picture's SHA-256)")
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            is_int_field = isinstance(low, int)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or (is_int_field and not isinstance(value, int))
            ):
                raise InvalidRequest(
                    f"{name} must be {'a whole number' if is_int_field else 'a number'}, got {value!r}"
                )
            if not math.isfinite(value) or not low <= value <= high:
                raise InvalidRequest(f"{name} must be between {low} and {high}, got {value}")
        for name in ("width", "height"):
            if getattr(self, name) % 2:
                raise InvalidRequest(f"{name} must be even (video encoders need it), got {getattr(self, name)}")
        return self

    def with_changes(self, **changes) -> GenerationRequest:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, **asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> GenerationRequest:
        if not isinstance(data, dict):
            raise InvalidRequest("a request must be a JSON object")
        data = dict(data)
        schema = data.pop("schema", SCHEMA)
        if schema != SCHEMA:
            raise InvalidRequest(f"unsupported request schema {schema!r}; expected {SCHEMA!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidRequest(f"unknown request fields: {', '.join(unknown)}")
        if "prompt" not in data:
            raise InvalidRequest("the request has no prompt")
        return cls(**data).validate()

    @classmethod
    def from_json(cls, text: str) -> GenerationRequest:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f"the request is not valid JSON: {exc}") from exc
        return cls.from_dict(data)
