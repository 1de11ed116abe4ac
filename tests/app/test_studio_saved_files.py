"""The studio opens whatever it finds in its data folder: bad fields are skipped with one notice, an unusable
folder is reported, long clips' frames load off the UI thread, and the waiting queue survives a restart."""

import json
import math
import threading

import pytest
from PySide6.QtCore import QThread
from studio_helpers import JOB_TIMEOUT_MS, PROMPT, clip_frames, fill_request

from app.studio.history import HistoryEntry, HistoryStore, read_entry
from app.studio.main_window import MainWindow
from app.studio.saved_data import clean_settings
from engine.api.errors import Cancelled
from engine.api.request import GenerationRequest

GOOD = GenerationRequest(PROMPT, frames=4, width=64, height=64, seed=3)


def _write_entry(folder, name, request, created=1.7e9, seconds=1.0):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.mp4").write_bytes(b"clip")
    text = json.dumps({"request": request, "created": created, "seconds": seconds})  # NaN stays NaN
    (folder / f"{name}.json").write_text(text)


@pytest.mark.parametrize(
    "request_fields, created, seconds",
    [
        ({"prompt": 5}, 1.7e9, 1.0),
        ({}, 1e300, 1.0),
        ({}, math.nan, 1.0),
        ({}, "yesterday", 1.0),
        ({}, 1.7e9, math.inf),
        ({"image": 123}, 1.7e9, 1.0),
        ({"image": {}}, 1.7e9, 1.0),
        ({"frames": 1e300}, 1.7e9, 1.0),
        ({"width": True}, 1.7e9, 1.0),
    ],
)
def test_a_history_entry_is_checked_field_by_field(tmp_path, request_fields, created, seconds):
    _write_entry(tmp_path, "bad", GOOD.to_dict() | request_fields, created, seconds)
    with pytest.raises(ValueError):
        read_entry(tmp_path / "bad.json", tmp_path)


def test_bad_history_entries_are_skipped_with_one_notice(qtbot, make_window, data_dir):
    good = HistoryStore().save(GOOD, clip_frames(4), 1.0)
    _write_entry(data_dir / "history", "prompt-is-a-number", GOOD.to_dict() | {"prompt": 5})
    _write_entry(data_dir / "history", "created-is-nan", GOOD.to_dict(), created=math.nan)
    (data_dir / "history" / "a-folder.json").mkdir()
    window = make_window()
    assert window.history_list.count() == 1 and window.history_panel.entries.keys() == {good.id}
    assert "3 history entries could not be read and were skipped" in window.message
    assert window.message_label.property("level") == "warning"


def test_damaged_settings_fields_are_reset_and_the_rest_kept(make_window, data_dir):
    data_dir.mkdir(parents=True)
    settings = data_dir / "settings.json"
    settings.write_text(json.dumps({"form": "x", "export": {"quality": 1e300, "format": "gif"}, "window": 3}))
    window = make_window()
    assert "form" in window.message and "export.quality" in window.message and "window" in window.message
    assert window.exports._settings["export"] == {"format": "gif"}
    window.close()

    saved = {"request": {"prompt": "kept", "frames": 1e300, "steps": 17, "width": 63, "seed": -1}, "keep_seed": "y"}
    settings.write_text(json.dumps({"form": saved}))
    window = make_window()
    request = window.form.request()
    assert (request.prompt, request.steps, request.frames != 1e300) == ("kept", 17, True)
    for name in ("form.request.frames", "form.request.width", "form.request.seed", "form.keep_seed"):
        assert name in window.message


@pytest.mark.parametrize("settings_text", ["[1, 2]", "{not json", json.dumps({"form": {"request": "x"}})])
def test_any_settings_file_opens(make_window, data_dir, settings_text):
    data_dir.mkdir(parents=True)
    (data_dir / "settings.json").write_text(settings_text)
    window = make_window()
    assert window.message_label.property("level") == "warning"


def test_clean_settings_keeps_good_fields():
    clean, bad = clean_settings({"form": {"request": {"steps": 3, "image": 5}, "memory": "low"}, "other": 1})
    assert clean == {"form": {"request": {"steps": 3}, "memory": "low"}, "other": 1} and bad == ["form.request.image"]


