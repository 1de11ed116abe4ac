"""Train the camera model on camera moves our own code draws over procedural pictures.

    python -m engine.training.camera_train      # resumable: checkpoints go to runs/camera/, rerun to continue

A training example is a caption ("the camera pans up"), a thumbnail of a procedural picture and the motion
fields of that move: how far and how eased (linear, or easing in and out) are drawn at random, so the model
learns a distribution of moves for each caption, and the seed picks one. Pictures never leave our own code.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from engine.kinemo.camera_model import CameraConfig, CameraMotionModel, grid_to_fields
from engine.kinemo.schedule import add_noise, alphas_cumprod, make_betas
from engine.kinemo.text_encoder import token_batch
from engine.kinemo.vocabulary import PICTURE_MOVES, camera_caption, tokenize
from engine.registry.assets import CAMERA_DIR
from engine.training.loop import Report, Trainee, run_steps, start
from engine.training.recipe import Run
from engine.training.synthetic import texture

PAN = (0.12, 0.30)  # how far a pan turns, as a fraction of the frame's width (or height)
ZOOM = (1.25, 1.6)  # how much a zoom magnifies (or shrinks) by the last frame


@dataclass(frozen=True)
class CameraRecipe:
    steps: int = 2500
    batch: int = 64
    lr: float = 1e-3
    ema: float = 0.995
    seed: int = 0


def eased(tau: torch.Tensor, smooth: bool) -> torch.Tensor:
    return tau * tau * (3 - 2 * tau) if smooth else tau


def move_fields(move: str, amount: float, progress: torch.Tensor, grid: int) -> torch.Tensor:
    """Where each grid point of each frame looks, minus where it is: (f, grid, grid, 2) in -1..1 units."""
    points = torch.linspace(-1, 1, grid)
    base = torch.stack(torch.meshgrid(points, points, indexing="xy"), dim=-1)  # (g, g, 2) as (x, y)
    p = progress[:, None, None, None]  # (f, 1, 1, 1)
    shift = torch.zeros(2)
    if move.startswith("pans"):
        axis, sign = {"left": (0, -1), "right": (0, 1), "up": (1, -1), "down": (1, 1)}[move.split()[1]]
        shift[axis] = sign * 2 * amount  # "pans left": the camera turns left, the picture slides right
        return (p * shift).expand(-1, grid, grid, 2).clone()
    if move == "stays still":
        return torch.zeros(len(progress), grid, grid, 2)
    scale = 1 + (amount - 1) * p  # zooms in: a smaller area fills the frame; zooms out: a larger one
    looked = base[None] / scale if move == "zooms in" else base[None] * scale
    return looked - base[None]


def sample_example(rng: random.Random, config: CameraConfig) -> tuple[str, torch.Tensor, int]:
    """(caption, fields (f, c), picture seed) of one training example."""
    move = rng.choice(PICTURE_MOVES)
    amount = rng.uniform(*PAN) if move.startswith("pans") else rng.uniform(*ZOOM)
    tau = torch.linspace(0, 1, config.frames)
    fields = move_fields(move, amount, eased(tau, rng.random() < 0.5), config.grid)
    return camera_caption(move), grid_to_fields(fields[None])[0], rng.randrange(2**31)


def pictures(seeds: list[int], side: int) -> torch.Tensor:
    """Procedural pictures as the model sees them: (b, 3, side, side) in [-1, 1]."""
    coords = (torch.arange(side, dtype=torch.float32) + 0.5) * (64 / side)
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([texture(s, xs, ys) for s in seeds]) * 2 - 1


def camera_step(trainee: Trainee, recipe: CameraRecipe, cumprod: torch.Tensor):
    config = trainee.model.config

    def step(number: int, rng: random.Random, generator: torch.Generator) -> torch.Tensor:
        from engine.training.loop import optimise

        examples = [sample_example(rng, config) for _ in range(recipe.batch)]
        ids = token_batch([tokenize(caption).ids for caption, _, _ in examples])
        x0 = torch.stack([fields for _, fields, _ in examples])  # (b, f, c)
        picture = pictures([seed for _, _, seed in examples], config.picture)
        t = torch.randint(0, config.num_train_timesteps, (recipe.batch,), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        model = trainee.model
        predicted = model(add_noise(x0, noise, t, cumprod), t, model.condition(ids, picture))
        loss = F.mse_loss(predicted[:, 1:], x0[:, 1:])  # frame 0 has no motion by construction
        optimise(trainee, loss, recipe.ema)
        return loss

    return step


def save_camera_model(model: CameraMotionModel, folder: Path, record: dict) -> None:
    from safetensors.torch import save

    from engine.util.files import atomic_write_bytes

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    config = {"model_type": "kinemo-camera", **model.config.to_dict(), "_training": record}
    atomic_write_bytes(Path(folder) / "model.safetensors", save(state))
    atomic_write_bytes(Path(folder) / "config.json", (json.dumps(config, indent=2) + "\n").encode())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m engine.training.camera_train", description=__doc__.splitlines()[0])
    defaults = CameraRecipe()
    p.add_argument("--steps", type=int, default=defaults.steps)
    p.add_argument("--batch", type=int, default=defaults.batch)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--out", type=Path, default=CAMERA_DIR)
    p.add_argument("--checkpoint", type=Path, default=Path("runs/camera/checkpoint.pt"))
    args = p.parse_args(argv)
    recipe = CameraRecipe(args.steps, args.batch, args.lr, defaults.ema, args.seed)
    run = Run(checkpoint=args.checkpoint, checkpoint_every=250, out=args.out, threads=torch.get_num_threads())
    start(run, recipe.seed)
    config = CameraConfig()
    model = CameraMotionModel(config)
    ema = CameraMotionModel(config)
    ema.load_state_dict(model.state_dict())
    trainee = Trainee(model, ema.requires_grad_(False), torch.optim.AdamW(model.parameters(), lr=recipe.lr))
    cumprod = alphas_cumprod(make_betas(config.beta_schedule, config.num_train_timesteps))
    report = Report("camera", 0.05, 50, 5)
    progress = run_steps(trainee, camera_step(trainee, recipe, cumprod), recipe, run, report)
    record = {"steps": progress.step, "batch": recipe.batch, "lr": recipe.lr, "seed": recipe.seed,
              "train_seconds": round(progress.seconds, 1), "final_loss": progress.running,
              "command": "python -m engine.training.camera_train"}  # fmt: skip
    save_camera_model(trainee.ema, args.out, record)
    print(f"saved the camera model to {args.out}")


if __name__ == "__main__":
    main()
