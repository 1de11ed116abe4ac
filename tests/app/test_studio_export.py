"""Exporting the clip in the player: formats, remembered folder, no silent overwrite."""

import json

import pytest
from PySide6.QtWidgets import QDialog, QFileDialog
from studio_helpers import PROMPT, clip_frames

from app.studio.exporter import ExportDialog, next_free_path
from engine.api.request import GenerationRequest
from export import ExportSettings, read_record

REQUEST = GenerationRequest(PROMPT, seed=42, fps=8, width=96, height=64)


@pytest.fixture
def clip_window(window):
    window.set_clip(clip_frames(8), REQUEST)
    return window


def _export(qtbot, window, path, settings):
    with qtbot.waitSignal(window.exportFinished, timeout=60_000) as done:
        assert window.export_clip(path, settings)
    return done.args[0]


@pytest.mark.parametrize("fmt", ["mp4", "gif", "webm", "png"])
def test_each_format_exports_with_its_record(qtbot, clip_window, tmp_path, data_dir, fmt):
    written = _export(qtbot, clip_window, tmp_path / "clip", ExportSettings(fmt, 12, 128, 96, 70))
    expected = tmp_path / ("clip" if fmt == "png" else f"clip.{fmt}")
    assert written == str(expected)
    record = read_record(expected)
    assert record["request"]["seed"] == 42 and record["export"] == {"format": fmt, "quality": 70}
    if fmt == "png":
        assert sorted(p.name for p in expected.iterdir()) == [f"frame_{i:04d}.png" for i in range(8)] + ["kinemo.json"]
    assert "Exported" in clip_window.message
    remembered = json.loads((data_dir / "settings.json").read_text())["export"]
    assert remembered == {"folder": str(tmp_path), "format": fmt, "quality": 70}
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_an_existing_file_is_never_replaced_silently(qtbot, clip_window, tmp_path, monkeypatch):
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"precious")
    answers = []
    monkeypatch.setattr(clip_window, "ask_replace", lambda path, fmt: answers.pop(0))

    answers.append("cancel")
    assert not clip_window.export_clip(target, ExportSettings("mp4"))
    assert target.read_bytes() == b"precious" and "left as it was" in clip_window.message

    answers.append("rename")
    assert _export(qtbot, clip_window, target, ExportSettings("mp4")) == str(tmp_path / "clip-2.mp4")
    assert target.read_bytes() == b"precious"

    answers.append("replace")
    assert _export(qtbot, clip_window, target, ExportSettings("mp4")) == str(target)
    assert read_record(target)["request"]["prompt"] == PROMPT


def test_a_png_folder_in_use_gets_a_new_name(qtbot, clip_window, tmp_path, monkeypatch):
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep")
    monkeypatch.setattr(clip_window, "ask_replace", lambda path, fmt: "rename")
    assert _export(qtbot, clip_window, folder, ExportSettings("png")) == str(tmp_path / "frames-2")
    assert (folder / "mine.txt").read_text() == "keep"
    assert next_free_path(folder, "png").name == "frames-3"


def test_ctrl_e_asks_for_options_and_destination(qtbot, clip_window, tmp_path, monkeypatch):
    asked = {}

    def fake_save(parent, title, start, filters, options=None):
        asked["start"] = start
        return ("" if "start" in asked and len(asked) > 1 else str(tmp_path / "chosen.gif")), filters

    monkeypatch.setattr(
        ExportDialog,
        "exec",
        lambda self: (
            self.format_combo.setCurrentIndex(self.format_combo.findData("gif")),
            QDialog.DialogCode.Accepted,
        )[1],
    )
    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake_save)
    with qtbot.waitSignal(clip_window.exportFinished, timeout=60_000) as done:
        clip_window.open_export_dialog()
    assert done.args[0] == str(tmp_path / "chosen.gif")
    assert asked["start"].endswith("a-red-circle-moves-right-on-s42.gif")

    # the folder is remembered for the next export (that one is abandoned at the file dialog)
    asked["second"] = True
    clip_window.open_export_dialog()
    assert asked["start"].startswith(str(tmp_path))


def test_export_errors_show_in_the_window(clip_window, tmp_path):
    assert not clip_window.export_clip(tmp_path / "missing-folder" / "x.mp4", ExportSettings("mp4"))
    assert "does not exist" in clip_window.message and clip_window.message_label.property("level") == "error"


def test_nothing_to_export_yet(window):
    window.open_export_dialog()
    assert "Nothing to export" in window.message
