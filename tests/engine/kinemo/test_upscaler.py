import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny_models import save_tiny_upscaler

from engine.api.errors import ModelLoadError
from engine.kinemo.upscaler import KinemoUpscaler, UpscalerConfig, load_upscaler, save_upscaler, upscale_frames


def _with_fields(model, fields: torch.Tensor):
    model.fields = lambda frames: fields.expand(frames.shape[0], -1, -1, -1)
    return model


def test_the_large_frame_is_drawn_from_the_distance_field_with_one_pixel_of_edge():
    # a vertical outline at x = 3.5 small pixels (14 large ones): the object left of it, the background right
    columns = torch.arange(8.0) + 0.5  # small pixel centres
    distance = (3.5 - columns).view(1, 1, 1, 8).expand(1, 1, 8, 8)
    background, colour = torch.full((1, 3, 8, 8), -1.0), torch.full((1, 3, 8, 8), 1.0)
    fits = torch.full((1, 1, 8, 8), 30.0)
    model = _with_fields(
        KinemoUpscaler(UpscalerConfig(factor=4, channels=4)), torch.cat([distance, background, colour, fits], 1)
    )
    row = model(torch.zeros(1, 3, 8, 8))[0, 0, 10]  # (32,) one row of the large frame
    assert torch.allclose(row[2:14], torch.ones(12), atol=1e-4) and torch.allclose(
        row[14:30], -torch.ones(16), atol=1e-4
    )


def test_where_two_colours_do_not_fit_the_frame_is_its_smooth_upsampling():
    fields = torch.cat([torch.ones(1, 1, 8, 8), torch.zeros(1, 6, 8, 8), torch.full((1, 1, 8, 8), -30.0)], 1)
    model = _with_fields(KinemoUpscaler(UpscalerConfig(factor=4, channels=4)), fields)
    frames = torch.rand(2, 3, 8, 8) * 2 - 1
    expected = F.interpolate(frames, scale_factor=4.0, mode="bilinear", align_corners=False)
    assert torch.allclose(model(frames), expected, atol=1e-6)


@pytest.mark.parametrize("h, w", [(16, 16), (10, 18)])  # sides that are not multiples of 4 are padded, then cropped
def test_upscaled_frames_have_the_size_asked_for(tmp_path, h, w):
    model = load_upscaler(save_tiny_upscaler(tmp_path / "up", factor=2))
    frames = np.random.default_rng(0).integers(0, 256, (5, h, w, 3), dtype=np.uint8)
    out = upscale_frames(model, frames, 3 * h, 3 * w, chunk=2)
    assert out.shape == (5, 3 * h, 3 * w, 3) and out.dtype == np.uint8
    one_by_one = np.concatenate([upscale_frames(model, frames[i : i + 1], 3 * h, 3 * w) for i in range(5)])
    assert np.array_equal(out, one_by_one)  # chunking changes nothing


def test_the_outline_is_one_pixel_wide_at_any_scale():
    columns = torch.arange(8.0) + 0.5
    distance = (3.5 - columns).view(1, 1, 1, 8).expand(1, 1, 8, 8)
    fields = torch.cat([distance, -torch.ones(1, 3, 8, 8), torch.ones(1, 3, 8, 8), torch.full((1, 1, 8, 8), 30.0)], 1)
    model = _with_fields(KinemoUpscaler(UpscalerConfig(factor=4, channels=4)), fields)
    for side in (40, 90):  # 5x and 11.25x
        row = model(torch.zeros(1, 3, 8, 8), (side, side))[0, 0, side // 2]
        partial = ((row > -0.99) & (row < 0.99)).sum()
        assert partial <= 1 and abs(int((row > 0).sum()) - 3.5 * side / 8) <= 1


def test_saved_upscaler_loads_identically(tmp_path):
    folder = save_tiny_upscaler(tmp_path / "up")
    a, b = load_upscaler(folder), load_upscaler(folder)
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(a(x), b(x)) and not a.training


def test_broken_upscaler_folders_raise_model_load_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="missing"):
        load_upscaler(tmp_path / "nothing")
    folder = save_tiny_upscaler(tmp_path / "up")
    (folder / "config.json").write_text('{"factor": 2, "channels": 4, "depth": 9}')
    with pytest.raises(ModelLoadError, match="unknown upscaler config keys"):
        load_upscaler(folder)
    save_upscaler(KinemoUpscaler(UpscalerConfig(factor=2, channels=8)), tmp_path / "wide")
    (tmp_path / "wide" / "config.json").write_text('{"factor": 2, "channels": 4}')
    with pytest.raises(ModelLoadError, match="unreadable upscaler weights"):
        load_upscaler(tmp_path / "wide")
