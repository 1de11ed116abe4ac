"""The one serialisable object that crosses from the studio or the CLI into the engine.

It holds everything that decides the output and nothing else; the same JSON is embedded in
every exported file so a clip can be re-created. Pure Python: no torch, no Qt.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace

from engine.api.controls import MAX_LORAS, MAX_PROMPT_CHANGES, LoraWeight, PromptChange, is_sha256
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
    last_image: str | None = None  # path of the last-frame picture: the clip ends on it (needs image)
    last_image_sha256: str | None = None
    video: str | None = None  # path of a clip to re-render (video-to-video), as much as strength says
    video_sha256: str | None = None
    strength: float = 0.8  # video-to-video: 1 re-renders from pure noise, near 0 keeps the clip as it is
    extends: str | None = None  # path of a clip this request continues: the output is that clip, then frames more
    extends_sha256: str | None = None
    loras: tuple[LoraWeight, ...] = ()  # LoRA weights applied to the denoiser, in order
    prompt_changes: tuple[PromptChange, ...] = ()  # from a frame on, another prompt

    def __post_init__(self):
        # JSON and the studio hand these over as lists of dicts; the request always holds typed tuples
        if not isinstance(self.loras, tuple) or not all(isinstance(x, LoraWeight) for x in self.loras):
            object.__setattr__(self, "loras", tuple(LoraWeight.from_value(x) for x in _as_list("loras", self.loras)))
        changes = self.prompt_changes
        if not isinstance(changes, tuple) or not all(isinstance(x, PromptChange) for x in changes):
            changes = tuple(PromptChange.from_value(x) for x in _as_list("prompt_changes", changes))
            object.__setattr__(self, "prompt_changes", changes)

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
        self._validate_inputs()
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
        self._validate_controls()
        return self

    def _validate_inputs(self) -> None:
        """The pictures and clips the request reads: paths with fingerprints, in combinations that make sense."""
        for name, what in (("image", "picture"), ("last_image", "picture"), ("video", "video"), ("extends", "clip")):
            path = getattr(self, name)
            if path is not None and (not isinstance(path, str) or not path.strip()):
                raise InvalidRequest(f"{name} must be the path of a {what}, got {str(path)[:60]!r}")
            digest = getattr(self, f"{name}_sha256")
            if digest is not None and not is_sha256(digest):
                raise InvalidRequest(f"{name}_sha256 must be 64 hexadecimal digits (the {what}'s SHA-256)")
        if self.last_image is not None and self.image is None:
            raise InvalidRequest("a last frame needs a first one: add --image next to --last-image")
        given = [
            flag for flag, on in (("--image", self.image), ("--video", self.video), ("extend", self.extends)) if on
        ]
        if len(given) > 1:
            raise InvalidRequest(f"{' and '.join(given)} do not combine: each one says what the clip starts from")
        strength = self.strength
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 < strength <= 1:
            raise InvalidRequest(f"strength must be above 0 and at most 1, got {strength!r}")

    def _validate_controls(self) -> None:
        if len(self.loras) > MAX_LORAS:
            raise InvalidRequest(f"at most {MAX_LORAS} LoRAs at once, got {len(self.loras)}")
        sources = [lora.validate().source for lora in self.loras]
        if len(set(sources)) != len(sources):
            raise InvalidRequest("the same LoRA is listed twice; give it once with the scale you want")
        if len(self.prompt_changes) > MAX_PROMPT_CHANGES:
            raise InvalidRequest(f"at most {MAX_PROMPT_CHANGES} prompt changes, got {len(self.prompt_changes)}")
        frames = [change.validate(self.frames, MAX_PROMPT_CHARS).frame for change in self.prompt_changes]
        if len(set(frames)) != len(frames):
            raise InvalidRequest("two prompt changes at the same frame; give one prompt per frame")

    def with_changes(self, **changes) -> GenerationRequest:
        return replace(self, **changes)

    def continuation(self, clip: str, frames: int) -> GenerationRequest:
        """The request that continues clip (made by this request) by frames new frames: the prompt in effect at
        the clip's end, the same model, seed, size and LoRAs, and nothing else to start from (the clip is it)."""
        ending = max(self.prompt_changes, key=lambda c: c.frame).prompt if self.prompt_changes else self.prompt
        return replace(
            self,
            prompt=ending,
            prompt_changes=(),
            image=None,
            image_sha256=None,
            last_image=None,
            last_image_sha256=None,
            video=None,
            video_sha256=None,
            extends=clip,
            extends_sha256=None,
            frames=frames,
        )

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


def _as_list(name: str, value) -> list:
    if not isinstance(value, (list, tuple)):
        raise InvalidRequest(f"{name} must be a list, got {type(value).__name__}")
    return list(value)
