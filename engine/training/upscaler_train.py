"""Train the bundled upscaler (engine.kinemo.upscaler) on frames our own renderer draws at two sizes.

    python -m engine.training.upscaler_train [--steps N] [--batch B] [--out assets/kinemo-upscaler]

Each example is one frame of the synthetic world: mostly a shape of the pixel model's vocabulary, at any
place and size in the frame, and some of the procedural pictures of camera clips. The frame is rendered at
64x64 and softened as the pixel model's own output is: blurred (a Gaussian of 0.5 to --max-blur pixels) on
--blur-rate of the frames, outlines made lumpy (by up to about 2 px) on --lumpy-rate of the shapes, and a
little noise. The targets are what the renderer knows exactly: the shape's signed distance at every pixel,
its colour and its background's, and whether the frame is a shape at all (field_loss). Held-out caption
combinations are left out, as in the pixel model's training.

Resumable: a checkpoint every --checkpoint-every steps; the data stream depends only on (seed, step).
"""

from __future__ import annotations

import argparse
import logging
import random
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from engine.kinemo.upscaler import KinemoUpscaler, UpscalerConfig, save_upscaler
from engine.kinemo.vocabulary import BACKGROUNDS, COLOURS
from engine.registry.assets import UPSCALER_DIR
from engine.training.loop import Report, Trainee, optimise, run_steps, start
from engine.training.noising import blurred_inputs, gaussian_blur, lumpy_inputs
from engine.training.recipe import Run, add_shared_flags, from_flags
from engine.training.synthetic import (
    SIZE,
    ObjectClip,
    camera_coordinates,
    object_coverage,
    paint_object,
    sample_camera_clip,
    shape_signed_distance,
    texture,
    training_combos,
)

log = logging.getLogger("kinemo.train")
REPORT = Report(desc="upscaler", smoothing=0.02, history_every=10, digits=4)
RUN = Run(checkpoint=Path("runs/upscaler/checkpoint.pt"), checkpoint_every=50, out=UPSCALER_DIR)


@dataclass(frozen=True)
class UpscalerRecipe:
    steps: int = 3000
    batch: int = 16  # frames per step
    lr: float = 1e-3
    ema: float = 0.99
    seed: int = 0
    camera_share: float = 0.2
    blur_rate: float = 0.8
    max_blur: float = 2.0
    lumpy_rate: float = 0.5
    lumpy_strength: float = 0.5
    noise: float = 0.03  # largest standard deviation of the input's noise (of the -1..1 range)
    # from harsh_from on, inputs are also warped (outlines wobble by up to `warp` px, as the pixel model's do) and
    # blotched (smooth colour stains up to `blotches`); the steps before it are the recipe without them, draw for draw
    harsh_from: int = 2000
    warp: float = 3.0
    blotches: float = 0.15

    def at_step(self, step: int) -> UpscalerRecipe:
        return self if step >= self.harsh_from else replace(self, warp=0.0, blotches=0.0)


@dataclass
class Example:
    low: torch.Tensor  # (3, 64, 64) the clean frame in [0, 1]
    coverage: torch.Tensor  # (64, 64) the shape's coverage; zeros for a picture
    distance: (
        torch.Tensor
    )  # (64, 64) signed distance to the outline, small pixels, positive inside; zeros for a picture
    background: torch.Tensor  # (3,) in [0, 1]
    colour: torch.Tensor  # (3,) the shape's colour in [0, 1]
    fits: float  # 1 for a shape on a plain background, 0 for a picture


