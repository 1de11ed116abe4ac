"""The loop train and distill share: resume, seeded steps, a running loss, atomic checkpoints, a progress bar.

A step's random draws depend only on (seed, step), so a run resumed from a checkpoint sees the
clips and noise an uninterrupted run would have seen, and ends with the same weights.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from engine.kinemo.schedule import alphas_cumprod, make_betas
from engine.kinemo.text_encoder import token_batch
from engine.kinemo.vocabulary import BOS, tokenize
from engine.training.recipe import DistillRecipe, Recipe, Run
from engine.util.files import atomic_path

log = logging.getLogger("kinemo.train")

# one optimiser step from (step, its random.Random, its torch.Generator); returns the step's loss
StepFunction = Callable[[int, random.Random, torch.Generator], torch.Tensor]


@dataclass
class Trainee:
    """What a run trains: the model, its EMA copy (the weights a run ships) and the model's optimiser."""

    model: torch.nn.Module
    ema: torch.nn.Module
    optimiser: torch.optim.Optimizer


@dataclass(frozen=True)
class Report:
    """How a loop shows and records its loss."""

    desc: str  # the progress bar's label
    smoothing: float  # the newest loss's weight in the running loss
    history_every: int  # a (step, running loss, seconds) entry every this many steps
    digits: int  # decimals of the running loss on the progress bar


@dataclass
class Progress:
    """Where a run stands; a checkpoint holds it beside the weights."""

    step: int = 0
    history: list = field(default_factory=list)
    seconds: float = 0.0
    running: float | None = None  # the smoothed loss; a resumed run starts it afresh

    def add(self, loss: float, seconds: float, report: Report) -> None:
        self.step += 1
        self.seconds += seconds
        w = report.smoothing
        self.running = loss if self.running is None else (1 - w) * self.running + w * loss
        if self.step % report.history_every == 0:
            self.history.append((self.step, self.running, round(self.seconds, 1)))


def start(run: Run, seed: int) -> torch.device:
    """Logging, threads and the global seed (which decides a new model's initial weights); the run's device."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(run.threads)
    device = torch.device(run.device)
    torch.manual_seed(seed)
    return device


def noise_schedule(config, device) -> torch.Tensor:
    """The model's a_bar per training timestep (num_train_timesteps,), on device."""
    betas = make_betas(config.beta_schedule, config.num_train_timesteps, snr_scale=config.snr_scale)
    return alphas_cumprod(betas).to(device)


def step_draws(seed: int, step: int) -> tuple[random.Random, torch.Generator]:
    """The random sources of one step, seeded by (seed, step) alone."""
    key = seed * 1_000_003 + step
    return random.Random(key), torch.Generator().manual_seed(key)


def caption_ids(captions: list[str], dropout: float, rng: random.Random) -> torch.Tensor:
    return token_batch([(BOS,) if rng.random() < dropout else tokenize(c).ids for c in captions])


def optimise(trainee: Trainee, loss: torch.Tensor, ema_decay: float) -> None:
    """One optimiser step with gradients clipped to norm 1, then the EMA follows."""
    trainee.optimiser.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainee.model.parameters(), 1.0)
    trainee.optimiser.step()
    with torch.no_grad():
        for e, p in zip(trainee.ema.parameters(), trainee.model.parameters()):
            e.lerp_(p, 1 - ema_decay)


def resume(path: Path, trainee: Trainee, device, fresh: Progress | None = None) -> Progress:
    """Load a checkpoint written by save_run into the trainee; where it stood (fresh, or step 0, without one)."""
    if not path.exists():
        return fresh or Progress()
    state = torch.load(path, map_location=device, weights_only=True)
    trainee.model.load_state_dict(state["model"])
    trainee.ema.load_state_dict(state["ema"])
    trainee.optimiser.load_state_dict(state["optimiser"])
    log.info("resumed from %s at step %d", path, state["step"])
    return Progress(state["step"], state["history"], state["seconds"])


def save_run(path: Path, trainee: Trainee, progress: Progress) -> None:
    state = {
        "model": trainee.model.state_dict(),
        "ema": trainee.ema.state_dict(),
        "optimiser": trainee.optimiser.state_dict(),
        "step": progress.step,
        "history": progress.history,
        "seconds": progress.seconds,
    }
    with atomic_path(path) as partial:  # a run stopped mid-write keeps its previous checkpoint
        torch.save(state, partial)


def run_steps(
    trainee: Trainee,
    step: StepFunction,
    recipe: Recipe | DistillRecipe,
    run: Run,
    report: Report,
    fresh: Progress | None = None,
) -> Progress:
    """Resume from run.checkpoint (else start where fresh says), then run step up to recipe.steps, checkpointing
    every run.checkpoint_every."""
    progress = resume(run.checkpoint, trainee, run.device, fresh)
    bar = tqdm(total=recipe.steps, initial=progress.step, desc=report.desc, mininterval=5)
    while progress.step < recipe.steps:
        started = time.perf_counter()
        loss = step(progress.step, *step_draws(recipe.seed, progress.step))
        progress.add(loss.item(), time.perf_counter() - started, report)
        bar.update(1)
        bar.set_postfix(loss=f"{progress.running:.{report.digits}f}")
        if progress.step % run.checkpoint_every == 0 or progress.step == recipe.steps:
            save_run(run.checkpoint, trainee, progress)
    bar.close()
    return progress
