"""Memory policies, lightest (fastest) first; each saves more memory than the one before:

    none                everything on the device, the VAE decodes whole chunks
    vae_tiling          + the VAE decodes frame by frame (slicing) and tile by tile (tiling)
    model_offload       + each model (text encoder, denoiser, VAE) is on the GPU only while it runs
    group_offload       + the denoiser's blocks, one at a time, the rest leaf by leaf (diffusers group offloading)
    sequential_offload  + every layer is on the GPU only while it runs; the denoiser's weights are stored
                          in fp8 (diffusers layerwise casting) where its class supports it

`--memory high` runs `none`, `low` runs `model_offload`, `minimal` runs `sequential_offload` and `auto`
the lightest that fits the free memory with a margin (engine.planning.plan.MARGIN). Offloading moves weights
between the GPU and the CPU, so on the CPU (and on Apple MPS, whose memory is the RAM) only `none` and
`vae_tiling` exist: there `low` and `minimal` both mean VAE slicing and tiling.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.api.errors import InvalidRequest
from engine.api.run_options import MEMORY_MODES as MODES


@dataclass(frozen=True)
class Policy:
    name: str
    label: str  # for messages: "with <label>"
    placement: str  # "device", "model", "group" or "sequential"
    vae_tiling: bool
    fp8: bool = False  # store the denoiser's weights in fp8 where its class supports it

    @property
    def offloads(self) -> bool:
        return self.placement != "device"


POLICIES: tuple[Policy, ...] = (
    Policy("none", "no offloading", "device", False),
    Policy("vae_tiling", "VAE slicing and tiling", "device", True),
    Policy("model_offload", "model offload + VAE tiling", "model", True),
    Policy("group_offload", "group offload + VAE tiling", "group", True),
    Policy("sequential_offload", "sequential offload + VAE tiling + fp8 weights", "sequential", True, fp8=True),
)
BY_NAME = {p.name: p for p in POLICIES}
MODE_POLICY = {"high": "none", "low": "model_offload", "minimal": "sequential_offload"}
MODE_HELP = {
    "auto": "the lightest policy that fits the free memory",
    "high": "everything on the GPU (fastest, most memory)",
    "low": "model offload + VAE slicing/tiling",
    "minimal": "sequential offload + VAE slicing/tiling + fp8 weights where supported (least memory, slowest)",
}


def check_mode(mode: str) -> str:

    if mode not in MODES:
        raise InvalidRequest(f"unknown memory setting {mode!r}; choose one of {', '.join(MODES)}")
    return mode


def ladder(accelerator: bool, fp8: bool = True, tiling: bool = True) -> list[Policy]:
    """The policies that make sense here, lightest first: offloading needs a GPU, fp8 storage a GPU and a
    denoiser that supports it, tiling a VAE that has it; a policy that would change nothing is left out."""
    found: list[Policy] = []
    for policy in POLICIES:
        if policy.offloads and not accelerator:
            continue
        label = policy.label
        if policy.vae_tiling and not tiling:
            label = label.replace(" + VAE tiling", "")
        if policy.fp8 and not (fp8 and accelerator):
            label = label.replace(" + fp8 weights", "")
        policy = replace(
            policy, label=label, vae_tiling=policy.vae_tiling and tiling, fp8=policy.fp8 and fp8 and accelerator
        )
        if any((p.placement, p.vae_tiling, p.fp8) == (policy.placement, policy.vae_tiling, policy.fp8) for p in found):
            continue
        found.append(policy)
    return found


def mode_policy(mode: str, policies: list[Policy]) -> Policy | None:
    """The policy a fixed mode runs, among those that make sense here; None for auto."""
    if mode == "auto":
        return None
    wanted = POLICIES.index(BY_NAME[MODE_POLICY[mode]])
    usable = [p for p in policies if POLICIES.index(BY_NAME[p.name]) <= wanted]
    return usable[-1] if usable else policies[0]
