"""The studio's creative controls: the LoRA list, prompt changes, the last-frame picture, the video to re-render
and Extend, from the widgets to the request, back from a history entry or a clip, and kept across restarts."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from studio_helpers import JOB_TIMEOUT_MS, PROMPT, clip_frames, fill_request

from app.studio.engine_host import InputsRead
from app.studio.main_window import MainWindow
from engine.api.controls import LoraWeight, PromptChange
from engine.api.errors import InvalidRequest
from engine.api.events import Finished, Frames
from engine.api.request import GenerationRequest
from engine.util.files import file_sha256


def safetensors_file(folder, name="style.safetensors"):
    """A file named like a LoRA: the panel checks the name and that it exists; the engine reads the weights."""
    path = folder / name
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    return str(path)


def picture(folder, name, colour):
    path = folder / name
    Image.new("RGB", (64, 64), colour).save(path)
    return str(path)


class RecordingEngine:
    """Records each request; yields the request as read, then a clip (an extension: the clip's frames first)."""

    def __init__(self, fail_with=None):
        self.requests = []
        self.fail_with = fail_with

    def start(self, warm=False):
        pass

    def shutdown(self, timeout=2.0):
        pass

    def generate(self, request, should_stop=None, options=None):
        self.requests.append(request)
        if self.fail_with is not None:
            raise self.fail_with
        yield InputsRead(request.with_changes(extends_sha256="ab" * 32 if request.extends else None))
        old = 8 if request.extends else 0
        frames = clip_frames(old + request.frames, size=request.width)
        if old:
            yield Frames(0, frames[:old])
        yield Frames(old, frames[old:])
        yield Finished(len(frames), 0.1)


@pytest.fixture
def fake(qtbot, data_dir):
    engine = RecordingEngine()
    window = MainWindow(engine=engine)
    qtbot.addWidget(window)
    return window, engine


# -- LoRAs ------------------------------------------------------------------------------------------------
def test_the_lora_list_goes_into_the_request(qtbot, window, tmp_path):
    form, panel = window.form, window.form.loras
    form.prompt_edit.setPlainText(PROMPT)
    assert panel.empty_label.isVisibleTo(window) and form.request().loras == ()
    path = safetensors_file(tmp_path)
    assert panel.add_file(path)
    assert panel.add("owner/motion-lora/pytorch_lora_weights.safetensors", 0.5)
    panel.rows[0].scale_spin.setValue(-1.25)
    assert form.request().loras == (
        LoraWeight(path, -1.25),
        LoraWeight("owner/motion-lora/pytorch_lora_weights.safetensors", 0.5),
    )
    assert not panel.empty_label.isVisibleTo(window)

    panel.rows[0].enabled_check.click()  # disabled: left out
    assert not panel.rows[0].scale_spin.isEnabled(), "a switched-off row looks switched off"
    assert [lora.source for lora in form.request().loras] == ["owner/motion-lora/pytorch_lora_weights.safetensors"]
    panel.rows[0].enabled_check.setChecked(True)
    assert len(form.request().loras) == 2

    assert not panel.add(path), "the same LoRA twice"
    assert "in the list already" in window.message
    qtbot.mouseClick(panel.rows[1].remove_button, Qt.MouseButton.LeftButton)
    assert form.request().loras == (LoraWeight(path, -1.25),)
    assert panel.rows[0].scale_spin.minimum() == -4 and panel.rows[0].scale_spin.maximum() == 4


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("style.pt", "pickled weights (pt) can run code when read"),
        ("style.ckpt", "pickled weights (ckpt)"),
        ("style.bin", "pickled weights (bin)"),
        ("notes.txt", "not a .safetensors file"),
        ("missing.safetensors", "no such file"),
    ],
)
def test_a_lora_that_is_not_safetensors_is_refused_in_one_line(window, tmp_path, name, says):
    window.form.prompt_edit.setPlainText(PROMPT)
    path = tmp_path / name
    if name != "missing.safetensors":
        path.write_bytes(b"\x80\x02}q\x00.")  # a pickle
    assert not window.form.loras.add_file(str(path))
    assert says in window.message and "\n" not in window.message
    assert window.message_label.property("level") == "error"
    assert window.form.loras.error_label.text() == window.message
    assert window.form.loras.rows == [] and window.form.request().loras == ()


