import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture
def tiny_model_dir(tmp_path):
    """A real KinemoDiT with a tiny random config, saved in the bundled model's layout."""
    import torch

    from engine.model_files import save_model
    from engine.models.kinemo_dit import KinemoConfig, KinemoDiT

    torch.manual_seed(0)
    model = KinemoDiT(KinemoConfig(dim=16, depth=1, heads=2, text_dim=16, text_depth=1))
    for p in model.parameters():  # zero-initialised output layers would make every clip flat
        torch.nn.init.normal_(p, std=0.05)
    folder = tmp_path / "tiny-model"
    save_model(model, folder)
    return folder
