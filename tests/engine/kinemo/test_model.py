import pytest
import torch
from einops import rearrange

from engine.api.errors import ModelLoadError
from engine.kinemo.files import load_model, save_model
from engine.kinemo.model import KinemoConfig, KinemoDiT
from engine.kinemo.temporal_attention import TemporalAttention
from engine.kinemo.text_encoder import token_batch
from engine.kinemo.vocabulary import tokenize

TINY = KinemoConfig(dim=16, depth=1, heads=2, text_dim=16, text_depth=1)


def _randomised(model):
    torch.manual_seed(0)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return model.eval()


def test_output_shape_matches_input_for_text_and_image_conditioning():
    model = _randomised(KinemoDiT(TINY))
    ids = token_batch([tokenize("a red circle grows").ids, tokenize("").ids])
    x = torch.randn(2, 3, 5, 64, 64)
    out = model(x, torch.tensor([10, 900]), model.encode(ids))
    assert out.shape == x.shape
    with_image = model(x, torch.tensor([10, 900]), model.encode(ids, torch.rand(2, 3, 64, 64) * 2 - 1))
    assert with_image.shape == x.shape
    assert not torch.allclose(out, with_image), "the first-frame image must change the output"


def test_temporal_attention_has_a_plain_tensor_interface_and_mixes_only_frames():
    torch.manual_seed(0)
    block = TemporalAttention(dim=16, heads=2)
    x = torch.randn(6, 5, 16)  # (batch * tokens, frames, dim)
    out = block(x)
    assert out.shape == (6, 5, 16)
    x2 = x.clone()
    x2[0] += 1.0  # change one position's frames: other positions must not move
    out2 = block(x2)
    assert torch.allclose(out[1:], out2[1:]) and not torch.allclose(out[0], out2[0])


def test_temporal_attention_is_shift_invariant_in_frame_positions():
    torch.manual_seed(0)
    block = TemporalAttention(dim=16, heads=2)
    x = torch.randn(3, 4, 16)
    a = block(x, torch.arange(4))
    b = block(x, torch.arange(4) + 7)  # RoPE: only distances between frames matter
    assert torch.allclose(a, b, atol=1e-5)


def test_too_many_frames_is_a_clear_error():
    model = KinemoDiT(TINY)
    ids = token_batch([tokenize("a").ids])
    with pytest.raises(ValueError, match="exceed"):
        model(torch.randn(1, 3, 17, 64, 64), torch.tensor([1]), model.encode(ids))


def test_save_and_load_round_trip(tmp_path):
    model = _randomised(KinemoDiT(TINY))
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert not any(p.requires_grad for p in loaded.parameters())


def test_loading_failures_name_the_file(tmp_path):
    with pytest.raises(ModelLoadError, match="missing"):
        load_model(tmp_path / "nowhere")
    model = KinemoDiT(TINY)
    save_model(model, tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="unreadable weights"):
        load_model(tmp_path / "m")


def test_a_new_refiner_passes_the_decoded_clip_through_and_a_trained_one_changes_it():
    model = _randomised(KinemoDiT(TINY))
    without = KinemoDiT(KinemoConfig(**{**TINY.to_dict(), "refiner": 0}))
    ids = token_batch([tokenize("a red circle grows").ids])
    x, t = torch.randn(1, 3, 3, 64, 64), torch.tensor([500])
    cond = model.encode(ids)
    torch.nn.init.zeros_(model.refiner.conv_out.weight)
    torch.nn.init.zeros_(model.refiner.conv_out.bias)
    decoded = model(x, t, cond)
    # the same transformer without a refiner draws the clip channels of the same decoder
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("refiner.")}
    rows = torch.arange(3 * model.window**2)  # the overlapping decoder's rows are channel-major: (c k1 k2)
    state["patch_out.weight"], state["patch_out.bias"] = state["patch_out.weight"][rows], state["patch_out.bias"][rows]
    without.load_state_dict(state)
    assert torch.allclose(decoded, without(x, t, cond), atol=1e-5)
    torch.nn.init.normal_(model.refiner.conv_out.weight, std=0.05)
    assert not torch.allclose(decoded, model(x, t, cond), atol=1e-3)


def test_model_files_written_before_the_refiner_load_without_one():
    config = KinemoConfig.from_dict({k: v for k, v in TINY.to_dict().items() if not k.startswith("refiner")})
    assert config.refiner == 0 and KinemoDiT(config).refiner is None
    assert KinemoConfig.from_dict(TINY.to_dict()).refiner == TINY.refiner > 0