def test_the_hub_cache_menu_lists_the_cached_loras(qtbot, window, monkeypatch):
    from engine.registry import loras

    monkeypatch.setattr(loras, "cached_loras", lambda: ["owner/anime-lora/anime.safetensors"])
    panel = window.form.loras
    window.form.prompt_edit.setPlainText(PROMPT)
    assert [a.text() for a in panel.hub_menu.actions()] == ["No LoRAs in the hub cache"]
    panel.refresh_cached()  # what opening the menu does
    assert not panel.hub_menu.actions()[-1].isEnabled()  # "Looking…" while the worker lists them
    qtbot.waitUntil(lambda: not panel.listing)
    action = panel.hub_menu.actions()[0]
    assert action.text() == "owner/anime-lora/anime.safetensors"
    action.trigger()
    assert window.form.request().loras == (LoraWeight("owner/anime-lora/anime.safetensors"),)


# -- prompt changes ---------------------------------------------------------------------------------------
def test_prompt_changes_go_into_the_request_and_come_back(qtbot, window):
    form, changes = window.form, window.form.controls.prompt_changes
    form.prompt_edit.setPlainText(PROMPT)
    form.frames_spin.setValue(16)
    qtbot.mouseClick(changes.add_button, Qt.MouseButton.LeftButton)
    assert changes.rows[0].frame_spin.value() == 8, "halfway through the clip"
    changes.rows[0].prompt_edit.setText("a blue square moves left")
    qtbot.mouseClick(changes.add_button, Qt.MouseButton.LeftButton)
    changes.rows[1].frame_spin.setValue(4)
    changes.rows[1].prompt_edit.setText("a green circle")
    request = form.request()
    assert request.prompt_changes == (PromptChange(4, "a green circle"), PromptChange(8, "a blue square moves left"))

    form.set_request(GenerationRequest(PROMPT, frames=16))
    assert changes.rows == [] and form.request().prompt_changes == ()
    form.set_request(request)
    assert form.request().prompt_changes == request.prompt_changes


def test_a_prompt_change_outside_the_clip_is_refused_before_queueing(window):
    form = window.form
    form.prompt_edit.setPlainText(PROMPT)
    form.frames_spin.setValue(16)
    form.controls.prompt_changes.add(20, "too late")
    window.generate()
    assert not window.queue.busy and "frame 20 is outside the clip" in window.message
    form.controls.prompt_changes.rows[0].prompt_edit.setText("")
    form.controls.prompt_changes.rows[0].frame_spin.setValue(5)
    window.generate()
    assert "the prompt change at frame 5 is empty" in window.message


# -- the last frame ---------------------------------------------------------------------------------------
def test_the_last_frame_zone_needs_a_first_picture_and_goes_into_the_request(qtbot, window, tmp_path):
    form, controls = window.form, window.form.controls
    form.prompt_edit.setPlainText(PROMPT)
    assert not controls.last_frame_box.isVisibleTo(window), "no first picture: no last one"
    first, last = picture(tmp_path, "first.png", "red"), picture(tmp_path, "last.png", "blue")
    with qtbot.waitSignal(form.drop_zone.imageChanged):
        form.drop_zone.set_image(first)
    assert controls.last_frame_box.isVisibleTo(window)
    with qtbot.waitSignal(controls.last_zone.imageChanged):
        controls.last_zone.set_image(last)
    request = form.request()
    assert (request.image, request.last_image) == (first, last)
    assert request.last_image_sha256 == file_sha256(last)

    with qtbot.waitSignal(form.drop_zone.imageChanged):
        form.drop_zone.clear()
    assert not controls.last_frame_box.isVisibleTo(window)
    assert form.request().last_image is None, "a last frame goes only with a first one"

    with qtbot.waitSignal(controls.last_zone.refused):
        controls.last_zone.set_image(str(tmp_path / "nothing.png"))
    assert window.message.startswith("Last-frame picture refused:")


def test_an_engine_that_cannot_end_on_a_picture_says_so_in_one_line(qtbot, data_dir, tmp_path):
    engine = RecordingEngine(fail_with=InvalidRequest("kinemo-starter cannot end on a picture: drop the last frame"))
    window = MainWindow(engine=engine)
    qtbot.addWidget(window)
    form = window.form
    form.prompt_edit.setPlainText(PROMPT)
    with qtbot.waitSignal(form.drop_zone.imageChanged):
        form.drop_zone.set_image(picture(tmp_path, "first.png", "red"))
    with qtbot.waitSignal(form.controls.last_zone.imageChanged):
        form.controls.last_zone.set_image(picture(tmp_path, "last.png", "blue"))
    with qtbot.waitSignal(window.queue.jobFailed):
        window.generate()
    assert engine.requests[0].last_image.endswith("last.png")
    assert window.message == "Generation failed: kinemo-starter cannot end on a picture: drop the last frame"
    assert window.message_label.property("level") == "error"


