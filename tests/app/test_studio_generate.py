"""The studio generates, cancels and queues through the real engine process (tiny model)."""

import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPlainTextEdit, QPushButton
from studio_helpers import JOB_TIMEOUT_MS, PROMPT, files_under, fill_request

from export import read_record


def test_type_a_prompt_and_generate(qtbot, window, tiny_model, data_dir):
    fill_request(window, tiny_model, prompt="", steps=3, seed=11)
    prompt = window.findChild(QPlainTextEdit, "promptEdit")
    qtbot.keyClicks(prompt, PROMPT)
    steps_seen, previews = [], []
    window.queue.jobProgress.connect(lambda job, step, total, elapsed: steps_seen.append((step, total)))
    window.queue.jobPreview.connect(lambda job, step, frames: previews.append(frames.shape))

    with qtbot.waitSignal(window.queue.jobSaved, timeout=JOB_TIMEOUT_MS) as saved:
        qtbot.mouseClick(window.findChild(QPushButton, "generateButton"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.queue.busy)

    job, result = saved.args
    assert job.request.prompt == PROMPT and job.request.model == tiny_model
    assert steps_seen == [(1, 3), (2, 3), (3, 3)]
    assert window.form.request().seed == 11, "'keep seed' keeps it"
    assert len(previews) == 3 and previews[0][1:] == (64, 64, 3)
    assert window.progress_bar.value() == window.progress_bar.maximum()
    assert "Done" in window.message
    # the clip is in the player, in the history list and on disk with its record
    assert window.player.frame_count == 16 and window.export_button.isEnabled()
    assert window.history_list.count() == 1
    clip = result.entry.clip_path
    assert clip.parent == data_dir / "history" and clip.is_file()
    record = read_record(clip)["request"]
    assert (record["prompt"], record["seed"], record["steps"]) == (PROMPT, 11, 3)
    assert np.array_equal(np.load(result.entry.frames_path), result.frames)
    assert not [p for p in files_under(data_dir) if ".partial" in p]


def watch_progress_after_stop(window) -> list[int]:
    """The steps the running job's worker reports after the request to stop, as it reports them (its thread)."""
    after_stop = []

    def watch(job):
        worker = window.queue._worker
        worker.progress.connect(
            lambda step, total, elapsed: after_stop.append(step) if worker.abort_requested() else None,
            Qt.ConnectionType.DirectConnection,
        )

    window.queue.jobStarted.connect(watch)
    return after_stop


def test_cancel_mid_run_leaves_no_files(qtbot, window, tiny_model, data_dir):
    fill_request(window, tiny_model, steps=200)
    with qtbot.waitActive(window):  # shortcuts need an active window
        window.show()
        window.activateWindow()
    steps_seen = []
    window.queue.jobProgress.connect(lambda job, step, total, elapsed: steps_seen.append(step))
    after_stop = watch_progress_after_stop(window)
    with qtbot.waitSignal(window.queue.jobProgress, timeout=JOB_TIMEOUT_MS):
        qtbot.keyClick(
            window.findChild(QPlainTextEdit, "promptEdit"), Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier
        )
    assert window.cancel_button.isEnabled()
    with qtbot.waitSignal(window.queue.jobCancelled, timeout=JOB_TIMEOUT_MS):
        qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not window.queue.busy)

    assert steps_seen[-1] < 200, "the run stopped early"
    assert len(after_stop) <= 1, f"steps reported after Escape: {after_stop}; the job stops within one step"
    assert files_under(data_dir / "history") == []
    assert window.history_list.count() == 0 and window.current_clip is None
    assert "Cancelled" in window.message and window.progress_bar.format() == "Cancelled"
    assert not window.cancel_button.isEnabled()


def test_queue_runs_jobs_in_order_and_can_be_edited(qtbot, window, tiny_model):
    fill_request(window, tiny_model, steps=2, seed=1)
    started, saved = [], []
    window.queue.jobStarted.connect(lambda job: started.append(job.request.seed))
    window.queue.jobSaved.connect(lambda job, result: saved.append(job.request.seed))
    window.generate()  # seed 1 starts at once
    for seed in (2, 3, 4):
        window.form.seed_spin.setValue(seed)
        window.form.keep_seed_check.setChecked(seed != 4)
        window.generate()
    assert [j.request.seed for j in window.queue.pending] == [2, 3, 4]
    assert window.form.seed_spin.value() != 4, "without 'keep', the next seed is drawn after queueing"
    assert window.queue_list.count() == 4  # the running job plus three waiting
    assert window.generate_button.text() == "Add to queue"

    # edit the queue before those jobs start: 4 moves up, 2 is removed
    window.queue_list.setCurrentRow(3)
    qtbot.mouseClick(window.findChild(QPushButton, "queueUpButton"), Qt.MouseButton.LeftButton)
    assert [j.request.seed for j in window.queue.pending] == [2, 4, 3]
    window.queue_list.setCurrentRow(1)
    qtbot.mouseClick(window.findChild(QPushButton, "queueRemoveButton"), Qt.MouseButton.LeftButton)
    assert [j.request.seed for j in window.queue.pending] == [4, 3]

    with qtbot.waitSignal(window.queue.idle, timeout=JOB_TIMEOUT_MS):
        pass
    assert started == [1, 4, 3] and saved == [1, 4, 3]
    assert window.history_list.count() == 3
    assert "seed 3" in window.history_list.item(0).text()  # newest first
    assert window.queue_list.count() == 0


