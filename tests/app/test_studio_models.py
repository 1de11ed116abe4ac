"""The studio's model picker: catalog and local models, what is on disk, downloads, each model's own options."""

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fake_layouts import fake_diffusers_folder, hub_cache_with
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog
from studio_helpers import JOB_TIMEOUT_MS, PROMPT
from tiny_diffusers.cases import CASES
from tiny_diffusers.direct import direct_frames, gradient_picture

from app.studio.downloads import DownloadMeter, progress_tqdm
from app.studio.model_picker import GROUPS, OTHER_MODEL
from engine.api.errors import ModelLoadError
from engine.api.request import GenerationRequest
from engine.registry.catalog import catalog
from export import read_record

WAN = "wan2.1-t2v-1.3b"
CHECK_MS = 30_000  # the first check imports huggingface-hub on a worker thread


@pytest.fixture
def hub_cache(hub_cache, monkeypatch):
    """The shared offline hub cache, with the engine in this process (it sees the monkeypatched hub)."""
    monkeypatch.setenv("KINEMO_ENGINE", "thread")
    return hub_cache


def _text(window, model):
    combo = window.form.model_combo
    return combo.itemText(combo.findData(model))


def _picture(path):
    Image.fromarray(np.full((48, 64, 3), 120, np.uint8)).save(path)
    return str(path)


def _choose_other_folder(qtbot, window, monkeypatch, folder):
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *args, **kwargs: str(folder)))
    combo = window.form.model_combo
    index = combo.findData(OTHER_MODEL)
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def _wait_checked(qtbot, window, model):
    qtbot.waitUntil(lambda: window.form.model_picker.is_checked(model), timeout=CHECK_MS)


def test_the_picker_lists_every_model_and_what_is_on_disk(qtbot, hub_cache, window, tmp_path, monkeypatch):
    from engine.planning import fit

    machine = fit.Machine(ram=32 * fit.GB, vram=24 * fit.GB, gpu="Test GPU")
    monkeypatch.setattr(fit, "this_machine", lambda: machine)
    combo, picker = window.form.model_combo, window.form.model_picker
    listed = [combo.itemData(i) for i in range(combo.count())]
    assert listed[1] == "kinemo-starter" and set(catalog()) <= set(listed) and listed[-1] == OTHER_MODEL
    assert _text(window, "kinemo-starter") == "Kinemo · kinemo-starter · built in"
    assert _text(window, WAN) == "Wan · wan2.1-t2v-1.3b · 28 GB", "nothing is looked up on disk before the window shows"

    # grouped by what they do, each group under a header that cannot be picked
    headers = [combo.itemText(i) for i in range(combo.count()) if combo.itemData(i) is None and combo.itemText(i)]
    assert headers == list(GROUPS.values())
    below = {}
    for i in range(combo.count()):
        if combo.itemData(i) is None and combo.itemText(i):
            group = combo.itemText(i)
        elif combo.itemData(i) not in (None, OTHER_MODEL):
            below[combo.itemData(i)] = group
    assert below["ltx-2.3"] == GROUPS["sound"] and below["svd"] == GROUPS["i2v"] and below[WAN] == GROUPS["t2v"]
    assert below["wan2.2-ti2v-5b"] == GROUPS["both"]

    hub_cache_with(hub_cache, catalog()[WAN].hub_id, tmp_path)
    with qtbot.waitSignal(picker.modelsChecked, timeout=CHECK_MS):
        window.show()  # the check starts shortly after the window first shows
    assert _text(window, WAN) == "Wan · wan2.1-t2v-1.3b · on disk · 28 GB · 8.2/24 GB VRAM"
    assert _text(window, "svd") == "Stable Video Diffusion · svd · not downloaded · 4.2 GB · 16/24 GB VRAM"
    assert _text(window, "ltx-video").endswith("12/24 GB VRAM · superseded by ltx-2.3")
    assert _text(window, "wan2.2-ti2v-5b").endswith("24/24 GB VRAM")
    tip = combo.itemData(combo.findData("svd"), Qt.ItemDataRole.ToolTipRole)
    assert "image-to-video" in tip and "16 GB of GPU memory" in tip and "Community License" in tip
    assert "this GPU has 24 GB" in tip and "Test GPU with 24 GB" in tip

    # a model whose weights cannot fit this machine's RAM is greyed out, saying why; one larger than the GPU offloads
    assert not picker.is_runnable("wan2.2-t2v-a14b") and _text(window, "wan2.2-t2v-a14b").endswith("too large here")
    tip = combo.itemData(combo.findData("wan2.2-t2v-a14b"), Qt.ItemDataRole.ToolTipRole)
    assert "do not fit in this machine's 32 GB of RAM" in tip
    assert picker.is_runnable("kandinsky-5-i2v-pro") and "offloads" in _text(window, "kandinsky-5-i2v-pro")
    assert picker.is_runnable("kinemo-starter")


