"""What a training or distillation run does (its recipe) and where it runs, read from the command line.

A recipe holds every option that changes the weights a run writes; its defaults are the shipped
runs' options and the command lines' defaults. A Run holds the options that do not change the
weights: where checkpoints and the model go, threads and device. The flags both commands take
are defined once, in add_shared_flags, with each command's defaults.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import torch

from engine.kinemo.model import KinemoConfig
from engine.registry.assets import FAST_DIR, STARTER_DIR


@dataclass(frozen=True)
class Recipe:
    """The starter model's training recipe (python -m engine.training.train); add_train_flags's help texts say why."""

    steps: int = 2350
    batch: int = 8  # clips per step at the full window
    short_frames: int = 4
    full_every: int = 4
    lr: float = 5e-4
    warmup: int = 100
    ema: float = 0.995
    object_weight: float = 3.0
    blur_rate: float = 0.5
    max_blur: float = 2.0
    mid_share: float = 0.5
    mid_range: tuple[int, int] = (300, 800)
    input_perturbation: float = 0.1
    finish_from: int = 2200
    lumpy_rate: float = 0.5
    lumpy_strength: float = 0.5
    precision: str = "bf16"
    text_dropout: float = 0.1
    seed: int = 0
    model_config: dict = field(default_factory=dict)  # KinemoConfig overrides
    init: Path | None = None  # a saved model to continue from, at the step and seconds its config records

    def at_step(self, step: int) -> Recipe:
        """The recipe in force at step: the finishing stage's lumpy outlines apply from finish_from on."""
        return self if step >= self.finish_from else replace(self, lumpy_rate=0.0)


@dataclass(frozen=True)
class DistillRecipe:
    """The few-step student's recipe (python -m engine.training.distill)."""

    teacher: Path = STARTER_DIR
    student_steps: int = 4
    teacher_steps: int = 24
    steps: int = 100
    batch: int = 6  # teacher trajectories per step
    lr: float = 1e-4
    ema: float = 0.99
    seed: int = 0


@dataclass(frozen=True)
class Run:
    """Where and on what a recipe runs; none of it changes the weights."""

    checkpoint: Path
    checkpoint_every: int
    out: Path
    threads: int = 1
    device: str = "cpu"


TRAIN_RUN = Run(checkpoint=Path("runs/starter/checkpoint.pt"), checkpoint_every=50, out=STARTER_DIR)
DISTILL_RUN = Run(checkpoint=Path("runs/distill/checkpoint.pt"), checkpoint_every=25, out=FAST_DIR)


def add_shared_flags(p: argparse.ArgumentParser, recipe, run: Run, steps_help: str | None, batch_help: str) -> None:
    """The flags train and distill both take, with the defaults of recipe and run."""
    p.add_argument("--steps", type=int, default=recipe.steps, help=steps_help)
    p.add_argument("--batch", type=int, default=recipe.batch, help=batch_help)
    p.add_argument("--lr", type=float, default=recipe.lr)
    p.add_argument("--ema", type=float, default=recipe.ema)
    p.add_argument("--seed", type=int, default=recipe.seed)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--checkpoint", type=Path, default=run.checkpoint)
    p.add_argument("--checkpoint-every", type=int, default=run.checkpoint_every)
    p.add_argument("--out", type=Path, default=run.out)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")


def from_flags(args: argparse.Namespace, recipe_type: type) -> tuple:
    """(recipe, run) from parsed flags, each flag going to the field of its name."""
    values = vars(args)
    recipe = recipe_type(**{f.name: values[f.name] for f in fields(recipe_type)})
    run = Run(**{f.name: values[f.name] for f in fields(Run)})
    return recipe, run


