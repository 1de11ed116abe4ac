import json

import pytest
import torch
from safetensors.torch import load_file

from engine.training.train import main as train

TINY = json.dumps({"dim": 16, "depth": 1, "heads": 2, "text_dim": 16, "text_depth": 1})


def _run(tmp_path, name, steps, checkpoint):
    out = tmp_path / name
    train(
        [
            "--steps",
            str(steps),
            "--batch",
            "2",
            "--threads",
            "1",
            "--config",
            TINY,
            "--checkpoint",
            str(checkpoint),
            "--checkpoint-every",
            "1",
            "--out",
            str(out),
            "--warmup",
            "2",
        ]
    )
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

    from engine.training.synthetic import CameraClip, make_batch, sample_clips

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
    from engine.training.noising import pixel_weights

    foreground = torch.zeros(1, 1, 1, 16, 16)
    foreground[..., 6:10, 6:10] = 1
    weights = pixel_weights(foreground, 8.0)[0, 0, 0]
    assert weights[8, 8] == 9 and weights[4, 8] == 9 and weights[8, 11] == 9
    assert weights[3, 8] == 1 and weights[8, 12] == 1 and weights[0, 0] == 1
    assert torch.equal(pixel_weights(foreground, 0.0), torch.ones_like(foreground))


def test_object_weight_changes_what_training_learns(tmp_path):
    out = tmp_path / "plain"
    train(
        [
            "--steps",
            "2",
            "--batch",
            "2",
            "--threads",
            "1",
            "--config",
            TINY,
            "--checkpoint",
            str(tmp_path / "p.pt"),
            "--checkpoint-every",
            "1",
            "--out",
            str(out),
            "--warmup",
            "2",
            "--object-weight",
            "0",
        ]
    )
    plain = load_file(out / "model.safetensors")
    out = tmp_path / "weighted"
    train(
        [
            "--steps",
            "2",
            "--batch",
            "2",
            "--threads",
            "1",
            "--config",
            TINY,
            "--checkpoint",
            str(tmp_path / "w.pt"),
            "--checkpoint-every",
            "1",
            "--out",
            str(out),
            "--warmup",
            "2",
            "--object-weight",
            "8",
        ]
    )
    weighted = load_file(out / "model.safetensors")
    assert any(not torch.equal(plain[k], weighted[k]) for k in plain)
    assert json.loads((out / "config.json").read_text())["_training"]["object_weight"] == 8.0


def test_gaussian_blur_keeps_the_shape_and_the_total_and_spreads_a_point():
    from engine.training.noising import gaussian_blur

    video = torch.zeros(2, 3, 4, 16, 16)
    video[..., 8, 8] = 1.0
    blurred = gaussian_blur(video, 1.5)
    assert blurred.shape == video.shape
    assert torch.allclose(blurred.sum(dim=(-1, -2)), video.sum(dim=(-1, -2)), atol=1e-5)
    assert (
        blurred[0, 0, 0, 8, 8] < 0.2
        and blurred[0, 0, 0, 8, 10] > 0.02
        and blurred[0, 0, 0, 8, 10] == blurred[0, 0, 0, 10, 8]
    )


def test_blurred_inputs_blur_only_the_chosen_clips():
    from engine.training.noising import blurred_inputs

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
        train(
            [
                "--steps",
                "2",
                "--batch",
                "2",
                "--threads",
                "1",
                "--config",
                TINY,
                "--checkpoint",
                str(tmp_path / f"b{rate}.pt"),
                "--checkpoint-every",
                "1",
                "--out",
                str(out),
                "--warmup",
                "2",
                "--blur-rate",
                rate,
            ]
        )
        weights[rate] = load_file(out / "model.safetensors")
    assert any(not torch.equal(weights["0"][k], weights["1"][k]) for k in weights["0"])
    assert json.loads((out / "config.json").read_text())["_training"]["blur_rate"] == 1.0


def test_mid_share_draws_that_share_of_timesteps_from_the_middle():
    from engine.training.noising import sample_timesteps

    def inside(share):
        t = sample_timesteps(20000, 1000, share, (300, 800), torch.Generator().manual_seed(0))
        assert t.min() >= 0 and t.max() <= 999
        return float(((t >= 300) & (t < 800)).float().mean())

    assert abs(inside(0.0) - 0.5) < 0.02  # uniform: half the schedule lies in 300..800
    assert abs(inside(0.5) - 0.75) < 0.02  # half from the middle, half uniform
    assert inside(1.0) == 1.0


