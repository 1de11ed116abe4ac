"""Fixtures for the studio tests: a private data folder, a tiny model, a window, drops."""

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """One tiny random model folder for the whole session (path str, usable as request.model)."""
    from tiny_models import save_tiny_model

    return str(save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-model"))


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    folder = tmp_path / "kinemo-data"
    monkeypatch.setenv("KINEMO_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def make_window(qtbot, data_dir):
    """make_window() -> a new (unshown) main window on the test's data folder; closed after the test."""

    def make():
        import app

        window = app.create_main_window()
        qtbot.addWidget(window)
        return window

    return make


@pytest.fixture
def window(make_window):
    return make_window()