def add_train_flags(p: argparse.ArgumentParser, d: Recipe) -> None:
    p.add_argument("--short-frames", type=int, default=d.short_frames, help="frames per clip on short steps")
    p.add_argument("--full-every", type=int, default=d.full_every, help="every N-th step trains on the full window")
    p.add_argument("--warmup", type=int, default=d.warmup)
    p.add_argument(
        "--object-weight",
        type=float,
        default=d.object_weight,
        help="extra loss weight on pixels at and around the object: what tells a square from a circle is a few "
        "percent of a frame, and a plain MSE (0) lets the model draw every shape as one blob",
    )
    p.add_argument(
        "--blur-rate",
        type=float,
        default=d.blur_rate,
        help="share of clips noised from a blurred copy (the target stays sharp): a sampler's early estimates "
        "are blurred, and the model learns to draw the prompt's shape from such a blob (0 for none)",
    )
    p.add_argument("--max-blur", type=float, default=d.max_blur, help="largest blur, Gaussian sigma in pixels")
    p.add_argument(
        "--mid-share",
        type=float,
        default=d.mid_share,
        help="share of clips whose timestep is drawn from --mid-range instead of the whole schedule: a sampled "
        "clip's shape is decided in the middle of the schedule, where a model that reads lumps of noise as "
        "shape loses the prompt's square or triangle (0 for uniform timesteps)",
    )
    p.add_argument("--mid-range", type=int, nargs=2, default=d.mid_range, metavar=("LOW", "HIGH"))
    p.add_argument(
        "--input-perturbation",
        type=float,
        default=d.input_perturbation,
        help="extra noise, as a share of the schedule's own, added to the model's input but not to what it is "
        "asked to undo (Ning et al. 2023): a sampler's inputs carry its own earlier errors, and a model "
        "that trusts its input exactly copies them (0 for none)",
    )
    add_finishing_flags(p, d)
    p.add_argument(
        "--precision",
        choices=("bf16", "fp32"),
        default=d.precision,
        help="autocast of the model's forward pass; weights, optimiser and EMA stay fp32 (bf16: steps take 15-25 %% "
        "less time on this project's CPUs, which have AVX-512 BF16)",
    )
    p.add_argument(
        "--text-dropout", type=float, default=d.text_dropout, help="share of captions replaced by the empty prompt"
    )
    p.add_argument(
        "--config",
        dest="model_config",
        type=json.loads,
        default={},
        help="model config overrides as JSON, e.g. '{\"dim\": 64}'",
    )


def add_init_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--init",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="continue a finished run from the model it saved (e.g. assets/kinemo-starter): its weights start both "
        "the model and its EMA, with a new optimiser, at the step and training seconds its config.json records; "
        "a checkpoint, when there is one, still wins",
    )


def add_finishing_flags(p: argparse.ArgumentParser, d: Recipe) -> None:
    p.add_argument(
        "--finish-from",
        type=int,
        default=d.finish_from,
        metavar="STEP",
        help="the step from which the finishing stage's --lumpy-rate applies; the steps before it are the "
        "recipe without lumpy outlines, step for step",
    )
    p.add_argument(
        "--lumpy-rate",
        type=float,
        default=d.lumpy_rate,
        help="share of object clips, in the finishing stage, noised from a copy whose outline is made lumpy while "
        "the target stays clean: a sampler's estimates grow bumps and notches over its last steps, and a "
        "model that trusts them turns a square into a blob (0 for none)",
    )
    p.add_argument(
        "--lumpy-strength",
        type=float,
        default=d.lumpy_strength,
        help="size of the bumps: the blurred coverage, whose 0.5 level is the outline, is shifted by this x U(0, 1) x a "
        "smooth unit random field, clipped to +-0.45 (about 2 px)",
    )


def check_train_flags(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse, with a usage error, options the training step cannot use."""
    low, high = args.mid_range
    if not 0 <= low < high <= KinemoConfig.num_train_timesteps:
        p.error(f"--mid-range {low} {high} is not inside the schedule's 0..{KinemoConfig.num_train_timesteps}")
    if not 0 <= args.mid_share <= 1:
        p.error(f"--mid-share {args.mid_share} is not a share between 0 and 1")
    if not 0 <= args.lumpy_rate <= 1:
        p.error(f"--lumpy-rate {args.lumpy_rate} is not a share between 0 and 1")
    if args.finish_from < 0 or args.lumpy_strength < 0:
        p.error("--finish-from and --lumpy-strength cannot be negative")


def parse_train(argv=None, description: str = "") -> tuple[Recipe, Run]:
    p = argparse.ArgumentParser(prog="python -m engine.training.train", description=description)
    batch_help = "clips per step at the full window; short steps take more"
    add_shared_flags(p, Recipe(), TRAIN_RUN, None, batch_help)
    add_train_flags(p, Recipe())
    add_init_flag(p)
    args = p.parse_args(argv)
    check_train_flags(p, args)
    args.mid_range = tuple(args.mid_range)
    return from_flags(args, Recipe)


def parse_distill(argv=None, description: str = "") -> tuple[DistillRecipe, Run]:
    p = argparse.ArgumentParser(prog="python -m engine.training.distill", description=description)
    d = DistillRecipe()
    p.add_argument("--teacher", type=Path, default=d.teacher)
    p.add_argument("--student-steps", type=int, default=d.student_steps)
    p.add_argument("--teacher-steps", type=int, default=d.teacher_steps, help="a multiple of --student-steps")
    add_shared_flags(p, d, DISTILL_RUN, "optimiser steps", "teacher trajectories per step")
    return from_flags(p.parse_args(argv), DistillRecipe)