def test_bad_timestep_options_are_refused_with_a_usage_error(capsys):
    import pytest

    from engine.training.train import parse_args

    for argv in (
        ["--mid-range", "800", "300"],
        ["--mid-range", "0", "1001"],
        ["--mid-share", "1.5"],
        ["--lumpy-rate", "1.5"],
        ["--finish-from", "-1"],
        ["--lumpy-strength", "-0.5"],
    ):
        with pytest.raises(SystemExit) as stop:
            parse_args(argv)
        assert stop.value.code == 2
        assert argv[0] in capsys.readouterr().err


class _Spy(torch.nn.Module):
    """Stands in for the model: records what it is shown and predicts zeros."""

    def __init__(self, model):
        super().__init__()
        self.model, self.config, self.seen = model, model.config, []

    def encode(self, *args):
        return self.model.encode(*args)

    def forward(self, x_t, t, cond, frame_indices=None):
        self.seen.append((x_t, t))
        return torch.zeros_like(x_t) + 0 * self.model.patch_in.bias.sum()


# every corruption off, fp32: a test turns on the option it looks at
PLAIN = {
    "object_weight": 0.0,
    "blur_rate": 0.0,
    "mid_share": 0.0,
    "input_perturbation": 0.0,
    "lumpy_rate": 0.0,
    "finish_from": 0,
    "precision": "fp32",
}


def _step(model, **options):
    import random

    from engine.kinemo.schedule import alphas_cumprod, make_betas
    from engine.kinemo.text_encoder import token_batch
    from engine.kinemo.vocabulary import tokenize
    from engine.training.recipe import Recipe
    from engine.training.synthetic import make_batch
    from engine.training.train import Clips, training_step

    batch = make_batch(random.Random(1), 4, frames=2)
    ids = token_batch([tokenize(c).ids for c in batch.captions])
    cumprod = alphas_cumprod(make_betas("squaredcos_cap_v2", 1000, snr_scale=1 / 16))
    clips = Clips(batch, ids, torch.Generator().manual_seed(5))
    return training_step(model, clips, Recipe(**{**PLAIN, **options}), cumprod), batch, cumprod


def test_input_perturbation_adds_noise_to_the_input_only():
    from engine.kinemo.model import KinemoConfig, KinemoDiT

    model = KinemoDiT(KinemoConfig(**json.loads(TINY)))
    spreads = {}
    for gamma in (0.0, 1.0):
        spy = _Spy(model)
        loss, batch, cumprod = _step(spy, input_perturbation=gamma)
        x_t, t = spy.seen[0]
        x0 = batch.video * 2 - 1
        a = cumprod[t][:, None, None, None, None]
        spreads[gamma] = float(((x_t - a.sqrt() * x0) / (1 - a).sqrt()).std())
        # the model predicts zeros, so the x_0 loss is the same whatever noise its input carried
        spreads[f"loss{gamma}"] = float(loss.detach())
    assert abs(spreads[0.0] - 1.0) < 0.05
    assert abs(spreads[1.0] - 2**0.5) < 0.07  # noise + 1.0 * xi: variance 2
    assert spreads["loss0.0"] == spreads["loss1.0"]


def test_bf16_training_step_gives_a_float32_loss_and_gradients_close_to_fp32():
    from engine.kinemo.model import KinemoConfig, KinemoDiT

    torch.manual_seed(0)
    model = KinemoDiT(KinemoConfig(**json.loads(TINY)))
    torch.nn.init.normal_(
        model.patch_out.weight, std=0.02
    )  # a new model's output layer is zero: give it gradients to compare
    grads, losses = {}, {}
    for bf16 in (False, True):
        model.zero_grad()
        loss, _, _ = _step(model, object_weight=3.0, precision="bf16" if bf16 else "fp32")
        assert loss.dtype == torch.float32
        loss.backward()
        grads[bf16] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        losses[bf16] = float(loss.detach())
    assert abs(losses[True] - losses[False]) < 0.02 * losses[False]
    assert torch.nn.functional.cosine_similarity(grads[True], grads[False], dim=0) > 0.98


def test_training_records_its_timestep_noise_and_precision_options(tmp_path):
    out = tmp_path / "record"
    train(
        [
            "--steps",
            "1",
            "--batch",
            "2",
            "--threads",
            "1",
            "--config",
            TINY,
            "--checkpoint",
            str(tmp_path / "r.pt"),
            "--out",
            str(out),
            "--mid-share",
            "0.25",
            "--mid-range",
            "200",
            "700",
            "--input-perturbation",
            "0.2",
            "--precision",
            "fp32",
        ]
    )
    training = json.loads((out / "config.json").read_text())["_training"]
    assert (training["mid_share"], training["mid_range"], training["input_perturbation"], training["precision"]) == (
        0.25,
        [200, 700],
        0.2,
        "fp32",
    )


