import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import save_tiny_upscaler

from engine.api.errors import Cancelled, InvalidRequest
from engine.api.events import Finished, Frames, Loaded, MemoryNotice, Notice, Preview, Progress
from engine.api.request import GenerationRequest
from engine.backends.base import open_backend
from engine.backends.bundled import BundledBackend
from engine.backends.bundled_windows import resample_frames, widened


def _events(backend, request, **kw):
    return list(backend.generate(request, **kw))


def test_events_arrive_in_order_with_a_preview_per_step(tiny_model_dir):
    backend = BundledBackend(tiny_model_dir)
    events = _events(backend, GenerationRequest("a red circle grows on a black background", steps=3, frames=16))
    kinds = [type(e) for e in events]
    assert kinds[:2] == [Loaded, MemoryNotice]  # the plan comes right after loading, from every backend
    assert kinds[2:8] == [Progress, Preview] * 3
    assert kinds[-2:] == [Frames, Finished]
    frames = events[-2].frames
    assert frames.shape == (16, 64, 64, 3) and frames.dtype == np.uint8
    assert [e.step for e in events if isinstance(e, Progress)] == [1, 2, 3]


def test_same_request_gives_identical_frames_and_seed_changes_them(tiny_model_dir):
    backend = BundledBackend(tiny_model_dir)
    request = GenerationRequest("a blue square moves up on a gray background", steps=2, seed=5)
    a = _events(backend, request)[-2].frames
    b = _events(backend, request)[-2].frames
    c = _events(backend, request.with_changes(seed=6))[-2].frames
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_no_autograd_graph_is_built(tiny_model_dir):
    backend = BundledBackend(tiny_model_dir)
    backend.load()
    seen = []
    hook = backend.model.blocks[0].register_forward_hook(
        lambda m, i, o: seen.append(o.requires_grad or o.grad_fn is not None)
    )
    try:
        _events(backend, GenerationRequest("a red circle", steps=2))
    finally:
        hook.remove()
    assert seen and not any(seen)


def test_unknown_words_are_reported(tiny_model_dir):
    events = _events(
        BundledBackend(tiny_model_dir), GenerationRequest("a red dragon flies", negative_prompt="blurry", steps=1)
    )
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any("'dragon', 'flies'" in n for n in notices)
    assert any("negative prompt" in n and "'blurry'" in n for n in notices)


def test_cancel_stops_within_one_step(tiny_model_dir):
    backend = BundledBackend(tiny_model_dir)
    progress = []

    def should_stop():
        return len(progress) >= 2

    with pytest.raises(Cancelled):
        for event in backend.generate(GenerationRequest("a red circle", steps=10), should_stop=should_stop):
            if isinstance(event, Progress):
                progress.append(event)
            assert not isinstance(event, Frames)
    assert len(progress) == 2


def test_image_to_video_reads_the_picture(tiny_model_dir, tmp_path):
    picture = tmp_path / "first.png"
    Image.fromarray(np.full((40, 80, 3), 200, np.uint8)).save(picture)
    backend = BundledBackend(tiny_model_dir)
    plain = _events(backend, GenerationRequest("the camera pans left", steps=2))[-2].frames
    with_image = _events(backend, GenerationRequest("the camera pans left", steps=2, image=str(picture)))[-2].frames
    assert not np.array_equal(plain, with_image)


def test_frame_count_out_of_range_for_the_model(tiny_model_dir):
    with pytest.raises(InvalidRequest, match="frames must be between 1 and 1024"):
        _events(BundledBackend(tiny_model_dir), GenerationRequest("a red circle").with_changes(frames=1025))


def test_fewer_frames_keep_the_whole_move():
    frames = np.arange(16)[:, None, None, None] * np.ones((16, 2, 2, 3), np.uint8)
    picked = resample_frames(frames, 4)
    assert [int(f[0, 0, 0]) for f in picked] == [0, 5, 10, 15]


def test_open_backend(tiny_model_dir, tmp_path):
    assert open_backend(str(tiny_model_dir)).folder == tiny_model_dir
    with pytest.raises(InvalidRequest, match="unknown model"):
        open_backend("no-such-model")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"model_type": "unet"}')
    with pytest.raises(InvalidRequest, match="not a Kinemo model folder"):
        open_backend(str(tmp_path / "other"))


