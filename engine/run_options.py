"""How a request runs, as opposed to what it makes: the memory policy and the fast-path switches.

Sent next to the request (the studio sends both to its engine process; the CLI builds it from its
flags). Pure Python: no torch, no Qt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from engine.errors import InvalidRequest
from engine.memory_plan import MODES as MEMORY_MODES  # both modules are torch-free at import
from engine.quantize import QUANTIZE_CHOICES


@dataclass(frozen=True)
class RunOptions:
    memory: str = "auto"  # engine.memory_plan: how a diffusers model trades speed for memory
    quantize: str | None = None  # "int8": the denoiser's weights in int8 (engine.quantize)
    onnx_temporal: bool = False  # temporal attention in onnxruntime (engine.onnx_temporal)

    def validate(self) -> RunOptions:
        if self.memory not in MEMORY_MODES:
            raise InvalidRequest(f"unknown memory setting {self.memory!r}; choose one of {', '.join(MEMORY_MODES)}")
        if self.quantize is not None and self.quantize not in QUANTIZE_CHOICES:
            raise InvalidRequest(f"unknown quantisation {self.quantize!r}; choose one of {', '.join(QUANTIZE_CHOICES)}")
        if not isinstance(self.onnx_temporal, bool):
            raise InvalidRequest(f"onnx_temporal must be true or false, got {self.onnx_temporal!r}")
        return self

    @property
    def backend_key(self) -> tuple:
        """What a loaded backend depends on besides the model (the memory policy is chosen per run)."""
        return (self.quantize, self.onnx_temporal)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunOptions:
        if not isinstance(data, dict):
            raise InvalidRequest("run options must be a JSON object")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise InvalidRequest(f"unknown run options: {', '.join(unknown)}")
        return cls(**data).validate()
