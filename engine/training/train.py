"""Train the bundled starter model on procedurally generated clips.

    python -m engine.training.train [--steps N] [--batch B] [--out assets/kinemo-starter]

Most steps see clips as a few frames spread over the whole move (always including the first
frame): neighbouring frames of these clips say almost the same thing, so four frames teach nearly
what sixteen do at a quarter of the cost, and the saved compute buys more clips. Every
--full-every-th step trains on whole 16-frame windows, the way clips are generated.

Resumable: a checkpoint (weights, EMA, optimiser, step) is written every --checkpoint-every steps
and picked up on the next run. The data stream depends only on (seed, step), so a resumed run sees
the clips an uninterrupted run would have seen. At the end the EMA weights are written to --out.

A finishing stage (from --finish-from on) noises some clips from copies with lumpy outlines while
the targets stay clean; the steps before it are the run without that stage, draw for draw, so the
stage can be tried by resuming an earlier run's checkpoint.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.kinemo.files import load_model, save_model
from engine.kinemo.model import KinemoConfig, KinemoDiT
from engine.kinemo.schedule import add_noise, velocity
from engine.registry.assets import CONFIG_NAME
from engine.training.loop import Progress, Report, Trainee, caption_ids, noise_schedule, optimise, run_steps, start
from engine.training.noising import blurred_inputs, loss_weight, lumpy_inputs, pixel_weights, sample_timesteps
from engine.training.recipe import Recipe, Run, parse_train
from engine.training.synthetic import Batch, make_batch

log = logging.getLogger("kinemo.train")
REPORT = Report(desc="train", smoothing=0.02, history_every=10, digits=4)


@dataclass
class Clips:
    """One step's clips as training_step takes them."""

    batch: Batch
    ids: torch.Tensor  # (b, tokens) caption ids, some dropped to the empty prompt
    generator: torch.Generator  # the step's noise, timesteps and corruptions
    frame_indices: torch.Tensor | None = None  # the frames of the window kept; None for all of them


def parse_args(argv=None) -> tuple[Recipe, Run]:
    return parse_train(argv, __doc__.splitlines()[0])


def frame_plan(step: int, recipe: Recipe, window: int, rng: random.Random) -> tuple[int, torch.Tensor]:
    """How many clips this step trains on and which frames of the window it keeps.

    Every step costs about the same (clips x frames is constant); short steps keep the first
    frame and a random, increasing choice of the others.
    """
    if step % recipe.full_every == 0 or recipe.short_frames >= window:
        return recipe.batch, torch.arange(window)
    kept = sorted([0, *rng.sample(range(1, window), recipe.short_frames - 1)])
    return recipe.batch * window // recipe.short_frames, torch.tensor(kept)


def training_step(model, clips: Clips, recipe: Recipe, cumprod: torch.Tensor) -> torch.Tensor:
    """The diffusion loss for one batch of clips, for the model's prediction type; cumprod's device is the model's."""
    device, generator, frame_indices = cumprod.device, clips.generator, clips.frame_indices
    video, foreground = clips.batch.video, clips.batch.foreground
    if frame_indices is not None:
        video, foreground = video[:, :, frame_indices], foreground[:, :, frame_indices]
    x0 = (video * 2 - 1).to(device)  # (b, 3, f, h, w) in [-1, 1]
    weights = pixel_weights(foreground.to(device), recipe.object_weight)  # (b, 1, f, h, w)
    b = x0.shape[0]
    noise = torch.randn(x0.shape, generator=generator).to(device)
    if recipe.mid_share:
        t = sample_timesteps(b, len(cumprod), recipe.mid_share, recipe.mid_range, generator).to(device)
    else:  # one draw where sample_timesteps makes three: a recipe without a mid share resumes its checkpoints draw for draw
        t = torch.randint(0, len(cumprod), (b,), generator=generator).to(device)
    first_frame = x0[:, :, 0]  # (b, 3, h, w)
    signal = x0
    if recipe.lumpy_rate:
        signal = lumpy_inputs(x0, foreground.to(device), recipe.lumpy_rate, recipe.lumpy_strength, generator)
    if recipe.blur_rate:
        signal = blurred_inputs(signal, recipe.blur_rate, recipe.max_blur, generator)
    if recipe.input_perturbation:  # the input's noise is noise + gamma * xi; the x_0 target (or the epsilon one) is not
        noise_in = noise + recipe.input_perturbation * torch.randn(x0.shape, generator=generator).to(device)
        x_t = add_noise(signal, noise_in, t, cumprod)
    else:
        x_t = add_noise(signal, noise, t, cumprod)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=recipe.precision == "bf16"):
        cond = model.encode(clips.ids.to(device), first_frame, clips.batch.image_mask.to(device))
        prediction = model(x_t, t, cond, None if frame_indices is None else frame_indices.to(device)).float()
    kind = model.config.prediction_type
    if kind == "sample":
        per_clip = ((prediction - x0).pow(2) * weights).flatten(1).mean(1)
        return (per_clip * loss_weight(t, cumprod)).mean()
    target = velocity(x0, noise, t, cumprod) if kind == "v_prediction" else noise
    return ((prediction - target).pow(2) * weights).mean()


