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

import argparse
import copy
import json
import logging
import os
import random
import time
from pathlib import Path

import torch
from tqdm import tqdm

from engine.kinemo.ddim import DDIMSampler, ddim_timesteps
from engine.kinemo.files import load_model, save_model
from engine.kinemo.schedule import alphas_cumprod, make_betas
from engine.registry.assets import FAST_DIR, STARTER_DIR
from engine.training.synthetic import make_batch
from engine.training.train import caption_ids, optimise, resume, save_run

log = logging.getLogger("kinemo.distill")
SPACING = "trailing"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m engine.training.distill", description=__doc__.splitlines()[0])
    p.add_argument("--teacher", type=Path, default=STARTER_DIR)
    p.add_argument("--student-steps", type=int, default=4)
    p.add_argument("--teacher-steps", type=int, default=24, help="a multiple of --student-steps")
    p.add_argument("--steps", type=int, default=100, help="optimiser steps")
    p.add_argument("--batch", type=int, default=6, help="teacher trajectories per step")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--ema", type=float, default=0.99)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--checkpoint", type=Path, default=Path("runs/distill/checkpoint.pt"))
    p.add_argument("--checkpoint-every", type=int, default=25)
    p.add_argument("--out", type=Path, default=FAST_DIR)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p.parse_args(argv)


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


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)

    # 1. teacher, student (a copy), schedule
    teacher = load_model(args.teacher).to(device)
    config = teacher.config
    cumprod = alphas_cumprod(
        make_betas(config.beta_schedule, config.num_train_timesteps, snr_scale=config.snr_scale)
    ).to(device)
    sampler = DDIMSampler(cumprod, prediction_type=config.prediction_type, clip_sample=True)
    student_ts, teacher_ts = student_timesteps(args.student_steps, args.teacher_steps, config.num_train_timesteps)
    final_alpha = torch.tensor(1.0, device=device)
    student = copy.deepcopy(teacher).train().requires_grad_(True)
    ema = copy.deepcopy(teacher).requires_grad_(False)
    optimiser = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=0.0, betas=(0.9, 0.99))

    step, history, seconds = resume(args.checkpoint, student, ema, optimiser, device)

    # 2. distil: teacher trajectories -> one-step targets for every student step
    bar = tqdm(total=args.steps, initial=step, desc="distil", mininterval=5)
    running = None
    while step < args.steps:
        started = time.perf_counter()
        rng = random.Random(args.seed * 1_000_003 + step)
        generator = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        batch = make_batch(rng, args.batch, frames=config.max_frames)
        ids = caption_ids(batch.captions, 0.0, rng).to(device)
        first = (batch.video[:, :, 0] * 2 - 1).to(device)
        cond = teacher.encode(ids, first, batch.image_mask.to(device))
        noise = torch.randn(batch.video.shape, generator=generator).to(device)
        waypoints = teacher_waypoints(teacher, sampler, cond, noise, teacher_ts, student_ts)

        s_cond = student.encode(ids, first, batch.image_mask.to(device))
        loss = 0.0
        for i, t in enumerate(student_ts):
            a_t = cumprod[t]
            a_s = cumprod[student_ts[i + 1]] if i + 1 < len(student_ts) else final_alpha
            target = landing_x0(waypoints[i], waypoints[i + 1], a_t, a_s).clamp(-1, 1)
            prediction = student(waypoints[i], torch.full((args.batch,), t, device=device), s_cond)
            loss = loss + (prediction - target).pow(2).mean() / len(student_ts)
        optimise(student, ema, optimiser, loss, args.ema)

        step += 1
        seconds += time.perf_counter() - started
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{running:.5f}")
        history.append((step, running, round(seconds, 1)))
        if step % args.checkpoint_every == 0 or step == args.steps:
            save_run(args.checkpoint, student, ema, optimiser, step, history, seconds)
    bar.close()

    # 3. the student, with the timesteps it was distilled for
    extra = {
        "_sampling": {"timesteps": student_ts, "spacing": SPACING},
        "_distillation": {
            "teacher": shown_path(args.teacher),
            "teacher_steps": args.teacher_steps,
            "student_steps": args.student_steps,
            "steps": step,
            "batch": args.batch,
            "lr": args.lr,
            "ema": args.ema,
            "seed": args.seed,
            "train_seconds": round(seconds, 1),
            "final_loss": running,
            "device": str(device),
        },
    }
    save_model(ema.eval(), args.out, extra)
    log.info("wrote %s after %d steps (%.0f s); timesteps %s", args.out, step, seconds, json.dumps(student_ts))


if __name__ == "__main__":
    main()