def test_an_image_to_video_model_asks_for_a_picture(qtbot, hub_cache, window, tmp_path):
    form = window.form
    form.prompt_edit.setPlainText(PROMPT)
    form.negative_edit.setPlainText("blurry")
    form.select_model("svd")
    assert not form.image_hint.isHidden() and "svd animates a picture" in form.image_hint.text()
    assert form.drop_zone.isEnabled() and form.drop_zone.caption.text().endswith("(required).")
    assert not form.negative_edit.isEnabled(), "SVD takes no negative prompt"
    assert not form.camera_combo.isEnabled()
    assert (form.frames_spin.value(), form.width_spin.value(), form.height_spin.value()) == (14, 1024, 576)

    window.generate()
    assert window.message.startswith("svd animates a picture: add a first-frame picture")
    assert window.message_label.property("level") == "error"
    assert not window.queue.busy and window.queue.pending == []

    picture = _picture(tmp_path / "first.png")
    form.drop_zone.set_image(picture)
    qtbot.waitUntil(lambda: form.drop_zone.image_path == picture)
    request = form.request()
    assert request.image == picture and request.negative_prompt == "" and request.model == "svd"


def test_a_text_to_video_model_applies_its_defaults_and_ignores_pictures(qtbot, hub_cache, window, tmp_path):
    form = window.form
    form.prompt_edit.setPlainText(PROMPT)
    picture = _picture(tmp_path / "first.png")
    form.drop_zone.set_image(picture)
    qtbot.waitUntil(lambda: form.drop_zone.image_path == picture)

    form.select_model(WAN)

    def numbers():
        return tuple(
            spin.value()
            for spin in (
                form.frames_spin,
                form.fps_spin,
                form.width_spin,
                form.height_spin,
                form.steps_spin,
                form.guidance_spin,
            )
        )

    assert numbers() == (81, 16, 832, 480, 50, 5.0)
    assert form.frames_spin.singleStep() == 4 and "4k+1 frames" in form.frames_spin.toolTip()
    assert "multiples of 16" in form.width_spin.toolTip()
    assert not form.drop_zone.isEnabled() and "text-to-video only" in form.image_hint.text()
    assert form.negative_edit.isEnabled() and not form.camera_combo.isEnabled()
    assert form.request().image is None, "the picture is not sent to a model that refuses it"
    form.frames_spin.setValue(11)
    form.frames_spin.editingFinished.emit()
    assert form.frames_spin.value() == 13, "snapped to the nearest 4k+1"
    dropped = _picture(tmp_path / "dropped.png")
    with qtbot.waitSignal(form.message) as warned:
        window.open_path(dropped)  # dropped on the window
    assert warned.args[0] == "warning" and "text-to-video only: the picture is kept but not used" in warned.args[1]
    assert form.request().image is None

    form.select_model("kinemo-starter")
    assert form.frames_spin.maximum() == 1024 and numbers() == (16, 8, 256, 256, 25, 1.0)
    assert form.camera_combo.isEnabled() and form.drop_zone.isEnabled() and form.image_hint.isHidden()
    assert form.request().image == dropped

    # a folder's options arrive from a worker thread: its defaults apply unless values were set meanwhile
    picked = str(fake_diffusers_folder(tmp_path / "picked-wan"))
    form.select_model(picked)
    assert form.frames_spin.maximum() == 1024 and form.drop_zone.isEnabled(), "nothing known yet"
    _wait_checked(qtbot, window, picked)
    assert numbers() == (81, 16, 832, 480, 50, 5.0) and form.frames_spin.singleStep() == 4

    touched = str(fake_diffusers_folder(tmp_path / "touched-wan"))
    form.select_model("kinemo-starter")
    form.select_model(touched)
    form.steps_spin.setValue(7)  # set by hand before the folder's options arrive
    _wait_checked(qtbot, window, touched)
    assert numbers() == (16, 8, 256, 256, 7, 1.0), "a value set by hand keeps the defaults from arriving late"
    assert form.frames_spin.singleStep() == 4

    restored_folder = str(fake_diffusers_folder(tmp_path / "restored-wan"))
    restored = GenerationRequest(
        PROMPT, model=restored_folder, frames=9, fps=12, width=64, height=96, steps=3, guidance=2.5
    )
    form.set_request(restored)
    _wait_checked(qtbot, window, restored_folder)  # started by the restore, so it arrives after it
    assert numbers() == (9, 12, 64, 96, 3, 2.5), "a restored request keeps its own values"
    assert form.frames_spin.singleStep() == 4 and not form.drop_zone.isEnabled()
    form.set_request(GenerationRequest(PROMPT, model=WAN, frames=5, fps=10, width=96, height=64, steps=4, guidance=3.0))
    assert numbers() == (5, 10, 96, 64, 4, 3.0)


