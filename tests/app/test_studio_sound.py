"""A model that makes sound (a tiny LTX-2) in the studio: the history keeps the sound, the player plays it with the
frames (following pause, the loop and the preview rate), and an export carries it."""

import sys

import pytest
from PySide6.QtCore import Qt
from tiny_diffusers.cases import CASES

from app.studio import sound_track
from export import ExportSettings
from export.audio import read_wav
from export.streams import read_streams

LTX2 = next(c for c in CASES if c.name == "ltx2-t2v")
CHECK_MS, JOB_MS = 30_000, 120_000


@pytest.fixture
def studio(qtbot, data_dir, monkeypatch, build):
    """A window with the engine in this process, the tiny LTX-2 folder picked, set for a short clip."""
    from app.studio.app import ensure_application
    from app.studio.engine_client import ThreadEngine
    from app.studio.main_window import MainWindow

    monkeypatch.setenv("KINEMO_ENGINE", "thread")
    ensure_application()
    window = MainWindow(engine=ThreadEngine())
    qtbot.addWidget(window)
    folder = str(build(LTX2))
    window.form.model_picker.add_folder(folder)
    qtbot.waitUntil(lambda: window.form.model == folder, timeout=CHECK_MS)
    form = window.form
    form.prompt_edit.setPlainText("waves roll onto a beach")
    for spin, value in ((form.steps_spin, 2), (form.frames_spin, 17), (form.width_spin, 64), (form.height_spin, 64)):
        spin.setValue(value)
    form.fps_spin.setValue(24)
    return window


def generate(qtbot, window):
    saved, failures = [], []
    window.queue.jobSaved.connect(lambda job, result: saved.append(result))
    window.queue.jobFailed.connect(lambda job, exc: failures.append(exc))
    qtbot.mouseClick(window.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(saved or failures), timeout=JOB_MS)
    assert not failures, window.message
    qtbot.waitUntil(lambda: not window.queue.busy)
    return saved[0]


def test_the_sound_is_kept_played_and_exported(qtbot, studio, tmp_path):
    result = generate(qtbot, studio)
    entry, player = result.entry, studio.player
    assert entry.sound == entry.sound_path and read_wav(entry.sound).sample_rate == 24000
    assert [s["kind"] for s in read_streams(entry.clip_path)] == ["video", "audio"]
    assert studio.current_sound == entry.sound_path and player.sound.path == entry.sound_path
    if player.sound.unavailable:  # this system lacks what Qt Multimedia needs: the clip plays silent, saying why
        assert player.sound_label.text() == "sound: silent here" and player.sound_label.toolTip()
    else:
        assert player.sound_label.text() == "sound" and player.sound_in_step
        # the sound starts with the clip (Qt Multimedia opens the file first), not at its first loop (0.71 s)
        qtbot.waitUntil(lambda: player.sound.playing, timeout=500)
        player.set_playing(False)
        qtbot.waitUntil(lambda: not player.sound.playing, timeout=CHECK_MS)
        player.set_playing(True)
        player.fps_spin.setValue(12)  # another rate than the clip's: the sound cannot follow, so it stops
        assert not player.sound_in_step and player.sound_label.text() == "sound: muted"
        qtbot.waitUntil(lambda: not player.sound.playing, timeout=CHECK_MS)
        player.fps_spin.setValue(24)
        qtbot.waitUntil(lambda: player.sound.playing, timeout=CHECK_MS)

    out = tmp_path / "clip.webm"
    assert studio.export_clip(out, ExportSettings("webm", 24, 64, 64))
    qtbot.waitUntil(lambda: out.exists() and studio.exports.worker is None, timeout=JOB_MS)
    streams = {s["kind"]: s for s in read_streams(out)}
    assert streams["audio"]["codec"] == "opus"


def test_without_qt_multimedia_the_clip_plays_silent_and_says_why(qtbot, studio, monkeypatch):
    monkeypatch.setitem(sys.modules, "PySide6.QtMultimedia", None)  # as where libpulse is missing: it cannot import
    studio.player.sound = sound_track.SoundTrack(studio.player)
    result = generate(qtbot, studio)
    assert result.entry.sound is not None  # the sound is kept all the same
    assert studio.player.sound_label.text() == "sound: silent here"
    assert studio.player.sound_label.toolTip().startswith("sound cannot play here: Qt Multimedia did not load")
    assert not studio.player.sound.playing and studio.player.sound.seconds == 0.0