def shape_example(rng: random.Random) -> Example:
    """One shape of a training combination, anywhere in the frame (2 px clear of the border), 12 to 32 px across:
    the sizes the pixel model draws."""
    colour, shape, _, background = rng.choice(training_combos())
    radius = rng.uniform(6.0, 16.0)
    x, y = (rng.uniform(radius + 2, SIZE - radius - 2) for _ in range(2))
    clip = ObjectClip(colour, shape, "stays still", background, x, y, radius, 0.0)
    coverage = object_coverage(clip, 1, SIZE)[0]  # (h, w)
    centres = torch.arange(SIZE, dtype=torch.float32) + 0.5
    ys, xs = torch.meshgrid(centres, centres, indexing="ij")
    distance = shape_signed_distance(shape, xs - x, ys - y, torch.tensor(radius))
    frame = paint_object(clip, coverage[None])[:, 0]
    return Example(frame, coverage, distance, torch.tensor(BACKGROUNDS[background]), torch.tensor(COLOURS[colour]), 1.0)


def picture_example(rng: random.Random) -> Example:
    """One frame of a camera clip over a procedural picture, at a random moment of its move."""
    clip = sample_camera_clip(rng)
    xs, ys = camera_coordinates(clip.move, clip.amount, torch.tensor([rng.random()]), SIZE)
    zeros = torch.zeros(SIZE, SIZE)
    return Example(texture(clip.texture_seed, xs, ys)[:, 0], zeros, zeros, torch.zeros(3), torch.zeros(3), 0.0)


@dataclass
class Pairs:
    """One step's examples: the softened frames the upscaler reads and the fields it should predict."""

    low: torch.Tensor  # (b, 3, h, w) in [-1, 1], softened
    distance: torch.Tensor  # (b, 1, h, w)
    background: torch.Tensor  # (b, 3, 1, 1) in [-1, 1]
    colour: torch.Tensor  # (b, 3, 1, 1) in [-1, 1]
    fits: torch.Tensor  # (b, 1, 1, 1)

    def to(self, device) -> Pairs:
        return Pairs(*(getattr(self, f.name).to(device) for f in fields(self)))


def make_pairs(rng: random.Random, generator: torch.Generator, recipe: UpscalerRecipe) -> Pairs:
    examples = [
        picture_example(rng) if rng.random() < recipe.camera_share else shape_example(rng) for _ in range(recipe.batch)
    ]
    low = torch.stack([e.low for e in examples])[:, :, None] * 2 - 1  # (b, 3, 1, h, w): the noising helpers' layout
    coverage = torch.stack([e.coverage for e in examples])[:, None, None]  # (b, 1, 1, h, w)
    if recipe.lumpy_rate:
        low = lumpy_inputs(low, coverage, recipe.lumpy_rate, recipe.lumpy_strength, generator)
    if recipe.blur_rate:
        low = blurred_inputs(low, recipe.blur_rate, recipe.max_blur, generator)
    if recipe.warp:
        low = warped(low, recipe.warp, generator)
    sigma = recipe.noise * torch.rand(recipe.batch, 1, 1, 1, 1, generator=generator)
    low = low + sigma * torch.randn(low.shape, generator=generator)
    if recipe.blotches:
        low = low + recipe.blotches * torch.rand(recipe.batch, 1, 1, 1, 1, generator=generator) * smooth_field(
            low.shape, 2.0, generator
        )
    colours = lambda name: torch.stack([getattr(e, name) for e in examples])[:, :, None, None] * 2 - 1  # noqa: E731
    return Pairs(
        low[:, :, 0].clamp(-1, 1),
        torch.stack([e.distance for e in examples])[:, None],
        colours("background"),
        colours("colour"),
        torch.tensor([e.fits for e in examples]).view(-1, 1, 1, 1),
    )