def test_other_model_folder_accepts_diffusers_folders_and_refuses_others(
    qtbot, hub_cache, window, monkeypatch, tmp_path
):
    form = window.form
    folder = fake_diffusers_folder(tmp_path / "my-svd", "StableVideoDiffusionPipeline")
    with qtbot.waitSignal(window.messageShown, timeout=CHECK_MS) as shown:
        _choose_other_folder(qtbot, window, monkeypatch, folder)
    assert shown.args == ["info", "Added Stable Video Diffusion · my-svd (folder)"]
    assert form.model == str(folder) and str(folder) in form.model_folders()
    assert _text(window, str(folder)) == "Stable Video Diffusion · my-svd (folder)"
    assert not form.image_hint.isHidden() and "my-svd animates a picture" in form.image_hint.text()

    empty = tmp_path / "not-a-model"
    empty.mkdir()
    with qtbot.waitSignal(window.messageShown, timeout=CHECK_MS) as shown:
        _choose_other_folder(qtbot, window, monkeypatch, empty)
    assert shown.args[0] == "error"
    assert shown.args[1] == (
        f"Model folder not added: {empty} is neither a Kinemo model folder (config.json) "
        "nor a diffusers one (model_index.json)"
    )
    assert form.model == str(folder) and form.model_combo.findData(str(empty)) < 0


def test_download_shows_progress_then_the_model_is_on_disk(qtbot, hub_cache, window, monkeypatch, tmp_path):
    import engine.registry.hub

    gate, calls = threading.Event(), []

    def fake_pull(model, token=None, tqdm_class=None):
        calls.append((model.hub_id, token))
        bar = tqdm_class(total=2 * 10**9, unit="B", unit_scale=True, desc="Downloading")
        bar.update(6 * 10**8)
        while not gate.wait(0.01):
            bar.update(0)  # a stalled download still notices a cancel
        bar.update(14 * 10**8)
        bar.close()
        snapshot = hub_cache_with(hub_cache, model.hub_id, tmp_path)
        return snapshot, None

    monkeypatch.setattr(engine.registry.hub, "pull", fake_pull)
    form, panel = window.form, window.form.downloads
    form.prompt_edit.setPlainText(PROMPT)
    form.select_model(WAN)
    _wait_checked(qtbot, window, WAN)
    assert "· not downloaded · 28 GB" in _text(window, WAN)
    assert not panel.isHidden() and panel.download_button.text() == "Download (about 28 GB)"
    assert panel.progress_bar.isHidden()

    qtbot.mouseClick(panel.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.progress_bar.value() == 300, timeout=5000)
    assert panel.download_button.isHidden() and not panel.cancel_button.isHidden()
    assert panel.progress_bar.format() == f"{WAN}: 0.60 GB of 2.00 GB"
    window.generate()
    assert "still downloading" in window.message and not window.queue.busy

    with qtbot.waitSignal(panel.downloaded, timeout=10_000):
        gate.set()
    assert calls == [(catalog()[WAN].hub_id, None)]
    assert _text(window, WAN).startswith("Wan · wan2.1-t2v-1.3b · on disk · 28 GB")
    assert panel.isHidden() and window.message == f"{WAN} is on disk"