def test_model_files_written_before_the_denoised_refiner_input_and_the_overlapping_decoder_keep_their_design():
    old = {k: v for k, v in TINY.to_dict().items() if k not in ("refiner_input", "overlap_decoder", "token_input")}
    config = KinemoConfig.from_dict(old)
    assert config.refiner_input == "noisy" and not config.overlap_decoder
    model = KinemoDiT(config)
    assert model.patch_out.out_features == config.patch**2 * model.out_channels and not hasattr(model, "signal_scale")
    assert KinemoDiT(TINY).patch_out.out_features == (2 * TINY.patch) ** 2 * KinemoDiT(TINY).out_channels


def test_the_refiner_sees_each_pixels_least_squares_guess_of_the_clean_frame():
    from engine.kinemo.schedule import alphas_cumprod, make_betas

    model = _randomised(KinemoDiT(TINY)).eval()
    seen = []
    forward = model.refiner.forward
    model.refiner.forward = lambda decoded, features, noisy, image, c: (
        seen.append(noisy) or forward(decoded, features, noisy, image, c)
    )
    cond = model.encode(token_batch([tokenize("a red circle grows").ids] * 2))
    x, t = torch.randn(2, 3, 3, 64, 64), torch.tensor([999, 40])
    model(x, t, cond)
    cumprod = alphas_cumprod(make_betas(TINY.beta_schedule, TINY.num_train_timesteps, snr_scale=TINY.snr_scale))
    expected = rearrange(x, "b c f h w -> (b f) c h w") * cumprod[t].sqrt().repeat_interleave(3)[:, None, None, None]
    assert torch.allclose(seen[0], expected)
    assert seen[0][:3].abs().max() < 1e-3 < seen[0][3:].abs().max()  # pure noise is all but shut off


def test_denoised_token_input_makes_the_first_step_independent_of_the_noise():
    """At t = 999 sqrt(alpha_bar) is about 1e-4: with denoised token input the prediction depends on the prompt alone."""
    model = _randomised(KinemoDiT(TINY)).eval()
    assert TINY.token_input == "denoised"
    cond = model.encode(token_batch([tokenize("a red square stays still").ids]))
    a, b = torch.randn(2, 1, 3, 2, 64, 64)
    top = torch.tensor([999])
    spread = lambda m, t: (m(a, t, cond) - m(b, t, cond)).abs().max().item()  # noqa: E731
    noisy = _randomised(KinemoDiT(KinemoConfig(**{**TINY.to_dict(), "token_input": "noisy"}))).eval()
    assert spread(model, top) < 1e-3 < 0.05 < spread(noisy, top)
    assert spread(model, torch.tensor([40])) > 0.05  # late steps still read the frame


def test_model_files_written_before_token_input_keep_raw_noisy_tokens():
    config = KinemoConfig.from_dict({k: v for k, v in TINY.to_dict().items() if k != "token_input"})
    assert config.token_input == "noisy"
    with pytest.raises(ValueError, match="token_input"):
        KinemoDiT(KinemoConfig(**{**TINY.to_dict(), "token_input": "clean"}))


def test_the_overlapping_decoder_lets_a_token_draw_past_its_own_patch():
    model = KinemoDiT(KinemoConfig(**{**TINY.to_dict(), "refiner": 0})).eval()
    p, grid = TINY.patch, TINY.grid
    token = 3 * grid + 3  # the token of the patch at rows and columns 24..31

    def one_token_draws_ones(module, inputs, output):  # output (b, f, s, c k k)
        drawn = torch.zeros_like(output)
        drawn[:, :, token] = 1.0
        return drawn

    model.patch_out.register_forward_hook(one_token_draws_ones)
    cond = model.encode(token_batch([tokenize("a red circle").ids]))
    out = model(torch.randn(1, 3, 1, 64, 64), torch.tensor([500]), cond)[0, 0, 0]  # (h, w)
    rows, cols = out.abs().sum(1).nonzero().flatten(), out.abs().sum(0).nonzero().flatten()
    # a 2p x 2p window: the token's own 8 x 8 patch and p/2 = 4 pixels on every side of it
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (
        3 * p - p // 2,
        4 * p - 1 + p // 2,
        3 * p - p // 2,
        4 * p - 1 + p // 2,
    )
    assert torch.equal(out[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1], torch.ones(2 * p, 2 * p))
