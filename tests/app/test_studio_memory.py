"""The studio shows the memory plan before a run, off the UI thread, and sends the memory setting with the run."""

import pickle
import threading

from app.studio import memory_plan
from app.studio.engine_client import ProcessEngine
from app.studio.engine_host import InputsRead, reported
from app.studio.job_queue import Job
from engine.api.errors import OutOfMemory
from engine.api.events import Loaded, MemoryNotice
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions


def test_the_plan_shows_under_the_model_picker_and_follows_the_settings(qtbot, window, monkeypatch):
    threads = []
    line = memory_plan.memory_plan_line

    def spy(*args):
        threads.append(threading.current_thread() is threading.main_thread())
        return line(*args)

    monkeypatch.setattr(memory_plan, "memory_plan_line", spy)
    form = window.form
    form.select_model("kinemo-starter")
    form.frames_spin.setValue(16)
    qtbot.waitUntil(
        lambda: form.memory_label.text().startswith("Memory: about") and "RAM on the CPU" in form.memory_label.text(),
        timeout=15000,
    )
    short = form.memory_label.text()
    form.frames_spin.setValue(128)  # a long clip: the rolling cache adds to the estimate
    qtbot.waitUntil(lambda: form.memory_label.text() not in ("", short), timeout=15000)
    assert form.memory_label.text().startswith("Memory: about")
    assert threads and not any(threads)  # estimated on worker threads only


def test_the_memory_setting_goes_with_the_run_and_is_remembered(qtbot, window, monkeypatch):
    form = window.form
    form.select_model("kinemo-starter")
    form.prompt_edit.setPlainText("a red circle moves right on a black background")
    form.set_memory("minimal")
    added = []

    def add(request, options=None):
        added.append((request, options))
        return Job(request, options=options)

    monkeypatch.setattr(window.queue, "add", add)
    window.generate()
    assert added and added[0][1].memory == "minimal" and isinstance(added[0][0], GenerationRequest)
    assert form.state()["memory"] == "minimal"
    form.set_memory("auto")
    form.restore_state({"memory": "low"})
    assert form.memory == "low"


def test_the_engine_process_announces_the_plan_of_the_setting(tiny_model):
    engine = ProcessEngine()
    try:
        request = GenerationRequest("a red circle", model=tiny_model, steps=2, frames=4)
        events = list(engine.generate(request, options=RunOptions(memory="low")))
        assert isinstance(events.pop(0), InputsRead), "the request as the engine read it comes first"
        assert isinstance(events[0], Loaded) and isinstance(events[1], MemoryNotice)
        assert events[1].message.startswith("memory: about") and "--memory low" in events[1].message
        assert events[1].plan is not None and events[1].plan.estimate.ram > 0
    finally:
        engine.shutdown()


def test_out_of_memory_comes_back_as_itself():
    error = pickle.loads(pickle.dumps(reported(OutOfMemory("x ran out of memory (GPU) with model offload"))))
    assert isinstance(error, OutOfMemory) and str(error) == "x ran out of memory (GPU) with model offload"


def test_the_panel_and_the_run_agree_and_follow_the_switches(qtbot, window, tmp_path):
    """The studio's estimate before a run is the command line's at the start of the same run, int8 included."""
    import json
    import re
    import subprocess
    import sys

    form = window.form
    form.select_model("kinemo-starter")
    form.frames_spin.setValue(16)
    form.steps_spin.setValue(2)
    shown = {}
    for int8 in (False, True):
        form.switches.int8_check.setChecked(int8)
        qtbot.waitUntil(lambda: form.memory_plan._asked == form._memory_question(), timeout=15000)
        qtbot.waitUntil(lambda: form.memory_plan._worker is None, timeout=15000)
        shown[int8] = int(re.search(r"about (\d+) MB", form.memory_label.text()).group(1))
    assert shown[True] > shown[False] + 150  # int8 imports optimum.quanto (with transformers and diffusers)
    stats = tmp_path / "stats.json"
    args = ["generate", "a red circle", "-o", str(tmp_path / "c.mp4"), "--steps", "2", "--quantize", "int8"]
    run = subprocess.run(
        [sys.executable, "-m", "app.cli", *args, "--stats", str(stats)], capture_output=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    engine_mb = json.loads(stats.read_text())["memory_estimate_ram_mb"]
    assert abs(engine_mb - shown[True]) <= 0.1 * engine_mb  # the same parts, the baseline measured there