def test_engine_errors_show_in_the_window(qtbot, window, tmp_path, monkeypatch):
    """One failure, one message. Picking the missing folder starts the picker's check of it; the check is held
    until the job has failed, so its finding arrives after the failure's message, as it may in any run. It
    marks the folder unusable in the picker and leaves the failure's message in the message area."""
    from app.studio import model_picker

    release, check = threading.Event(), model_picker.check_models

    def held_check(models):
        release.wait(JOB_TIMEOUT_MS / 1000)
        return check(models)

    monkeypatch.setattr(model_picker, "check_models", held_check)
    missing = str(tmp_path / "no-such-model")
    errors = []
    window.messageShown.connect(lambda level, text: errors.append(text) if level == "error" else None)
    try:
        fill_request(window, missing)
        with qtbot.waitSignal(window.queue.jobFailed, timeout=JOB_TIMEOUT_MS):
            window.generate()
    finally:
        release.set()
    qtbot.waitUntil(lambda: window.form.model_picker.problem(missing) is not None)
    qtbot.waitUntil(lambda: not window.queue.busy)
    assert window.message.startswith("Generation failed: unknown model")
    assert window.message_label.property("level") == "error"
    assert errors == [window.message], "the picker's finding came as a second message"
    assert window.form.model_picker.itemText(window.form.model_picker.findData(missing)).endswith("unusable")


def test_invalid_request_is_refused_before_queueing(window):
    window.form.prompt_edit.setPlainText("   ")
    window.generate()
    assert not window.queue.busy and window.queue.pending == []
    assert "prompt is empty" in window.message


STARTER = Path(__file__).resolve().parents[2] / "assets" / "kinemo-starter" / "model.safetensors"


@pytest.mark.skipif(not STARTER.is_file(), reason="the starter model is not trained yet")
def test_generate_with_the_starter_model(qtbot, window):
    fill_request(window, "kinemo-starter", steps=2)
    with qtbot.waitSignal(window.queue.jobSaved, timeout=JOB_TIMEOUT_MS) as saved:
        window.generate()
    assert saved.args[1].frames.shape == (16, 64, 64, 3)


def test_a_crashed_engine_is_reported_and_restarted(qtbot, window, tiny_model, data_dir):
    fill_request(window, tiny_model, steps=200)
    with qtbot.waitSignal(window.queue.jobProgress, timeout=JOB_TIMEOUT_MS):
        window.generate()
    with qtbot.waitSignal(window.queue.jobFailed, timeout=JOB_TIMEOUT_MS):
        window.engine._process.kill()  # as if the OS had killed it (out of memory)
    qtbot.waitUntil(lambda: not window.queue.busy)
    assert "engine process stopped unexpectedly" in window.message
    assert files_under(data_dir / "history") == []

    window.form.steps_spin.setValue(2)
    with qtbot.waitSignal(window.queue.jobSaved, timeout=JOB_TIMEOUT_MS):
        window.generate()


def test_closing_the_window_mid_run_stops_cleanly(qtbot, make_window, tiny_model, data_dir):
    window = make_window()
    fill_request(window, tiny_model, steps=200)
    started = []
    window.queue.jobStarted.connect(lambda job: started.append(window.queue._worker))
    after_stop = watch_progress_after_stop(window)
    with qtbot.waitSignal(window.queue.jobProgress, timeout=JOB_TIMEOUT_MS):
        window.generate()
    window.form.steps_spin.setValue(3)
    window.generate()  # a queued job is dropped on close
    window.close()
    (worker,) = started
    assert worker.thread_handle.isFinished(), "close returned before the job had stopped"
    assert len(after_stop) <= 1, f"steps reported after the close: {after_stop}; the job stops within one step"
    assert not window.queue.busy or window.queue.cancelling
    assert files_under(data_dir / "history") == []
    assert (data_dir / "settings.json").is_file()
