"""The wheel is the product: built from this tree and installed without it, it generates from any folder."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel, installed into a folder of its own (its dependencies come from this environment)."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(work), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    wheel = next(work.glob("kinemo-*.whl"))
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target", str(target), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return wheel, target


def _run(target, folder, *args):
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("KINEMO_ASSETS", None)
    return subprocess.run([sys.executable, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_the_wheel_carries_the_bundled_models(installed):
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    for model in ("kinemo-starter", "kinemo-starter-fast", "kinemo-camera"):
        for name in ("model.safetensors", "config.json", "MODEL_CARD.md"):
            assert f"kinemo_assets/{model}/{name}" in names
    assert "engine/registry/catalog.json" in names


def test_the_installed_wheel_generates_from_another_folder(installed, tmp_path):
    _, target = installed
    where = _run(target, tmp_path, "-c", "import engine, kinemo_assets; print(engine.__file__, kinemo_assets.__file__)")
    assert where.returncode == 0, where.stderr
    assert all(path.startswith(str(target)) for path in where.stdout.split()), where.stdout  # not the source tree
    made = _run(
        target, tmp_path, "-m", "app.cli", "generate", "a red circle moves right on a black background",
        "-o", "clip.mp4", "--steps", "4", "--frames", "8", "--width", "64", "--height", "64",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "clip.mp4").stat().st_size > 0
    info = _run(target, tmp_path, "-m", "app.cli", "info", "clip.mp4")
    assert json.loads(info.stdout)["request"]["model"] == "kinemo-starter"