# -- video to video ---------------------------------------------------------------------------------------
def plain_video(path, frames=6):
    import imageio_ffmpeg

    writer = imageio_ffmpeg.write_frames(str(path), (64, 64), fps=8, macro_block_size=1)
    writer.send(None)
    for frame in clip_frames(frames, size=64):
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return str(path)


def test_a_video_dropped_on_the_window_is_re_rendered_with_its_strength(qtbot, window, tmp_path):
    form, video = window.form, window.form.controls.video
    form.prompt_edit.setPlainText(PROMPT)
    path = plain_video(tmp_path / "holiday.mp4")
    with qtbot.waitSignal(video.videoChanged, timeout=30_000):
        window.open_path(path)  # no Kinemo record: the video to re-render
    assert "holiday.mp4 has no Kinemo settings" in window.message
    assert "6 frames" in video.caption.text()
    assert (form.width_spin.value(), form.height_spin.value()) == (64, 64), "the clip takes the video's size"
    video.strength_slider.setValue(35)
    assert video.strength_spin.value() == pytest.approx(0.35)
    request = form.request()
    assert (request.video, request.strength) == (path, 0.35)

    form.set_request(GenerationRequest(PROMPT))
    assert video.video_path is None and form.request().video is None
    with qtbot.waitSignal(video.videoChanged, timeout=30_000):
        form.set_request(request)
    assert (form.request().video, form.request().strength) == (path, 0.35)

    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(b"not a video")
    with qtbot.waitSignal(video.refused, timeout=30_000):
        video.set_video(str(garbage))
    assert window.message.startswith("Video refused: broken.mp4 is not a video") and video.video_path == path


# -- restoring and keeping --------------------------------------------------------------------------------
def test_a_history_entry_and_its_clip_restore_every_control(qtbot, fake, tmp_path):
    window, _ = fake
    lora = safetensors_file(tmp_path)
    first, last = picture(tmp_path, "first.png", "red"), picture(tmp_path, "last.png", "blue")
    request = GenerationRequest(
        PROMPT,
        frames=8,
        width=64,
        height=64,
        image=first,
        last_image=last,
        loras=(LoraWeight(lora, 0.7, file_sha256(lora)), LoraWeight("owner/motion-lora", -0.5)),
        prompt_changes=(PromptChange(4, "a blue square"),),
        strength=0.4,
    )
    entry = window.history.save(request, clip_frames(8), 1.0)
    window.history_panel.add(entry)
    with qtbot.waitSignal(window.settingsRestored, timeout=30_000):
        window.history_panel.restore(entry)
    controls = window.form.controls
    qtbot.waitUntil(lambda: controls.last_zone.image_path == last and not window.form.drop_zone.checking)
    shown = window.form.request()
    assert shown.loras == (LoraWeight(lora, 0.7), LoraWeight("owner/motion-lora", -0.5))
    assert (shown.prompt_changes, shown.strength, shown.last_image) == (request.prompt_changes, 0.4, last)

    window.form.set_request(GenerationRequest(PROMPT))
    assert window.form.request().loras == ()
    with qtbot.waitSignal(window.settingsRestored, timeout=30_000):
        window.open_path(str(entry.clip_path))  # the clip's embedded record
    qtbot.waitUntil(lambda: not window.form.drop_zone.checking and not controls.last_zone.checking)
    assert window.form.request().loras == shown.loras
    assert window.form.request().prompt_changes == request.prompt_changes


def test_the_controls_are_kept_across_restarts(qtbot, make_window, tmp_path):
    first = make_window()
    lora = safetensors_file(tmp_path)
    first.form.loras.add_file(lora)
    first.form.loras.add("owner/motion-lora", 2.5, enabled=False)
    first.form.controls.prompt_changes.add(3, "a blue square")
    first.form.controls.video.set_strength(0.3)
    first.close()

    second = make_window()
    rows = second.form.loras.rows
    assert [(r.source, r.weight.scale, r.enabled) for r in rows] == [
        (lora, 1.0, True),
        ("owner/motion-lora", 2.5, False),
    ]
    assert second.form.controls.prompt_changes.changes() == (PromptChange(3, "a blue square"),)
    assert second.form.controls.video.strength == 0.3
    assert second.message == ""


