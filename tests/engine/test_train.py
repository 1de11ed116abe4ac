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
