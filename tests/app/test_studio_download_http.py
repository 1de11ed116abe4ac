"""The model picker's Download button pulls a hub model over real HTTP (no fake of pull): progress, cancel, done."""

import threading

import pytest
from hub_server import serve_hub
from PySide6.QtCore import Qt
from tiny_diffusers.cases import CASES

REPO = "tiny-org/wan"
WAN = next(case for case in CASES if case.name == "wan-t2v")
CHECK_MS = 30_000  # the first check imports huggingface-hub on a worker thread
DOWNLOAD_MS = 15_000


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("KINEMO_ENGINE", "thread")  # one process: the engine sees the loopback hub too
    with serve_hub(tmp_path, monkeypatch) as server:
        yield server


def _text(window, model):
    combo = window.form.model_combo
    return combo.itemText(combo.findData(model))


def test_download_shows_progress_can_be_cancelled_and_then_completes(qtbot, hub, build, window, request):
    repo = hub.add_repo(REPO, build(WAN))
    largest = repo.largest
    held, release = threading.Event(), threading.Event()
    request.addfinalizer(release.set)  # a failing test does not leave a server thread waiting

    def hold():  # the largest file's bytes wait on the server until the user has pressed Cancel
        held.set()
        release.wait(10)

    hub.on_get(REPO, largest.path, hold)
    form, panel = window.form, window.form.downloads
    form.select_model(REPO)
    qtbot.waitUntil(lambda: form.model_picker.is_checked(REPO), timeout=CHECK_MS)
    assert _text(window, REPO).startswith("Hub model · tiny-org/wan")
    assert not panel.isHidden() and not panel.download_button.isHidden() and panel.progress_bar.isHidden()

    qtbot.mouseClick(panel.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(held.is_set, timeout=DOWNLOAD_MS)
    # the other files' bytes reached the window's bar through DownloadMeter (polled on the UI thread);
    # huggingface-hub adds a file's size to its total only when the file's GET answers, so the bar may
    # stand at 100% of what it knows while the held file waits
    qtbot.waitUntil(lambda: panel.progress_bar.maximum() == 1000 and panel.progress_bar.value() > 0, timeout=5000)
    assert panel.progress_bar.format().startswith(f"{REPO}: ")
    assert panel.download_button.isHidden() and not panel.cancel_button.isHidden()

    with qtbot.waitSignal(panel.cancelled, timeout=DOWNLOAD_MS):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
        release.set()  # the bytes arrive; the first progress update after Cancel stops the download
    assert "cancelled; the files that arrived whole are kept" in window.message
    assert not panel.download_button.isHidden() and panel.progress_bar.isHidden()
    snapshot = hub.cache / "models--tiny-org--wan" / "snapshots" / repo.sha
    assert not (snapshot / largest.path).exists()

    with qtbot.waitSignal(panel.downloaded, timeout=DOWNLOAD_MS):
        qtbot.mouseClick(panel.download_button, Qt.MouseButton.LeftButton)
    assert (snapshot / largest.path).read_bytes() == largest.data
    assert [r.range for r in hub.gets(REPO, largest.path)] == [None, None]  # the unfinished file from byte 0
    assert window.message == f"{REPO} is on disk"
    qtbot.waitUntil(lambda: _text(window, REPO) == f"Wan · {REPO} · on disk", timeout=CHECK_MS)
    assert panel.isHidden()
