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
