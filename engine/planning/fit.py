"""Whether a model can run on this machine, and how, from what its catalog entry says it needs and what the
machine has (total RAM, a CUDA GPU's total memory): the studio's picker greys out what cannot run and says why.

Pure Python: the studio process asks this before torch is imported (nvidia-smi tells the GPU's memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.planning.system import nvidia_smi
from engine.registry.model_options import ModelOptions

GB = 2**30


@dataclass(frozen=True)
class Machine:
    ram: int | None  # bytes of RAM in all
    vram: int | None  # bytes of the first CUDA GPU's memory; None without one
    gpu: str | None = None  # its name

    def describe(self) -> str:
        ram = f"{self.ram / GB:.0f} GB RAM" if self.ram else "RAM unknown"
        gpu = f"{self.gpu or 'GPU'} with {self.vram / GB:.0f} GB" if self.vram else "no CUDA GPU"
        return f"this machine: {ram}, {gpu}"


@dataclass(frozen=True)
class Fit:
    runs: bool  # False: the picker greys the model out
    note: str  # a few words for the picker's line ("" for nothing to say)
    reason: str  # the sentence for its tooltip


def this_machine() -> Machine:
    """Total RAM (/proc/meminfo) and the first CUDA GPU (nvidia-smi), without importing torch."""
    ram = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    found = nvidia_smi("name", "memory.total")
    try:
        gpu, vram = (found[0], int(found[1]) * 2**20) if found else (None, None)
    except ValueError:
        gpu, vram = None, None
    return Machine(ram, vram, gpu)


def fit(options: ModelOptions, machine: Machine) -> Fit:
    """How options' model runs on machine. Its weights are all read into RAM before anything moves to a GPU
        (engine.planning.estimate), so weights larger than the RAM cannot run whatever the offloading (the download's
    size is all Kinemo knows before it: at 16 bits they take at least half of it); a GPU smaller
        than the model's published need still runs it with offloading, slower; without a GPU it runs on the CPU."""
    if options.family == "kinemo":
        return Fit(True, "", "Kinemo's own model: runs on any CPU, offline")
    if not options.vram_gb:
        return Fit(True, "", "what it needs is known once it runs (the memory plan says it before the run)")
    need = "the model card's figure" if options.vram_published else "Kinemo's estimate from its weights"
    if options.disk_gb and machine.ram and options.disk_gb / 2 * GB > machine.ram:
        return Fit(
            False,
            "too large here",
            f"its weights ({options.disk_gb:g} GB on disk: at least {options.disk_gb / 2:g} GB in memory, loaded at "
            f"16 bits) do not fit in this machine's {machine.ram / GB:.0f} GB of RAM",
        )
    if machine.vram is None:
        return Fit(True, "CPU only here", f"no CUDA GPU here: it runs on the CPU, very slowly ({machine.describe()})")
    have = machine.vram / GB
    if options.vram_gb <= have:
        reason = f"needs about {options.vram_gb:g} GB of GPU memory ({need}); this GPU has {have:.0f} GB"
        return Fit(True, f"{options.vram_gb:g}/{have:.0f} GB VRAM", reason)
    return Fit(
        True,
        f"{options.vram_gb:g} GB VRAM: offloads",
        f"needs about {options.vram_gb:g} GB of GPU memory ({need}); this GPU has {have:.0f} GB, so it runs with "
        "offloading (slower)",
    )
