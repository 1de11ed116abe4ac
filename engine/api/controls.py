"""The creative controls a request can carry beyond a prompt and a first picture: LoRA weights, prompts that
change along the clip, and the rules their values follow. Pure Python: no torch, no Qt.

A LoRA is named by what the user gave (a file path or a hub id with an optional file), fingerprinted by the
SHA-256 of the safetensors file that was read, and scaled; the same three travel in every exported file, so a
clip says exactly which weights shaped it.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

from engine.api.errors import InvalidRequest

LORA_SCALE = (-4.0, 4.0)  # past +-4 a LoRA swamps the model it adapts; nobody asks for that on purpose
MAX_LORAS = 8
MAX_PROMPT_CHANGES = 32
PICKLED_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
SHA256 = re.compile(r"[0-9a-f]{64}")


def is_sha256(value) -> bool:
    return isinstance(value, str) and SHA256.fullmatch(value) is not None


@dataclass(frozen=True)
class LoraWeight:
    """One LoRA applied to the denoiser: where it comes from, how strongly, and the file's fingerprint."""

    source: str  # a .safetensors path, or a hub id "owner/name" with an optional "/file.safetensors"
    scale: float = 1.0
    sha256: str | None = None  # filled in when the file is read

    @property
    def name(self) -> str:
        """A short name for menus and adapter names: the file's stem, or the hub repository's name."""
        parts = self.source.replace("\\", "/").rstrip("/").split("/")
        stem = parts[-1].removesuffix(".safetensors")
        if stem == "pytorch_lora_weights" and len(parts) > 1:  # diffusers' file name: its folder names it
            stem = parts[-2]
        return stem or self.source

    def validate(self) -> LoraWeight:
        if not isinstance(self.source, str) or not self.source.strip():
            raise InvalidRequest("a LoRA needs a file path or a hub id")
        if self.source.lower().endswith(PICKLED_SUFFIXES):
            raise InvalidRequest(
                f"LoRA {self.source}: pickled weights ({self.source.rsplit('.', 1)[-1]}) can run code when read; "
                "Kinemo loads LoRAs from .safetensors files only"
            )
        scale = self.scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
            raise InvalidRequest(f"LoRA {self.name}: the scale must be a number, got {scale!r}")
        if not LORA_SCALE[0] <= scale <= LORA_SCALE[1]:
            raise InvalidRequest(f"LoRA {self.name}: the scale must be between {LORA_SCALE[0]:g} and {LORA_SCALE[1]:g}")
        if self.sha256 is not None and not is_sha256(self.sha256):
            raise InvalidRequest(f"LoRA {self.name}: sha256 must be 64 hexadecimal digits")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def parse(cls, text: str) -> LoraWeight:
        """'PATH_OR_HUB_ID[:SCALE]' as the CLI takes it; a Windows drive letter is not read as a scale."""
        source, scale = text, 1.0
        head, sep, tail = text.rpartition(":")
        if sep and head and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)", tail.strip()):
            source, scale = head, float(tail)
        return cls(source.strip(), scale).validate()

    @classmethod
    def from_value(cls, value) -> LoraWeight:
        """A LoraWeight from a request's JSON (a dict) or itself."""
        if isinstance(value, cls):
            return value.validate()
        if not isinstance(value, dict) or set(value) - {"source", "scale", "sha256"} or "source" not in value:
            raise InvalidRequest('a LoRA must be {"source": ..., "scale": ..., "sha256": ...}')
        return cls(**value).validate()


@dataclass(frozen=True)
class PromptChange:
    """From frame `frame` on, the clip follows `prompt` (frame 0 follows the request's own prompt)."""

    frame: int
    prompt: str

    def validate(self, frames: int, max_chars: int) -> PromptChange:
        if isinstance(self.frame, bool) or not isinstance(self.frame, int):
            raise InvalidRequest(f"a prompt change's frame must be a whole number, got {self.frame!r}")
        if not 1 <= self.frame < frames:
            raise InvalidRequest(
                f"a prompt change at frame {self.frame} is outside the clip: it has frames 0..{frames - 1}, "
                "and frame 0 takes the main prompt"
            )
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise InvalidRequest(f"the prompt change at frame {self.frame} is empty")
        if len(self.prompt) > max_chars:
            raise InvalidRequest(f"the prompt at frame {self.frame} is longer than {max_chars} characters")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def parse(cls, text: str) -> PromptChange:
        """'FRAME:TEXT' as the CLI takes it."""
        head, sep, tail = text.partition(":")
        if not sep or not head.strip().isdigit():
            raise InvalidRequest(f"--prompt-at takes FRAME:TEXT (e.g. 24:'the sun sets'), got {text[:60]!r}")
        return cls(int(head), tail.strip())

    @classmethod
    def from_value(cls, value) -> PromptChange:
        if isinstance(value, cls):
            return value
        if isinstance(value, dict) and set(value) == {"frame", "prompt"}:
            return cls(value["frame"], value["prompt"])
        raise InvalidRequest('a prompt change must be {"frame": N, "prompt": "..."}')


def prompt_segments(prompt: str, changes: tuple[PromptChange, ...], frames: int) -> list[tuple[int, int, str]]:
    """[(first, end, prompt)] covering frames 0..frames-1, in order: the main prompt until the first change."""
    starts = [(0, prompt), *((c.frame, c.prompt) for c in sorted(changes, key=lambda c: c.frame))]
    ends = [s for s, _ in starts[1:]] + [frames]
    return [(start, end, text) for (start, text), end in zip(starts, ends, strict=True)]
