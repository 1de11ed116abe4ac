"""Fixtures for the studio tests: a private data folder, a tiny model, a window, drops."""

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """One tiny random model folder for the whole session (path str, usable as request.model)."""
    import torch

    from engine.model_files import save_model
    from engine.models.kinemo_dit import KinemoConfig, KinemoDiT

    torch.manual_seed(0)
    model = KinemoDiT(KinemoConfig(dim=16, depth=1, heads=2, text_dim=16, text_depth=1))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    folder = tmp_path_factory.mktemp("models") / "tiny-model"
    save_model(model, folder)
    return str(folder)


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
