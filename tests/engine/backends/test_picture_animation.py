"""Animating a given picture: the camera model draws motion fields, the picture is rendered through them at the
output's full size, frame 0 being the picture itself."""

import numpy as np
import pytest
import torch
from PIL import Image

from engine.api.events import Finished, Frames, Loaded, MemoryNotice, Preview, Progress
from engine.api.request import GenerationRequest
from engine.backends.bundled import BundledBackend
from engine.backends.picture_motion import extends_beyond, frames_between, render
from engine.kinemo.camera_model import CameraConfig, CameraMotionModel
from engine.kinemo.vocabulary import PICTURE_MOVES, picture_move
from engine.training.camera_train import move_fields, save_camera_model
from engine.util.images import fit_to_size, size_for_picture

TINY = CameraConfig(grid=3, frames=8, dim=32, heads=2, depth=1, picture=16)


@pytest.fixture
def camera_dir(tmp_path):
    torch.manual_seed(0)
    folder = tmp_path / "camera"
    folder.mkdir()
    save_camera_model(CameraMotionModel(TINY), folder, {"steps": 0})
    return folder


@pytest.fixture
def picture(tmp_path):
    rng = np.random.default_rng(1)
    pixels = (rng.random((60, 100, 3)) * 255).astype(np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    return path, pixels


def test_a_camera_caption_over_a_picture_is_rendered_at_full_size(tiny_model_dir, camera_dir, picture):
    path, pixels = picture
    backend = BundledBackend(tiny_model_dir, camera_folder=camera_dir)
    request = GenerationRequest("the camera pans left", image=str(path), width=96, height=64, frames=12, steps=3)
    events = list(backend.generate(request))
    kinds = [type(e) for e in events]
    assert kinds[:2] == [Loaded, MemoryNotice] and kinds[-1] is Finished
    assert [e.step for e in events if isinstance(e, Progress)] == [1, 2, 3]
    assert all(e.frames.shape[1:] == (107, 160, 3) for e in events if isinstance(e, Preview))  # small, same aspect
    (frames,) = [e.frames for e in events if isinstance(e, Frames)]
    assert frames.shape == (12, 64, 96, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames[0], fit_to_size(pixels, 96, 64))  # frame 0 is the picture, whole detail
    assert events[-1].stats["camera_model"] is True


def test_object_prompts_and_missing_camera_models_go_to_the_pixel_model(tiny_model_dir, camera_dir, picture):
    path, _ = picture
    with_camera = BundledBackend(tiny_model_dir, camera_folder=camera_dir)
    without = BundledBackend(tiny_model_dir, camera_folder=None)
    object_request = GenerationRequest("a red circle moves right on a black background", image=str(path), steps=1)
    camera_request = GenerationRequest("the camera zooms in", image=str(path), steps=1)
    assert not with_camera.animates(object_request) and with_camera.animates(camera_request)
    assert not without.animates(camera_request)
    frames = [e.frames for e in without.generate(camera_request.with_changes(frames=4)) if isinstance(e, Frames)]
    assert frames[0].shape[1:3] == (64, 64)  # the pixel model's native frames


def test_a_camera_move_without_a_picture_says_what_it_does(tiny_model_dir):
    notices = BundledBackend(tiny_model_dir).notices(GenerationRequest("the camera pans up"))
    assert any("needs a picture" in n.message for n in notices)


def test_camera_captions_are_read_from_the_vocabulary():
    assert [picture_move(f"The camera {m}.") for m in PICTURE_MOVES] == list(PICTURE_MOVES)
    assert picture_move("the camera flies away") is None and picture_move("a red circle grows") is None


@pytest.mark.parametrize("move", ["pans left", "pans right", "pans up", "pans down", "zooms in", "zooms out"])
def test_rendered_moves_go_the_way_their_caption_says(move):
    y, x = np.mgrid[0:90, 0:160]
    pixels = np.stack([x * 255 // 159, y * 255 // 89, (x + y) % 256], -1).astype(np.uint8)
    fields = move_fields(move, 0.2 if move.startswith("pans") else 1.4, torch.linspace(0, 1, 5), grid=4)
    frames = render(pixels, fields)
    assert np.array_equal(frames[0], pixels)
    centre = frames[-1][45, 80].astype(int)  # what the last frame shows at its centre
    red, green = centre[0], centre[1]  # red grows with x, green with y in the picture
    if move == "pans left":
        assert red < pixels[45, 80, 0] - 20  # looking further left: smaller x
    elif move == "pans right":
        assert red > pixels[45, 80, 0] + 20
    elif move == "pans up":
        assert green < pixels[45, 80, 1] - 20
    elif move == "pans down":
        assert green > pixels[45, 80, 1] + 20
    corner = frames[-1][5, 5].astype(int)[0]
    if move == "zooms in":  # the corner shows what lay nearer the centre
        assert corner > pixels[5, 5, 0] + 10 and not extends_beyond(fields)
    if move == "zooms out":
        assert extends_beyond(fields)


def test_frames_between_keeps_the_ends_and_interpolates():
    fields = torch.stack([torch.full((2, 2, 2), float(i)) for i in range(4)])
    many = frames_between(fields, 7)
    assert many[0].eq(0).all() and many[-1].eq(3).all() and many[1].eq(0.5).all()


def test_output_sizes_follow_the_picture():
    assert size_for_picture(4000, 3000) == (512, 384)
    assert size_for_picture(1080, 1920) == (288, 512)
    assert size_for_picture(100, 60) == (100, 60)


@pytest.mark.parametrize(
    "prompt, routed",
    [("camera zooms in", True), ("the camera slowly pans left", True), ("the camera swoops dramatically", False)],
)
def test_camera_prompts_are_read_from_their_known_words_and_say_where_they_go(
    tiny_model_dir, camera_dir, picture, prompt, routed
):
    path, _ = picture
    backend = BundledBackend(tiny_model_dir, camera_folder=camera_dir)
    request = GenerationRequest(prompt, image=str(path), steps=1)
    assert backend.animates(request) == routed
    notices = [n.message for n in backend.notices(request)]
    assert any("goes to the pixel model" in m for m in notices) == (not routed)


def test_int8_and_onnx_say_they_do_not_apply_to_the_camera_model(tiny_model_dir, camera_dir, picture):
    from engine.api.run_options import RunOptions

    path, _ = picture
    backend = BundledBackend(tiny_model_dir, RunOptions(quantize="int8"), camera_folder=camera_dir)
    request = GenerationRequest("the camera pans up", image=str(path), steps=1)
    assert any("apply to the pixel model" in n.message for n in backend.notices(request))
    assert backend.plan(request).estimate.parts["libraries"] == 0  # nothing more is loaded for it