def test_a_failed_download_says_why_and_a_cancelled_one_stops(qtbot, hub_cache, window, monkeypatch):
    import engine.registry.hub

    def failing_pull(model, token=None, tqdm_class=None):
        raise ModelLoadError("stabilityai/stable-video-diffusion-img2vid is gated: accept its licence first")

    monkeypatch.setattr(engine.registry.hub, "pull", failing_pull)
    panel = window.form.downloads
    window.form.select_model("svd")
    _wait_checked(qtbot, window, "svd")
    assert "gated" in panel.download_button.toolTip()
    with qtbot.waitSignal(panel.failed, timeout=10_000):
        qtbot.mouseClick(panel.download_button, Qt.MouseButton.LeftButton)
    assert (
        window.message
        == "Download failed: stabilityai/stable-video-diffusion-img2vid is gated: accept its licence first"
    )
    assert window.message_label.property("level") == "error"
    assert not panel.download_button.isHidden() and panel.progress_bar.isHidden()

    updates = []

    def endless_pull(model, token=None, tqdm_class=None):
        bar = tqdm_class(total=10**6, unit="B")
        while True:
            bar.update(1000)  # raises once the user cancels
            updates.append(1000)
            time.sleep(0.005)

    monkeypatch.setattr(engine.registry.hub, "pull", endless_pull)
    qtbot.mouseClick(panel.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.progress_bar.value() > 0, timeout=5000)
    with qtbot.waitSignal(panel.cancelled, timeout=10_000):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    stopped_at = len(updates)
    qtbot.wait(50)
    assert len(updates) == stopped_at, "the download thread stopped"
    assert "cancelled; the files that arrived whole are kept" in window.message
    assert not panel.download_button.isHidden() and panel.progress_bar.isHidden()
    assert "not downloaded · 4.2 GB" in _text(window, "svd")


def test_the_meter_counts_each_byte_once_across_repositories():
    meter = DownloadMeter()
    bar_class = progress_tqdm(meter)
    files = bar_class(total=3, unit="it")  # huggingface-hub's file counter: not bytes
    transfer, written = bar_class(total=0, unit="B"), bar_class(total=0, unit="B")  # the same bytes, twice
    assert meter.progress() == (0, 0)
    written.total, transfer.total = 800, 800
    written.update(500)
    transfer.update(500)
    files.update(1)
    assert meter.progress() == (500, 800)
    written.update(300)
    adapter = bar_class(total=200, unit="B", initial=50)  # the next repository, resumed
    assert meter.progress() == (850, 1000)
    adapter.update(150)
    assert meter.progress() == (1000, 1000)
    meter.cancel()
    with pytest.raises(ModelLoadError, match="cancelled"):
        adapter.update(1)


