"""The tiny Wan 2.2 (TI2V 5B, A14B) and SkyReels-V2 diffusion-forcing pipelines: built offline, saved, reloaded, run."""

from dataclasses import dataclass

import numpy as np
import pytest
from tiny_diffusers import pipeline_checks
from tiny_diffusers.pipeline_checks import (
    assert_runs_reproducibly,
    folders_fixture,
    load_pipeline,
    outputs_fixture,
    pipelines_fixture,
    run,
    saved_models,
)
from tiny_diffusers.skyreels_v2 import (
    SKYREELS_V2_DF_CALL,
    SKYREELS_V2_DF_I2V_CALL,
    save_tiny_skyreels_v2_df_i2v,
    save_tiny_skyreels_v2_df_t2v,
)
from tiny_diffusers.wan22 import (
    A14B_I2V_BOUNDARY,
    A14B_T2V_BOUNDARY,
    WAN22_A14B_CALL,
    WAN22_A14B_I2V_CALL,
    WAN22_TI2V_CALL,
    WAN22_TI2V_I2V_CALL,
    save_tiny_wan22_a14b_i2v,
    save_tiny_wan22_a14b_t2v,
    save_tiny_wan22_ti2v,
)


@dataclass(frozen=True)
class Case(pipeline_checks.Case):
    latent_shape: tuple = ()  # (c, f, h, w) of the latents callback_on_step_end sees, for the call's 9 frames, 32x32


CASES = {
    "wan22-ti2v-t2v": Case(save_tiny_wan22_ti2v, "WanPipeline", WAN22_TI2V_CALL, latent_shape=(48, 3, 2, 2)),
    "wan22-ti2v-i2v": Case(
        save_tiny_wan22_ti2v,
        "WanPipeline",
        WAN22_TI2V_I2V_CALL,
        True,
        load_as="WanImageToVideoPipeline",
        latent_shape=(48, 3, 2, 2),
    ),
    "wan22-a14b-t2v": Case(save_tiny_wan22_a14b_t2v, "WanPipeline", WAN22_A14B_CALL, latent_shape=(16, 3, 4, 4)),
    "wan22-a14b-i2v": Case(
        save_tiny_wan22_a14b_i2v, "WanImageToVideoPipeline", WAN22_A14B_I2V_CALL, True, latent_shape=(16, 3, 4, 4)
    ),
    "skyreels-df-t2v": Case(
        save_tiny_skyreels_v2_df_t2v,
        "SkyReelsV2DiffusionForcingPipeline",
        SKYREELS_V2_DF_CALL,
        latent_shape=(16, 3, 4, 4),
    ),
    "skyreels-df-i2v": Case(
        save_tiny_skyreels_v2_df_i2v,
        "SkyReelsV2DiffusionForcingImageToVideoPipeline",
        SKYREELS_V2_DF_I2V_CALL,
        True,
        latent_shape=(16, 3, 4, 4),
    ),
}
OWN_FOLDER_CASES = sorted(name for name, case in CASES.items() if case.load_as is None)
folders = folders_fixture(CASES)
pipelines = pipelines_fixture(CASES)
outputs = outputs_fixture(CASES)


@pytest.mark.parametrize("name", OWN_FOLDER_CASES)
def test_saved_folder_holds_only_safetensors_weights(folders, name):
    models = saved_models(folders(name), CASES[name].pipeline_class)
    expected = {"transformer", "vae", "text_encoder"} | ({"transformer_2"} if "a14b" in name else set())
    assert models == expected


@pytest.mark.parametrize("name", list(CASES))
def test_reloads_as_the_right_class_and_runs(pipelines, outputs, name):
    case = CASES[name]
    pipe = pipelines(name)
    assert type(pipe).__name__ == (case.load_as or case.pipeline_class)
    assert_runs_reproducibly(outputs, name, case.clip_shape)


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.image_to_video])
def test_image_to_video_follows_the_image(outputs, name):
    assert not np.allclose(outputs(name, color=(10, 200, 90)).frames, outputs(name).frames)


@pytest.mark.parametrize("name", list(CASES))
def test_callback_sees_latents_once_per_step(pipelines, name):
    case = CASES[name]
    seen = []

    def callback(pipe, step, timestep, tensors):
        seen.append((step, tuple(tensors["latents"].shape)))
        return tensors

    run(pipelines(name), case, callback_on_step_end=callback, callback_on_step_end_tensor_inputs=["latents"])
    steps = case.call["num_inference_steps"]
    assert seen == [(i, (1, *case.latent_shape)) for i in range(steps)]  # "b c f h w"


def test_ti2v_folder_loads_as_both_wan_pipelines(folders, pipelines):
    from diffusers import WanImageToVideoPipeline, WanPipeline

    assert folders("wan22-ti2v-t2v") == folders("wan22-ti2v-i2v")
    t2v, i2v = pipelines("wan22-ti2v-t2v"), pipelines("wan22-ti2v-i2v")
    assert type(t2v) is WanPipeline and type(i2v) is WanImageToVideoPipeline
    assert t2v.config.expand_timesteps and i2v.config.expand_timesteps and i2v.config.boundary_ratio is None
    assert i2v.image_encoder is None and i2v.transformer_2 is None
    assert type(WanImageToVideoPipeline.from_pipe(t2v)) is WanImageToVideoPipeline
    patch = tuple(t2v.transformer.config.patch_size)
    assert (t2v.vae_scale_factor_spatial, t2v.vae_scale_factor_temporal, patch) == (16, 4, (1, 2, 2))


