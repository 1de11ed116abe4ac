import json

import torch
from safetensors.torch import load_file

from engine.train import main as train

TINY = json.dumps({"dim": 16, "depth": 1, "heads": 2, "text_dim": 16, "text_depth": 1})


def _run(tmp_path, name, steps, checkpoint):
    out = tmp_path / name
    train(["--steps", str(steps), "--batch", "2", "--threads", "1", "--config", TINY, "--checkpoint", str(checkpoint),
           "--checkpoint-every", "1", "--out", str(out), "--warmup", "2"])
    return out


def test_training_resumes_exactly_where_it_stopped(tmp_path):
    straight = _run(tmp_path, "straight", 4, tmp_path / "a.pt")
    _run(tmp_path, "half", 2, tmp_path / "b.pt")
    resumed = _run(tmp_path, "resumed", 4, tmp_path / "b.pt")
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    config = json.loads((resumed / "config.json").read_text())
    assert config["_training"]["steps"] == 4 and config["dim"] == 16


def test_training_changes_the_weights(tmp_path):
    first = load_file(_run(tmp_path, "one", 1, tmp_path / "c.pt") / "model.safetensors")
    later = load_file(_run(tmp_path, "three", 3, tmp_path / "c.pt") / "model.safetensors")
    assert any(not torch.equal(first[k], later[k]) for k in first)


def test_batches_mark_the_object_and_nothing_in_camera_clips():
    import random

    from engine.synthetic import CameraClip, make_batch, sample_clips

    batch = make_batch(random.Random(3), 12, frames=4)
    clips = sample_clips(random.Random(3), 12)  # the same draws make_batch made
    assert batch.foreground.shape == (12, 1, 4, 64, 64)
    for clip, coverage, video in zip(clips, batch.foreground, batch.video):
        if isinstance(clip, CameraClip):
            assert coverage.max() == 0
        else:
            covered = coverage[0] == 1  # (f, h, w)
            assert 50 < covered[0].sum() < 64 * 64 / 4
            # covered pixels have the object's colour, uncovered corners the background's
            assert torch.allclose(video[:, covered].std(1), torch.zeros(3), atol=1e-6)


def test_pixel_weights_reach_two_pixels_beyond_the_object():
    from engine.train import pixel_weights

    foreground = torch.zeros(1, 1, 1, 16, 16)
    foreground[..., 6:10, 6:10] = 1
    weights = pixel_weights(foreground, 8.0)[0, 0, 0]
    assert weights[8, 8] == 9 and weights[4, 8] == 9 and weights[8, 11] == 9
    assert weights[3, 8] == 1 and weights[8, 12] == 1 and weights[0, 0] == 1
    assert torch.equal(pixel_weights(foreground, 0.0), torch.ones_like(foreground))


def test_object_weight_changes_what_training_learns(tmp_path):
    out = tmp_path / "plain"
    train(["--steps", "2", "--batch", "2", "--threads", "1", "--config", TINY, "--checkpoint", str(tmp_path / "p.pt"),
           "--checkpoint-every", "1", "--out", str(out), "--warmup", "2", "--object-weight", "0"])
    plain = load_file(out / "model.safetensors")
    out = tmp_path / "weighted"
    train(["--steps", "2", "--batch", "2", "--threads", "1", "--config", TINY, "--checkpoint", str(tmp_path / "w.pt"),
           "--checkpoint-every", "1", "--out", str(out), "--warmup", "2", "--object-weight", "8"])
    weighted = load_file(out / "model.safetensors")
    assert any(not torch.equal(plain[k], weighted[k]) for k in plain)
    assert json.loads((out / "config.json").read_text())["_training"]["object_weight"] == 8.0


def test_gaussian_blur_keeps_the_shape_and_the_total_and_spreads_a_point():
    from engine.train import gaussian_blur

    video = torch.zeros(2, 3, 4, 16, 16)
    video[..., 8, 8] = 1.0
    blurred = gaussian_blur(video, 1.5)
    assert blurred.shape == video.shape
    assert torch.allclose(blurred.sum(dim=(-1, -2)), video.sum(dim=(-1, -2)), atol=1e-5)
    assert blurred[0, 0, 0, 8, 8] < 0.2 and blurred[0, 0, 0, 8, 10] > 0.02 and blurred[0, 0, 0, 8, 10] == blurred[0, 0, 0, 10, 8]


def test_blurred_inputs_blur_only_the_chosen_clips():
    from engine.train import blurred_inputs

    x0 = torch.zeros(64, 3, 2, 16, 16)
    x0[..., 4:12, 4:12] = 1.0
    out = blurred_inputs(x0, 0.5, 2.0, torch.Generator().manual_seed(0))
    changed = (out != x0).flatten(1).any(1)
    assert 10 < int(changed.sum()) < 54  # about half
    assert torch.equal(out[~changed], x0[~changed])
    assert torch.equal(blurred_inputs(x0, 0.0, 2.0, torch.Generator().manual_seed(0)), x0)


def test_blur_rate_changes_what_training_learns_and_is_recorded(tmp_path):
    weights = {}
    for rate in ("0", "1"):
        out = tmp_path / f"blur{rate}"
        train(["--steps", "2", "--batch", "2", "--threads", "1", "--config", TINY, "--checkpoint", str(tmp_path / f"b{rate}.pt"),
               "--checkpoint-every", "1", "--out", str(out), "--warmup", "2", "--blur-rate", rate])
        weights[rate] = load_file(out / "model.safetensors")
    assert any(not torch.equal(weights["0"][k], weights["1"][k]) for k in weights["0"])
    assert json.loads((out / "config.json").read_text())["_training"]["blur_rate"] == 1.0