@pytest.fixture
def thread_window(qtbot, data_dir, monkeypatch):
    """A window whose engine runs in this process (the tiny pipeline is built here)."""
    from app.studio.app import ensure_application
    from app.studio.engine_client import ThreadEngine
    from app.studio.main_window import MainWindow

    monkeypatch.setenv("KINEMO_ENGINE", "thread")
    ensure_application()
    window = MainWindow(engine=ThreadEngine())
    qtbot.addWidget(window)
    return window


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_generate_with_a_diffusers_folder(qtbot, thread_window, build, case, monkeypatch, data_dir, tmp_path):
    window, form = thread_window, thread_window.form
    folder = build(case)
    with qtbot.waitSignal(window.messageShown, timeout=CHECK_MS):
        _choose_other_folder(qtbot, window, monkeypatch, folder)
    assert form.model == str(folder)
    if case.family == "animatediff":
        assert form.frames_spin.value() == 16 and form.guidance_spin.value() == 7.5, "AnimateDiff's defaults"
    if case.image_to_video:
        form.drop_zone.set_image(str(gradient_picture(tmp_path / "first.png")))
        qtbot.waitUntil(lambda: bool(form.drop_zone.image_path) and not form.drop_zone.checking, timeout=CHECK_MS)
    elif case.family != "ltx" and not any(c.build is case.build and c.image_to_video for c in CASES):
        assert form.image_hint.text().endswith("is text-to-video only: a picture is not used.")
    form.prompt_edit.setPlainText("a fox runs through the snow")
    for spin, value in (
        (form.steps_spin, 2),
        (form.frames_spin, case.frames),
        (form.width_spin, case.size),
        (form.height_spin, case.size),
        (form.guidance_spin, 2.0),
        (form.seed_spin, 5),
        (form.fps_spin, case.fps),
    ):
        spin.setValue(value)
    steps = []
    window.queue.jobProgress.connect(lambda job, step, total, elapsed: steps.append((step, total)))

    saved, failures = [], []
    window.queue.jobSaved.connect(lambda job, result: saved.append(result))
    window.queue.jobFailed.connect(lambda job, exc: failures.append(exc))
    qtbot.mouseClick(window.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(saved or failures), timeout=JOB_TIMEOUT_MS)
    assert not failures, window.message
    qtbot.waitUntil(lambda: not window.queue.busy)
    result = saved[0]
    assert steps == [(1, 2), (2, 2)]
    assert result.frames.shape == (case.frames, case.size, case.size, 3) and result.frames.std() > 1
    assert window.player.frame_count == case.frames and window.history_list.count() == 1
    assert "Done" in window.message
    record = read_record(result.entry.clip_path)["request"]
    assert (record["model"], record["frames"], record["steps"], record["seed"]) == (str(folder), case.frames, 2, 5)
    assert bool(record["image"]) == case.image_to_video
    assert Path(result.entry.clip_path).parent == data_dir / "history"
    picture = Path(record["image"]) if case.image_to_video else None
    expected = direct_frames(case, folder, "a fox runs through the snow", picture, seed=5, steps=2)
    assert np.abs(result.frames.astype(int) - expected.astype(int)).max() <= 1, "the direct diffusers call's frames"


def test_fast_switches_to_the_distilled_model_and_back(qtbot, hub_cache, window):
    form = window.form
    form.select_model("animatediff-v1-5-3")
    assert form.fast_check.isEnabled() and not form.fast_check.isChecked()
    form.fast_check.setChecked(True)
    assert form.model == "animatediff-lightning-4step"
    assert form.steps_spin.value() == 4 and form.guidance_spin.value() == 1.0, "Lightning's own schedule"
    form.fast_check.setChecked(False)
    assert form.model == "animatediff-v1-5-3" and form.steps_spin.value() == 25
    form.select_model(WAN)
    assert not form.fast_check.isEnabled() and "no distilled version" in form.fast_check.toolTip()


def test_a_long_clip_keeps_its_finished_windows_on_screen(qtbot, window):
    from app.studio.job_queue import Job
    from engine.api.request import GenerationRequest

    job = Job(GenerationRequest(PROMPT, frames=40))
    window.job_view.on_started(job)
    first = np.zeros((16, 8, 8, 3), np.uint8)
    window.job_view.on_frames(job, 0, first)
    window.job_view.on_preview(job, 26, np.full((8, 8, 8, 3), 200, np.uint8))  # the second window, being made
    assert window.player.frame_count == 24
    window.job_view.on_frames(job, 16, np.ones((8, 8, 8, 3), np.uint8))
    window.job_view.on_preview(job, 51, np.full((8, 8, 8, 3), 100, np.uint8))
    assert window.player.frame_count == 32
