"""Text read from files is shown as written, never as HTML; a dropped clip's record is checked before any of it
is applied."""

import pytest
from PySide6.QtGui import Qt
from PySide6.QtWidgets import QLabel
from studio_helpers import clip_frames, drop

from app.studio.history import HistoryStore
from engine.api.request import GenerationRequest
from export import ExportSettings, make_record, write_clip

HTML = "<b>bold</b> <img src='/tmp/x.png'> <a href='http://example.com'>click</a>"


def _no_rich_text(window):
    """Every label that holds the HTML shows it as plain text; every tooltip that holds it escapes it."""
    for label in window.findChildren(QLabel):
        if "<b>" in label.text():
            assert label.textFormat() == Qt.TextFormat.PlainText, label.objectName()


def _tooltip_is_plain(tip):
    return not Qt.mightBeRichText(tip) or ("<b>" not in tip and "&lt;b&gt;" in tip)


def test_a_prompt_with_html_is_shown_as_text(qtbot, make_window, tiny_model):
    entry = HistoryStore().save(GenerationRequest(HTML, frames=4, width=64, height=64), clip_frames(4), 1.0)
    window = make_window()
    item = window.history_list.item(0)
    assert HTML[:20] in item.text().replace("\n", " ")
    assert _tooltip_is_plain(item.toolTip()) and "bold" in item.toolTip()

    window.queue.restore([(GenerationRequest(HTML, model=tiny_model), None)])
    queued = window.queue_list.item(0)
    assert _tooltip_is_plain(queued.toolTip()) and "bold" in queued.toolTip()

    with qtbot.waitSignal(window.settingsRestored, timeout=30_000):
        window.restore_history(window.history_panel.entries[entry.id])
    window.show_message("error", f"something about {HTML}")
    assert window.message == f"something about {HTML}"
    _no_rich_text(window)
    assert window.message_label.textFormat() == Qt.TextFormat.PlainText


def _clip_with_record(tmp_path, record):
    clip = tmp_path / "hostile.mp4"
    write_clip(clip, clip_frames(4), ExportSettings("mp4", 8, 64, 64), record)
    return clip


GOOD = GenerationRequest("from the clip", steps=31, seed=5, frames=4, width=64, height=64).to_dict()


@pytest.mark.parametrize(
    "request_fields",
    [{"image": 123}, {"image": {}}, {"image": ["a"]}, {"image_sha256": 7}, {"frames": "many"}, {"seed": -1}],
)
def test_a_dropped_clip_with_a_bad_field_changes_nothing(qtbot, window, tmp_path, request_fields):
    clip = _clip_with_record(tmp_path, make_record(GOOD | request_fields, {"format": "mp4"}))
    window.form.prompt_edit.setPlainText("my own prompt")
    window.form.steps_spin.setValue(9)
    shown = []
    window.messageShown.connect(lambda level, text: shown.append((level, text)))
    with qtbot.waitSignal(window.messageShown, timeout=30_000):
        drop(window, [clip])
    qtbot.wait(50)  # let any second message arrive
    assert len(shown) == 1 and shown[0][0] == "error" and "embedded settings are unusable" in shown[0][1]
    assert window.form.prompt_edit.toPlainText() == "my own prompt" and window.form.steps_spin.value() == 9


def test_a_dropped_clip_with_html_in_its_record_restores_as_text(qtbot, window, tmp_path):
    record = make_record(GOOD | {"prompt": HTML}, {"format": "mp4"}) | {"kinemo": "<b>9.9</b>"}
    clip = _clip_with_record(tmp_path, record)
    with qtbot.waitSignal(window.settingsRestored, timeout=30_000):
        drop(window, [clip])
    assert window.form.prompt_edit.toPlainText() == HTML
    assert "made by Kinemo <b>9.9</b>" in window.message
    _no_rich_text(window)


@pytest.mark.parametrize("record", [["a list"], {"request": "text"}, {"no": "request"}])
def test_a_record_of_the_wrong_shape_is_refused(qtbot, window, record):
    window.form.prompt_edit.setPlainText("my own prompt")
    window.clip_opener._on_record_read(("record", "odd.mp4", record))
    assert window.message_label.property("level") == "error" and "odd.mp4" in window.message
    assert window.form.prompt_edit.toPlainText() == "my own prompt"