def test_an_unusable_data_folder_is_reported_and_the_studio_still_generates(qtbot, make_window, data_dir, tiny_model):
    data_dir.write_text("a file where the data folder should be")
    window = make_window()
    assert "The data folder cannot be used" in window.message and "is a file" in window.message
    fill_request(window, tiny_model, steps=2, frames=4)
    with qtbot.waitSignal(window.queue.jobSaved, timeout=JOB_TIMEOUT_MS):
        window.generate()
    assert window.current_clip is not None
    window.close()
    assert data_dir.read_text() == "a file where the data folder should be"


def test_a_file_in_place_of_the_history_folder_is_reported(make_window, data_dir):
    data_dir.mkdir(parents=True)
    (data_dir / "history").write_text("not a folder")
    window = make_window()
    assert "The history folder cannot be used" in window.message
    window.close()
    assert (data_dir / "settings.json").is_file()


def test_history_frames_are_read_off_the_ui_thread(qtbot, make_window, monkeypatch):
    entry = HistoryStore().save(GOOD, clip_frames(4), 1.0)
    read_on = []
    real_load = HistoryEntry.load_frames

    def load_frames(self):
        read_on.append(QThread.currentThread())
        return real_load(self)

    monkeypatch.setattr(HistoryEntry, "load_frames", load_frames)
    window = make_window()
    with qtbot.waitSignal(window.settingsRestored, timeout=30_000):
        window.restore_history(window.history_panel.entries[entry.id])
        assert window.form.request().seed == GOOD.seed  # the settings at once
    assert read_on and all(thread is not window.thread() for thread in read_on)
    assert window.player.frame_count == 4


def test_unreadable_frames_leave_the_settings_restored(qtbot, make_window):
    entry = HistoryStore().save(GOOD, clip_frames(4), 1.0)
    entry.frames_path.write_bytes(b"not numpy")
    window = make_window()
    with qtbot.waitSignal(window.settingsRestored, timeout=30_000):
        window.restore_history(window.history_panel.entries[entry.id])
    assert "frames are unreadable" in window.message and window.current_clip is None


class StuckEngine:
    """Runs each job until it is stopped."""

    def __init__(self):
        self.release = threading.Event()

    def start(self, warm=False):
        pass

    def shutdown(self, timeout=2.0):
        pass

    def generate(self, request, should_stop=None, options=None):
        while not should_stop():
            self.release.wait(0.01)
        raise Cancelled("generation cancelled")
        yield


def _window(qtbot):
    window = MainWindow(engine=StuckEngine())
    qtbot.addWidget(window)
    return window


def test_the_queue_is_kept_across_restarts(qtbot, data_dir, tiny_model):
    first = _window(qtbot)
    fill_request(first, tiny_model, steps=2, frames=4)
    for seed in (1, 2, 3):
        first.form.seed_spin.setValue(seed)
        first.generate()
    assert first.queue.busy and len(first.queue.pending) == 2
    saved = json.loads((data_dir / "queue.json").read_text())["jobs"]
    assert [job["request"]["seed"] for job in saved] == [1, 2, 3]
    first.close()

    second = _window(qtbot)
    assert not second.queue.busy, "restored jobs wait for Run"
    assert [job.request.seed for job in second.queue.pending] == [1, 2, 3]
    assert second.queue.pending[0].request.model == tiny_model
    assert "3 waiting jobs restored" in second.message
    run = second.queue_panel.run_button
    assert run.isEnabled()
    with qtbot.waitSignal(second.queue.jobStarted):
        run.click()
    assert second.queue.current.request.seed == 1 and not run.isEnabled()
    second.close()


def test_bad_saved_jobs_are_skipped(qtbot, data_dir):
    data_dir.mkdir(parents=True)
    jobs = [
        {"request": GOOD.to_dict(), "options": None},
        {"request": GOOD.to_dict() | {"image": 123}, "options": None},
        {"request": GOOD.to_dict(), "options": {"memory": 5}},
        "not a job",
    ]
    (data_dir / "queue.json").write_text(json.dumps({"jobs": jobs}))
    window = _window(qtbot)
    assert [job.request for job in window.queue.pending] == [GOOD]
    assert "3 waiting jobs could not be read" in window.message and "1 waiting job restored" in window.message
