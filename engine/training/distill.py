"""Distil the bundled model into a few-step student.

    python -m engine.training.distill [--teacher assets/kinemo-starter] [--student-steps 4] [--steps N]

Trajectory distillation in the manner of progressive distillation (Salimans & Ho 2022), in one
stage: the teacher runs DDIM over teacher-steps timesteps, and the student learns to reach, in one
DDIM step, the point the teacher reaches after teacher-steps / student-steps of its own. For a DDIM
step from x_t to x_s (eta = 0) the clean sample that lands exactly there is

    x0~ = (x_s - (sigma_s / sigma_t) x_t) / (alpha_s - alpha_t sigma_s / sigma_t)

with alpha = sqrt(a_bar), sigma = sqrt(1 - a_bar); the student (x-prediction, like the teacher)
is trained towards x0~. The student starts as a copy of the teacher and ships beside it with its
timesteps in its config. Resumable like engine.training.train: the data depend only on (seed, step).
"""

from __future__ import annotations

import copy
import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.kinemo.ddim import DDIMSampler, ddim_timesteps
from engine.kinemo.files import load_model, save_model
from engine.registry.assets import STARTER_DIR
from engine.training.loop import Progress, Report, Trainee, caption_ids, noise_schedule, optimise, run_steps, start
from engine.training.recipe import DistillRecipe, Run, parse_distill
from engine.training.synthetic import make_batch

log = logging.getLogger("kinemo.distill")
SPACING = "trailing"
REPORT = Report(desc="distil", smoothing=0.05, history_every=1, digits=5)


def parse_args(argv=None) -> tuple[DistillRecipe, Run]:
    return parse_distill(argv, __doc__.splitlines()[0])


def shown_path(path: Path) -> str:
    """A path as the repository sees it where it is inside it (model cards travel with the repository)."""
    root = STARTER_DIR.parent.parent
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return str(path)


def student_timesteps(student_steps: int, teacher_steps: int, num_train_timesteps: int) -> tuple[list[int], list[int]]:
    """(student timesteps, teacher timesteps); every student timestep is one of the teacher's."""
    if teacher_steps % student_steps:
        raise ValueError(f"--teacher-steps {teacher_steps} is not a multiple of --student-steps {student_steps}")
    teacher = ddim_timesteps(teacher_steps, num_train_timesteps, SPACING)
    return teacher[:: teacher_steps // student_steps], teacher


def landing_x0(x_t, x_s, a_t, a_s):
    """The clean sample whose DDIM step (eta 0) takes x_t at a_bar = a_t exactly to x_s at a_bar = a_s."""
    alpha_t, sigma_t = a_t.sqrt(), (1 - a_t).sqrt()
    alpha_s, sigma_s = a_s.sqrt(), (1 - a_s).sqrt()
    ratio = sigma_s / sigma_t
    return (x_s - ratio * x_t) / (alpha_s - alpha_t * ratio)


@torch.no_grad()
def teacher_waypoints(
    teacher, sampler: DDIMSampler, cond, noise, teacher_ts: list[int], student_ts: list[int]
) -> list[torch.Tensor]:
    """The teacher's states at each student timestep, then its finished sample: student_steps + 1 tensors."""
    waypoints, x = [], noise
    for index, t in enumerate(teacher_ts):
        if t in student_ts:
            waypoints.append(x)
        prev_t = teacher_ts[index + 1] if index + 1 < len(teacher_ts) else -1
        x = sampler.step(teacher(x, torch.full((x.shape[0],), t, device=x.device), cond), t, prev_t, x).prev_sample
    return waypoints + [x]


@dataclass(frozen=True)
class Schedule:
    """The noise schedule, the teacher's sampler, and the timesteps of student and teacher."""

    cumprod: torch.Tensor  # (num_train_timesteps,) on the run's device
    sampler: DDIMSampler
    student_ts: list[int]
    teacher_ts: list[int]


def distillation_loss(student, teacher, ids, batch, noise, schedule: Schedule) -> torch.Tensor:
    """The student's loss over every student step of one batch of teacher trajectories from noise."""
    cumprod, student_ts = schedule.cumprod, schedule.student_ts
    device = cumprod.device
    first = (batch.video[:, :, 0] * 2 - 1).to(device)
    cond = teacher.encode(ids, first, batch.image_mask.to(device))
    waypoints = teacher_waypoints(teacher, schedule.sampler, cond, noise, schedule.teacher_ts, student_ts)
    s_cond = student.encode(ids, first, batch.image_mask.to(device))
    final_alpha = torch.tensor(1.0, device=device)
    loss = 0.0
    for i, t in enumerate(student_ts):
        a_t = cumprod[t]
        a_s = cumprod[student_ts[i + 1]] if i + 1 < len(student_ts) else final_alpha
        target = landing_x0(waypoints[i], waypoints[i + 1], a_t, a_s).clamp(-1, 1)
        prediction = student(waypoints[i], torch.full((noise.shape[0],), t, device=device), s_cond)
        loss = loss + (prediction - target).pow(2).mean() / len(student_ts)
    return loss


def distillation_record(recipe: DistillRecipe, progress: Progress, device: torch.device) -> dict:
    """The recipe as the student's config.json records it under "_distillation"."""
    return {
        "teacher": shown_path(recipe.teacher),
        "teacher_steps": recipe.teacher_steps,
        "student_steps": recipe.student_steps,
        "steps": progress.step,
        "batch": recipe.batch,
        "lr": recipe.lr,
        "ema": recipe.ema,
        "seed": recipe.seed,
        "train_seconds": round(progress.seconds, 1),
        "final_loss": progress.running,
        "device": str(device),
    }


def main(argv=None) -> None:
    recipe, run = parse_args(argv)
    device = start(run, recipe.seed)

    # 1. teacher, student (a copy), schedule
    teacher = load_model(recipe.teacher).to(device)
    config = teacher.config
    cumprod = noise_schedule(config, device)
    sampler = DDIMSampler(cumprod, prediction_type=config.prediction_type, clip_sample=True)
    student_ts, teacher_ts = student_timesteps(recipe.student_steps, recipe.teacher_steps, config.num_train_timesteps)
    student = copy.deepcopy(teacher).train().requires_grad_(True)
    ema = copy.deepcopy(teacher).requires_grad_(False)
    optimiser = torch.optim.AdamW(student.parameters(), lr=recipe.lr, weight_decay=0.0, betas=(0.9, 0.99))
    trainee = Trainee(student, ema, optimiser)
    schedule = Schedule(cumprod, sampler, student_ts, teacher_ts)

    # 2. distil: teacher trajectories -> one-step targets for every student step
    def step(index: int, rng: random.Random, generator: torch.Generator) -> torch.Tensor:
        batch = make_batch(rng, recipe.batch, frames=config.max_frames)
        ids = caption_ids(batch.captions, 0.0, rng).to(device)
        noise = torch.randn(batch.video.shape, generator=generator).to(device)
        loss = distillation_loss(student, teacher, ids, batch, noise, schedule)
        optimise(trainee, loss, recipe.ema)
        return loss

    progress = run_steps(trainee, step, recipe, run, REPORT)

    # 3. the student, with the timesteps it was distilled for
    extra = {
        "_sampling": {"timesteps": student_ts, "spacing": SPACING},
        "_distillation": distillation_record(recipe, progress, device),
    }
    save_model(ema.eval(), run.out, extra)
    log.info(
        "wrote %s after %d steps (%.0f s); timesteps %s",
        run.out,
        progress.step,
        progress.seconds,
        json.dumps(student_ts),
    )


if __name__ == "__main__":
    main()
