"""The studio's queue sent to a Ray cluster named in its settings: a local Ray runtime at 127.0.0.1 with 2 CPUs,
shared by this module's tests, which the engine joins ("local": the runtime already started in this process)."""

import json
import os
import signal
import socket
import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton
from studio_helpers import JOB_TIMEOUT_MS, PROMPT, files_under, fill_request

from app.studio.cluster_engine import ClusterEngine, UnusableEngine, cluster_settings
from app.studio.engine_client import EngineStartFailed, ThreadEngine
from engine.api.events import Frames
from export import read_record


@pytest.fixture(scope="module")
def ray_runtime():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def cluster_window(make_window, data_dir):
    """cluster_window(address) -> a window whose settings send its queue to the cluster at address."""
    windows = []

    def make(address):
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "settings.json").write_text(json.dumps({"cluster": {"address": address}}))
        windows.append(make_window())
        return windows[-1]

    yield make
    for window in windows:
        window.queue.shutdown()
        window.engine.shutdown()  # the workers go; the module's runtime runs on


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_job_on_the_cluster_gives_the_frames_of_a_local_run(qtbot, ray_runtime, cluster_window, tiny_model):
    window = cluster_window("local")
    assert isinstance(window.engine, ClusterEngine)
    fill_request(window, tiny_model, steps=3, seed=11)
    steps_seen = []
    window.queue.jobProgress.connect(lambda job, step, total, elapsed: steps_seen.append((step, total)))
    with qtbot.waitSignal(window.queue.jobSaved, timeout=JOB_TIMEOUT_MS) as saved:
        qtbot.mouseClick(window.findChild(QPushButton, "generateButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.queue.busy)

    job, result = saved.args
    local = [e.frames for e in ThreadEngine().generate(job.request, options=job.options) if isinstance(e, Frames)]
    assert np.array_equal(result.frames, np.concatenate(local)), "the worker's frames, unchanged by the trip"
    assert steps_seen == [(1, 3), (2, 3), (3, 3)]
    assert window.player.frame_count == 16 and window.history_list.count() == 1
    record = read_record(result.entry.clip_path)["request"]
    assert (record["prompt"], record["seed"], record["steps"], record["model"]) == (PROMPT, 11, 3, tiny_model)
    assert window.current_clip is not None and window.export_button.isEnabled()


def test_cancel_stops_the_running_job_and_a_removed_job_is_never_sent(
    qtbot, ray_runtime, cluster_window, tiny_model, data_dir
):
    window = cluster_window("local")
    fill_request(window, tiny_model, steps=200)
    started, steps_seen = [], []
    window.queue.jobStarted.connect(started.append)
    window.queue.jobProgress.connect(lambda job, step, total, elapsed: steps_seen.append(step))
    with qtbot.waitSignal(window.queue.jobProgress, timeout=JOB_TIMEOUT_MS):
        qtbot.mouseClick(window.findChild(QPushButton, "generateButton"), Qt.MouseButton.LeftButton)
    waiting = window.queue.add(window.form.request(), options=window.form.run_options)
    assert window.queue.remove(waiting.id)
    with qtbot.waitSignal(window.queue.jobCancelled, timeout=JOB_TIMEOUT_MS):
        qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.queue.busy)

    assert len(started) == 1 and steps_seen[-1] < 200, "the run stopped early and the removed job never started"
    assert window.message == "Cancelled; nothing was saved." and window.progress_bar.format() == "Cancelled"
    assert files_under(data_dir / "history") == [] and window.history_list.count() == 0
    [pool] = window.engine._pools.values()
    [worker] = pool.free  # stopped at its next step, and kept for the next job
    assert ray_runtime.get(worker.current.remote(), timeout=30) is None


def test_a_worker_killed_mid_job_has_the_job_sent_again(qtbot, ray_runtime, cluster_window, tiny_model):
    window = cluster_window("local")
    fill_request(window, tiny_model, steps=80, frames=4)
    notices = []
    window.queue.jobNotice.connect(lambda job, notice: notices.append(notice.message))
    with qtbot.waitSignal(window.queue.jobProgress, timeout=JOB_TIMEOUT_MS):
        qtbot.mouseClick(window.findChild(QPushButton, "generateButton"), Qt.MouseButton.LeftButton)
    [pool] = window.engine._pools.values()
    [worker] = pool.actors
    os.kill(ray_runtime.get(worker.pid.remote(), timeout=30), signal.SIGKILL)  # mid-job: 80 steps take seconds
    with qtbot.waitSignal(window.queue.jobSaved, timeout=JOB_TIMEOUT_MS) as saved:
        pass
    qtbot.waitUntil(lambda: not window.queue.busy)

    assert "the job's Ray worker died; the job is sent to a fresh one" in notices
    assert len(saved.args[1].frames) == 4 and window.history_list.count() == 1
    assert pool.actors and pool.actors[0] is not worker


def test_an_unreachable_cluster_fails_in_one_line(qtbot, cluster_window, tiny_model):
    address = f"127.0.0.1:{closed_port()}"
    window = cluster_window(address)
    with pytest.raises(EngineStartFailed, match=f"^cannot reach the Ray cluster at {address}: "):
        window.engine.start()
    fill_request(window, tiny_model)
    with qtbot.waitSignal(window.queue.jobFailed, timeout=JOB_TIMEOUT_MS):
        qtbot.mouseClick(window.findChild(QPushButton, "generateButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.queue.busy)
    assert window.message.startswith(f"Generation failed: cannot reach the Ray cluster at {address}: ")
    assert "\n" not in window.message and window.history_list.count() == 0


def test_a_port_held_by_something_else_is_not_taken_for_a_cluster(ray_runtime):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        answer = threading.Thread(target=lambda: server.accept()[0].sendall(b"SSH-2.0-OpenSSH_9.6\r\n"))
        answer.start()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        with pytest.raises(EngineStartFailed, match=f"^cannot reach the Ray cluster at {address}: something else"):
            ClusterEngine(address).start()
        answer.join()
    ClusterEngine(ray_runtime.get_runtime_context().gcs_address).start()  # a head's GCS answers


def test_settings_name_one_cluster_or_say_what_is_wrong(make_window, data_dir):
    assert cluster_settings({}) is None
    for address in ("auto", "local", "head-node:6379", "10.0.0.5:6379"):
        assert cluster_settings({"cluster": {"address": address}}) == address
    for bad in ({"address": "head-node"}, {"address": 6379}, {}, "auto"):
        with pytest.raises(ValueError, match="cluster.address"):
            cluster_settings({"cluster": bad})
    data_dir.mkdir(parents=True, exist_ok=True)
    both = {"cluster": {"address": "auto"}, "remote": {"url": "http://gpu-box:8765", "token": "t"}}
    (data_dir / "settings.json").write_text(json.dumps(both))
    window = make_window()
    assert isinstance(window.engine, UnusableEngine)
    with pytest.raises(EngineStartFailed, match="^settings name both a remote engine and a cluster"):
        window.engine.start()