def smooth_field(shape: torch.Size, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise of shape (b, c, f, h, w) blurred by sigma px, scaled to unit deviation per example."""
    field = gaussian_blur(torch.randn(shape, generator=generator), sigma)
    return field / field.flatten(1).std(1).view(-1, 1, 1, 1, 1)


def warped(low: torch.Tensor, amount: float, generator: torch.Generator) -> torch.Tensor:
    """low (b, 3, 1, h, w) resampled through a smooth displacement field of up to `amount` px (each example its own
    share of it): outlines wobble and corners round, as in the pixel model's frames; the targets stay clean."""
    b, _, _, h, w = low.shape
    shift = smooth_field(torch.Size((b, 2, 1, h, w)), 4.0, generator)[:, :, 0]  # (b, 2, h, w)
    shift = shift * amount * torch.rand(b, 1, 1, 1, generator=generator)
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    grid = torch.stack([(xs + shift[:, 0]) / w * 2 - 1, (ys + shift[:, 1]) / h * 2 - 1], dim=-1)  # (b, h, w, 2)
    return F.grid_sample(low[:, :, 0], grid, padding_mode="border", align_corners=False)[:, :, None]


def field_loss(fields: torch.Tensor, pairs: Pairs) -> torch.Tensor:
    """How far predicted fields (b, 8, h, w) are from the truth. The distance counts within 3 px of the outline
    (beyond, only its sign matters, and a target clipped to +-3 keeps that); each colour counts on its own side
    of the outline and 3 px beyond, where the drawing uses it; pictures teach only that they do not fit."""
    distance, background, colour, fit = fields.split([1, 3, 3, 1], dim=1)
    shape = pairs.fits  # (b, 1, 1, 1)
    truth = pairs.distance.clamp(-3, 3)
    near = 1 + 4 * (pairs.distance.abs() < 2).float()  # the outline's own pixels matter most
    loss = ((distance - truth).abs() * near * shape).mean()
    loss = loss + ((background - pairs.background).pow(2) * (pairs.distance < 3) * shape).mean()
    loss = loss + ((colour - pairs.colour).pow(2) * (pairs.distance > -3) * shape).mean()
    return loss + F.binary_cross_entropy_with_logits(fit, pairs.fits.expand_as(fit))


def parse_args(argv=None) -> tuple[UpscalerRecipe, Run, UpscalerConfig]:
    p = argparse.ArgumentParser(prog="python -m engine.training.upscaler_train", description=__doc__.splitlines()[0])
    d = UpscalerRecipe()
    add_shared_flags(p, d, RUN, None, "frames per step")
    for name in ("camera_share", "blur_rate", "max_blur", "lumpy_rate", "lumpy_strength", "noise", "warp", "blotches"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(d, name))
    p.add_argument(
        "--harsh-from", type=int, default=d.harsh_from, help="the step from which --warp and --blotches apply"
    )
    p.add_argument("--channels", type=int, default=UpscalerConfig.channels, help="the U-Net's full-resolution width")
    args = p.parse_args(argv)
    recipe, run = from_flags(args, UpscalerRecipe)
    return recipe, run, UpscalerConfig(channels=args.channels)


def main(argv=None) -> None:
    recipe, run, config = parse_args(argv)
    device = start(run, recipe.seed)
    model = KinemoUpscaler(config).to(device)
    ema = KinemoUpscaler(config).to(device).requires_grad_(False)
    ema.load_state_dict(model.state_dict())
    trainee = Trainee(model, ema, torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.0))
    log.info("upscaler: %.2fM parameters, %s", sum(p.numel() for p in model.parameters()) / 1e6, config)

    def step(index: int, rng: random.Random, generator: torch.Generator) -> torch.Tensor:
        pairs = make_pairs(rng, generator, recipe.at_step(index))
        for group in trainee.optimiser.param_groups:  # cosine decay to a tenth
            group["lr"] = recipe.lr * (0.55 + 0.45 * torch.cos(torch.tensor(torch.pi * index / recipe.steps)).item())
        loss = field_loss(model.fields(pairs.low.to(device)), pairs.to(device))
        optimise(trainee, loss, min(recipe.ema, (1 + index) / (10 + index)))
        return loss

    progress = run_steps(trainee, step, recipe, run, REPORT)
    record = {**{f.name: getattr(recipe, f.name) for f in fields(recipe)}, "steps": progress.step}
    record |= {"train_seconds": round(progress.seconds, 1), "final_loss": progress.running, "device": str(device)}
    save_upscaler(ema, run.out, {"_training": record})
    log.info("wrote %s after %d steps (%.0f s of training)", run.out, progress.step, progress.seconds)


if __name__ == "__main__":
    main()
