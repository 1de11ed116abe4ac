import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from tiny_models import save_tiny_model  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Tests marked gpu need CUDA: they are skipped, saying so, where torch sees none (CI has no GPU)."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if not torch.cuda.is_available():
        for item in gpu_tests:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU (marker gpu)"))


@pytest.fixture(scope="session", autouse=True)
def kinemo_cache_dir(tmp_path_factory):
    """Derived files (int8 weights, ONNX graphs) go to a private folder, never the user's cache."""
    folder = tmp_path_factory.mktemp("kinemo-cache")
    previous = os.environ.get("KINEMO_CACHE_DIR")
    os.environ["KINEMO_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("KINEMO_CACHE_DIR", None)
    else:
        os.environ["KINEMO_CACHE_DIR"] = previous


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty cache folder of the test's own (int8 weights, ONNX graphs)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("KINEMO_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def tiny_model_dir(tmp_path):
    return save_tiny_model(tmp_path / "tiny-model")


@pytest.fixture(scope="session")
def build(tmp_path_factory):
    """Tiny diffusers folders (tests/tiny_diffusers), built once per session and case builder."""
    built = {}

    def get(case):
        if case.build not in built:
            built[case.build] = case.build(tmp_path_factory.mktemp(case.name))
        return built[case.build]

    return get


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty huggingface-hub cache folder, offline."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache
