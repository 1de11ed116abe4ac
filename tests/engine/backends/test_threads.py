"""The thread policy: one thread per physical core, KINEMO_THREADS to override, idle threads that soon sleep."""

import os
import subprocess
import sys

from engine.backends.threads import physical_cores, thread_count


def test_kinemo_threads_overrides_and_nonsense_is_ignored(monkeypatch):
    monkeypatch.setenv("KINEMO_THREADS", "3")
    assert thread_count() == 3
    for value in ("0", "-2", "many", ""):
        monkeypatch.setenv("KINEMO_THREADS", value)
        assert thread_count() == physical_cores() >= 1


def test_a_generation_runs_with_the_policy():
    code = (
        "from engine.backends.base import open_backend\n"
        "from engine.api.request import GenerationRequest\n"
        "r = GenerationRequest('a red circle', steps=1, frames=2)\n"
        "list(open_backend('kinemo-starter').generate(r))\n"
        "import os, torch; print(torch.get_num_threads(), torch.get_num_interop_threads(), os.environ['GOMP_SPINCOUNT'])"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    env["KINEMO_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1", "500"]