def test_a_suspended_generation_leaves_the_callers_autograd_alone(tiny_model_dir):
    events = BundledBackend(tiny_model_dir).generate(GenerationRequest("a red circle", steps=3))
    for event in events:
        if isinstance(event, Preview):
            break  # suspended mid-run
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    events.close()


@pytest.mark.parametrize("width, height, shape", [(512, 288, (64, 114)), (288, 512, (114, 64)), (256, 256, (64, 64))])
def test_text_to_video_at_another_aspect_keeps_proportions(tiny_model_dir, width, height, shape):
    request = GenerationRequest("a red circle stays still on a black background", width=width, height=height, steps=1)
    events = list(BundledBackend(tiny_model_dir, upscaler_folder=None).generate(request.with_changes(frames=2)))
    (frames,) = [e.frames for e in events if isinstance(e, Frames)]
    assert frames.shape[1:3] == shape  # square frames widened, never stretched by the export
    notices = [e.message for e in events if isinstance(e, Notice)]
    assert any("keeps its proportions" in m for m in notices) == (width != height)


def test_widened_frames_extend_their_own_edges():
    frames = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    wide = widened(frames, 16, 8)
    assert wide.shape == (2, 4, 8, 3) and np.array_equal(wide[:, :, 2:6], frames)
    assert np.array_equal(wide[:, :, 0], frames[:, :, 0]) and np.array_equal(wide[:, :, 7], frames[:, :, 3])


def _frames(backend, request) -> np.ndarray:
    (frames,) = [e.frames for e in backend.generate(request) if isinstance(e, Frames)]
    return frames


def test_the_upscaler_redraws_text_to_video_larger_than_the_model_draws(tiny_model_dir, tmp_path):
    upscaler = save_tiny_upscaler(tmp_path / "up", factor=2)
    request = GenerationRequest("a red circle stays still on a black background", steps=1, frames=2)
    plain = BundledBackend(tiny_model_dir, upscaler_folder=None)
    upscaling = BundledBackend(tiny_model_dir, upscaler_folder=upscaler)
    small = _frames(plain, request.with_changes(width=256, height=256))
    large = _frames(upscaling, request.with_changes(width=256, height=256))
    assert small.shape == (2, 64, 64, 3) and large.shape == (2, 256, 256, 3)  # drawn at the output's size
    # the model's own size needs no upscaler, and the frames are the model's, unchanged
    assert np.array_equal(_frames(upscaling, request.with_changes(width=64, height=64)), small)
    # at 16:9 the square is drawn at the output's height and widened from its edges, never stretched
    assert _frames(upscaling, request.with_changes(width=512, height=288)).shape == (2, 288, 512, 3)
    finished = [e for e in upscaling.generate(request.with_changes(width=256, height=256)) if isinstance(e, Finished)]
    assert finished[0].stats["upscaled_to"] == 256


def test_a_picture_is_never_upscaled_and_a_missing_upscaler_is_no_upscaler(tiny_model_dir, tmp_path):
    picture = tmp_path / "first.png"
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(picture)
    upscaling = BundledBackend(tiny_model_dir, upscaler_folder=save_tiny_upscaler(tmp_path / "up"), camera_folder=None)
    request = GenerationRequest("a red circle", steps=1, frames=2, width=256, height=256, image=str(picture))
    assert _frames(upscaling, request).shape == (2, 64, 64, 3)
    assert BundledBackend(tiny_model_dir, upscaler_folder=tmp_path / "absent").upscaler_folder is None


def test_the_bundled_upscaler_pairs_with_the_bundled_models_only(tiny_model_dir):
    from engine.registry.assets import FAST_DIR, STARTER_DIR, UPSCALER_DIR

    for folder in (STARTER_DIR, FAST_DIR):
        assert BundledBackend(folder).upscaler_folder == UPSCALER_DIR
        assert BundledBackend(folder, upscaler_folder=None).upscaler_folder is None
    assert BundledBackend(tiny_model_dir).upscaler_folder is None  # a model of one's own has none unless given
