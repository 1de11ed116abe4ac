"""The engine process: started as its own module (a caller's script never runs twice), and a start-up watchdog."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from studio_helpers import JOB_TIMEOUT_MS, fill_request

from app.studio import engine_client
from app.studio.engine_client import ProcessEngine
from app.studio.main_window import MainWindow

STARTER = Path(__file__).resolve().parents[2] / "assets" / "kinemo-starter" / "model.safetensors"

# no `if __name__ == "__main__":` on purpose: the engine process must not import this script again
UNGUARDED_SCRIPT = textwrap.dedent(
    """
    import os
    import sys

    import app
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    window = app.create_main_window()
    qt_app = QApplication.instance()
    QTimer.singleShot(int(sys.argv[1]), lambda: os._exit(3))  # a hang ends the run (in any process running this)
    outcome = []

    def saved(job, result):
        outcome.append(("saved", result.frames.shape))
        qt_app.quit()

    def failed(job, exc):
        outcome.append(("failed", str(exc)))
        qt_app.quit()

    window.queue.jobSaved.connect(saved)
    window.queue.jobFailed.connect(failed)
    form = window.form
    form.select_model("kinemo-starter")
    form.prompt_edit.setPlainText("a red circle moves right on a black background")
    form.steps_spin.setValue(2)
    form.frames_spin.setValue(4)
    form.width_spin.setValue(64)
    form.height_spin.setValue(64)
    window.generate()
    qt_app.exec()
    print(outcome)
    window.engine.shutdown()
    sys.exit(0 if outcome and outcome[0][0] == "saved" else 1)
    """
)


@pytest.mark.skipif(not STARTER.is_file(), reason="the starter model is not trained yet")
def test_a_script_without_a_main_guard_generates_and_exits(tmp_path, data_dir):
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED_SCRIPT)
    deadline_ms = JOB_TIMEOUT_MS * 2
    try:
        done = subprocess.run(
            [sys.executable, str(script), str(deadline_ms)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=deadline_ms / 1000 + 60,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the script hung: {exc.stderr}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "('saved', (4, 64, 64, 3))" in done.stdout


FAILING_START = "import sys; sys.stderr.write('engine refused: no GPU driver\\n'); sys.exit(1)"
SILENT_START = "import time; time.sleep(600)"


@pytest.mark.parametrize(
    "code, said", [(FAILING_START, "engine refused: no GPU driver"), (SILENT_START, "did not answer")]
)
def test_an_engine_that_does_not_start_is_an_error_and_generate_retries(
    qtbot, data_dir, tiny_model, monkeypatch, code, said
):
    monkeypatch.setattr(engine_client, "START_TIMEOUT_SECONDS", 2.0)
    monkeypatch.setattr(engine_client, "engine_command", lambda: [sys.executable, "-c", code])
    engine = ProcessEngine()
    window = MainWindow(engine=engine)
    qtbot.addWidget(window)
    try:
        fill_request(window, tiny_model, steps=2, frames=4)
        with qtbot.waitSignal(window.queue.jobFailed, timeout=JOB_TIMEOUT_MS):
            window.generate()
        qtbot.waitUntil(lambda: not window.queue.busy)
        assert "the engine process did not start" in window.message
        assert said in window.message
        assert not engine.running

        monkeypatch.undo()
        with qtbot.waitSignal(window.queue.jobSaved, timeout=JOB_TIMEOUT_MS):
            window.generate()
        assert engine.running
    finally:
        window.close()
        engine.shutdown()


def test_a_warm_up_that_fails_is_shown_in_the_window(qtbot, data_dir, monkeypatch):
    monkeypatch.setattr(engine_client, "engine_command", lambda: [sys.executable, "-c", FAILING_START])
    window = MainWindow(engine=ProcessEngine())
    qtbot.addWidget(window)
    with pytest.raises(engine_client.EngineStartFailed) as failure:
        window.engine.start(warm=True)
    window._on_warm_up_failed(failure.value)
    assert "the engine process did not start" in window.message and "no GPU driver" in window.message
    assert window.message_label.property("level") == "error"


def test_the_shared_engine_follows_kinemo_engine_as_it_is_now(monkeypatch):
    monkeypatch.setenv("KINEMO_ENGINE", "thread")
    assert isinstance(engine_client.shared_engine(), engine_client.ThreadEngine)
    monkeypatch.delenv("KINEMO_ENGINE")
    assert isinstance(engine_client.shared_engine(), ProcessEngine)
