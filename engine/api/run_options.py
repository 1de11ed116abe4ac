"""How a request runs, as opposed to what it makes: device, memory policy, precision and the fast-path switches.

One RunOptions travels from the CLI's flags or the studio's switches to the backend (the studio sends it to its
engine process next to the request). A new way of running is a field here, validated here, applied in the
backend. Pure Python: no torch, no Qt.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields

from engine.api.errors import InvalidRequest

MEMORY_MODES = ("auto", "high", "low", "minimal")  # engine.planning.policies maps each to a policy
QUANTIZE_CHOICES = ("int8",)  # engine.accel.quantize: the denoiser's weights in int8
# step caches: skip denoiser work that barely changes between steps (diffusers' cache hooks; the bundled model's own)
CACHE_CHOICES = ("off", "auto", "first-block", "mag", "taylorseer", "faster", "pab")
ATTENTION_CHOICES = ("auto", "sdpa", "flash", "sage", "native")  # diffusers' attention backends (auto: SDPA)
DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class RunOptions:
    device: str = "auto"  # auto (CUDA, then Apple MPS, then CPU), cuda, cuda:N, mps or cpu
    memory: str = "auto"  # how a diffusers model trades speed for memory (engine.planning)
    quantize: str | None = None  # "int8": the denoiser's weights in int8 (engine.accel.quantize)
    onnx_temporal: bool = False  # temporal attention in onnxruntime (engine.accel.onnx_temporal)
    onnx_denoiser: bool = False  # the bundled model's whole denoiser step in onnxruntime (engine.accel.onnx_denoiser)
    kv_cache: bool = True  # reuse the conditioning's attention keys/values across steps and frames (exact)
    token: str | None = None  # Hugging Face token for gated models; never written into a clip
    cache: str = "off"  # a step cache (CACHE_CHOICES); "auto" takes each family's measured default
    attention: str = "auto"  # the attention backend on CUDA (ATTENTION_CHOICES)
    compile: bool = False  # regional torch.compile of the denoiser's repeated blocks
    # a folder where the backend keeps this run's resumable state (engine.backends.checkpoints): a long clip
    # checkpoints there as it goes and a run with the same request continues from it; None: no checkpoints.
    # Per run, like cache: backend_key leaves it out and for_run carries it to a kept backend.
    checkpoint_dir: str | None = None

    def validate(self) -> RunOptions:
        if not isinstance(self.device, str) or not DEVICE.match(self.device.lower()):
            raise InvalidRequest(f"unknown device {self.device!r}; choose one of auto, cuda, mps, cpu (or cuda:N)")
        if self.memory not in MEMORY_MODES:
            raise InvalidRequest(f"unknown memory setting {self.memory!r}; choose one of {', '.join(MEMORY_MODES)}")
        if self.quantize is not None and self.quantize not in QUANTIZE_CHOICES:
            raise InvalidRequest(f"unknown quantisation {self.quantize!r}; choose one of {', '.join(QUANTIZE_CHOICES)}")
        if self.cache not in CACHE_CHOICES:
            raise InvalidRequest(f"unknown step cache {self.cache!r}; choose one of {', '.join(CACHE_CHOICES)}")
        if self.attention not in ATTENTION_CHOICES:
            raise InvalidRequest(
                f"unknown attention backend {self.attention!r}; choose one of {', '.join(ATTENTION_CHOICES)}"
            )
        for name in ("onnx_temporal", "onnx_denoiser", "kv_cache", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidRequest(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.onnx_temporal and self.onnx_denoiser:
            raise InvalidRequest("--onnx already runs the temporal attention in onnxruntime; drop --onnx-temporal")
        if self.token is not None and not isinstance(self.token, str):
            raise InvalidRequest("the hub token must be text")
        if self.checkpoint_dir is not None and (not isinstance(self.checkpoint_dir, str) or not self.checkpoint_dir):
            raise InvalidRequest(f"checkpoint_dir must be a folder path, got {self.checkpoint_dir!r}")
        return self

    @property
    def uses_onnx(self) -> bool:
        """Whether part of the model runs in onnxruntime (either ONNX switch)."""
        return self.onnx_temporal or self.onnx_denoiser

    @property
    def backend_key(self) -> tuple:
        """What a loaded backend depends on besides the model (the memory policy is chosen per run)."""
        return (
            self.device,
            self.quantize,
            self.onnx_temporal,
            self.onnx_denoiser,
            self.kv_cache,
            self.token,
            self.attention,
            self.compile,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunOptions:
        if not isinstance(data, dict):
            raise InvalidRequest("run options must be a JSON object")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise InvalidRequest(f"unknown run options: {', '.join(unknown)}")
        return cls(**data).validate()
