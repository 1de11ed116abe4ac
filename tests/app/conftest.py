"""Fixtures for the studio tests: a private data folder, a tiny model, a window, drops."""

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session", autouse=True)
def collect_on_the_main_thread():
    """Python's cyclic collector runs on this (the Qt main) thread only, for the whole session, as the studio has it
    while a window is open (app.studio.main_thread_gc): between tests no window holds that policy, and a collection
    started by another thread's allocation (a worker's, a Ray or gRPC thread left by the cluster tests) that frees a
    closed window's Qt wrappers there can crash the process (a segfault, seen once in CI)."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    yield
    if enabled:
        gc.enable()


@pytest.fixture(autouse=True)
def collect_after_each_test():
    """What the collector would have freed during the test, freed here on the main thread."""
    import gc

    yield
    gc.collect()


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
