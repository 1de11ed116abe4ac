"""How many CPU threads a run uses, and how idle threads wait.

torch and onnxruntime start one busy thread per logical CPU by default, and OpenMP threads spin while they
wait for work. Two Kinemo runs at once (a batch, a second window) or a busy machine then fight over the same
cores and each runs several times slower than half speed. Kinemo's policy: one thread per physical core this
process may use, and threads that sleep when idle (OMP_WAIT_POLICY=PASSIVE). KINEMO_THREADS overrides the
count. The policy is applied once, before torch starts its thread pools (OpenMP reads its wait policy then).
"""

from __future__ import annotations

import os
from pathlib import Path

THREADS_ENV = "KINEMO_THREADS"
_applied: list[int] = []


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (hyper-threads share a core's arithmetic)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return max(1, (os.cpu_count() or 2) // 2)
    cores = set()
    for cpu in cpus:
        siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        try:
            cores.add(siblings.read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


def thread_count() -> int:
    """KINEMO_THREADS when it is a positive whole number, else one thread per physical core."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return physical_cores()


def passive_waiting() -> None:
    """Idle OpenMP threads sleep instead of spinning. OpenMP reads this when torch is first imported, so every
    entry to the engine calls it before torch can be imported (no torch here)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def apply_thread_policy() -> int:
    """Set the policy for this process (once) and return the thread count."""
    if _applied:
        return _applied[0]
    count = thread_count()
    passive_waiting()
    import torch

    torch.set_num_threads(count)
    try:
        torch.set_num_interop_threads(1)  # Kinemo runs one graph at a time; more threads only spin
    except RuntimeError:  # inter-op work already started in this process: its pool stays as it is
        pass
    _applied.append(count)
    return count
