"""The plan: the policy a run uses, its estimate against what is free, and the one line that says so."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from engine.planning.bundled_estimate import estimate_bundled
from engine.planning.estimate import (
    Estimate,
    Shape,
    estimate_diffusers,
    supports_fp8,
    supports_tiling,
)
from engine.planning.headers import Component
from engine.planning.policies import BY_NAME, Policy, check_mode, ladder, mode_policy
from engine.planning.system import free_ram, free_vram, process_rss

GB = 2**30
MB = 2**20
MARGIN = 0.20  # a policy fits when its need x (1 + MARGIN) + MARGIN_BYTES is at most what is free
MARGIN_BYTES = 256 * MB


def gb(n: int | None) -> str:
    """Bytes for a message: "3.1 GB", or "586 MB" below a gigabyte."""
    return "?" if n is None else f"{n / GB:.1f} GB" if n >= 0.995 * GB else f"{n / MB:.0f} MB"


@dataclass(frozen=True)
class MemoryPlan:
    mode: str
    policy: Policy
    estimate: Estimate
    device: str
    free_vram: int | None
    free_ram: int | None
    fits: bool
    policies: tuple[Policy, ...] = ()  # the ladder here, lightest first (the retry takes the next one)
    notes: tuple[str, ...] = ()

    @property
    def accelerator(self) -> bool:
        return self.device.startswith("cuda")

    def next_policy(self, after: Policy | None = None) -> Policy | None:
        """The next heavier policy than after (default: the chosen one), for a retry after running out of memory."""
        names = [p.name for p in self.policies]
        after = after or self.policy
        index = names.index(after.name) if after.name in names else len(names)
        return self.policies[index + 1] if index + 1 < len(self.policies) else None

    def text(self) -> str:
        """One line: "memory: about 3.1 GB VRAM + 5.2 GB RAM with model offload (free: ...)"."""
        e = self.estimate
        if self.accelerator:
            need = f"about {gb(e.vram)} VRAM + {gb(e.ram)} RAM"
            free = f"free: {gb(self.free_vram)} VRAM, {gb(self.free_ram)} RAM"
        else:
            need = f"about {gb(e.ram)} RAM on the {self.device.upper() if self.device == 'mps' else 'CPU'}"
            free = f"free: {gb(self.free_ram)} RAM"
        how = self.policy.label if self.policy.name != "none" or self.accelerator else "no VAE slicing/tiling"
        line = f"memory: {need}{f' with {how}' if self.policy.label else ''} ({free}; --memory {self.mode})"
        if not self.fits:
            line += "; it may not fit"
        return "; ".join([line, *self.notes])


def _fits(estimate: Estimate, accelerator: bool, vram: int | None, ram: int | None) -> bool:
    def ok(need: int, free: int | None) -> bool:
        return free is None or need * (1 + MARGIN) + MARGIN_BYTES <= free

    if accelerator:
        return ok(estimate.vram, vram) and ok(estimate.extra_ram, ram)
    return ok(estimate.extra_ram, ram)


def choose(mode: str, policies: list[Policy], estimate_for, accelerator: bool, vram: int | None, ram: int | None):
    """(policy, estimate, fits): the mode's policy, or for auto the lightest that fits (else the heaviest)."""
    fixed = mode_policy(check_mode(mode), policies)
    if fixed is not None:
        e = estimate_for(fixed)
        return fixed, e, _fits(e, accelerator, vram, ram)
    for policy in policies:
        e = estimate_for(policy)
        if _fits(e, accelerator, vram, ram):
            return policy, e, True
    return policies[-1], estimate_for(policies[-1]), False


def plan_diffusers(
    components: dict[str, Component],
    shape: Shape,
    mode: str = "auto",
    device: str = "cpu",
    baseline: int | None = None,
    vram: int | None = None,
    ram: int | None = None,
    dtype_bytes: int | None = None,
) -> MemoryPlan:
    """Choose a policy for a diffusers pipeline. vram/ram: free bytes (None: read them now)."""
    accelerator = device.startswith("cuda")
    baseline = process_rss() if baseline is None else baseline
    ram = free_ram() if ram is None else ram
    if accelerator and vram is None:
        vram = free_vram(device)
    fp8, tiling = supports_fp8(components), supports_tiling(components)
    policies = ladder(accelerator, fp8, tiling)
    policy, estimate, fits = choose(
        mode,
        policies,
        lambda p: estimate_diffusers(components, shape, p, accelerator, baseline, dtype_bytes),
        accelerator,
        vram,
        ram,
    )
    notes = []
    if not accelerator:
        notes.append(
            "offloading needs a GPU, so on the CPU only VAE slicing/tiling applies"
            if tiling
            else "offloading needs a GPU and this VAE has no tiling, so nothing changes the memory on the CPU"
        )
    elif policy.name == "sequential_offload" and not fp8:
        notes.append("this model's denoiser cannot store its weights in fp8")
    return MemoryPlan(mode, policy, estimate, device, vram, ram, fits, tuple(policies), tuple(notes))


def plan_bundled(
    folder: str | Path,
    shape: Shape,
    mode: str = "auto",
    device: str = "cpu",
    baseline: int | None = None,
    ram: int | None = None,
    vram: int | None = None,
    libraries: int = 0,
    render: int = 0,
) -> MemoryPlan:
    """The bundled model has one way to run: the plan is its estimate against what is free. libraries: the
    RSS the run's switches will import (engine.planning.bundled_estimate.accel_bytes)."""
    check_mode(mode)
    accelerator = device.startswith("cuda")
    baseline = process_rss() if baseline is None else baseline
    ram = free_ram() if ram is None else ram
    if accelerator and vram is None:
        vram = free_vram(device)
    estimate = estimate_bundled(folder, shape, baseline, accelerator, libraries, render)
    policy = replace(BY_NAME["none"], label="")  # one way to run: nothing to name
    notes = (
        ("the bundled model is small: it runs the same whatever --memory says",) if mode not in ("auto", "high") else ()
    )
    return MemoryPlan(
        mode, policy, estimate, device, vram, ram, _fits(estimate, accelerator, vram, ram), (policy,), notes
    )
