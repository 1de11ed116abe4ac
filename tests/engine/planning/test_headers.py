"""The planner reads safetensors headers as defensively as the loader: every malformed one is one line."""

import json
import struct

import pytest

from engine.api.errors import KinemoError, ModelLoadError
from engine.api.request import GenerationRequest
from engine.backends.bundled import BundledBackend
from engine.planning.headers import read_header


def _file(path, header=None, length=None, raw=None):
    body = raw if raw is not None else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(body) if length is None else length) + body)
    return path


GOOD = {"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, "__metadata__": {"format": "pt"}}
DAMAGE = {
    "length 2**60": dict(header=GOOD, length=2**60),
    "header longer than the file": dict(header=GOOD, length=100 * 2**20),
    "bad JSON": dict(raw=b"{not json"),
    "a list": dict(header=[1, 2]),
    "a string shape": dict(header={"w": {"dtype": "F32", "shape": "2x3"}}),
    "a negative dimension": dict(header={"w": {"dtype": "F32", "shape": [-1]}}),
    "no dtype": dict(header={"w": {"shape": [1]}}),
    "deep nesting": dict(raw=b"[" * 100000 + b"]" * 100000),
    "invalid UTF-8": dict(raw=b'{"\xff": 1}'),
}


def test_good_header(tmp_path):
    assert read_header(_file(tmp_path / "a.safetensors", GOOD)) == {"w": ("F32", (2, 3))}


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_each_damaged_header_is_one_line_naming_the_file(tmp_path, name):
    path = _file(tmp_path / "w.safetensors", **DAMAGE[name])
    with pytest.raises(ModelLoadError) as failure:
        read_header(path)
    message = str(failure.value)
    assert "\n" not in message and str(path) in message and len(message) < 300


def test_a_four_byte_file(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ModelLoadError, match="too short"):
        read_header(path)


def test_a_bundled_model_with_damaged_weights_fails_in_one_line(tiny_model_dir):
    _file(tiny_model_dir / "model.safetensors", header=[1])
    with pytest.raises(KinemoError) as failure:
        list(BundledBackend(tiny_model_dir).generate(GenerationRequest("a red circle", steps=1, frames=2)))
    assert "\n" not in str(failure.value) and "model.safetensors" in str(failure.value)


def test_a_diffusers_folder_with_a_damaged_header_fails_in_one_line(build, tmp_path):
    import shutil

    from tiny_diffusers.cases import CASES

    from engine.backends.base import open_backend

    case = next(c for c in CASES if c.family == "animatediff")
    folder = tmp_path / "copy"
    shutil.copytree(build(case), folder)
    weights = next((folder / "unet").glob("*.safetensors"))
    _file(weights, header={"w": {"dtype": "F32", "shape": "oops"}})
    request = GenerationRequest("a fox", model=str(folder), frames=8, width=32, height=32, steps=1)
    with pytest.raises(KinemoError) as failure:
        list(open_backend(str(folder)).generate(request))
    assert "\n" not in str(failure.value) and "cannot load" in str(failure.value)