def new_trainee(config: KinemoConfig, recipe: Recipe, device: torch.device) -> Trainee:
    model = KinemoDiT(config).to(device)
    ema = KinemoDiT(config).to(device).requires_grad_(False)
    ema.load_state_dict(model.state_dict())
    optimiser = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.0, betas=(0.9, 0.99))
    return Trainee(model, ema, optimiser)


def training_record(recipe: Recipe, progress: Progress, device: torch.device) -> dict:
    """The recipe as the model's config.json records it under "_training"."""
    r = recipe
    return {
        "steps": progress.step,
        "batch": r.batch,
        "short_frames": r.short_frames,
        "full_every": r.full_every,
        "lr": r.lr,
        "ema": r.ema,
        "seed": r.seed,
        "object_weight": r.object_weight,
        "blur_rate": r.blur_rate,
        "max_blur": r.max_blur,
        "mid_share": r.mid_share,
        "mid_range": list(r.mid_range),
        "input_perturbation": r.input_perturbation,
        "finish_from": r.finish_from,
        "lumpy_rate": r.lumpy_rate,
        "lumpy_strength": r.lumpy_strength,
        "precision": r.precision,
        "train_seconds": round(progress.seconds, 1),
        "final_loss": progress.running,
        "device": str(device),
        **({"continued_from": str(r.init)} if r.init else {}),
    }


def continued(trainee: Trainee, folder: Path | None) -> Progress | None:
    """Where a run continued from the saved model in folder starts: its weights in model and EMA, its step and
    seconds from its config's "_training" record (None without a folder)."""
    if folder is None:
        return None
    saved = load_model(folder)
    if saved.config != trainee.model.config:
        raise SystemExit(f"{folder} holds a model of another shape than this run's: {saved.config}")
    for module in (trainee.model, trainee.ema):
        module.load_state_dict(saved.state_dict())
    record = json.loads((Path(folder) / CONFIG_NAME).read_text()).get("_training", {})
    log.info("continuing %s from step %d", folder, record.get("steps", 0))
    return Progress(record.get("steps", 0), [], record.get("train_seconds", 0.0))


def main(argv=None) -> None:
    recipe, run = parse_args(argv)
    device = start(run, recipe.seed)
    config = KinemoConfig(**recipe.model_config)
    trainee = new_trainee(config, recipe, device)
    cumprod = noise_schedule(config, device)
    log.info("model: %.2fM parameters, %s", sum(p.numel() for p in trainee.model.parameters()) / 1e6, config)
    fresh = continued(trainee, recipe.init)
    first = fresh.step if fresh else 0  # a continued run warms its new optimiser up from where it starts

    def step(index: int, rng: random.Random, generator: torch.Generator) -> torch.Tensor:
        clip_count, frame_indices = frame_plan(index, recipe, config.max_frames, rng)
        batch = make_batch(rng, clip_count, frames=config.max_frames)
        clips = Clips(batch, caption_ids(batch.captions, recipe.text_dropout, rng), generator, frame_indices)
        for group in trainee.optimiser.param_groups:
            group["lr"] = recipe.lr * min(1.0, (index + 1 - first) / recipe.warmup)
        loss = training_step(trainee.model, clips, recipe.at_step(index), cumprod)
        optimise(trainee, loss, min(recipe.ema, (1 + index) / (10 + index)))
        return loss

    progress = run_steps(trainee, step, recipe, run, REPORT, fresh)
    save_model(trainee.ema, run.out, {"_training": training_record(recipe, progress, device)})
    log.info("wrote %s after %d steps (%.0f s of training)", run.out, progress.step, progress.seconds)


if __name__ == "__main__":
    main()