def test_ti2v_size_rules(pipelines):
    case = CASES["wan22-ti2v-t2v"]
    pipe = pipelines("wan22-ti2v-t2v")
    with pytest.raises(ValueError, match="divisible by 16"):
        run(pipe, case, height=40)
    video = run(pipe, case, height=48, num_frames=8).frames  # 48 is 16k but not 32k: silently 32; 8 frames -> 9
    assert video.shape == (1, 9, 32, 32, 3)


def _record_expert_timesteps(pipe):
    """Hooks on both experts: the list of (expert name, timestep) of every forward call."""
    calls = []
    for expert in ("transformer", "transformer_2"):
        getattr(pipe, expert).register_forward_pre_hook(
            lambda module, args, kwargs, expert=expert: calls.append((expert, float(kwargs["timestep"].max()))),
            with_kwargs=True,
        )
    return calls


@pytest.mark.parametrize(
    ("name", "boundary"), [("wan22-a14b-t2v", A14B_T2V_BOUNDARY), ("wan22-a14b-i2v", A14B_I2V_BOUNDARY)]
)
def test_a14b_runs_each_expert_on_its_side_of_the_boundary(folders, name, boundary):
    case = CASES[name]
    pipe = load_pipeline(folders(name))  # a private copy: the hooks stay on it
    assert pipe.config.boundary_ratio == boundary
    boundary_timestep = boundary * pipe.scheduler.config.num_train_timesteps
    calls = _record_expert_timesteps(pipe)
    run(pipe, case)

    timesteps = [float(t) for t in pipe.scheduler.timesteps]
    assert timesteps == [999.0, 750.0]  # 2 steps, flow_shift 3: one high-noise, one low-noise step
    expected = [("transformer" if t >= boundary_timestep else "transformer_2", t) for t in timesteps for _ in "cu"]
    assert calls == expected  # cond + uncond (guidance_scale > 1) per step, each on its expert

    calls.clear()
    other = run(pipe, case, guidance_scale_2=1.0).frames  # low-noise steps: cond only, yet uncond still runs
    assert len(calls) == 4 and not np.allclose(other, run(pipe, case).frames)


@pytest.mark.parametrize("name", ["skyreels-df-t2v", "skyreels-df-i2v"])
def test_skyreels_folders_load_as_every_diffusion_forcing_pipeline(folders, name):
    for class_name in (
        "SkyReelsV2DiffusionForcingPipeline",
        "SkyReelsV2DiffusionForcingImageToVideoPipeline",
        "SkyReelsV2DiffusionForcingVideoToVideoPipeline",
    ):
        assert type(load_pipeline(folders(name), class_name)).__name__ == class_name


def _callback_steps(pipe, case, **overrides):
    """(step index, per-latent-frame timesteps) at each callback, and the clip."""
    steps = []
    video = run(pipe, case, callback_on_step_end=lambda p, i, t, kw: steps.append((i, t.tolist())) or kw, **overrides)
    return steps, video.frames


def test_skyreels_asynchronous_and_long_video_callbacks(pipelines):
    case = CASES["skyreels-df-t2v"]
    pipe = pipelines("skyreels-df-t2v")
    # ar_step=1: each of the 3 latent frames (causal blocks of 1) lags the one before by one step: 2 + 2 passes
    assert _callback_steps(pipe, case, ar_step=1)[0] == [
        (0, [999, 999, 999]),
        (1, [889, 999, 999]),
        (2, [0, 889, 999]),
        (3, [0, 0, 889]),
    ]
    # 17 frames in windows of 9 re-using 5: 3 windows (3 + 1 + 1 latent frames), step numbering restarts per window
    long = dict(num_frames=17, base_num_frames=9, overlap_history=5)
    steps, video = _callback_steps(pipe, case, **long)
    assert [i for i, _ in steps] == [0, 1, 0, 1, 0, 1] and steps[2][1] == [0, 0, 999]
    assert video.shape == (1, 17, 32, 32, 3)
    with pytest.raises(ValueError, match="overlap_history"):
        run(pipe, case, num_frames=17, base_num_frames=9)


def test_skyreels_i2v_keeps_the_image_frame_and_fps_matters(pipelines, outputs):
    case = CASES["skyreels-df-i2v"]
    pipe = pipelines("skyreels-df-i2v")
    steps, video = _callback_steps(pipe, case, fps=16)
    assert [t[0] for _, t in steps] == [0, 0]  # the image's latent frame is pre-ready: never denoised
    assert not np.allclose(video, outputs("skyreels-df-i2v").frames)  # fps=16 and any other fps: 2 embeddings


def test_skyreels_causal_block_size_sticks_to_the_transformer(folders):
    case = CASES["skyreels-df-t2v"]
    pipe = load_pipeline(folders("skyreels-df-t2v"))  # a private copy: the call below changes its transformer config
    assert pipe.transformer.config.num_frame_per_block == 1
    steps, _ = _callback_steps(pipe, case, causal_block_size=3)
    assert pipe.transformer.config.num_frame_per_block == 3 and len(steps) == 2
    assert len(_callback_steps(pipe, case)[0][0][1]) == 3  # later calls without it still use blocks of 3
