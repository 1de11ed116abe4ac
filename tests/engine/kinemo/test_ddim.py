import pytest
import torch
from diffusers import DDIMScheduler

from engine.kinemo.ddim import DDIMSampler, ddim_timesteps


def _toy_model(x, t):
    # deterministic, t-dependent, non-linear stand-in for a denoiser
    return torch.tanh(x * 0.7 + t / 1000.0) * 0.9


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
@pytest.mark.parametrize("beta_schedule", ["squaredcos_cap_v2", "scaled_linear"])
@pytest.mark.parametrize("eta", [0.0, 0.6])
@pytest.mark.parametrize("clip_sample", [False, True])
@pytest.mark.parametrize("use_clipped", [False, True])
def test_matches_diffusers_step_for_step(prediction_type, spacing, beta_schedule, eta, clip_sample, use_clipped):
    steps = 25
    ref = DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule=beta_schedule,
        prediction_type=prediction_type,
        timestep_spacing=spacing,
        clip_sample=clip_sample,
        set_alpha_to_one=True,
        steps_offset=0,
    )
    ref.set_timesteps(steps)
    ours = DDIMSampler.from_schedule(
        beta_schedule,
        1000,
        prediction_type=prediction_type,
        clip_sample=clip_sample,
        use_clipped_model_output=use_clipped,
    )
    timesteps = ddim_timesteps(steps, 1000, spacing)
    assert timesteps == ref.timesteps.tolist()

    x_ref = torch.randn(2, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    x_ours = x_ref.clone()
    for i, t in enumerate(timesteps):
        noise = torch.randn(x_ref.shape, generator=torch.Generator().manual_seed(100 + i))
        expected = ref.step(
            _toy_model(x_ref, t),
            t,
            x_ref,
            eta=eta,
            use_clipped_model_output=use_clipped,
            variance_noise=noise if eta else None,
        )
        prev_t = timesteps[i + 1] if i + 1 < steps else -1
        got = ours.step(_toy_model(x_ours, t), t, prev_t, x_ours, eta=eta, noise=noise)
        assert torch.allclose(got.prev_sample, expected.prev_sample, atol=1e-5, rtol=0), f"step {i} (t={t})"
        assert torch.allclose(got.pred_original_sample, expected.pred_original_sample, atol=1e-5, rtol=0)
        x_ref, x_ours = expected.prev_sample, got.prev_sample


def test_sample_loop_runs_without_autograd_and_follows_explicit_timesteps():
    sampler = DDIMSampler.from_schedule(prediction_type="v_prediction")
    seen = []

    def denoise(x, t):
        seen.append((t, torch.is_grad_enabled(), torch.is_inference_mode_enabled()))
        return torch.zeros_like(x)

    noise = torch.randn(1, 3, 2, 4, 4, requires_grad=False)
    outs = list(sampler.sample(denoise, noise, [999, 750, 500, 250]))
    assert [t for t, _, _ in seen] == [999, 750, 500, 250]
    assert all(not grad and inference for _, grad, inference in seen)
    assert not outs[-1][2].prev_sample.requires_grad


def test_explicit_uneven_timesteps_use_the_next_listed_timestep():
    sampler = DDIMSampler.from_schedule(prediction_type="epsilon")
    x = torch.ones(1, 4)
    eps = torch.full((1, 4), 0.1)
    out = sampler.step(eps, 900, 333, x)
    a_t, a_prev = sampler.alphas_cumprod[900], sampler.alphas_cumprod[333]
    x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
    assert torch.allclose(out.prev_sample, a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps)


@pytest.mark.parametrize("bad", [[500, 500], [100, 200], [1000, 10]])
def test_bad_timestep_lists_are_refused(bad):
    sampler = DDIMSampler.from_schedule()
    with pytest.raises(ValueError):
        list(sampler.sample(lambda x, t: x, torch.zeros(1, 2), bad))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="prediction_type"):
        DDIMSampler.from_schedule(prediction_type="x")
    with pytest.raises(ValueError, match="spacing"):
        ddim_timesteps(10, spacing="odd")
    with pytest.raises(ValueError, match="num_steps"):
        ddim_timesteps(0)


def test_shifted_schedule_matches_diffusers_given_the_same_betas():
    from engine.kinemo.schedule import alphas_cumprod, make_betas

    betas = make_betas("squaredcos_cap_v2", 1000, snr_scale=1 / 16)
    base = alphas_cumprod(make_betas("squaredcos_cap_v2", 1000))
    shifted = alphas_cumprod(betas)
    snr_ratio = (shifted / (1 - shifted)) / (base / (1 - base))
    assert torch.allclose(snr_ratio[:900], torch.full((900,), 1 / 16), rtol=1e-3)

    ref = DDIMScheduler(
        num_train_timesteps=1000,
        trained_betas=betas.numpy(),
        prediction_type="sample",
        timestep_spacing="trailing",
        clip_sample=True,
    )
    ref.set_timesteps(10)
    ours = DDIMSampler(shifted, prediction_type="sample", clip_sample=True)
    x_ref = torch.randn(1, 3, 2, 8, 8, generator=torch.Generator().manual_seed(1))
    x_ours = x_ref.clone()
    timesteps = ddim_timesteps(10, 1000, "trailing")
    for i, t in enumerate(timesteps):
        expected = ref.step(_toy_model(x_ref, t), t, x_ref).prev_sample
        got = ours.step(_toy_model(x_ours, t), t, timesteps[i + 1] if i + 1 < 10 else -1, x_ours).prev_sample
        assert torch.allclose(got, expected, atol=1e-5, rtol=0)
        x_ref, x_ours = expected, got
