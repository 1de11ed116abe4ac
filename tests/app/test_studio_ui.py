"""The studio's window without long generations: names, pictures, prompts, history, settings, launch."""

import json
import os
import subprocess
import sys

import imageio_ffmpeg
import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from studio_helpers import PROMPT, clip_frames, drop

from app.studio.history import HistoryStore
from engine.api.request import GenerationRequest
from engine.kinemo.vocabulary import PICTURE_MOVES
from export import ExportSettings, make_record, write_clip

AUTOMATION_NAMES = [
    "promptEdit",
    "negativePromptEdit",
    "generateButton",
    "cancelButton",
    "progressBar",
    "previewView",
    "imageDropZone",
    "exportButton",
    "historyList",
    "seedSpin",
    "framesSpin",
    "stepsSpin",
    "modelCombo",
    "queueList",
    "guidanceSpin",
    "fpsSpin",
    "widthSpin",
    "heightSpin",
    "playButton",
    "frameSlider",
    "cameraCombo",
    "seedRandomButton",
    "keepSeedCheck",
    "messageLabel",
    "playerFpsSpin",
    "downloadButton",
    "downloadProgress",
    "downloadCancelButton",
    "imageHint",
]


def test_window_has_every_automation_name_once(window):
    for name in AUTOMATION_NAMES:
        found = window.findChildren(QWidget, name)
        assert len(found) == 1, name
    combo = window.findChild(QWidget, "modelCombo")
    assert combo.itemData(0) is None and combo.itemText(0).startswith("Built in"), "a group's header comes first"
    assert combo.itemData(1) == "kinemo-starter" and "kinemo-starter" in combo.itemText(1)
    assert combo.currentData() == "kinemo-starter"


def test_window_fits_1280x800(qtbot, window):
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    assert window.width() <= 1280 and window.height() <= 800
    assert window.findChild(QWidget, "previewView").width() >= 400


def _picture(path, size=(80, 48)):
    Image.fromarray(np.full((size[1], size[0], 3), 200, np.uint8)).save(path)
    return path


def test_drop_a_picture_then_a_bad_file(qtbot, window, tmp_path):
    zone = window.findChild(QWidget, "imageDropZone")
    good = _picture(tmp_path / "first.png")
    assert drop(zone, [good]) == (True, True)
    qtbot.waitUntil(lambda: zone.image_path == str(good))
    assert not zone.thumbnail.pixmap().isNull()
    assert zone.clear_button.isEnabled() and zone.error_label.isHidden()

    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    with qtbot.waitSignal(zone.refused):
        drop(zone, [bad])
    assert zone.image_path == str(good), "the accepted picture is kept"
    assert not zone.error_label.isHidden() and "not a picture" in zone.error_label.text()
    assert "not a picture" in window.message and window.message_label.property("level") == "error"

    window.form.prompt_edit.setPlainText("the camera pans left")
    request = window.form.request()
    assert request.image == str(good) and len(request.image_sha256) == 64

    qtbot.mouseClick(zone.clear_button, Qt.MouseButton.LeftButton)
    assert zone.image_path is None and window.form.request().image is None
    assert window.form.request().image_sha256 is None


def test_a_picture_dropped_on_the_window_goes_to_the_drop_zone(qtbot, window, tmp_path):
    picture = _picture(tmp_path / "p.jpg")
    drop(window, [picture])
    qtbot.waitUntil(lambda: window.form.drop_zone.image_path == str(picture))


def test_truncated_and_missing_pictures_are_refused(qtbot, window, tmp_path):
    zone = window.form.drop_zone
    cut = _picture(tmp_path / "cut.png", (64, 64))
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(cut)
    cut.write_bytes(cut.read_bytes()[:200])
    with qtbot.waitSignal(zone.refused) as refused:
        zone.set_image(str(cut))
    assert "truncated" in refused.args[0]
    with qtbot.waitSignal(zone.refused) as refused:
        zone.set_image(str(tmp_path / "gone.png"))
    assert "not found" in refused.args[0] and zone.image_path is None


def test_camera_move_selector_edits_the_prompt(window):
    form = window.form
    combo = window.findChild(QWidget, "cameraCombo")
    form.prompt_edit.setPlainText("")
    assert combo.isEnabled() and combo.count() == 1 + len(PICTURE_MOVES)  # "No camera move" and each move
    combo.setCurrentIndex(combo.findData("pans left"))
    combo.activated.emit(combo.currentIndex())
    assert form.prompt_edit.toPlainText() == "the camera pans left"
    combo.setCurrentIndex(combo.findData("zooms in"))
    combo.activated.emit(combo.currentIndex())
    assert form.prompt_edit.toPlainText() == "the camera zooms in"
    form.prompt_edit.setPlainText("a red circle moves right on a black background, the camera pans right")
    assert combo.currentData() == "pans right", "typing the phrase selects the move"
    combo.setCurrentIndex(0)
    combo.activated.emit(0)
    assert form.prompt_edit.toPlainText() == "a red circle moves right on a black background"


def test_unknown_words_are_pointed_out_while_typing(window):
    window.form.prompt_edit.setPlainText("a red dragon moves right")
    assert not window.form.prompt_hint.isHidden() and "dragon" in window.form.prompt_hint.text()
    window.form.prompt_edit.setPlainText(PROMPT)
    assert window.form.prompt_hint.isHidden()


