"""What is free: this process's resident memory, the machine's available RAM, a CUDA device's free memory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from engine.planning.estimate import TYPICAL_BASELINE

MB = 2**20


def process_rss() -> int:
    """Resident bytes of this process now."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        pass
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return TYPICAL_BASELINE


def free_ram() -> int | None:
    """Bytes of RAM available to a new allocation without swapping (MemAvailable)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def free_vram(device: str) -> int | None:
    """Free bytes on a CUDA device, counting what this process's torch holds in its cache as free."""
    if not device.startswith("cuda"):
        return None
    import torch

    index = torch.device(device).index
    index = torch.cuda.current_device() if index is None else index
    free, _ = torch.cuda.mem_get_info(index)
    return int(free + torch.cuda.memory_reserved(index))


def gpu_without_torch() -> tuple[str, int] | None:
    """("cuda", free bytes of GPU 0) from nvidia-smi, for a process that must not import torch (the studio)."""
    if "torch" in sys.modules:
        import torch

        free = free_vram("cuda") if torch.cuda.is_available() else None
        return None if free is None else ("cuda", free)
    line = nvidia_smi("memory.free")
    try:
        return None if line is None else ("cuda", int(line[0]) * MB)
    except ValueError:
        return None


def nvidia_smi(*fields: str) -> list[str] | None:
    """The first GPU's values of nvidia-smi's query fields (memory in MiB), or None without nvidia-smi or a GPU."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(
            [smi, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    values = [v.strip() for v in out.splitlines()[0].rsplit(",", len(fields) - 1)] if out.strip() else []
    return values if len(values) == len(fields) else None
