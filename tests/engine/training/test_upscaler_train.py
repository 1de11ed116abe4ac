import json
import random

import torch
from safetensors.torch import load_file

from engine.kinemo.upscaler import load_upscaler
from engine.training.upscaler_train import UpscalerRecipe, field_loss, main, make_pairs, warped


def _run(tmp_path, name, steps, checkpoint):
    out = tmp_path / name
    main(
        ["--steps", str(steps), "--batch", "2", "--threads", "1", "--channels", "4", "--checkpoint", str(checkpoint)]
        + ["--checkpoint-every", "1", "--out", str(out)]
    )
    return out


def test_pairs_hold_the_true_outline_and_colours():
    recipe = UpscalerRecipe(
        batch=12, blur_rate=0.0, lumpy_rate=0.0, noise=0.0, warp=0.0, blotches=0.0, camera_share=0.3
    )
    pairs = make_pairs(random.Random(1), torch.Generator().manual_seed(1), recipe)
    assert pairs.low.shape == (12, 3, 64, 64) and pairs.distance.shape == (12, 1, 64, 64)
    shapes = pairs.fits.flatten() == 1
    assert 0 < int(shapes.sum()) < 12  # shapes and pictures both
    for i in torch.nonzero(shapes).flatten():
        inside = pairs.distance[i, 0] > 0.5
        # clean frames: the object's colour inside the outline, the background's well outside it
        assert torch.allclose(pairs.low[i][:, inside], pairs.colour[i, :, 0], atol=1e-5)
        assert torch.allclose(pairs.low[i][:, pairs.distance[i, 0] < -0.5], pairs.background[i, :, 0], atol=1e-5)
    assert torch.equal(pairs.distance[~shapes], torch.zeros_like(pairs.distance[~shapes]))


def test_softening_changes_the_input_only():
    plain = UpscalerRecipe(batch=4, blur_rate=0.0, lumpy_rate=0.0, noise=0.0, warp=0.0, blotches=0.0)
    soft = UpscalerRecipe(batch=4, blur_rate=1.0, lumpy_rate=1.0, noise=0.03)
    a = make_pairs(random.Random(2), torch.Generator().manual_seed(2), plain)
    b = make_pairs(random.Random(2), torch.Generator().manual_seed(2), soft)
    assert torch.equal(a.distance, b.distance) and torch.equal(a.colour, b.colour)
    assert (a.low - b.low).abs().mean() > 0.005


def test_the_true_fields_score_better_than_wrong_ones():
    pairs = make_pairs(random.Random(3), torch.Generator().manual_seed(3), UpscalerRecipe(batch=6))
    logit = (pairs.fits * 2 - 1) * 20
    true = torch.cat(
        [pairs.distance.clamp(-3, 3), pairs.background.expand(-1, -1, 64, 64), pairs.colour.expand(-1, -1, 64, 64)]
        + [logit.expand(-1, 1, 64, 64)],
        dim=1,
    )
    assert field_loss(true, pairs) < 1e-3
    assert field_loss(torch.zeros_like(true), pairs) > 0.1
    flipped = true.clone()
    flipped[:, :1] *= -1  # inside and outside swapped
    assert field_loss(flipped, pairs) > 0.1


def test_upscaler_training_resumes_exactly_and_writes_a_loadable_model(tmp_path):
    straight = _run(tmp_path, "straight", 3, tmp_path / "a.pt")
    _run(tmp_path, "half", 1, tmp_path / "b.pt")
    resumed = _run(tmp_path, "resumed", 3, tmp_path / "b.pt")
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    record = json.loads((resumed / "config.json").read_text())["_training"]
    assert record["steps"] == 3 and record["blur_rate"] == UpscalerRecipe.blur_rate
    model = load_upscaler(resumed)
    assert model.config.channels == 4 and model(torch.zeros(1, 3, 8, 8)).shape == (1, 3, 64, 64)


def test_the_harsh_stage_warps_and_stains_from_its_step_on_only():
    recipe = UpscalerRecipe(batch=4, harsh_from=10)
    assert recipe.at_step(9).warp == 0 and recipe.at_step(9).blotches == 0
    assert recipe.at_step(10) == recipe
    gentle = make_pairs(random.Random(5), torch.Generator().manual_seed(5), recipe.at_step(9))
    harsh = make_pairs(random.Random(5), torch.Generator().manual_seed(5), recipe.at_step(10))
    assert torch.equal(gentle.distance, harsh.distance)  # the targets stay clean
    assert (gentle.low - harsh.low).abs().mean() > 0.01


def test_a_warp_of_nothing_changes_nothing_and_a_warp_moves_outlines_a_few_pixels():
    frames = torch.rand(3, 3, 1, 32, 32) * 2 - 1
    assert torch.allclose(warped(frames, 0.0, torch.Generator().manual_seed(0)), frames, atol=1e-5)
    moved = warped(frames, 3.0, torch.Generator().manual_seed(0))
    assert moved.shape == frames.shape and not torch.allclose(moved, frames, atol=1e-2)
