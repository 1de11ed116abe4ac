"""The studio with a remote engine: a real `kinemo serve` on a loopback port, named in the studio's settings."""

import base64
import hashlib
import json

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton
from studio_helpers import JOB_TIMEOUT_MS, PROMPT, files_under, fill_request

from app.studio.remote_engine import RemoteEngine, job_body, remote_settings
from engine.api.errors import InvalidRequest
from engine.api.request import GenerationRequest
from export import read_record

TOKEN = "studio-test-token-" + "y" * 16


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from app.serve.serve_cli import ServerThread
    from engine.api.run_options import RunOptions

    with ServerThread(RunOptions(device="cpu"), tmp_path_factory.mktemp("serve"), TOKEN, preview_every=1) as server:
        yield server


@pytest.fixture
def remote_window(make_window, data_dir, served):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "settings.json").write_text(json.dumps({"remote": {"url": served.url, "token": TOKEN}}))
    window = make_window()
    assert isinstance(window.engine, RemoteEngine)
    return window


def test_the_studio_generates_on_the_remote_engine(qtbot, remote_window, tiny_model, data_dir, served):
    window = remote_window
    fill_request(window, tiny_model, steps=3, seed=11)
    steps_seen, previews = [], []
    window.queue.jobProgress.connect(lambda job, step, total, elapsed: steps_seen.append((step, total)))
    window.queue.jobPreview.connect(lambda job, step, frames: previews.append(frames.shape))
    with qtbot.waitSignal(window.queue.jobSaved, timeout=JOB_TIMEOUT_MS) as saved:
        qtbot.mouseClick(window.findChild(QPushButton, "generateButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.queue.busy)

    job, result = saved.args
    assert steps_seen == [(1, 3), (2, 3), (3, 3)]
    assert len(previews) == 3 and previews[0][1:] == (64, 64, 3)
    assert window.player.frame_count == 16 and window.history_list.count() == 1
    record = read_record(result.entry.clip_path)["request"]
    assert (record["prompt"], record["seed"], record["steps"], record["model"]) == (PROMPT, 11, 3, tiny_model)
    assert served.queue.all() == [], "a finished job is fetched, then forgotten on the server"


def test_cancel_stops_the_remote_job(qtbot, remote_window, tiny_model, data_dir, served):
    window = remote_window
    fill_request(window, tiny_model, steps=200)
    steps_seen = []
    window.queue.jobProgress.connect(lambda job, step, total, elapsed: steps_seen.append(step))
    with qtbot.waitSignal(window.queue.jobProgress, timeout=JOB_TIMEOUT_MS):
        qtbot.mouseClick(window.findChild(QPushButton, "generateButton"), Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(window.queue.jobCancelled, timeout=JOB_TIMEOUT_MS):
        qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.queue.busy)

    assert steps_seen[-1] < 200, "the run stopped early"
    assert files_under(data_dir / "history") == [] and window.history_list.count() == 0
    [job] = served.queue.all()
    qtbot.waitUntil(lambda: job.state == "cancelled", timeout=JOB_TIMEOUT_MS)  # at the server's next step
    assert job.step < 200 and not job.output.exists()
    served.queue.cancel(job.id)  # a finished job is forgotten


def test_pictures_travel_in_the_body_and_lora_files_are_refused(tmp_path):
    picture = tmp_path / "first.png"
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(picture)
    request = GenerationRequest(prompt=PROMPT, image=str(picture)).validate()
    body, read = job_body(request)
    assert "image" not in body and base64.b64decode(body["image_data"]) == picture.read_bytes()
    assert read.image == str(picture) and read.image_sha256 == hashlib.sha256(picture.read_bytes()).hexdigest()
    assert (body["format"], body["audio"]) == ("mp4", False)
    lora = tmp_path / "style.safetensors"
    lora.write_bytes(b"weights")
    with pytest.raises(InvalidRequest, match="by hub id"):
        job_body(GenerationRequest(prompt=PROMPT, loras=[{"source": str(lora)}]))


def test_settings_name_the_remote_engine_or_say_what_is_wrong():
    assert remote_settings({}) is None
    assert remote_settings({"remote": {"url": "http://gpu-box:8765", "token": "t"}}) == ("http://gpu-box:8765", "t")
    for bad in ({"url": "gpu-box:8765", "token": "t"}, {"url": "http://gpu-box:8765"}, "http://gpu-box"):
        with pytest.raises(ValueError, match="remote"):
            remote_settings({"remote": bad})


def test_an_unreachable_or_refusing_server_fails_at_start(served):
    from app.studio.engine_client import EngineStartFailed

    with pytest.raises(EngineStartFailed, match="did not answer"):
        RemoteEngine(served.url, "wrong-token").start()
    RemoteEngine(served.url, TOKEN).start()
