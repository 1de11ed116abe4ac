"""An unusable cache folder is one line that says what to do, for int8 weights and ONNX graphs alike."""

import os
import subprocess

import pytest

from engine.api.errors import ModelLoadError
from engine.api.request import GenerationRequest
from engine.api.run_options import RunOptions
from engine.backends.bundled import BundledBackend


def _unusable(tmp_path, monkeypatch, how):
    folder = tmp_path / "cache"
    if how == "a file in its place":
        folder.write_text("not a folder")
    monkeypatch.setenv("KINEMO_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def read_only_folder(tmp_path):
    """An empty folder nobody can write into: a read-only tmpfs as root (root ignores permission bits), else a
    folder without write permission."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o500)
        yield folder
        folder.chmod(0o700)
        return
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True
    ).returncode:
        pytest.skip("root here cannot mount a read-only tmpfs")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def test_a_read_only_cache_folder_is_one_line(tiny_model_dir, read_only_folder, monkeypatch):
    monkeypatch.setenv("KINEMO_CACHE_DIR", str(read_only_folder))
    with pytest.raises(ModelLoadError, match="cache folder .* cannot be used"):
        BundledBackend(tiny_model_dir, RunOptions(quantize="int8")).load()


@pytest.mark.parametrize("options", [dict(quantize="int8"), dict(onnx_temporal=True)])
def test_a_file_in_place_of_the_cache_folder_is_one_line(tiny_model_dir, tmp_path, monkeypatch, options):
    _unusable(tmp_path, monkeypatch, "a file in its place")
    request = GenerationRequest("a red circle", steps=1, frames=2)
    with pytest.raises(ModelLoadError) as failure:
        list(BundledBackend(tiny_model_dir, RunOptions(**options)).generate(request))
    message = str(failure.value)
    assert "\n" not in message and "KINEMO_CACHE_DIR" in message and "cannot be used" in message
