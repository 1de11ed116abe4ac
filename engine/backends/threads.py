"""How many CPU threads a run uses, and how idle threads wait.

torch and onnxruntime start one busy thread per logical CPU by default, and OpenMP threads spin while they
wait for work (libgomp: 300,000 rounds). Two Kinemo runs at once (a batch, a second window) or a busy machine
then fight over the same cores: measured on 2 cores (bench/bench_threads.py, three runs), each of two runs took
4.1-5.0x as long as one alone. Kinemo's policy: one thread per physical core this process may use, and idle
threads that spin only briefly before they sleep (GOMP_SPINCOUNT=500): two at once then take 1.6-1.8x one
alone, and one alone keeps most of the spinning's speed (sleeping at once, OMP_WAIT_POLICY=PASSIVE, is about
as fair, 1.5-1.7x, and was 0-10 % slower alone). KINEMO_THREADS overrides the count; OMP_WAIT_POLICY or
GOMP_SPINCOUNT set by the user win.
The policy is applied before torch is imported (OpenMP reads its settings then).
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


SPIN_COUNT = "500"  # rounds an idle OpenMP thread spins before it sleeps (libgomp; measured, see above)


def idle_threads_sleep() -> None:
    """Idle OpenMP threads spin briefly, then sleep. OpenMP reads this when torch is first imported, so every
    entry to the engine calls it before torch can be imported (no torch here)."""
    if "OMP_WAIT_POLICY" not in os.environ:  # libgomp lets GOMP_SPINCOUNT override the user's wait policy
        os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)


def apply_thread_policy() -> int:
    """Set the policy for this process (once) and return the thread count."""
    if _applied:
        return _applied[0]
    count = thread_count()
    idle_threads_sleep()
    import torch

    torch.set_num_threads(count)
    try:
        torch.set_num_interop_threads(1)  # Kinemo runs one graph at a time; more threads only spin
    except RuntimeError:  # inter-op work already started in this process: its pool stays as it is
        pass
    _applied.append(count)
    return count
