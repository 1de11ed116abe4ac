import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from tiny_models import save_tiny_model  # noqa: E402


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
def tiny_model_dir(tmp_path):
    return save_tiny_model(tmp_path / "tiny-model")