def test_bad_saved_lora_data_is_dropped_with_a_message(make_window, data_dir, tmp_path):
    data_dir.mkdir(parents=True)
    good = {"source": "owner/motion-lora", "scale": 0.5, "enabled": True}
    rows = [
        good,
        {"source": "evil.pt", "scale": 1.0, "enabled": True},
        {"source": "owner/big", "scale": 9.0, "enabled": True},
        {"source": "owner/odd", "scale": 1.0},
        "not a row",
        good,
    ]
    request = {"prompt": PROMPT, "loras": [{"source": "x.ckpt"}], "prompt_changes": [{"frame": "2", "prompt": "x"}]}
    settings = {"form": {"lora_rows": rows, "request": request | {"strength": 0}}}
    (data_dir / "settings.json").write_text(json.dumps(settings))
    window = make_window()
    assert [r.source for r in window.form.loras.rows] == ["owner/motion-lora"]
    assert window.form.request().prompt == PROMPT, "the good fields are kept"
    for name in ("form.lora_rows[1]", "form.request.loras", "form.request.prompt_changes"):
        assert name in window.message
    assert window.message.startswith("Settings that could not be read were reset")


# -- Extend -----------------------------------------------------------------------------------------------
def test_extend_queues_the_continuation_and_the_history_holds_the_whole_clip(qtbot, fake, tmp_path):
    window, engine = fake
    messages = []
    window.messageShown.connect(lambda level, text: messages.append(text))
    base = GenerationRequest(
        PROMPT,
        model="kinemo-starter",
        frames=8,
        fps=12,
        width=64,
        height=64,
        seed=77,
        loras=(LoraWeight("owner/motion-lora", 0.5),),
        prompt_changes=(PromptChange(5, "a blue square moves left"),),
    )
    entry = window.history.save(base, clip_frames(8), 1.0)
    window.history_panel.add(entry)
    with qtbot.waitSignal(window.queue.jobSaved, timeout=JOB_TIMEOUT_MS) as saved:
        job = window.history_panel.extend(entry, frames=6)
    extension = job.request
    assert extension.extends == str(entry.clip_path) and extension.frames == 6
    assert (extension.model, extension.seed, extension.fps, extension.width, extension.height) == (
        "kinemo-starter",
        77,
        12,
        64,
        64,
    )
    assert extension.prompt == "a blue square moves left" and extension.prompt_changes == ()
    assert job.label.endswith(f"+6 frames to {entry.clip_path.name}")
    assert extension.loras == base.loras and f"Queued: {entry.clip_path.name} extended by 6 frames" in messages

    result = saved.args[1]
    assert result.frames.shape[0] == 14 and result.entry.frame_count == 14
    assert result.request.extends_sha256 == "ab" * 32, "the history records the request as the engine read it"
    assert json.loads(result.entry.entry_path.read_text())["request"]["extends_sha256"] == "ab" * 32
    assert "14 f, 6 new" in window.history_list.item(0).text()
    assert window.player.frame_count == 14

    with qtbot.waitSignal(window.settingsRestored, timeout=30_000):
        window.history_panel.restore(result.entry)  # the extension's settings show what it continues
    assert window.form.controls.extends.isVisibleTo(window)
    assert window.form.request().extends == str(entry.clip_path)
    qtbot.mouseClick(window.form.controls.extends.clear_button, Qt.MouseButton.LeftButton)
    assert window.form.request().extends is None


def test_extend_asks_for_the_new_frames_and_can_be_cancelled(qtbot, fake, monkeypatch):
    from app.studio import extend

    window, engine = fake
    entry = window.history.save(GenerationRequest(PROMPT, frames=8, width=64, height=64), clip_frames(8), 1.0)
    asked = []
    monkeypatch.setattr(extend, "ask_frames", lambda parent, e: asked.append(e.frames))
    assert window.history_panel.extend(entry) is None and asked == [8]
    assert not window.queue.busy and engine.requests == []


def test_the_engine_process_fingerprints_every_input(tmp_path, monkeypatch):
    """The engine process reads the pictures and LoRA files and sends the request back with their SHA-256."""
    from app.studio import engine_host

    lora, first = safetensors_file(tmp_path), picture(tmp_path, "first.png", "red")
    sent = []

    class Conn:
        def send(self, message):
            sent.append(message)

        def poll(self, timeout=0.0):
            return False

    class Backend:  # a kept backend, as the engine process holds them: it has its run options
        options = engine_host_options()

        def generate(self, request, should_stop, memory):
            yield Finished(0, 0.0)

    request = GenerationRequest(PROMPT, image=first, loras=(LoraWeight(lora, 0.5),))
    options = engine_host_options()
    backends = {(request.model, *options.backend_key): Backend()}
    payload = {"request": request.to_dict(), "options": options.to_dict()}
    engine_host._run_job(Conn(), engine_host._Inbox(Conn()), backends, 1, payload)
    kind, job, read = sent[0]
    assert (kind, job) == ("inputs", 1)
    assert read["image_sha256"] == file_sha256(first)
    assert list(read["loras"]) == [{"source": lora, "scale": 0.5, "sha256": file_sha256(lora)}]
    assert sent[1][0] == "event"


def engine_host_options():
    from engine.api.run_options import RunOptions

    return RunOptions()


def test_a_lora_file_gone_since_fails_the_job_in_one_line_before_anything_loads(qtbot, window, tmp_path):
    fill_request(window, "kinemo-starter", frames=4)
    gone = safetensors_file(tmp_path)
    window.form.set_request(window.form.request().with_changes(loras=(LoraWeight(gone, 0.5),)))
    (tmp_path / "style.safetensors").unlink()
    with qtbot.waitSignal(window.queue.jobFailed, timeout=JOB_TIMEOUT_MS):
        window.generate()
    assert window.message.startswith(f"Generation failed: LoRA {gone}: no such file")
    assert "\n" not in window.message and window.history_list.count() == 0


def test_two_things_to_start_from_are_refused_in_the_studio_s_words(qtbot, window, tmp_path):
    form = window.form
    form.prompt_edit.setPlainText(PROMPT)
    with qtbot.waitSignal(form.drop_zone.imageChanged):
        form.drop_zone.set_image(picture(tmp_path, "first.png", "red"))
    with qtbot.waitSignal(form.controls.video.videoChanged, timeout=30_000):
        form.controls.video.set_video(plain_video(tmp_path / "holiday.mp4"))
    window.generate()
    assert not window.queue.busy
    assert window.message.startswith("a first-frame picture and a video to re-render do not combine")


BACKENDS = Path(__file__).resolve().parents[2] / "engine" / "backends"


@pytest.mark.skipif(
    not any("request.extends" in p.read_text() for p in BACKENDS.glob("bundled*.py")),
    reason="the bundled backend does not continue clips yet",
)
def test_extend_with_the_bundled_engine_makes_a_longer_history_clip(qtbot, window, tiny_model):
    fill_request(window, tiny_model, steps=2, frames=4)
    with qtbot.waitSignal(window.queue.jobSaved, timeout=JOB_TIMEOUT_MS) as first:
        window.generate()
    entry = first.args[1].entry
    with qtbot.waitSignal(window.queue.jobSaved, timeout=JOB_TIMEOUT_MS) as extended:
        window.history_panel.extend(entry, frames=4)
    result = extended.args[1]
    assert result.frames.shape[0] == 8 and result.entry.frame_count == 8
    assert np.array_equal(result.frames[:4].shape, first.args[1].frames.shape)
    assert result.request.extends_sha256 == file_sha256(entry.clip_path)


def test_garbage_is_collected_on_the_ui_thread_while_a_window_is_open(qtbot, make_window):
    """Worker threads never run the cyclic collector while a window is open (a Qt wrapper freed there can crash
    Shiboken 6.12); the window's timer collects instead, and closing it hands collection back."""
    import gc

    gc.enable()  # as a studio starts; the suite keeps the collector off between tests (tests/app/conftest.py)
    try:
        window = make_window()
        assert not gc.isenabled()
        garbage = [[]]
        garbage[0].append(garbage)  # a cycle only the collector frees
        del garbage
        window.collector.check()
        qtbot.waitUntil(lambda: gc.get_count()[0] < gc.get_threshold()[0], timeout=5_000)
        window.close()
        assert gc.isenabled()
    finally:
        gc.disable()


def test_a_long_lora_name_does_not_widen_the_form(qtbot, window):
    """lightx2v's LoRA names run to 50 characters: the row shortens them in the middle (whole in the tooltip)."""
    form = window.form
    before = form.minimumSizeHint().width()
    source = "lightx2v/Wan2.1-Distill-Loras/wan2.1_t2v_14b_lora_rank64_lightx2v_4step_with_a_longer_name.safetensors"
    assert form.loras.add(source)
    row = form.loras.rows[-1]
    assert "…" in row.enabled_check.text() and source in row.enabled_check.toolTip()
    assert form.minimumSizeHint().width() <= before