def test_seed_randomise_and_large_seeds(qtbot, window):
    form = window.form
    form.prompt_edit.setPlainText(PROMPT)
    form.seed_spin.setValue(5)
    qtbot.mouseClick(window.findChild(QWidget, "seedRandomButton"), Qt.MouseButton.LeftButton)
    assert form.request().seed != 5 and 0 <= form.request().seed <= 2**32 - 1
    form.seed_spin.setValue(4_000_000_000)  # beyond a 32-bit signed spin box
    assert form.request().seed == 4_000_000_000


def _entry(tmp_path, seed=3):
    request = GenerationRequest(PROMPT, steps=9, seed=seed, frames=8, fps=12, width=96, height=64)
    return HistoryStore().save(request, clip_frames(8), seconds=1.5), request


def test_history_survives_a_restart_and_restores_settings(qtbot, make_window, tmp_path):
    entry, request = _entry(tmp_path)
    window = make_window()  # a "restart": the new window reads the data folder
    history = window.findChild(QWidget, "historyList")
    assert history.count() == 1 and PROMPT[:20] in history.item(0).text()
    window.form.prompt_edit.setPlainText("something else")
    with qtbot.waitSignal(window.settingsRestored):
        rect = history.visualItemRect(history.item(0))
        qtbot.mouseClick(history.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    restored = window.form.request()
    assert restored.with_changes(model=request.model) == request
    assert window.player.frame_count == 8 and window.player.fps_spin.value() == 12
    assert window.export_button.isEnabled()

    window.remove_history(entry)
    assert history.count() == 0 and not entry.clip_path.exists()


def test_dropping_a_kinemo_clip_restores_its_settings(qtbot, window, tmp_path):
    request = GenerationRequest(
        "the camera zooms in", negative_prompt="blurry", steps=31, seed=123456, guidance=6.5, fps=10
    )
    clip = tmp_path / "made-by-kinemo.mp4"
    write_clip(
        clip, clip_frames(4), ExportSettings("mp4", 10, 64, 64), make_record(request.to_dict(), {"format": "mp4"})
    )
    with qtbot.waitSignal(window.settingsRestored, timeout=30_000):
        assert drop(window, [clip]) == (True, True)
    assert window.form.request() == request
    assert window.findChild(QWidget, "cameraCombo").currentData() == "zooms in"


def test_a_clip_without_a_record_becomes_the_video_to_re_render(qtbot, window, tmp_path):
    plain = tmp_path / "plain.mp4"
    writer = imageio_ffmpeg.write_frames(str(plain), (64, 64), fps=8, macro_block_size=1, ffmpeg_log_level="error")
    writer.send(None)
    for frame in clip_frames(4):
        writer.send(frame)
    writer.close()
    window.form.prompt_edit.setPlainText("my own prompt")
    video = window.form.controls.video
    with qtbot.waitSignal(video.videoChanged, timeout=30_000):
        drop(window, [plain])
    assert window.message == "plain.mp4 has no Kinemo settings: it is the video to re-render now"
    assert window.form.prompt_edit.toPlainText() == "my own prompt", "the settings are the artist's"
    assert (window.form.request().video, window.form.request().strength) == (str(plain), 0.8)


def test_settings_persist_across_restarts(make_window, data_dir, tiny_model):
    first = make_window()
    first.form.select_model(tiny_model)
    first.form.prompt_edit.setPlainText(PROMPT)
    first.form.negative_edit.setPlainText("noise")
    first.form.steps_spin.setValue(17)
    first.form.seed_spin.setValue(99)
    first.form.keep_seed_check.setChecked(True)
    first.close()
    assert json.loads((data_dir / "settings.json").read_text())["form"]["request"]["steps"] == 17

    second = make_window()
    request = second.form.request()
    assert (request.prompt, request.negative_prompt, request.steps, request.seed, request.model) == (
        PROMPT,
        "noise",
        17,
        99,
        tiny_model,
    )
    assert second.form.keep_seed


def test_player_play_pause_and_scrub(qtbot, window):
    window.set_clip(clip_frames(6), GenerationRequest(PROMPT, fps=24))
    player = window.player
    assert player.playing and player.fps_spin.value() == 24
    qtbot.waitUntil(lambda: player.index > 0, timeout=2000)  # it loops on its own
    qtbot.mouseClick(window.findChild(QWidget, "playButton"), Qt.MouseButton.LeftButton)
    assert not player.playing
    window.findChild(QWidget, "frameSlider").setValue(4)
    assert player.index == 4 and player.frame_label.text() == "5 / 6"
    qtbot.wait(100)
    assert player.index == 4, "paused means paused"


def _launch(args, data_dir, **env):
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "KINEMO_DATA_DIR": str(data_dir), **env}
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=120, env=environment
    )


def test_python_m_app_opens_the_studio_without_torch(data_dir):
    result = _launch([], data_dir, KINEMO_STUDIO_EXIT_AFTER_SHOW="1")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown["torch_loaded"] is False
    assert "Traceback" not in result.stderr


def test_python_m_app_with_arguments_is_the_cli(data_dir, tmp_path):
    result = _launch(["info", str(tmp_path / "missing.mp4")], data_dir)
    assert result.returncode == 2 and result.stderr.startswith("kinemo: error: no such file")


def test_kinemo_studio_subcommand_opens_the_studio(data_dir):
    from app.cli import build_parser

    assert build_parser().parse_args(["studio"]).command == "studio"
    environment = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "KINEMO_DATA_DIR": str(data_dir),
        "KINEMO_STUDIO_EXIT_AFTER_SHOW": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "studio"], capture_output=True, text=True, timeout=120, env=environment
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["torch_loaded"] is False
