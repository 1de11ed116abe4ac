"""`kinemo batch --ray` on a local Ray runtime at 127.0.0.1 with 2 CPUs, shared by this module's tests: clips equal
to generate's frame for frame, a worker killed mid-job whose job still finishes, and Ray missing said in one line."""

import json
import os
import signal
import threading
import time

import numpy as np
import pytest
from batch_helpers import decode, journal, run, tiny_jobs, write_jobs

from app.cli import main


@pytest.fixture(scope="module")
def ray_runtime():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield ray
    ray.shutdown()


def test_a_ray_batch_equals_generate_frame_for_frame(ray_runtime, tmp_path, capsys, tiny_model):
    jobs = tiny_jobs(tiny_model, 4)
    jobs[2]["format"] = "png"  # a folder of frames travels back too
    out = tmp_path / "out"
    code, _, err = run(capsys, "batch", write_jobs(tmp_path / "jobs.jsonl", jobs), "-o", out, "--ray", "--workers", 2)
    assert code == 0, err
    for job, name in zip(jobs, ["1.mp4", "2.mp4", "3", "4.mp4"]):
        reference = tmp_path / f"generated-{name}"
        argv = (
            "--steps",
            job["steps"],
            "--frames",
            job["frames"],
            "--width",
            32,
            "--height",
            32,
            "--seed",
            job["seed"],
        )
        fmt = ("--format", "png") if name == "3" else ()
        code, _, err = run(capsys, "generate", job["prompt"], *argv, *fmt, "--model", tiny_model, "-o", reference)
        assert code == 0, err
        assert np.array_equal(decode(out / name), decode(reference)), name
        made, wanted = (json.loads(run(capsys, "info", path)[1])["request"] for path in (out / name, reference))
        assert made == wanted, name
    assert all(entry["state"] == "done" for entry in journal(out).values()) and len(journal(out)) == 4
    assert not [n for n in ray_runtime.util.list_named_actors() if n.startswith("kinemo-batch-")], "workers gone"


def test_a_worker_killed_mid_job_has_its_job_finished_by_another(ray_runtime, tmp_path, capsys, tiny_model):
    jobs = write_jobs(tmp_path / "jobs.jsonl", tiny_jobs(tiny_model, 3, steps=6, frames=8))
    out = tmp_path / "out"
    result: dict = {}
    batch = threading.Thread(
        target=lambda: result.update(code=main(["batch", str(jobs), "-o", str(out), "--ray", "--workers", "2"]))
    )
    batch.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and batch.is_alive() and time.monotonic() < deadline:
        for name in ray_runtime.util.list_named_actors():
            if name.startswith(f"kinemo-batch-{os.getpid()}-"):
                try:
                    worker = ray_runtime.get_actor(name)
                    if ray_runtime.get(worker.current.remote(), timeout=5) is not None:
                        killed = ray_runtime.get(worker.pid.remote(), timeout=5)
                        os.kill(killed, signal.SIGKILL)  # mid-job: loading its model or rendering
                        break
                except (ValueError, ray_runtime.exceptions.RayError):
                    pass  # a worker replaced or gone meanwhile
        time.sleep(0.01)
    batch.join(timeout=300)
    _, err = capsys.readouterr()
    assert killed is not None, "no worker was seen at work"
    assert result.get("code") == 0, err
    assert "its worker died; sending it to another" in err
    assert sorted(p.name for p in out.glob("*.mp4")) == ["1.mp4", "2.mp4", "3.mp4"]
    assert all(entry["state"] == "done" for entry in journal(out).values())
    reference = tmp_path / "again"  # each clip equal to its job run in this process
    assert main(["batch", str(jobs), "-o", str(reference)]) == 0
    for i in (1, 2, 3):
        assert np.array_equal(decode(out / f"{i}.mp4"), decode(reference / f"{i}.mp4")), i


def test_ray_missing_is_one_line(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    jobs = write_jobs(tmp_path / "jobs.jsonl", [{"prompt": "a red circle"}])
    code, _, err = run(capsys, "batch", jobs, "-o", tmp_path / "out", "--ray")
    assert code == 2 and err == 'kinemo: error: --ray needs Ray: pip install "kinemo[cluster]"\n'