def test_lumpy_inputs_move_only_the_outline_of_the_chosen_object_clips():
    import random

    from engine.training.noising import lumpy_inputs
    from engine.training.synthetic import CameraClip, make_batch, sample_clips

    batch = make_batch(random.Random(3), 12, frames=4)
    clips = sample_clips(random.Random(3), 12)
    x0, coverage = batch.video * 2 - 1, batch.foreground
    assert torch.equal(lumpy_inputs(x0, coverage, 0.0, 0.5, torch.Generator().manual_seed(0)), x0)
    out = lumpy_inputs(x0, coverage, 1.0, 0.5, torch.Generator().manual_seed(0))
    near = torch.nn.functional.max_pool3d(coverage, (1, 9, 9), stride=1, padding=(0, 4, 4))[
        :, 0
    ]  # within 4 px of the object
    core = -torch.nn.functional.max_pool3d(-coverage, (1, 9, 9), stride=1, padding=(0, 4, 4))[:, 0]  # 4 px inside it
    moved_outlines = 0
    for i, clip in enumerate(clips):
        if isinstance(clip, CameraClip):
            assert torch.equal(out[i], x0[i])
            continue
        change = (out[i] - x0[i]).abs().amax(0)  # (f, h, w)
        # the far background and the object's middle keep their colours, up to the tint of the anti-aliased edge
        assert float(change[near[i] == 0].max()) < 0.1
        assert float(change[core[i] == 1].max()) < 0.1
        moved_outlines += int((change > 0.5).sum()) > 10  # whole pixels changed hands along the outline
    assert moved_outlines >= 5


def test_lumpy_inputs_change_what_the_model_sees_but_not_its_target():
    from engine.kinemo.model import KinemoConfig, KinemoDiT

    model = KinemoDiT(KinemoConfig(**json.loads(TINY)))
    seen = {}
    for rate in (0.0, 1.0):
        spy = _Spy(model)  # predicts zeros: the x_0 loss depends on the target and the timesteps only
        loss, _, _ = _step(spy, lumpy_rate=rate, lumpy_strength=0.5)
        seen[rate] = (float(loss.detach()), *spy.seen[0])
    assert seen[0.0][0] == seen[1.0][0]
    assert torch.equal(seen[0.0][2], seen[1.0][2])
    assert not torch.equal(seen[0.0][1], seen[1.0][1])


def test_the_finishing_stage_starts_at_its_step_and_is_recorded(tmp_path):
    import engine.training.train as training

    rates = []
    real = training.training_step

    def spy(model, clips, recipe, cumprod):
        rates.append(recipe.lumpy_rate)
        return real(model, clips, recipe, cumprod)

    out = tmp_path / "finish"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "training_step", spy)
        train(
            [
                "--steps",
                "3",
                "--batch",
                "2",
                "--threads",
                "1",
                "--config",
                TINY,
                "--checkpoint",
                str(tmp_path / "f.pt"),
                "--out",
                str(out),
                "--finish-from",
                "2",
                "--lumpy-rate",
                "0.25",
                "--lumpy-strength",
                "0.3",
            ]
        )
    assert rates == [0.0, 0.0, 0.25]
    record = json.loads((out / "config.json").read_text())["_training"]
    assert (record["finish_from"], record["lumpy_rate"], record["lumpy_strength"]) == (2, 0.25, 0.3)


def test_a_run_continues_from_a_saved_model_at_its_recorded_step(tmp_path):
    first = _run(tmp_path, "first", 2, tmp_path / "a.pt")
    out = tmp_path / "continued"
    common = ["--batch", "2", "--threads", "1", "--checkpoint-every", "1", "--warmup", "2", "--config", TINY]
    train([*common, "--steps", "3", "--init", str(first), "--checkpoint", str(tmp_path / "c.pt"), "--out", str(out)])
    record = json.loads((out / "config.json").read_text())["_training"]
    assert record["steps"] == 3 and record["continued_from"] == str(first)  # one step on top of the saved two
    saved, continued = load_file(first / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not torch.equal(saved[k], continued[k]) for k in saved)
    wider = json.dumps({**json.loads(TINY), "dim": 32})
    with pytest.raises(SystemExit, match="another shape"):
        train(
            [
                "--config",
                wider,
                "--init",
                str(first),
                "--checkpoint",
                str(tmp_path / "d.pt"),
                "--out",
                str(tmp_path / "w"),
            ]
        )
